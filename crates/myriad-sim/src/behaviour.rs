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
    let bad = |m: String| InputError(format!("{}: {m}", s.file.display()));
    let wants_persona = spec
        .decisions
        .iter()
        .any(|d| d.template.placeholders().contains(&PERSONA));
    let persona = if wants_persona {
        let g = personas(s, pop, &runtime)?;
        Some((g.of, g.personas.texts))
    } else {
        None
    };
    let decisions = decisions_with(s, pop, persona)?;
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
    decisions_with(s, pop, None)
}

/// Values of named attributes.
type Values = BTreeMap<String, String>;

/// The placeholder of a generated persona in decision prompts.
const PERSONA: &str = "persona";

/// Personas written for a scenario's population.
#[derive(Clone, Debug)]
pub struct GeneratedPersonas {
    /// Each persona's attribute values (the prompt's placeholders).
    pub values: Vec<BTreeMap<String, String>>,
    /// Each agent's persona.
    pub of: Vec<u32>,
    /// The texts and what asking for them took.
    pub personas: myriad_llm::personas::Personas,
    /// The client's counters.
    pub stats: myriad_llm::StatsSnapshot,
    /// The model's name.
    pub model: String,
}

/// The personas to write: each one's attribute values, and each agent's
/// persona (per group of agents sharing the prompt's attributes, or one per
/// agent).
pub fn persona_groups(s: &Scenario, pop: &Population) -> Result<(Vec<Values>, Vec<u32>)> {
    let bad = |m: String| InputError(format!("{}: {m}", s.file.display()));
    let spec = s
        .personas
        .as_ref()
        .ok_or_else(|| bad("add a [personas] table (prompt, per, temperature) for {persona}".into()))?;
    let mut attributes = Vec::new();
    for p in spec.template.placeholders() {
        match categories(pop, p, code_labels(s, p)).map_err(|m| bad(format!("personas.prompt: {m}")))? {
            Some((codes, labels)) => attributes.push((p.to_string(), codes, labels)),
            None => {
                return Err(bad(format!(
                    "personas.prompt: {{{p}}} is not a population column (columns: {})",
                    pop.columns()
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .into())
            }
        }
    }
    let n = pop.size() as usize;
    if spec.per_agent {
        if pop.size() > spec.max_agents {
            return Err(bad(format!(
                "personas.per = \"agent\" would write {n} personas, more than personas.max_agents = {}; use per = \"group\" or raise max_agents",
                spec.max_agents
            ))
            .into());
        }
        let values = (0..n)
            .map(|i| {
                attributes
                    .iter()
                    .map(|(name, codes, labels)| {
                        let c = codes[i] as usize;
                        (name.clone(), labels.get(c).cloned().unwrap_or_else(|| c.to_string()))
                    })
                    .collect()
            })
            .collect();
        Ok((values, (0..n as u32).collect()))
    } else {
        let groups = Archetypes::new(&attributes);
        let values = (0..groups.len()).map(|g| groups.attributes(g)).collect();
        Ok((values, (0..n).map(|i| groups.group_of(i) as u32).collect()))
    }
}

/// Write the scenario's personas with its LLM (through the cache).
pub fn personas(s: &Scenario, pop: &Population, runtime: &tokio::runtime::Handle) -> Result<GeneratedPersonas> {
    let bad = |m: String| InputError(format!("{}: {m}", s.file.display()));
    let (values, of) = persona_groups(s, pop)?;
    let spec = s.personas.as_ref().expect("checked by persona_groups");
    let client = LlmClient::new(spec.llm.clone()).map_err(|e| bad(format!("[llm]: {e}")))?;
    let request = myriad_llm::personas::PersonaRequest {
        template: spec.template.clone(),
        attempts: spec.attempts,
    };
    let personas = runtime
        .block_on(myriad_llm::personas::generate(&client, &request, &values))
        .map_err(|e| crate::error::Error::Run(format!("{}: writing personas: {e}", s.file.display())))?;
    Ok(GeneratedPersonas {
        values,
        of,
        personas,
        stats: client.stats(),
        model: spec.llm.model.clone(),
    })
}

/// [`decisions`], with each agent's persona (codes and texts) for prompts
/// that mention `{persona}` (without it, placeholders stand in for the
/// texts, as `validate` needs).
fn decisions_with(s: &Scenario, pop: &Population, persona: Option<Categories>) -> Result<Vec<Decision>> {
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
            if p == PERSONA && pop.column(PERSONA).is_none() {
                let (codes, labels) = match &persona {
                    Some(c) => c.clone(),
                    None => {
                        let (values, of) = persona_groups(s, pop)?;
                        (of, (0..values.len()).map(|k| format!("<persona {k}>")).collect())
                    }
                };
                attributes.push((p.to_string(), codes, labels));
                continue;
            }
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
