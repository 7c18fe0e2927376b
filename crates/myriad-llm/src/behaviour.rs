//! LLM archetypes as a behaviour provider for any model that asks for
//! decision probabilities by name (`myriad_core::behaviour::Behaviour`).

use crate::archetype::{per_agent, Archetypes, Question};
use crate::client::LlmClient;
use myriad_core::behaviour::{Behaviour, Observations};
use serde_json::json;
use std::collections::BTreeMap;

/// One decision answered by the LLM.
pub struct Decision {
    /// Name the model asks by (e.g. `isolate`).
    pub name: String,
    /// The agents' groups for this decision's prompt.
    pub archetypes: Archetypes,
    /// The question.
    pub question: Question,
}

/// The provider: a client, a runtime to drive it from the (synchronous)
/// model step, and the decisions it answers.
pub struct LlmBehaviour {
    runtime: tokio::runtime::Runtime,
    client: LlmClient,
    decisions: Vec<Decision>,
    rounds: u64,
    requests: u64,
    unparsed: u64,
    fallbacks: u64,
}

impl LlmBehaviour {
    /// A provider for `decisions`.
    pub fn new(client: LlmClient, decisions: Vec<Decision>) -> std::io::Result<LlmBehaviour> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        Ok(LlmBehaviour {
            runtime,
            client,
            decisions,
            rounds: 0,
            requests: 0,
            unparsed: 0,
            fallbacks: 0,
        })
    }
}

impl Behaviour for LlmBehaviour {
    fn probabilities(&mut self, decision: &str, obs: &Observations) -> Result<Option<Vec<f64>>, String> {
        let Some(d) = self.decisions.iter_mut().find(|d| d.name == decision) else {
            return Ok(None);
        };
        let extra: Vec<BTreeMap<String, String>> = (0..d.archetypes.len())
            .map(|g| (obs.by_group)(&d.archetypes.attributes(g)))
            .collect();
        let round = self
            .runtime
            .block_on(
                d.archetypes
                    .ask(&self.client, &d.question, &obs.common, |g| extra[g].clone()),
            )
            .map_err(|e| e.to_string())?;
        self.rounds += 1;
        self.requests += round.requests;
        self.unparsed += round.unparsed;
        self.fallbacks += round.fallbacks;
        Ok(Some(per_agent(&d.archetypes, &round.probabilities)))
    }

    fn report(&self) -> serde_json::Value {
        let c = self.client.config();
        json!({
            "provider": "llm",
            "model": c.model,
            "endpoints": c.endpoints,
            "mode": c.mode,
            "decisions": self.decisions.iter().map(|d| json!({
                "name": d.name,
                "groups": d.archetypes.len(),
                "samples_per_group": d.question.samples,
            })).collect::<Vec<_>>(),
            "rounds": self.rounds,
            "answers_requested": self.requests,
            "unparsed_answers": self.unparsed,
            "fallbacks": self.fallbacks,
            "client": self.client.stats(),
        })
    }
}
