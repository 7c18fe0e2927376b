//! The synthetic city as a population source: its options, labels and the
//! observed series that describe the same boroughs.

use super::data::{self, BOROUGHS};
use super::surveillance::{self, Measure};
use super::{build_city, code_labels, CityOptions, MAX_RESIDENTS};
use myriad_core::calendar::{NaiveDate, PeriodKind};
use myriad_core::source::{Observed, OptionDoc, OptionError, OptionValue, SourceOptions, SourceSpec, Timing};

/// `[population] synthetic = "nyc"`.
pub static NYC: SourceSpec = SourceSpec {
    name: "nyc",
    summary: "the synthetic New York City: 8.55M residents in households, school classes and work teams, built from public tables",
    options: &[
        OptionDoc {
            name: "boroughs",
            doc: "boroughs to include, e.g. [\"BK\", \"SI\"] (codes BK, BX, MN, QN, SI; default all)",
        },
        OptionDoc {
            name: "scale",
            doc: "fraction of residents and households to create, in (0, 1] (default 1)",
        },
        OptionDoc {
            name: "class_size",
            doc: "pupils per school class, 1 to 1000 (default 25)",
        },
        OptionDoc {
            name: "observed_cases",
            doc: "what the model's reported cases are compared with: \"confirmed\" (the Health Department's confirmed cases, default) or \"confirmed+probable\" (with the probable cases: positive antigen tests, symptoms with exposure)",
        },
    ],
    check: |o| options(o).map(drop),
    max_agents: |o| options(o).map_or(MAX_RESIDENTS as f64, |c| MAX_RESIDENTS as f64 * c.scale),
    build: |o, seed| {
        let c = options(o).map_err(|(k, m)| myriad_core::model::ModelError::Infeasible(format!("{k}: {m}")))?;
        build_city(&c, seed)
    },
    code_labels,
    observed,
};

/// The typed options, or the key and the reason they are refused.
pub fn options(o: &SourceOptions) -> Result<CityOptions, OptionError> {
    let mut c = CityOptions::default();
    for (key, value) in o {
        let bad = |m: &str| Err((key.clone(), m.to_string()));
        match (key.as_str(), value) {
            ("boroughs", OptionValue::List(b)) => {
                if let Some(x) = b.iter().find(|x| !BOROUGHS.contains(&x.as_str())) {
                    return Err((
                        key.clone(),
                        format!("unknown borough '{x}' (known: BK, BX, MN, QN, SI)"),
                    ));
                }
                c.boroughs = b.clone();
            }
            ("boroughs", _) => return bad("must be a list of borough codes, e.g. [\"BK\", \"SI\"]"),
            ("scale", OptionValue::Number(x)) if *x > 0.0 && *x <= 1.0 => c.scale = *x,
            ("scale", OptionValue::Number(x)) => {
                return Err((key.clone(), format!("must be a fraction in (0, 1], got {x}")))
            }
            ("scale", _) => return bad("must be a number"),
            ("class_size", OptionValue::Number(x)) if x.fract() == 0.0 && (1.0..=1000.0).contains(x) => {
                c.class_size = *x as u32
            }
            ("class_size", OptionValue::Number(x)) => {
                return Err((key.clone(), format!("must be between 1 and 1000, got {x}")))
            }
            ("class_size", _) => return bad("must be a whole number"),
            ("observed_cases", OptionValue::Text(t)) if t == "confirmed" => c.probable_cases = false,
            ("observed_cases", OptionValue::Text(t)) if t == "confirmed+probable" => c.probable_cases = true,
            ("observed_cases", _) => return bad("must be \"confirmed\" or \"confirmed+probable\""),
            (other, _) => {
                let hint = myriad_core::params::closest(other, NYC.options.iter().map(|d| d.name))
                    .map(|c| format!(" (did you mean '{c}'?)"))
                    .unwrap_or_else(|| {
                        " (options of synthetic = \"nyc\": boroughs, scale, class_size, observed_cases)".into()
                    });
                return Err((key.clone(), format!("unknown key{hint}")));
            }
        }
    }
    Ok(c)
}

/// Boroughs the options include: (index, code).
pub fn included(c: &CityOptions) -> Vec<(usize, &'static str)> {
    BOROUGHS
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, code)| c.boroughs.is_empty() || c.boroughs.iter().any(|x| x == code))
        .collect()
}

/// The observed series per included borough, counts scaled like the
/// population: `cases`, `hospitalisations` and `deaths` (the Health
/// Department's daily counts by date of event, from 2020-02-29; cases
/// confirmed, or confirmed plus probable with `observed_cases`),
/// `unemployment` (monthly rates from July 2020, not scaled) and
/// `weekly_cases` (the older undated weekly confirmed cases, compared week
/// by week with undated runs only).
fn observed(o: &SourceOptions, name: &str) -> Option<Observed> {
    let c = options(o).ok()?;
    let boroughs = included(&c);
    let daily = |label: &str, series: &dyn Fn(usize) -> Vec<f64>| Observed {
        label: label.into(),
        timing: Timing::Daily(surveillance::bundled().first),
        parts: boroughs
            .iter()
            .map(|&(b, code)| (code.to_string(), series(b)))
            .collect(),
        scale: c.scale,
        counts: true,
    };
    match name {
        "cases" => {
            let d = surveillance::bundled();
            let label = if c.probable_cases {
                "confirmed and probable cases"
            } else {
                "confirmed cases"
            };
            Some(daily(label, &|b| {
                let confirmed = d.series(Measure::Confirmed, b);
                if c.probable_cases {
                    let probable = d.series(Measure::Probable, b);
                    confirmed.iter().zip(probable).map(|(x, y)| x + y).collect()
                } else {
                    confirmed.to_vec()
                }
            }))
        }
        "hospitalisations" => {
            let d = surveillance::bundled();
            Some(daily("hospital admissions", &|b| {
                d.series(Measure::Hospitalised, b).to_vec()
            }))
        }
        "deaths" => {
            let d = surveillance::bundled();
            Some(daily("confirmed deaths", &|b| d.series(Measure::Deaths, b).to_vec()))
        }
        "weekly_cases" => {
            let weeks = data::observed_weekly_cases();
            Some(Observed {
                label: "confirmed cases (undated weeks)".into(),
                timing: Timing::Periods(PeriodKind::Week),
                parts: boroughs
                    .iter()
                    .map(|&(b, code)| (code.to_string(), weeks.iter().map(|(by, _)| by[b]).collect()))
                    .collect(),
                scale: c.scale,
                counts: true,
            })
        }
        "unemployment" => {
            let months = data::observed_unemployment();
            Some(Observed {
                label: "unemployment rate (percent)".into(),
                timing: Timing::Monthly(NaiveDate::from_ymd_opt(2020, 7, 1).expect("a valid date")),
                parts: boroughs
                    .iter()
                    .map(|&(b, code)| (code.to_string(), months.iter().map(|m| m[b]).collect()))
                    .collect(),
                scale: 1.0,
                counts: false,
            })
        }
        _ => None,
    }
}
