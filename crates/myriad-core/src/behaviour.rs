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

/// A provider of decision probabilities: the run owns it and hands it to
/// each step (see `model::Decide`).
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

    /// Every agent's action for a controllable model (`out` is
    /// `agents x act_dim`, agent order): `Ok(false)` if the provider does
    /// not choose actions (the model's rule decides).
    fn actions(&mut self, req: &crate::control::ActionRequest, out: &mut [f32]) -> Result<bool, String> {
        let _ = (req, out);
        Ok(false)
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

    /// What this provider holds about one agent, for people inspecting a
    /// run (an LLM agent's memory; the archetype it is asked as and that
    /// archetype's last answers); `None` when it holds nothing per agent.
    fn inspect_agent(&self, agent: u32) -> Option<serde_json::Value> {
        let _ = agent;
        None
    }

    /// The log of this provider's model calls, shared so that a viewer can
    /// read it while a step waits on the model; `None` for providers that
    /// call no model.
    fn call_log(&self) -> Option<std::sync::Arc<CallLog>> {
        None
    }

    /// An independent copy of what the provider remembers (memories,
    /// smoothing histories, answers set from outside), sharing what is
    /// shared by nature (an LLM client and its cache): restoring a
    /// simulation restores its provider from this.
    fn snapshot(&self) -> Box<dyn Behaviour>;
}

/// A provider whose answers a caller sets between steps: a Gymnasium loop
/// in Python, a training loop, a test. For each decision it holds one value
/// per agent (probability of yes, or the number); NaN, or a decision never
/// set, leaves that agent to the model's rule.
#[derive(Clone, Debug, Default)]
pub struct ExternalController {
    values: BTreeMap<String, Vec<f64>>,
    texts: BTreeMap<String, Vec<Option<String>>>,
    actions: Option<Vec<f32>>,
    asked: u64,
}

impl ExternalController {
    /// A controller with nothing set: every decision follows the rule.
    pub fn new() -> ExternalController {
        ExternalController::default()
    }

    /// Set every agent's value for `decision` (used until set again).
    pub fn set(&mut self, decision: &str, values: Vec<f64>) {
        self.values.insert(decision.to_string(), values);
    }

    /// Set the free-text answers for `decision`, one per asker.
    pub fn set_texts(&mut self, decision: &str, texts: Vec<Option<String>>) {
        self.texts.insert(decision.to_string(), texts);
    }

    /// Set every agent's action (`agents x act_dim`, agent order) for the
    /// steps to come of a controllable model.
    pub fn set_actions(&mut self, actions: Vec<f32>) {
        self.actions = Some(actions);
    }

    /// The actions set, for the caller to refill in place.
    pub fn actions_mut(&mut self) -> Option<&mut Vec<f32>> {
        self.actions.as_mut()
    }

    /// Forget what was set for `decision` (the rule decides again).
    pub fn clear(&mut self, decision: &str) {
        self.values.remove(decision);
        self.texts.remove(decision);
    }
}

impl Behaviour for ExternalController {
    fn probabilities(&mut self, decision: &str, _obs: &Observations) -> Result<Option<Vec<f64>>, String> {
        self.asked += 1;
        Ok(self.values.get(decision).cloned())
    }

    fn texts(&mut self, decision: &str, _obs: &Observations) -> Result<Option<Vec<Option<String>>>, String> {
        Ok(self.texts.get(decision).cloned())
    }

    fn actions(&mut self, req: &crate::control::ActionRequest, out: &mut [f32]) -> Result<bool, String> {
        let Some(a) = &self.actions else { return Ok(false) };
        if a.len() != out.len() {
            return Err(format!(
                "{} actions set for {} agents x {} components",
                a.len(),
                req.agents(),
                req.act_dim()
            ));
        }
        self.asked += 1;
        out.copy_from_slice(a);
        Ok(true)
    }

    fn mentions(&self, _placeholder: &str) -> bool {
        false
    }

    fn report(&self) -> serde_json::Value {
        serde_json::json!({
            "provider": "external",
            "decisions_set": self.values.keys().chain(self.texts.keys()).collect::<Vec<_>>(),
            "questions": self.asked,
        })
    }

    fn snapshot(&self) -> Box<dyn Behaviour> {
        Box::new(self.clone())
    }
}

/// The most recent model calls of a provider (one JSON object each: backend,
/// latency, tokens, cache hit, retries, error), numbered from 1 so that a
/// reader asks only for the calls after the last it saw. Older calls are
/// dropped beyond the capacity; the totals stay in the provider's report.
#[derive(Debug)]
pub struct CallLog {
    capacity: usize,
    inner: std::sync::Mutex<(u64, std::collections::VecDeque<serde_json::Value>)>,
}

impl CallLog {
    /// A log keeping the last `capacity` calls.
    pub fn new(capacity: usize) -> CallLog {
        CallLog {
            capacity: capacity.max(1),
            inner: std::sync::Mutex::new((0, std::collections::VecDeque::new())),
        }
    }

    /// Record a call; it gets the next number (field `seq`).
    pub fn push(&self, mut call: serde_json::Value) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.0 += 1;
        if let Some(o) = call.as_object_mut() {
            o.insert("seq".into(), g.0.into());
        }
        if g.1.len() == self.capacity {
            g.1.pop_front();
        }
        g.1.push_back(call);
    }

    /// The calls numbered after `seq` still kept, oldest first, and the
    /// number of the last call recorded.
    pub fn since(&self, seq: u64) -> (u64, Vec<serde_json::Value>) {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let kept_from = g.0 + 1 - g.1.len() as u64;
        let skip = seq.saturating_add(1).saturating_sub(kept_from) as usize;
        (g.0, g.1.iter().skip(skip).cloned().collect())
    }
}

#[cfg(test)]
mod call_log_tests {
    use super::CallLog;

    #[test]
    fn keeps_the_last_calls_and_numbers_them() {
        let log = CallLog::new(3);
        for k in 0..5 {
            log.push(serde_json::json!({ "k": k }));
        }
        let (last, calls) = log.since(0);
        assert_eq!(last, 5);
        let ks: Vec<i64> = calls.iter().map(|c| c["k"].as_i64().unwrap()).collect();
        assert_eq!(ks, [2, 3, 4]);
        assert_eq!(calls[0]["seq"], 3);
        assert_eq!(log.since(4).1.len(), 1);
        assert!(log.since(5).1.is_empty());
        assert!(log.since(99).1.is_empty());
    }
}
