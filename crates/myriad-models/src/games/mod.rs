//! Cooperation and strategic games: the GovSim commons ([`commons`]), the
//! Donor Game of cultural evolution ([`donor`]) and guess-2/3-of-the-average
//! ([`guess`]). Each step is one decision period (a month, a generation, a
//! round); players follow a rule given by the parameters, or a behaviour
//! provider (an LLM asked per agent) through the model's decisions.

/// The `Model` methods that attach a behaviour provider and report on it,
/// for a game whose provider sits in a `provider: Provider` field.
macro_rules! provider_methods {
    () => {
        fn set_behaviour(&mut self, behaviour: Box<dyn myriad_core::behaviour::Behaviour>) -> Result<(), String> {
            self.provider.behaviour = Some(behaviour);
            Ok(())
        }

        fn take_error(&mut self) -> Option<String> {
            self.provider.error.take()
        }

        fn behaviour_report(&self) -> Option<serde_json::Value> {
            self.provider.behaviour.as_ref().map(|b| b.report())
        }
    };
}

pub mod commons;
pub mod donor;
pub mod guess;

use myriad_core::behaviour::{Behaviour, Observations};
use myriad_core::params::{Limit, ParamKind};

/// A numeric parameter kind.
pub(crate) fn number(min: f64, max: f64, integer: bool) -> ParamKind {
    ParamKind::Number {
        min: Limit::Inclusive(min),
        max: Limit::Inclusive(max),
        integer,
    }
}

/// Gini coefficient of non-negative values (0: all equal; 0 for an empty
/// or all-zero list), by the sorted-rank formula.
pub fn gini(values: &[f64]) -> f64 {
    let n = values.len();
    let total: f64 = values.iter().sum();
    if n == 0 || total <= 0.0 {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let weighted: f64 = v
        .iter()
        .enumerate()
        .map(|(i, x)| (2.0 * (i as f64 + 1.0) - n as f64 - 1.0) * x)
        .sum();
    weighted / (n as f64 * total)
}

/// A provider attached to a game and the first error it met.
#[derive(Default)]
pub(crate) struct Provider {
    pub behaviour: Option<Box<dyn Behaviour>>,
    pub error: Option<String>,
}

impl Provider {
    /// Values for `decision` from the provider (NaN where it has none), or
    /// None with no provider, a provider not handling it, or an error (kept
    /// for `take_error`; the game goes on by its rule).
    pub fn ask(&mut self, decision: &str, when: &str, obs: &Observations) -> Option<Vec<f64>> {
        let b = self.behaviour.as_mut()?;
        match b.probabilities(decision, obs) {
            Ok(v) => v,
            Err(e) => {
                self.error
                    .get_or_insert(format!("behaviour '{decision}' in {when}: {e}"));
                None
            }
        }
    }

    /// Free-text answers for `decision`, one per asker (None as in [`Self::ask`]).
    pub fn texts(&mut self, decision: &str, when: &str, obs: &Observations) -> Option<Vec<Option<String>>> {
        let b = self.behaviour.as_mut()?;
        match b.texts(decision, obs) {
            Ok(v) => v,
            Err(e) => {
                self.error
                    .get_or_insert(format!("behaviour '{decision}' in {when}: {e}"));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::gini;

    #[test]
    fn gini_of_known_distributions() {
        assert_eq!(gini(&[5.0; 4]), 0.0);
        // One holds everything among n: (n - 1) / n.
        assert!((gini(&[0.0, 0.0, 0.0, 8.0]) - 0.75).abs() < 1e-12);
        // 1, 2, 3: mean absolute difference 8/9 over twice the mean 4.
        assert!((gini(&[3.0, 1.0, 2.0]) - 2.0 / 9.0).abs() < 1e-12);
        assert_eq!(gini(&[]), 0.0);
    }
}
