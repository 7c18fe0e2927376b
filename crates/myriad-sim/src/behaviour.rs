//! The scenario's behaviour provider, built from `[behaviour]` and `[llm]`:
//! LLM archetypes grouped by the population columns each prompt mentions.

use crate::build::InputError;
use crate::error::Result;
use crate::scenario::Scenario;
use myriad_core::behaviour::Behaviour;
use myriad_core::population::{ColumnData, Population};
use myriad_llm::agents::PerAgent;
use myriad_llm::archetype::{Archetypes, Question};
use myriad_llm::behaviour::{Asking, Decision, LlmBehaviour};
use myriad_llm::LlmClient;
use std::collections::BTreeMap;

/// Largest number of distinct values an integer column may have to serve as
/// an archetype attribute (beyond it, it is not a category).
const MAX_CATEGORIES: usize = 1000;

/// Per-agent codes and the label of each code.
type Categories = (Vec<u32>, Vec<String>);

/// Labels of a whole-number code column, as the model or the population
/// source documents them (`age_group` 0 is `U19`).
fn code_labels(s: &Scenario, name: &str) -> Option<&'static [&'static str]> {
    if let Some(c) = s.model.columns.iter().find(|c| c.name == name && !c.labels.is_empty()) {
        return Some(c.labels);
    }
    match &s.population {
        crate::scenario::PopulationSource::Source { spec, .. } => (spec.code_labels)(name),
        _ => None,
    }
}

/// Codes and labels of a categorical column; documented codes show their labels.
fn categories(pop: &Population, name: &str, known: Option<&[&str]>) -> Result<Option<Categories>, String> {
    let Some(col) = pop.column(name) else { return Ok(None) };
    match &col.data {
        ColumnData::Text { codes, labels } => Ok(Some((codes.clone(), labels.clone()))),
        ColumnData::Int(v) if known.is_some_and(|k| v.iter().all(|&x| x >= 0 && (x as usize) < k.len())) => {
            let known = known.expect("checked");
            Ok(Some((
                v.iter().map(|&x| x as u32).collect(),
                known.iter().map(|l| l.to_string()).collect(),
            )))
        }
        ColumnData::Int(v) => {
            let mut index: BTreeMap<i64, u32> = BTreeMap::new();
            for &x in v {
                let next = index.len() as u32;
                index.entry(x).or_insert(next);
                if index.len() > MAX_CATEGORIES {
                    return Err(format!(
                        "column '{name}' has more than {MAX_CATEGORIES} distinct values; archetypes need a categorical column"
                    ));
                }
            }
            // Codes in value order, labels the values.
            let sorted: Vec<i64> = index.keys().copied().collect();
            let code: BTreeMap<i64, u32> = sorted.iter().enumerate().map(|(k, &x)| (x, k as u32)).collect();
            Ok(Some((
                v.iter().map(|x| code[x]).collect(),
                sorted.iter().map(|x| x.to_string()).collect(),
            )))
        }
        ColumnData::Float(_) => Err(format!(
            "column '{name}' holds decimal numbers; archetypes need a categorical column"
        )),
    }
}

/// The provider, or None when decisions come from the model's rule; it asks
/// on the host's async `runtime`.
pub fn provider(s: &Scenario, pop: &Population, runtime: tokio::runtime::Handle) -> Result<Option<Box<dyn Behaviour>>> {
    let Some(spec) = &s.behaviour else { return Ok(None) };
    let decisions = decisions(s, pop)?;
    let bad = |m: String| InputError(format!("{}: {m}", s.file.display()));
    let client = LlmClient::new(spec.llm.clone()).map_err(|e| bad(format!("[llm]: {e}")))?;
    if let Some(note) = client.cache_repair() {
        eprintln!("warning: LLM cache repaired: {note}");
    }
    Ok(Some(Box::new(LlmBehaviour::new(client, decisions, runtime))))
}

/// The decisions asked, grouped by the population columns their prompts
/// mention: everything of the provider but the client (so that `validate`
/// checks it without opening the cache or the network).
pub fn decisions(s: &Scenario, pop: &Population) -> Result<Vec<Decision>> {
    let Some(spec) = &s.behaviour else {
        return Ok(Vec::new());
    };
    let bad = |m: String| InputError(format!("{}: {m}", s.file.display()));
    if let (Some(_), n) = (spec.per_agent, pop.size()) {
        if n > spec.max_agents {
            return Err(bad(format!(
                "behaviour.ask = \"agents\" would send one prompt per agent for {n} agents, more than behaviour.max_agents = {}; use ask = \"archetypes\" or raise max_agents",
                spec.max_agents
            ))
            .into());
        }
    }
    let mut decisions = Vec::new();
    for d in &spec.decisions {
        let mut attributes = Vec::new();
        for p in d.template.placeholders() {
            if let Some((codes, labels)) =
                categories(pop, p, code_labels(s, p)).map_err(|m| bad(format!("behaviour.{}.prompt: {m}", d.name)))?
            {
                attributes.push((p.to_string(), codes, labels));
            }
        }
        let asking = match spec.per_agent {
            None => {
                // The columns are kept (a copy per decision) only to regroup
                // by agent states, when the prompt mentions one.
                let uses_state = d
                    .template
                    .placeholders()
                    .iter()
                    .any(|p| s.model.states.iter().any(|(name, _)| name == p));
                Asking::Archetypes {
                    archetypes: Archetypes::new(&attributes),
                    columns: uses_state.then_some(attributes),
                }
            }
            Some(turns) => Asking::Agents {
                agents: PerAgent::new(pop.size() as usize, turns, d.remember.clone()),
                columns: attributes,
                count: pop.size() as usize,
            },
        };
        decisions.push(Decision {
            name: d.name.clone(),
            asking,
            question: Question {
                template: d.template.clone(),
                kind: d.answer.clone(),
                samples: spec.samples,
                reasks: spec.reasks,
                smoothing: spec.smoothing,
                fallback: spec.fallback,
                logprob: d.logprob,
            },
        });
    }
    Ok(decisions)
}
