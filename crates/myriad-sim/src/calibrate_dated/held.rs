//! A decision provider for searches: the simulation being fitted asks its
//! provider every round, but a copy made during a search (a candidate
//! value's trial run) asks each decision once, on its first round, and then
//! holds that answer.
//!
//! Why: an LLM's answer depends on the prompt, and the prompt on the
//! simulated weekly cases. Every candidate of a week starts from the same
//! committed state, so its first round asks the same prompts as the others
//! (the cache answers all but the first); the later weeks of a candidate's
//! look-ahead would each ask new prompts (14 candidates x 3 weeks of model
//! calls per fitted week). Holding the week's answer through the
//! look-ahead makes an LLM-driven fit cost about one round of model calls
//! per fitted week. The committed run, the final replay and forecasts ask
//! every round.

use myriad_core::behaviour::{Behaviour, Observations};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// See the module docs.
pub(crate) struct HeldInForks {
    inner: Box<dyn Behaviour>,
    /// The last answer per decision.
    last: BTreeMap<String, Vec<f64>>,
    /// `None`: asks every round. `Some`: a search copy; the decisions
    /// named have been asked once and now hold.
    asked: Option<BTreeSet<String>>,
    /// Whether copies made now are search copies.
    hold: Arc<AtomicBool>,
}

impl HeldInForks {
    /// A provider asking every round, whose copies hold while `hold` is set.
    pub(crate) fn new(inner: Box<dyn Behaviour>, hold: Arc<AtomicBool>) -> HeldInForks {
        HeldInForks {
            inner,
            last: BTreeMap::new(),
            asked: None,
            hold,
        }
    }

    /// A copy that asks every round (a new committed run).
    pub(crate) fn root(&self) -> HeldInForks {
        HeldInForks {
            inner: self.inner.snapshot(),
            last: self.last.clone(),
            asked: None,
            hold: self.hold.clone(),
        }
    }
}

impl Behaviour for HeldInForks {
    fn probabilities(&mut self, decision: &str, obs: &Observations) -> Result<Option<Vec<f64>>, String> {
        if let Some(asked) = &self.asked {
            if asked.contains(decision) {
                return Ok(self.last.get(decision).cloned());
            }
        }
        let answer = self.inner.probabilities(decision, obs)?;
        if let Some(v) = &answer {
            self.last.insert(decision.to_string(), v.clone());
        }
        if let Some(asked) = &mut self.asked {
            asked.insert(decision.to_string());
        }
        Ok(answer)
    }

    fn texts(&mut self, decision: &str, obs: &Observations) -> Result<Option<Vec<Option<String>>>, String> {
        self.inner.texts(decision, obs)
    }

    fn mentions(&self, placeholder: &str) -> bool {
        self.inner.mentions(placeholder)
    }

    fn replace_agent(&mut self, agent: u32) {
        self.inner.replace_agent(agent)
    }

    fn report(&self) -> serde_json::Value {
        self.inner.report()
    }

    fn snapshot(&self) -> Box<dyn Behaviour> {
        let mut copy = self.root();
        if self.hold.load(Ordering::Relaxed) {
            copy.asked = Some(self.asked.clone().unwrap_or_default());
        }
        Box::new(copy)
    }
}
