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
    /// Read the probability of "yes" from the model's next-token
    /// distribution (`answer = "logprob"`, the embedded backend) instead of
    /// sampling `samples` answers and parsing them.
    pub logprob: bool,
}

/// The options scored for a yes/no question in logprob mode.
pub fn yes_no_options() -> Vec<String> {
    vec!["yes".to_string(), "no".to_string()]
}

/// The probabilities of "yes" for `prompts` from the model's next-token
/// distribution (one forward pass each, no sampling).
pub(crate) async fn yes_probabilities(
    client: &LlmClient,
    q: &Question,
    prompts: &[String],
) -> Result<Vec<f64>, ArchetypeError> {
    if q.kind != AnswerKind::YesNo {
        return Err(ArchetypeError::Llm(Arc::new(LlmError::Config(
            "answer = \"logprob\" reads yes/no decisions only".into(),
        ))));
    }
    client
        .score_all(prompts, &yes_no_options())
        .await
        .into_iter()
        .map(|r| Ok(r?[0]))
        .collect()
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

/// An attribute to group by: `(name, per-agent codes, labels)`.
pub type Attribute<'a> = (&'a str, &'a [u32], &'a [String]);

/// The groups of a population and each group's previous probability.
#[derive(Clone, Debug)]
pub struct Archetypes {
    names: Vec<String>,
    groups: Vec<Vec<String>>,
    group_of: Vec<u32>,
    /// Last probability of each group, by its attribute values (so it
    /// survives regrouping by a changing state).
    previous: HashMap<Vec<String>, f64>,
    /// The last prompt each group was asked and the answers it gave, by
    /// attribute values (for people inspecting a run).
    last_asked: HashMap<Vec<String>, (String, Vec<String>)>,
}

impl Archetypes {
    /// Group agents by attributes: `(name, per-agent codes, labels)`; every
    /// code vector has one entry per agent. Groups are ordered by their codes.
    pub fn new(attributes: &[(String, Vec<u32>, Vec<String>)]) -> Archetypes {
        let borrowed: Vec<Attribute> = attributes
            .iter()
            .map(|(n, c, l)| (n.as_str(), c.as_slice(), l.as_slice()))
            .collect();
        Archetypes::group(&borrowed, HashMap::new(), HashMap::new())
    }

    /// Group the agents again, by attributes that may have changed (agent
    /// states), keeping each group's previous probability for smoothing.
    pub fn regroup(&mut self, attributes: &[Attribute]) {
        let previous = std::mem::take(&mut self.previous);
        let last_asked = std::mem::take(&mut self.last_asked);
        *self = Archetypes::group(attributes, previous, last_asked);
    }

    fn group(
        attributes: &[Attribute],
        previous: HashMap<Vec<String>, f64>,
        last_asked: HashMap<Vec<String>, (String, Vec<String>)>,
    ) -> Archetypes {
        let n = attributes.first().map_or(0, |a| a.1.len());
        // Mixed-radix code of each agent's combination: one integer per
        // agent instead of a vector, then the combinations that occur, in
        // code order (the order of the attributes' codes).
        let radix: Vec<u64> = attributes
            .iter()
            .map(|a| {
                (a.2.len() as u64)
                    .max(a.1.iter().copied().max().map_or(0, |m| u64::from(m) + 1))
                    .max(1)
            })
            .collect();
        let combined: Vec<u64> = (0..n)
            .map(|i| {
                attributes
                    .iter()
                    .zip(&radix)
                    .fold(0u64, |acc, (a, &r)| acc * r + u64::from(a.1[i]))
            })
            .collect();
        let space = radix.iter().try_fold(1u64, |acc, &r| acc.checked_mul(r));
        let (present, group_of): (Vec<u64>, Vec<u32>) = match space {
            // Few possible combinations (the usual case: a handful of
            // categories): a dense table, no sorting or hashing per agent.
            Some(size) if size <= 1 << 20 => {
                let mut seen = vec![false; size as usize];
                for &c in &combined {
                    seen[c as usize] = true;
                }
                let mut table = vec![u32::MAX; size as usize];
                let mut present = Vec::new();
                for (c, _) in seen.iter().enumerate().filter(|(_, &s)| s) {
                    table[c] = present.len() as u32;
                    present.push(c as u64);
                }
                let group_of = combined.iter().map(|&c| table[c as usize]).collect();
                (present, group_of)
            }
            _ => {
                let mut present: Vec<u64> = combined.clone();
                present.sort_unstable();
                present.dedup();
                let index: HashMap<u64, u32> = present.iter().enumerate().map(|(g, &c)| (c, g as u32)).collect();
                let group_of = combined.iter().map(|c| index[c]).collect();
                (present, group_of)
            }
        };
        let groups: Vec<Vec<String>> = present
            .iter()
            .map(|&c| {
                let mut codes = vec![0u64; attributes.len()];
                let mut rest = c;
                for k in (0..attributes.len()).rev() {
                    codes[k] = rest % radix[k];
                    rest /= radix[k];
                }
                codes
                    .iter()
                    .zip(attributes)
                    .map(|(&code, a)| a.2.get(code as usize).cloned().unwrap_or_else(|| code.to_string()))
                    .collect()
            })
            .collect();
        Archetypes {
            names: attributes.iter().map(|a| a.0.to_string()).collect(),
            groups,
            group_of,
            previous,
            last_asked,
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

    /// Number of agents grouped.
    pub fn group_of_len(&self) -> usize {
        self.group_of.len()
    }

    /// The group of an agent.
    pub fn group_of(&self, agent: usize) -> usize {
        self.group_of[agent] as usize
    }

    /// The last prompt a group was asked and the answers it gave (for
    /// option probabilities: the probability of yes, as text).
    pub fn last_asked(&self, group: usize) -> Option<&(String, Vec<String>)> {
        self.last_asked.get(self.groups.get(group)?)
    }

    /// A group's last probability (after smoothing), once it has been asked.
    pub fn last_probability(&self, group: usize) -> Option<f64> {
        self.previous.get(self.groups.get(group)?).copied()
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
        for (g, prompt) in prompts.iter().enumerate() {
            self.last_asked
                .insert(self.groups[g].clone(), (prompt.clone(), Vec::new()));
        }
        if q.logprob {
            round.requests = prompts.len() as u64;
            let p = yes_probabilities(client, q, &prompts).await?;
            for (g, x) in p.iter().enumerate() {
                if let Some(last) = self.last_asked.get_mut(&self.groups[g]) {
                    last.1.push(format!("probability of yes: {x:.3}"));
                }
            }
            round.probabilities = self.smoothed(q, p);
            return Ok(round);
        }
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
                if let Some(last) = self.last_asked.get_mut(&self.groups[g]) {
                    last.1.push(answer.text.clone());
                }
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
        let raw: Vec<f64> = (0..self.len())
            .map(|g| {
                if counts[g] > 0 {
                    sums[g] / counts[g] as f64
                } else {
                    round.fallbacks += 1;
                    q.fallback.unwrap_or(f64::NAN)
                }
            })
            .collect();
        round.probabilities = self.smoothed(q, raw);
        Ok(round)
    }

    /// This period's probabilities mixed with the previous period's
    /// (`q.smoothing`), remembered for the next.
    fn smoothed(&mut self, q: &Question, raw: Vec<f64>) -> Vec<f64> {
        let p: Vec<f64> = raw
            .into_iter()
            .enumerate()
            .map(|(g, p)| match (self.previous.get(&self.groups[g]), p.is_nan()) {
                (Some(prev), false) => q.smoothing * prev + (1.0 - q.smoothing) * p,
                _ => p,
            })
            .collect();
        for (group, &x) in self.groups.iter().zip(&p) {
            if !x.is_nan() {
                self.previous.insert(group.clone(), x);
            }
        }
        p
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

    #[test]
    fn large_category_spaces_group_like_small_ones() {
        // 200^3 possible combinations (past the dense table): the same
        // groups, in the same order, as a direct tuple sort.
        let labels: Vec<String> = (0..200).map(|k| format!("v{k}")).collect();
        let n = 5000;
        let code = |i: usize, salt: usize| ((i * 7919 + salt * 104729) % 13 * 15) as u32;
        let attrs: Vec<(String, Vec<u32>, Vec<String>)> = (0..3)
            .map(|k| (format!("a{k}"), (0..n).map(|i| code(i, k)).collect(), labels.clone()))
            .collect();
        let a = Archetypes::new(&attrs);
        let mut tuples: Vec<Vec<u32>> = (0..n).map(|i| attrs.iter().map(|x| x.1[i]).collect()).collect();
        tuples.sort();
        tuples.dedup();
        assert_eq!(a.len(), tuples.len());
        for i in 0..n {
            let t: Vec<u32> = attrs.iter().map(|x| x.1[i]).collect();
            let g = tuples.binary_search(&t).unwrap();
            assert_eq!(a.group_of(i), g);
            assert_eq!(a.attributes(g)["a1"], labels[t[1] as usize]);
        }
    }

    #[test]
    fn regrouping_by_a_state_splits_groups_and_keeps_their_history() {
        let labels = vec!["U19".to_string(), "20t29".to_string()];
        let ages = vec![0, 1, 0, 1];
        let mut a = Archetypes::new(&[("age_group".to_string(), ages.clone(), labels.clone())]);
        a.previous.insert(vec!["U19".into()], 0.5);
        let health = vec!["well".to_string(), "unwell".to_string()];
        a.regroup(&[("age_group", &ages, &labels), ("health", &[0, 0, 1, 0], &health)]);
        // (U19, well), (U19, unwell), (20t29, well).
        assert_eq!(a.len(), 3);
        assert_eq!((0..4).map(|i| a.group_of(i)).collect::<Vec<_>>(), [0, 2, 1, 2]);
        assert_eq!(a.attributes(1)["health"], "unwell");
        assert_eq!(a.previous[&vec!["U19".to_string()]], 0.5);
    }
}
