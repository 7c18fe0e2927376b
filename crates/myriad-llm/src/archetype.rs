//! Archetypes: one LLM question per group of agents that share the values of
//! the attributes a prompt mentions, sampled K times, instead of one call per
//! agent. The group's probability is the share of "yes" answers (or the mean
//! value); each agent's decision is then drawn from it with the engine's
//! counter-based randomness, so the LLM cost depends on the number of
//! groups, not of agents.
//!
//! Groups are the combinations of attribute values that occur in the
//! population (a subset of the Cartesian product: combinations no agent has
//! are never asked about).

use crate::client::{LlmClient, LlmError};
use crate::parse::{parse, AnswerKind};
use crate::template::{Template, TemplateError};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A question asked of every group.
#[derive(Clone, Debug)]
pub struct Question {
    /// Prompt with placeholders for group attributes and observations.
    pub template: Template,
    /// The answer expected (yes/no or a number averaged over samples).
    pub kind: AnswerKind,
    /// Samples per group (K).
    pub samples: u32,
    /// Rounds of re-asking unparsable answers (with new sample indices).
    pub reasks: u32,
    /// Weight of the previous period's probability, in [0, 1).
    pub smoothing: f64,
    /// Probability used for a group with no readable answer; `None` leaves
    /// it to the caller (NaN in the result), e.g. to a heuristic.
    pub fallback: Option<f64>,
}

/// What one round of asking produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Round {
    /// Per group: the probability (NaN where the caller's fallback applies).
    pub probabilities: Vec<f64>,
    /// Answers requested (before deduplication and cache).
    pub requests: u64,
    /// Answers that could not be read (each re-asked while rounds remain).
    pub unparsed: u64,
    /// Groups that got no readable answer and used the fallback.
    pub fallbacks: u64,
}

/// Errors of a round.
#[derive(Debug, thiserror::Error)]
pub enum ArchetypeError {
    /// The prompt template.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The LLM.
    #[error(transparent)]
    Llm(#[from] Arc<LlmError>),
}

/// The groups of a population and each group's previous probability.
pub struct Archetypes {
    names: Vec<String>,
    groups: Vec<Vec<String>>,
    group_of: Vec<u32>,
    previous: Vec<Option<f64>>,
}

impl Archetypes {
    /// Group agents by attributes: `(name, per-agent codes, labels)`; every
    /// code vector has one entry per agent. Groups are ordered by their codes.
    pub fn new(attributes: &[(String, Vec<u32>, Vec<String>)]) -> Archetypes {
        let n = attributes.first().map_or(0, |a| a.1.len());
        let mut tuples: BTreeMap<Vec<u32>, u32> = BTreeMap::new();
        for i in 0..n {
            tuples.entry(attributes.iter().map(|a| a.1[i]).collect()).or_insert(0);
        }
        for (k, v) in tuples.values_mut().enumerate() {
            *v = k as u32;
        }
        let group_of = (0..n)
            .map(|i| tuples[&attributes.iter().map(|a| a.1[i]).collect::<Vec<u32>>()])
            .collect();
        let groups: Vec<Vec<String>> = tuples
            .keys()
            .map(|codes| {
                codes
                    .iter()
                    .zip(attributes)
                    .map(|(&c, a)| a.2.get(c as usize).cloned().unwrap_or_else(|| c.to_string()))
                    .collect()
            })
            .collect();
        Archetypes {
            names: attributes.iter().map(|a| a.0.clone()).collect(),
            previous: vec![None; groups.len()],
            groups,
            group_of,
        }
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// True if there are no agents.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The group of an agent.
    pub fn group_of(&self, agent: usize) -> usize {
        self.group_of[agent] as usize
    }

    /// A group's attribute values by name.
    pub fn attributes(&self, group: usize) -> BTreeMap<String, String> {
        self.names
            .iter()
            .cloned()
            .zip(self.groups[group].iter().cloned())
            .collect()
    }

    /// Ask every group `q.samples` times with `observations` filled in
    /// (`observations` may also be per group: `per_group(g)` adds to them),
    /// and return each group's probability.
    pub async fn ask(
        &mut self,
        client: &LlmClient,
        q: &Question,
        observations: &BTreeMap<String, String>,
        per_group: impl Fn(usize) -> BTreeMap<String, String>,
    ) -> Result<Round, ArchetypeError> {
        let k = q.samples.max(1);
        let prompts: Vec<String> = (0..self.len())
            .map(|g| {
                let mut values = self.attributes(g);
                values.extend(observations.clone());
                values.extend(per_group(g));
                q.template.fill(&values)
            })
            .collect::<Result<_, _>>()?;
        let mut round = Round::default();
        let mut sums = vec![0.0; self.len()];
        let mut counts = vec![0u32; self.len()];
        // (group, sample index) still to be answered.
        let mut pending: Vec<(usize, u32)> = (0..self.len()).flat_map(|g| (0..k).map(move |s| (g, s))).collect();
        for attempt in 0..=q.reasks {
            if pending.is_empty() {
                break;
            }
            let requests: Vec<(String, u32)> = pending.iter().map(|&(g, s)| (prompts[g].clone(), s)).collect();
            round.requests += requests.len() as u64;
            let answers = client.answer_all(&requests).await;
            let mut again = Vec::new();
            for (&(g, s), answer) in pending.iter().zip(answers) {
                let answer = answer?;
                match parse(&answer.text, &q.kind).ok().and_then(|a| a.value()) {
                    Some(v) => {
                        sums[g] += v;
                        counts[g] += 1;
                    }
                    None => {
                        round.unparsed += 1;
                        // A re-ask is a new sample: the same index would
                        // return the same cached (or seeded) answer.
                        again.push((g, s + k * (attempt + 1)));
                    }
                }
            }
            pending = again;
        }
        round.probabilities = (0..self.len())
            .map(|g| {
                let p = if counts[g] > 0 {
                    sums[g] / counts[g] as f64
                } else {
                    round.fallbacks += 1;
                    q.fallback.unwrap_or(f64::NAN)
                };
                match (self.previous[g], p.is_nan()) {
                    (Some(prev), false) => q.smoothing * prev + (1.0 - q.smoothing) * p,
                    _ => p,
                }
            })
            .collect();
        for (prev, &p) in self.previous.iter_mut().zip(&round.probabilities) {
            if !p.is_nan() {
                *prev = Some(p);
            }
        }
        Ok(round)
    }
}

/// Groups' probabilities as a lookup per agent.
pub fn per_agent(archetypes: &Archetypes, probabilities: &[f64]) -> Vec<f64> {
    archetypes.group_of.iter().map(|&g| probabilities[g as usize]).collect()
}

/// Count agents per group (for reports).
pub fn group_sizes(archetypes: &Archetypes) -> Vec<u64> {
    let mut sizes: HashMap<u32, u64> = HashMap::new();
    for &g in &archetypes.group_of {
        *sizes.entry(g).or_default() += 1;
    }
    (0..archetypes.len() as u32)
        .map(|g| sizes.get(&g).copied().unwrap_or(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_the_combinations_that_occur() {
        let age = (
            "age_group".to_string(),
            vec![0, 1, 0, 1, 0],
            vec!["U19".into(), "20t29".into()],
        );
        let borough = (
            "borough".to_string(),
            vec![0, 0, 0, 1, 0],
            vec!["BK".into(), "SI".into()],
        );
        let a = Archetypes::new(&[age, borough]);
        // (U19, BK), (20t29, BK), (20t29, SI): 3 of the 4 combinations.
        assert_eq!(a.len(), 3);
        assert_eq!((0..5).map(|i| a.group_of(i)).collect::<Vec<_>>(), [0, 1, 0, 2, 0]);
        assert_eq!(a.attributes(2)["borough"], "SI");
        assert_eq!(a.attributes(2)["age_group"], "20t29");
        assert_eq!(group_sizes(&a), [3, 1, 1]);
        assert_eq!(per_agent(&a, &[0.1, 0.2, 0.3]), [0.1, 0.2, 0.1, 0.3, 0.1]);
    }
}
