//! The contract between the engine and a model: what a model declares about
//! itself ([`ModelSpec`]), what it is built from ([`ModelInput`]), what it
//! sees each step ([`Step`]) and what it must do ([`Model`]).
//!
//! Decisions do not belong to the model: each step is handed a [`Decide`]
//! holding the run's decision provider (a rule, LLM archetypes, LLM agents,
//! an external controller or a learned policy), so any model can be
//! snapshotted whatever decides for its agents.

use crate::behaviour::{Behaviour, Observations};
use crate::csr::Csr;
use crate::metrics::MetricSpec;
use crate::params::{ParamSet, ParamSpec};
use crate::population::Population;

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

/// Everything a model is built from.
pub struct ModelInput {
    /// The agents and their attribute columns.
    pub population: Population,
    /// Contact layers, in scenario order.
    pub layers: Vec<Layer>,
    /// Parameters, validated against the model's specs.
    pub params: ParamSet,
    /// Run seed.
    pub seed: u64,
    /// For a partitioned run, this process's part of the agents (the
    /// layers then hold only its rows) and the communicator; models that
    /// cannot be split refuse a split input.
    pub split: crate::comm::Split,
}

/// Errors building a model from its input.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    /// A population column the model reads holds values it cannot use.
    #[error("population column '{column}': {reason}")]
    BadColumn {
        /// Column name.
        column: String,
        /// What is wrong, naming the first offending agent.
        reason: String,
    },
    /// The parameters ask for something the population cannot give.
    #[error("{0}")]
    Infeasible(String),
}

/// A population column a model reads if present.
#[derive(Clone, Copy, Debug)]
pub struct ColumnDoc {
    /// Column name.
    pub name: &'static str,
    /// Accepted values and meaning.
    pub doc: &'static str,
    /// For a column of whole-number codes, the label of each code (code k
    /// is `labels[k]`): prompts show labels, not codes. Empty otherwise.
    pub labels: &'static [&'static str],
}

/// The answer a decision expects from a behaviour provider.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DecisionAnswer {
    /// Yes or no: the provider gives the probability of yes.
    YesNo,
    /// A number in `[min, max]`: the provider gives the value.
    Number {
        /// Smallest accepted value.
        min: f64,
        /// Largest accepted value.
        max: f64,
    },
    /// Free text (what an agent says or writes), asked per agent.
    Text,
}

/// A decision a behaviour provider can make.
#[derive(Clone, Copy, Debug)]
pub struct DecisionDoc {
    /// Name (`[behaviour.<name>]`).
    pub name: &'static str,
    /// What is decided, and the placeholders the model fills.
    pub doc: &'static str,
    /// The answer expected.
    pub answer: DecisionAnswer,
}

/// A panel of a model's `timeseries.png`.
#[derive(Clone, Copy, Debug)]
pub struct PlotPanel {
    /// Axis label (what the metrics measure).
    pub ylabel: &'static str,
    /// Metrics drawn.
    pub metrics: &'static [&'static str],
    /// Bars of the last step's values (a histogram) instead of lines over time.
    pub bars: bool,
}

/// What a periodic table holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableKind {
    /// The sum of every flow metric over each complete period: weekly
    /// counts of events.
    FlowSums,
    /// The metrics whose names start with `prefix`, read at the end of
    /// each period: monthly rates.
    Readings {
        /// Name prefix of the metrics read.
        prefix: &'static str,
    },
}

/// A table written beside the time series once per week or month (the
/// epidemic models' `weekly.csv`, the covid model's `monthly.csv`).
#[derive(Clone, Copy, Debug)]
pub struct PeriodicTable {
    /// File name, e.g. `weekly.csv`.
    pub file: &'static str,
    /// Name of the period column, e.g. `week`.
    pub period: &'static str,
    /// Weeks or months (calendar ones on a dated run).
    pub every: crate::calendar::PeriodKind,
    /// What it holds.
    pub kind: TableKind,
    /// Model metrics (or, for readings, metric prefixes) and the observed
    /// series the population source may offer for each (`("new_reported_cases",
    /// "cases")`), drawn and written beside the model's values.
    pub observed: &'static [(&'static str, &'static str)],
}

/// A model's name, documentation, declarations and constructor: everything
/// the engine, the scenario reader, `myriad describe` and the outputs know
/// about it. Registering a model is adding its spec to a list.
pub struct ModelSpec {
    /// Name used in scenario files (`model = "..."`).
    pub name: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// Longer description: the rules, in a paragraph.
    pub description: &'static str,
    /// Parameter table.
    pub params: fn() -> Vec<ParamSpec>,
    /// Metric columns.
    pub metrics: fn() -> Vec<MetricSpec>,
    /// Optional population columns the model reads.
    pub columns: &'static [ColumnDoc],
    /// Parameters that are alternatives: setting more than one in a scenario is an error.
    pub exclusive: &'static [&'static [&'static str]],
    /// Does the model read contact layers (`[[layers]]`)?
    pub uses_layers: bool,
    /// Decisions a behaviour provider can make (`[behaviour.<name>]`).
    pub decisions: &'static [DecisionDoc],
    /// Agent states prompts may mention (`{name}`), changing during the
    /// run; archetypes are regrouped by those a prompt uses.
    pub states: &'static [(&'static str, &'static str)],
    /// Observations, actions and rewards, for models an agent's policy can
    /// control (`None`: not controllable).
    pub control: Option<&'static crate::control::ControlDoc>,
    /// Panels of `timeseries.png` (empty: stocks above, flows below).
    pub plots: &'static [PlotPanel],
    /// Periodic tables written beside the time series.
    pub tables: &'static [PeriodicTable],
    /// Can a run be split over several processes (`mpirun -n R`)? The
    /// constructor then accepts a [`ModelInput::split`] with a part.
    pub splits: bool,
    /// Constructor.
    pub build: fn(ModelInput) -> Result<Box<dyn Model>, ModelError>,
}

/// The run's decision provider for one step, and the first error it met.
///
/// A model asks through this; with no provider attached (the model's own
/// rule decides), every question answers `None`.
pub struct Decide<'a> {
    provider: Option<&'a mut dyn Behaviour>,
    error: &'a mut Option<String>,
}

impl<'a> Decide<'a> {
    /// Decisions from `provider` (`None`: the model's rule); the first
    /// provider error is kept in `error`.
    pub fn new(provider: Option<&'a mut dyn Behaviour>, error: &'a mut Option<String>) -> Decide<'a> {
        Decide { provider, error }
    }

    /// Is a provider attached?
    pub fn attached(&self) -> bool {
        self.provider.is_some()
    }

    /// Values for `decision` (probability of yes, or the number), one per
    /// agent, NaN where the provider has none; `None` with no provider, a
    /// provider not handling it, or an error (kept; the model goes on by
    /// its rule). `when` names the period for the error message.
    pub fn values(&mut self, decision: &str, when: &str, obs: &Observations) -> Option<Vec<f64>> {
        let b = self.provider.as_deref_mut()?;
        match b.probabilities(decision, obs) {
            Ok(v) => v,
            Err(e) => {
                self.error
                    .get_or_insert(format!("behaviour '{decision}' in {when}: {e}"));
                None
            }
        }
    }

    /// Free-text answers for `decision`, one per asker (`None` as in [`Self::values`]).
    pub fn texts(&mut self, decision: &str, when: &str, obs: &Observations) -> Option<Vec<Option<String>>> {
        let b = self.provider.as_deref_mut()?;
        match b.texts(decision, obs) {
            Ok(v) => v,
            Err(e) => {
                self.error
                    .get_or_insert(format!("behaviour '{decision}' in {when}: {e}"));
                None
            }
        }
    }

    /// Every agent's action from the provider, into `out`; false with no
    /// provider, one that does not choose actions, or an error (kept; the
    /// model goes on by its rule). Actions that are not finite numbers are
    /// an error naming the agent.
    pub fn actions(&mut self, when: &str, req: &crate::control::ActionRequest, out: &mut [f32]) -> bool {
        let Some(b) = self.provider.as_deref_mut() else {
            return false;
        };
        let names: Vec<&str> = req.doc.actions.iter().map(|a| a.name).collect();
        let result = b.actions(req, out).and_then(|chose| {
            match chose.then(|| crate::control::first_non_finite(out, req.act_dim(), "action", &names)) {
                Some(Some(e)) => Err(e),
                _ => Ok(chose),
            }
        });
        match result {
            Ok(chose) => chose,
            Err(e) => {
                self.error.get_or_insert(format!("actions in {when}: {e}"));
                false
            }
        }
    }

    /// Record a failure met while preparing a decision (an observation
    /// that is not a finite number): the run stops with it after the step.
    pub fn fail(&mut self, message: String) {
        self.error.get_or_insert(message);
    }

    /// Does a question of the provider mention this placeholder? (False with none.)
    pub fn mentions(&self, placeholder: &str) -> bool {
        self.provider.as_deref().is_some_and(|b| b.mentions(placeholder))
    }

    /// `agent` was replaced by a newcomer: the provider forgets it.
    pub fn replace_agent(&mut self, agent: u32) {
        if let Some(b) = self.provider.as_deref_mut() {
            b.replace_agent(agent);
        }
    }
}

/// What a model sees and may touch during one step.
pub struct Step<'a> {
    /// The step being computed, from 1.
    pub step: u32,
    /// Parameters in force at this step.
    pub params: &'a ParamSet,
    /// Layer weights in force at this step, in layer order.
    pub layer_weights: &'a [f64],
    /// The run's calendar: weekdays, weeks and months of each step.
    pub calendar: &'a crate::calendar::Calendar,
    /// Where decisions come from.
    pub decide: Decide<'a>,
    /// Text events of the step (what agents said or did), as JSON objects;
    /// the run writes them to `transcript.jsonl`.
    pub events: &'a mut Vec<serde_json::Value>,
}

/// A read-only view of one per-agent column of a model's state.
#[derive(Clone, Copy, Debug)]
pub enum ColumnView<'a> {
    /// Small codes (stages, flags).
    U8(&'a [u8]),
    /// Counters and timers.
    U16(&'a [u16]),
    /// Ids and counts.
    U32(&'a [u32]),
    /// Real values.
    F64(&'a [f64]),
    /// Yes/no per agent.
    Bool(&'a [bool]),
}

impl ColumnView<'_> {
    /// Number of agents.
    pub fn len(&self) -> usize {
        match self {
            ColumnView::U8(v) => v.len(),
            ColumnView::U16(v) => v.len(),
            ColumnView::U32(v) => v.len(),
            ColumnView::F64(v) => v.len(),
            ColumnView::Bool(v) => v.len(),
        }
    }

    /// True for a column of no agents.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Feed the values to a hasher, in agent order.
    pub fn hash_into(&self, h: &mut crate::hash::StateHasher) {
        match self {
            ColumnView::U8(v) => h.bytes(v),
            ColumnView::U16(v) => v.iter().for_each(|x| h.bytes(&x.to_le_bytes())),
            ColumnView::U32(v) => v.iter().for_each(|x| h.bytes(&x.to_le_bytes())),
            ColumnView::F64(v) => v.iter().for_each(|x| h.bytes(&x.to_bits().to_le_bytes())),
            ColumnView::Bool(v) => v.iter().for_each(|&x| h.bytes(&[x as u8])),
        }
    }
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

    /// Advance one step and write that step's metric row. A step cannot
    /// fail midway: when the provider fails, it finishes on the model's
    /// rule and the error is kept in `cx.decide` for the run to report.
    fn step(&mut self, cx: &mut Step<'_>, row: &mut [f64]);

    /// An independent copy of the whole state, so that a run can be
    /// continued from here several times (calibration, counterfactual
    /// branches, snapshots from Python). Always possible: nothing that
    /// cannot be copied (a provider, a connection) lives in a model.
    fn snapshot(&self) -> Box<dyn Model>;

    /// Per-agent state, read-only, by name (stage, timers, flags, ...).
    fn agent_columns(&self) -> Vec<(&'static str, ColumnView<'_>)>;

    /// Names of the codes of a small-code column of [`Self::agent_columns`]
    /// (code k is `labels[k]`), for people reading agents (the dashboard's
    /// inspector); `None` for columns whose values mean themselves.
    fn column_labels(&self, column: &str) -> Option<&'static [&'static str]> {
        let _ = column;
        None
    }

    /// Draw from `seed` from the next step on, keeping the state: the
    /// members of a forecast ensemble all start from one state (a fitted
    /// run at its cut-off date). False when the model cannot.
    fn reseed(&mut self, seed: u64) -> bool {
        let _ = seed;
        false
    }

    /// For a controllable model: each agent's observation of the current
    /// state (`agents x obs_dim`, agent order), what a policy decides the
    /// next step from.
    fn agent_observations(&self) -> Option<&[f32]> {
        None
    }

    /// For a controllable model: each agent's reward for the last step
    /// (zeros before the first).
    fn agent_rewards(&self) -> Option<&[f32]> {
        None
    }

    /// For a controllable model: the bounds of each action component under
    /// the parameters in force.
    fn action_bounds(&self, params: &ParamSet) -> Vec<(f32, f32)> {
        let _ = params;
        Vec::new()
    }

    /// Can [`Self::save_state`] write the state (for checkpoints)?
    fn saves_state(&self) -> bool {
        false
    }

    /// Append the whole state of this process's agents to `out`, for a
    /// checkpoint on disk (nothing when [`Self::saves_state`] is false).
    /// Randomness is keyed by step, so the state is all a run needs to go on.
    fn save_state(&self, out: &mut Vec<u8>) {
        let _ = out;
    }

    /// Replace the state by one [`Self::save_state`] wrote for the same
    /// model, population part and parameters; an error says what does not
    /// match (the state is then unchanged).
    fn load_state(&mut self, bytes: &[u8]) -> Result<(), String> {
        let _ = bytes;
        Err("this model cannot be restored from a checkpoint".into())
    }

    /// Feed every part of the state not in [`Self::agent_columns`] (tallies,
    /// histories, aggregates) to `h`, for reproducibility checks.
    fn hash_extra(&self, h: &mut crate::hash::StateHasher) {
        let _ = h;
    }
}

/// Step `model` once with its own rule deciding, keeping no transcript:
/// for tests and benchmarks that drive a model without a simulation.
pub fn step_by_rule(model: &mut dyn Model, step: u32, params: &ParamSet, layer_weights: &[f64], row: &mut [f64]) {
    let (mut error, mut events) = (None, Vec::new());
    let mut cx = Step {
        step,
        params,
        layer_weights,
        calendar: &crate::calendar::Calendar::undated(),
        decide: Decide::new(None, &mut error),
        events: &mut events,
    };
    model.step(&mut cx, row);
}
