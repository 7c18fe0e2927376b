//! The contract between the engine and a model.

use crate::behaviour::Behaviour;
use crate::csr::Csr;
use crate::metrics::MetricSpec;
use crate::params::ParamSet;

/// How agents of one contact layer meet.
#[derive(Clone, Debug, PartialEq)]
pub enum Contacts {
    /// A fixed network.
    Network(Csr),
    /// Homogeneous mixing: every agent is in contact with every other agent.
    /// Never materialised as edges; models use the aggregate instead.
    WellMixed,
}

/// A named contact layer with its base weight.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// Layer name, as in the scenario.
    pub name: String,
    /// Its contacts.
    pub contacts: Contacts,
    /// Base weight multiplying the per-contact transmission (or interaction)
    /// probability; interventions can change it during the run.
    pub weight: f64,
}

/// What a model sees at each step.
#[derive(Clone, Copy, Debug)]
pub struct StepContext<'a> {
    /// The step being computed, from 1.
    pub step: u32,
    /// Parameters in force at this step.
    pub params: &'a ParamSet,
    /// Layer weights in force at this step, in layer order.
    pub layer_weights: &'a [f64],
}

/// A population model. A step must read only the state before the step and
/// write the state after it, so that it can run on any number of threads with
/// identical results; all randomness comes from [`crate::CounterRng`].
pub trait Model: Send {
    /// The metrics this model records, in column order.
    fn metrics(&self) -> Vec<MetricSpec>;

    /// Number of agents.
    fn agent_count(&self) -> u32;

    /// The metric row of the initial state (step 0).
    fn observe(&self, row: &mut [f64]);

    /// Advance one step and write that step's metric row.
    fn step(&mut self, ctx: &StepContext, row: &mut [f64]);

    /// An independent copy of the current state, so that a run can be
    /// continued from here several times (calibration tries candidate
    /// parameters week by week). `None` if the model cannot copy itself.
    fn fork(&self) -> Option<Box<dyn Model>> {
        None
    }

    /// Take decisions from `behaviour` instead of the model's own rule.
    /// Models without decisions refuse.
    fn set_behaviour(&mut self, behaviour: Box<dyn Behaviour>) -> Result<(), String> {
        drop(behaviour);
        Err("this model has no decisions a behaviour provider could make".into())
    }

    /// An error met during the last step (a step cannot fail midway: it
    /// finishes with fallbacks and reports here, and the run stops).
    fn take_error(&mut self) -> Option<String> {
        None
    }

    /// Text events of the last step (what agents said or wrote), as JSON
    /// objects; the run appends them to `transcript.jsonl`.
    fn take_transcript(&mut self) -> Vec<serde_json::Value> {
        Vec::new()
    }

    /// The behaviour provider's counters, if one is attached.
    fn behaviour_report(&self) -> Option<serde_json::Value> {
        None
    }
}
