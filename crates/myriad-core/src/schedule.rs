//! Scheduled interventions: a parameter or a layer weight changes from one
//! step to another (for example transmission drops by 60% from day 30 to 90).

use crate::params::{ParamError, ParamSet, ParamValue};

/// What an intervention changes.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// A numeric model parameter, by name.
    Param(String),
    /// The weight of a contact layer, by layer index.
    LayerWeight(usize),
}

/// How it changes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Change {
    /// Multiply the current value.
    Scale(f64),
    /// Replace the current value.
    Set(f64),
}

impl Change {
    fn apply(self, x: f64) -> f64 {
        match self {
            Change::Scale(f) => x * f,
            Change::Set(v) => v,
        }
    }
}

/// One scheduled change, active for steps `start <= step < end`.
#[derive(Clone, Debug, PartialEq)]
pub struct Intervention {
    /// Label for logs and summaries.
    pub name: String,
    /// First step at which the change applies.
    pub start: u32,
    /// First step at which it no longer applies (`None`: until the end).
    pub end: Option<u32>,
    /// What is changed.
    pub target: Target,
    /// How.
    pub change: Change,
}

impl Intervention {
    /// Is the change in force at `step`?
    pub fn active(&self, step: u32) -> bool {
        step >= self.start && self.end.is_none_or(|e| step < e)
    }
}

/// All interventions of a run, applied in the order given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schedule {
    items: Vec<Intervention>,
}

/// Parameter values and layer weights in force at one step.
#[derive(Clone, Debug, PartialEq)]
pub struct InForce {
    /// Parameters.
    pub params: ParamSet,
    /// One weight per layer.
    pub layer_weights: Vec<f64>,
}

impl Schedule {
    /// A schedule from interventions.
    pub fn new(items: Vec<Intervention>) -> Schedule {
        Schedule { items }
    }

    /// The interventions.
    pub fn items(&self) -> &[Intervention] {
        &self.items
    }

    /// Values in force at `step`, starting from the scenario's base values.
    /// Fails if a change leaves a parameter outside its documented range.
    pub fn in_force(&self, step: u32, base: &ParamSet, base_weights: &[f64]) -> Result<InForce, ParamError> {
        let mut params = base.clone();
        let mut layer_weights = base_weights.to_vec();
        for it in self.items.iter().filter(|it| it.active(step)) {
            match &it.target {
                Target::Param(name) => {
                    let current = match params.value(name)? {
                        ParamValue::Number(x) => *x,
                        ParamValue::Choice(_) => {
                            return Err(ParamError::WrongType {
                                name: name.clone(),
                                expected: "a number to be changed by an intervention",
                            })
                        }
                    };
                    params.set(name, ParamValue::Number(it.change.apply(current)))?;
                }
                Target::LayerWeight(i) => layer_weights[*i] = it.change.apply(layer_weights[*i]).max(0.0),
            }
        }
        Ok(InForce { params, layer_weights })
    }

    /// The steps at which the values in force can change, for validation:
    /// checking [`Schedule::in_force`] at each of them checks every step.
    pub fn change_points(&self) -> Vec<u32> {
        let mut v: Vec<u32> = std::iter::once(0)
            .chain(self.items.iter().flat_map(|i| std::iter::once(i.start).chain(i.end)))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{Limit, ParamKind, ParamSpec};

    #[test]
    fn scales_within_window_and_restores_after() {
        let base = ParamSet::defaults(vec![ParamSpec {
            name: "beta",
            kind: ParamKind::Number {
                min: Limit::Inclusive(0.0),
                max: Limit::Inclusive(1.0),
                integer: false,
            },
            default: ParamValue::Number(0.5),
            unit: "",
            doc: "",
        }]);
        let s = Schedule::new(vec![
            Intervention {
                name: "lockdown".into(),
                start: 30,
                end: Some(90),
                target: Target::Param("beta".into()),
                change: Change::Scale(0.4),
            },
            Intervention {
                name: "schools".into(),
                start: 10,
                end: None,
                target: Target::LayerWeight(1),
                change: Change::Set(0.0),
            },
        ]);
        let w = [1.0, 1.0];
        assert_eq!(s.in_force(29, &base, &w).unwrap().params.num("beta"), 0.5);
        assert_eq!(s.in_force(30, &base, &w).unwrap().params.num("beta"), 0.2);
        assert_eq!(s.in_force(89, &base, &w).unwrap().params.num("beta"), 0.2);
        assert_eq!(s.in_force(90, &base, &w).unwrap().params.num("beta"), 0.5);
        assert_eq!(s.in_force(9, &base, &w).unwrap().layer_weights, vec![1.0, 1.0]);
        assert_eq!(s.in_force(500, &base, &w).unwrap().layer_weights, vec![1.0, 0.0]);
        assert_eq!(s.change_points(), vec![0, 10, 30, 90]);
    }
}
