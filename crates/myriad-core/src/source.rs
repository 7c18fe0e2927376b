//! Population sources: where a scenario's agents come from when they are
//! neither generated (`size = N`) nor read from a file, such as the
//! synthetic New York City. A source is registered like a model, by its
//! [`SourceSpec`]; it builds the population, names the labels of its code
//! columns, and offers the observed data that describe the same place, so
//! that the scenario reader and the outputs name no city.

use crate::model::ModelError;
use crate::population::Population;
use std::collections::BTreeMap;

/// A value of a source option (`[population]` keys besides `synthetic`).
#[derive(Clone, Debug, PartialEq)]
pub enum OptionValue {
    /// A number.
    Number(f64),
    /// A string.
    Text(String),
    /// A list of strings.
    List(Vec<String>),
}

/// The options a scenario gives a source, by key.
pub type SourceOptions = BTreeMap<String, OptionValue>;

/// A documented option of a source.
#[derive(Clone, Copy, Debug)]
pub struct OptionDoc {
    /// Key in `[population]`.
    pub name: &'static str,
    /// Accepted values and meaning.
    pub doc: &'static str,
}

/// An observed series offered by a source, aligned with the run's steps.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// What it is (for legends and reports), e.g. "confirmed cases".
    pub label: String,
    /// Steps per value: 7 for weekly values starting at step 1 (summed over
    /// steps 1-7, 8-14, ...), 30 for monthly values read at steps 0, 30, ...
    pub every: u32,
    /// Parts (borough codes) and their published values, period by period.
    pub parts: Vec<(String, Vec<f64>)>,
    /// The factor that makes the values comparable with the population
    /// (its scale, for counts; 1 for rates). Sum parts first, then scale,
    /// so that a sum of parts is scaled once.
    pub scale: f64,
}

/// Why a source refused its options: the key and the message.
pub type OptionError = (String, String);

/// A population source: its name, documentation and functions.
pub struct SourceSpec {
    /// Name used in scenarios (`[population] synthetic = "..."`).
    pub name: &'static str,
    /// One line on what it is.
    pub summary: &'static str,
    /// Options it takes.
    pub options: &'static [OptionDoc],
    /// Check options before anything is built.
    pub check: fn(&SourceOptions) -> Result<(), OptionError>,
    /// An upper bound on the agents it will build (for the memory estimate).
    pub max_agents: fn(&SourceOptions) -> f64,
    /// Build the population.
    pub build: fn(&SourceOptions, u64) -> Result<Population, ModelError>,
    /// Labels of a whole-number code column (`age_group` 0 is `U19`), for prompts.
    pub code_labels: fn(&str) -> Option<&'static [&'static str]>,
    /// An observed series by name (`weekly_cases`, `unemployment`), if the
    /// source has it for these options.
    pub observed: fn(&SourceOptions, &str) -> Option<Observed>,
}
