//! Population sources: where a scenario's agents come from when they are
//! neither generated (`size = N`) nor read from a file, such as the
//! synthetic New York City. A source is registered like a model, by its
//! [`SourceSpec`]; it builds the population, names the labels of its code
//! columns, and offers the observed data that describe the same place, so
//! that the scenario reader and the outputs name no city.

use crate::calendar::{Calendar, NaiveDate, Period, PeriodKind};
use crate::model::ModelError;
use crate::population::Population;
use chrono::Datelike;
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

/// When an observed series' values fall.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Timing {
    /// Undated: value k belongs to the run's k-th period of this kind (on
    /// an undated run only: such a series cannot be placed on a calendar).
    Periods(PeriodKind),
    /// One value per day from this date.
    Daily(NaiveDate),
    /// One value per calendar month from the month of this date.
    Monthly(NaiveDate),
}

/// An observed series offered by a source.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// What it is (for legends and reports), e.g. "confirmed cases".
    pub label: String,
    /// When its values fall.
    pub timing: Timing,
    /// Parts (borough codes) and their published values, in time order.
    pub parts: Vec<(String, Vec<f64>)>,
    /// The factor that makes the values comparable with the population
    /// (its scale, for counts; 1 for rates). Sum parts first, then scale,
    /// so that a sum of parts is scaled once.
    pub scale: f64,
    /// Counts (summed over a period) rather than rates (read at its end).
    pub counts: bool,
}

impl Observed {
    /// The value of part `part` (an index into `parts`, or `None` for the
    /// sum of all parts) for the run's period `period` of `kind`, scaled:
    /// the sum of its days for daily counts, the month's value for monthly
    /// rates, the k-th value for undated periods; `None` where the series
    /// does not cover the whole period.
    pub fn for_period(
        &self,
        calendar: &Calendar,
        kind: PeriodKind,
        period: &Period,
        part: Option<usize>,
    ) -> Option<f64> {
        let value = |k: usize| -> Option<f64> {
            match part {
                Some(p) => self.parts.get(p)?.1.get(k).copied(),
                None => self.parts.iter().map(|(_, v)| v.get(k).copied()).sum::<Option<f64>>(),
            }
        };
        let raw = match self.timing {
            Timing::Periods(k) => {
                if calendar.start().is_some() || k != kind {
                    return None;
                }
                value(period.index as usize)?
            }
            Timing::Daily(first) => {
                let mut sum = 0.0;
                for step in period.first..=period.last {
                    let day = calendar.date(step)?;
                    let k = usize::try_from((day - first).num_days()).ok()?;
                    sum += value(k)?;
                }
                if !self.counts {
                    sum /= f64::from(period.last - period.first + 1);
                }
                sum
            }
            Timing::Monthly(first) => {
                let day = calendar.date(period.last)?;
                let months = (day.year() - first.year()) * 12 + day.month() as i32 - first.month() as i32;
                value(usize::try_from(months).ok()?)?
            }
        };
        Some(raw * self.scale)
    }
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
    /// An observed series by name (`cases`, `hospitalisations`, `deaths`,
    /// `unemployment`, ...), if the source has it for these options.
    pub observed: fn(&SourceOptions, &str) -> Option<Observed>,
}
