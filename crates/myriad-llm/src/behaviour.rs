//! LLM archetypes as a behaviour provider for any model that asks for
//! decision probabilities by name (`myriad_core::behaviour::Behaviour`).

use crate::agents::PerAgent;
use crate::archetype::{per_agent, Archetypes, Attribute, Question};
use crate::client::LlmClient;
use crate::parse::AnswerKind;
use myriad_core::behaviour::{AgentState, Behaviour, Observations};
use serde_json::json;
use std::collections::BTreeMap;

/// Per-agent attribute columns: `(name, codes, labels)`.
pub type Columns = Vec<(String, Vec<u32>, Vec<String>)>;

/// Who is asked.
#[derive(Clone, Debug)]
pub enum Asking {
    /// One question per group of agents sharing the prompt's attributes.
    Archetypes {
        /// The current groups.
        archetypes: Archetypes,
        /// The prompt's attribute columns, to regroup with agent states
        /// (`None` when the prompt mentions no state).
        columns: Option<Columns>,
    },
    /// One question per agent, with its memory.
    Agents {
        /// The agents and their memories.
        agents: PerAgent,
        /// The prompt's attribute columns, one value per agent.
        columns: Columns,
        /// Number of agents.
        count: usize,
    },
}

/// One decision answered by the LLM.
#[derive(Clone, Debug)]
pub struct Decision {
    /// Name the model asks by (e.g. `isolate`).
    pub name: String,
    /// Who is asked.
    pub asking: Asking,
    /// The question.
    pub question: Question,
}

impl Decision {
    /// Number of distinct questions per period (groups or agents).
    pub fn askers(&self) -> usize {
        match &self.asking {
            Asking::Archetypes { archetypes, .. } => archetypes.len(),
            Asking::Agents { count, .. } => *count,
        }
    }
}

/// Placeholder (and observation attribute) holding an agent's index in
/// per-agent mode, so a model can give each agent its own observations.
pub const AGENT: &str = "agent";

/// The provider: a client, the handle of the async runtime that drives it
/// from the (synchronous) model step, and the decisions it answers.
///
/// The runtime belongs to the host (the command line makes one; a web
/// server or a Python host passes its own). A step blocks on it, so a step
/// must not run on one of that runtime's own worker threads (an async host
/// runs simulations on a blocking thread, e.g. `spawn_blocking`).
#[derive(Clone)]
pub struct LlmBehaviour {
    runtime: tokio::runtime::Handle,
    client: std::sync::Arc<LlmClient>,
    decisions: Vec<Decision>,
    rounds: u64,
    requests: u64,
    unparsed: u64,
    fallbacks: u64,
}

impl LlmBehaviour {
    /// A provider for `decisions`, asking through `client` on `runtime`.
    pub fn new(client: LlmClient, decisions: Vec<Decision>, runtime: tokio::runtime::Handle) -> LlmBehaviour {
        LlmBehaviour {
            runtime,
            client: std::sync::Arc::new(client),
            decisions,
            rounds: 0,
            requests: 0,
            unparsed: 0,
            fallbacks: 0,
        }
    }
}

/// What one decision round produced.
struct Answers {
    /// Per agent: the value (probability of yes, or the number), NaN where none.
    values: Vec<f64>,
    /// Per-agent mode: each asker's answer as text, in `obs.askers` order.
    texts: Option<Vec<Option<String>>>,
}

impl LlmBehaviour {
    /// Ask `decision` (None if this provider does not handle it).
    fn answer(&mut self, decision: &str, obs: &Observations) -> Result<Option<Answers>, String> {
        let Some(d) = self.decisions.iter_mut().find(|d| d.name == decision) else {
            return Ok(None);
        };
        let (values, texts, requests, unparsed, fallbacks) = match &mut d.asking {
            Asking::Archetypes { archetypes, columns } => {
                let placeholders = d.question.template.placeholders();
                let used: Vec<&AgentState> = obs
                    .states
                    .iter()
                    .filter(|st| placeholders.contains(&st.name.as_str()))
                    .collect();
                if let (false, Some(columns)) = (used.is_empty(), columns) {
                    let mut attributes: Vec<Attribute> = columns
                        .iter()
                        .map(|(n, c, l)| (n.as_str(), c.as_slice(), l.as_slice()))
                        .collect();
                    attributes.extend(
                        used.iter()
                            .map(|st| (st.name.as_str(), st.codes.as_slice(), st.labels.as_slice())),
                    );
                    archetypes.regroup(&attributes);
                }
                let extra: Vec<BTreeMap<String, String>> = (0..archetypes.len())
                    .map(|g| (obs.by_group)(&archetypes.attributes(g)))
                    .collect();
                let round = self
                    .runtime
                    .block_on(archetypes.ask(&self.client, &d.question, &obs.common, |g| extra[g].clone()))
                    .map_err(|e| e.to_string())?;
                let values = per_agent(archetypes, &round.probabilities);
                (values, None, round.requests, round.unparsed, round.fallbacks)
            }
            Asking::Agents { agents, columns, count } => {
                let values = |i: usize| {
                    let mut v: BTreeMap<String, String> = columns
                        .iter()
                        .map(|(name, codes, labels)| {
                            let c = codes[i] as usize;
                            (name.clone(), labels.get(c).cloned().unwrap_or_else(|| c.to_string()))
                        })
                        .collect();
                    v.insert(AGENT.to_string(), i.to_string());
                    for st in obs.states {
                        let c = st.codes.get(i).copied().unwrap_or(0) as usize;
                        v.insert(st.name.clone(), st.labels.get(c).cloned().unwrap_or_default());
                    }
                    let extra = (obs.by_group)(&v);
                    v.extend(extra);
                    v
                };
                let who: Vec<usize> = match obs.askers {
                    Some(a) => a.iter().map(|&i| i as usize).filter(|&i| i < *count).collect(),
                    None => (0..*count).collect(),
                };
                let round = self
                    .runtime
                    .block_on(agents.ask(&self.client, &d.question, &who, &obs.common, values))
                    .map_err(|e| e.to_string())?;
                let mut all = vec![f64::NAN; *count];
                for (&i, v) in who.iter().zip(round.values) {
                    all[i] = v;
                }
                (all, Some(round.texts), round.requests, round.unparsed, round.fallbacks)
            }
        };
        self.rounds += 1;
        self.requests += requests;
        self.unparsed += unparsed;
        self.fallbacks += fallbacks;
        Ok(Some(Answers { values, texts }))
    }
}

impl Behaviour for LlmBehaviour {
    fn probabilities(&mut self, decision: &str, obs: &Observations) -> Result<Option<Vec<f64>>, String> {
        match self.decisions.iter().find(|d| d.name == decision) {
            None => return Ok(None),
            Some(d) if d.question.kind == AnswerKind::Text => {
                return Err(format!("decision '{decision}' is answered in free text, not a value"))
            }
            Some(_) => {}
        }
        Ok(self.answer(decision, obs)?.map(|a| a.values))
    }

    fn texts(&mut self, decision: &str, obs: &Observations) -> Result<Option<Vec<Option<String>>>, String> {
        match self.decisions.iter().find(|d| d.name == decision) {
            None => Ok(None),
            Some(d) if !matches!(d.asking, Asking::Agents { .. }) => Err(format!(
                "decision '{decision}' is free text, which needs ask = \"agents\""
            )),
            Some(_) => Ok(self.answer(decision, obs)?.and_then(|a| a.texts)),
        }
    }

    fn mentions(&self, placeholder: &str) -> bool {
        self.decisions
            .iter()
            .any(|d| d.question.template.placeholders().contains(&placeholder))
    }

    fn replace_agent(&mut self, agent: u32) {
        for d in &mut self.decisions {
            if let Asking::Agents { agents, .. } = &mut d.asking {
                agents.forget(agent as usize);
            }
        }
    }

    fn report(&self) -> serde_json::Value {
        let c = self.client.config();
        json!({
            "provider": "llm",
            "model": c.model,
            "backend": if c.local.is_some() { "local" } else { "http" },
            "endpoints": c.endpoints.iter().map(|e| crate::redact::display_url(e)).collect::<Vec<_>>(),
            "mode": c.mode,
            "decisions": self.decisions.iter().map(|d| json!({
                "name": d.name,
                "answer": if d.question.logprob { "logprob" } else { "text" },
                "asking": match &d.asking {
                    Asking::Archetypes { .. } => "archetypes",
                    Asking::Agents { .. } => "agents",
                },
                "groups": matches!(d.asking, Asking::Archetypes { .. }).then(|| d.askers()),
                "agents": match &d.asking {
                    Asking::Agents { count, .. } => Some(*count),
                    Asking::Archetypes { .. } => None,
                },
                "memory_turns": match &d.asking {
                    Asking::Agents { agents, .. } => Some(agents.memory().turns()),
                    Asking::Archetypes { .. } => None,
                },
                "samples_per_group": d.question.samples,
            })).collect::<Vec<_>>(),
            "rounds": self.rounds,
            "answers_requested": self.requests,
            "unparsed_answers": self.unparsed,
            "fallbacks": self.fallbacks,
            "client": self.client.stats(),
        })
    }

    fn call_log(&self) -> Option<std::sync::Arc<myriad_core::behaviour::CallLog>> {
        Some(self.client.call_log())
    }

    fn inspect_agent(&self, agent: u32) -> Option<serde_json::Value> {
        let a = agent as usize;
        let decisions: Vec<serde_json::Value> = self
            .decisions
            .iter()
            .filter_map(|d| match &d.asking {
                Asking::Archetypes { archetypes, .. } if a < archetypes.group_of_len() => {
                    let g = archetypes.group_of(a);
                    Some(json!({
                        "decision": d.name,
                        "asking": "archetypes",
                        "archetype": g,
                        "attributes": archetypes.attributes(g),
                        "last_answer": archetypes.last_probability(g),
                        "last_prompt": archetypes.last_asked(g).map(|l| &l.0),
                        "last_answers": archetypes.last_asked(g).map(|l| &l.1),
                    }))
                }
                Asking::Agents { agents, count, .. } if a < *count => Some(json!({
                    "decision": d.name,
                    "asking": "agents",
                    "memory": agents.memory().entries(a).collect::<Vec<_>>(),
                    "memory_turns": agents.memory().turns(),
                })),
                _ => None,
            })
            .collect();
        (!decisions.is_empty()).then(|| json!({ "agent": agent, "decisions": decisions }))
    }

    fn snapshot(&self) -> Box<dyn Behaviour> {
        // The client (and its cache) is shared; memories and smoothing
        // histories are copied.
        Box::new(self.clone())
    }
}
