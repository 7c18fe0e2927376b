//! Behaviour providers: where an agent's decision probabilities come from
//! when they do not come from the model's own rule (an LLM asked per
//! archetype, later a learned policy). A model asks by decision name; the
//! provider answers one probability per agent.

use std::collections::BTreeMap;

/// Placeholder values by name.
pub type Values = BTreeMap<String, String>;

/// Values that depend on a group's attributes.
pub type GroupValues<'a> = &'a (dyn Fn(&Values) -> Values + Sync);

/// A state of every agent that changes during the run (whether it feels
/// unwell, whether it stayed home last week), as codes with labels, so that
/// prompts can mention it: archetypes then group agents by it too.
#[derive(Clone, Debug, Default)]
pub struct AgentState {
    /// Placeholder name.
    pub name: String,
    /// Per agent: index into `labels`.
    pub codes: Vec<u32>,
    /// The values, as the prompt shows them.
    pub labels: Vec<String>,
}

/// Observations a model passes with a question: values shared by everyone,
/// and values that depend on a group's attributes (for example the cases in
/// the group's borough).
pub struct Observations<'a> {
    /// Shared values, by placeholder name.
    pub common: Values,
    /// Values for a group, given its attribute values by name (in
    /// per-agent mode the attributes include `agent`, the agent's index).
    pub by_group: GroupValues<'a>,
    /// The agents who decide this time (`None`: everyone). A per-agent
    /// provider asks only these; the others' entries are NaN.
    pub askers: Option<&'a [u32]>,
    /// Agent states a prompt may mention.
    pub states: &'a [AgentState],
}

/// A provider of decision probabilities.
pub trait Behaviour: Send + Sync {
    /// Probability per agent of "yes" for `decision` (NaN where the
    /// provider has no answer and the model's own rule applies), or
    /// `Ok(None)` if the provider does not handle this decision.
    fn probabilities(&mut self, decision: &str, obs: &Observations) -> Result<Option<Vec<f64>>, String>;

    /// Free-text answers for `decision` (what an agent says in a
    /// discussion, a strategy it writes down), one per agent of
    /// `obs.askers` (all agents if `None`), `None` where no readable answer
    /// came; `Ok(None)` if the provider does not handle this decision.
    fn texts(&mut self, decision: &str, obs: &Observations) -> Result<Option<Vec<Option<String>>>, String> {
        let _ = (decision, obs);
        Ok(None)
    }

    /// Does any question mention this placeholder? Models skip building
    /// per-agent states nobody asks about.
    fn mentions(&self, placeholder: &str) -> bool {
        let _ = placeholder;
        true
    }

    /// `agent` has been replaced by a new one (a newcomer taking a dead
    /// agent's place): forget what the provider remembers about it.
    fn replace_agent(&mut self, agent: u32) {
        let _ = agent;
    }

    /// Counters for the run summary (calls, cache hits, tokens, ...).
    fn report(&self) -> serde_json::Value;
}
