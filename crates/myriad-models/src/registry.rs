//! The list of models the command line knows, with their documentation.

use myriad_core::metrics::MetricSpec;
use myriad_core::model::{Layer, Model};
use myriad_core::params::{ParamSet, ParamSpec};
use myriad_core::population::Population;

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

/// A model's name, documentation and constructor.
pub struct ModelInfo {
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
    /// Panels of `timeseries.png` (empty: compartment counts above, event
    /// counts `new_*` below).
    pub plots: &'static [PlotPanel],
    /// Constructor.
    pub build: fn(ModelInput) -> Result<Box<dyn Model>, ModelError>,
}

/// All models.
pub fn models() -> &'static [ModelInfo] {
    &MODELS
}

/// A model by name.
pub fn find(name: &str) -> Option<&'static ModelInfo> {
    MODELS.iter().find(|m| m.name == name)
}

static MODELS: [ModelInfo; 6] = [
    crate::epidemic::SIR_INFO,
    crate::epidemic::SEIR_INFO,
    crate::covid::COVID_INFO,
    crate::games::commons::COMMONS_INFO,
    crate::games::donor::DONOR_INFO,
    crate::games::guess::GUESS_INFO,
];
