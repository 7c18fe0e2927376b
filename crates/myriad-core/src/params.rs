//! Documented model parameters: every parameter has a name, a unit, a default,
//! a valid range and a sentence of documentation, so that scenario validation,
//! `myriad describe` and interventions all read from one table.

use std::fmt;

/// A bound of a numeric range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Limit {
    /// No bound.
    None,
    /// The value may equal the bound.
    Inclusive(f64),
    /// The value must be strictly beyond the bound.
    Exclusive(f64),
}

/// What values a parameter takes.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamKind {
    /// A number within `[min, max]` (bounds as given), optionally whole.
    Number {
        /// Lower bound.
        min: Limit,
        /// Upper bound.
        max: Limit,
        /// Must the value be a whole number?
        integer: bool,
    },
    /// One of a fixed list of words.
    Choice(&'static [&'static str]),
}

/// A parameter value.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    /// A number.
    Number(f64),
    /// A word from a choice list.
    Choice(String),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Number(x) => write!(f, "{x}"),
            ParamValue::Choice(s) => write!(f, "\"{s}\""),
        }
    }
}

/// The documentation and constraints of one parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    /// Key in the scenario's `[params]` table.
    pub name: &'static str,
    /// Allowed values.
    pub kind: ParamKind,
    /// Value when the scenario does not set it.
    pub default: ParamValue,
    /// Unit, e.g. "probability per contact per day", "days", "agents".
    pub unit: &'static str,
    /// One or two sentences on what it means.
    pub doc: &'static str,
}

impl ParamSpec {
    /// A human-readable description of the allowed values.
    pub fn range_text(&self) -> String {
        match &self.kind {
            ParamKind::Number { min, max, integer } => {
                let lo = match min {
                    Limit::None => "(-inf".to_string(),
                    Limit::Inclusive(x) => format!("[{x}"),
                    Limit::Exclusive(x) => format!("({x}"),
                };
                let hi = match max {
                    Limit::None => "inf)".to_string(),
                    Limit::Inclusive(x) => format!("{x}]"),
                    Limit::Exclusive(x) => format!("{x})"),
                };
                format!("{}{lo}, {hi}", if *integer { "integer in " } else { "" })
            }
            ParamKind::Choice(words) => format!("one of {}", words.join(", ")),
        }
    }

    /// Check a value against this spec.
    pub fn check(&self, value: &ParamValue) -> Result<(), ParamError> {
        let name = self.name.to_string();
        match (&self.kind, value) {
            (ParamKind::Number { min, max, integer }, ParamValue::Number(x)) => {
                let x = *x;
                let ok_lo = match *min {
                    Limit::None => true,
                    Limit::Inclusive(b) => x >= b,
                    Limit::Exclusive(b) => x > b,
                };
                let ok_hi = match *max {
                    Limit::None => true,
                    Limit::Inclusive(b) => x <= b,
                    Limit::Exclusive(b) => x < b,
                };
                if !x.is_finite() || !ok_lo || !ok_hi || (*integer && x.fract() != 0.0) {
                    return Err(ParamError::OutOfRange {
                        name,
                        value: x,
                        range: self.range_text(),
                    });
                }
                Ok(())
            }
            (ParamKind::Choice(words), ParamValue::Choice(w)) => {
                if words.contains(&w.as_str()) {
                    Ok(())
                } else {
                    Err(ParamError::BadChoice {
                        name,
                        value: w.clone(),
                        range: self.range_text(),
                    })
                }
            }
            (ParamKind::Number { .. }, ParamValue::Choice(_)) => Err(ParamError::WrongType {
                name,
                expected: "a number",
            }),
            (ParamKind::Choice(_), ParamValue::Number(_)) => Err(ParamError::WrongType {
                name,
                expected: "a string",
            }),
        }
    }
}

/// Errors setting parameters.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParamError {
    /// No parameter has this name.
    #[error("unknown parameter '{name}'{}", suggestion(.known))]
    Unknown {
        /// The name given.
        name: String,
        /// The closest known name, if any is close.
        known: Option<String>,
    },
    /// A number outside its range.
    #[error("parameter '{name}' = {value} is out of range: must be {range}")]
    OutOfRange {
        /// Parameter name.
        name: String,
        /// The value given.
        value: f64,
        /// The allowed range.
        range: String,
    },
    /// A word not in the choice list.
    #[error("parameter '{name}' = \"{value}\" is not allowed: must be {range}")]
    BadChoice {
        /// Parameter name.
        name: String,
        /// The value given.
        value: String,
        /// The allowed words.
        range: String,
    },
    /// A number where a word was expected, or the reverse.
    #[error("parameter '{name}' must be {expected}")]
    WrongType {
        /// Parameter name.
        name: String,
        /// What was expected.
        expected: &'static str,
    },
}

fn suggestion(known: &Option<String>) -> String {
    match known {
        Some(k) => format!(" (did you mean '{k}'?)"),
        None => String::new(),
    }
}

/// The closest of `candidates` to `name` by edit distance, if reasonably close.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min()
        .map(|(_, c)| c.to_string())
}

/// A full set of parameter values for one model, defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSet {
    specs: Vec<ParamSpec>,
    values: Vec<ParamValue>,
}

impl ParamSet {
    /// All parameters at their defaults.
    pub fn defaults(specs: Vec<ParamSpec>) -> ParamSet {
        let values = specs.iter().map(|s| s.default.clone()).collect();
        ParamSet { specs, values }
    }

    /// The specs, in declaration order.
    pub fn specs(&self) -> &[ParamSpec] {
        &self.specs
    }

    fn index(&self, name: &str) -> Result<usize, ParamError> {
        self.specs
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| ParamError::Unknown {
                name: name.to_string(),
                known: closest(name, self.specs.iter().map(|s| s.name)),
            })
    }

    /// The spec of a parameter.
    pub fn spec(&self, name: &str) -> Result<&ParamSpec, ParamError> {
        self.index(name).map(|i| &self.specs[i])
    }

    /// Set a value, checking its type and range.
    pub fn set(&mut self, name: &str, value: ParamValue) -> Result<(), ParamError> {
        let i = self.index(name)?;
        self.specs[i].check(&value)?;
        self.values[i] = value;
        Ok(())
    }

    /// The value of a parameter.
    pub fn value(&self, name: &str) -> Result<&ParamValue, ParamError> {
        self.index(name).map(|i| &self.values[i])
    }

    /// A numeric parameter. Panics on an unknown name or a word-valued
    /// parameter: models only ask for the names they declared.
    pub fn num(&self, name: &str) -> f64 {
        match self.value(name) {
            Ok(ParamValue::Number(x)) => *x,
            other => panic!("model asked for numeric parameter '{name}', found {other:?}"),
        }
    }

    /// A word-valued parameter; same contract as [`ParamSet::num`].
    pub fn choice(&self, name: &str) -> &str {
        match self.value(name) {
            Ok(ParamValue::Choice(s)) => s,
            other => panic!("model asked for choice parameter '{name}', found {other:?}"),
        }
    }

    /// Names and values, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &ParamValue)> {
        self.specs.iter().map(|s| s.name).zip(self.values.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs() -> Vec<ParamSpec> {
        vec![
            ParamSpec {
                name: "beta",
                kind: ParamKind::Number {
                    min: Limit::Inclusive(0.0),
                    max: Limit::Inclusive(1.0),
                    integer: false,
                },
                default: ParamValue::Number(0.1),
                unit: "probability",
                doc: "",
            },
            ParamSpec {
                name: "dist",
                kind: ParamKind::Choice(&["fixed", "geometric"]),
                default: ParamValue::Choice("fixed".into()),
                unit: "",
                doc: "",
            },
        ]
    }

    #[test]
    fn checks_ranges_types_and_names() {
        let mut p = ParamSet::defaults(specs());
        assert_eq!(p.num("beta"), 0.1);
        p.set("beta", ParamValue::Number(0.5)).unwrap();
        assert_eq!(p.num("beta"), 0.5);
        assert!(matches!(
            p.set("beta", ParamValue::Number(1.5)),
            Err(ParamError::OutOfRange { .. })
        ));
        assert!(matches!(
            p.set("beta", ParamValue::Number(f64::NAN)),
            Err(ParamError::OutOfRange { .. })
        ));
        assert!(matches!(
            p.set("dist", ParamValue::Choice("weird".into())),
            Err(ParamError::BadChoice { .. })
        ));
        assert!(matches!(
            p.set("dist", ParamValue::Number(1.0)),
            Err(ParamError::WrongType { .. })
        ));
        let err = p.set("betta", ParamValue::Number(0.1)).unwrap_err();
        assert_eq!(err.to_string(), "unknown parameter 'betta' (did you mean 'beta'?)");
    }
}
