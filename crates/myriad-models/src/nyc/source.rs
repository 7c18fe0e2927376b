//! The synthetic city as a population source: its options, labels and the
//! observed series that describe the same boroughs.

use super::data::{self, BOROUGHS};
use super::{build_city, code_labels, CityOptions, MAX_RESIDENTS};
use myriad_core::source::{Observed, OptionDoc, OptionError, OptionValue, SourceOptions, SourceSpec};

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
            (other, _) => {
                let hint = myriad_core::params::closest(other, NYC.options.iter().map(|d| d.name))
                    .map(|c| format!(" (did you mean '{c}'?)"))
                    .unwrap_or_else(|| " (options of synthetic = \"nyc\": boroughs, scale, class_size)".into());
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

/// `weekly_cases` (the bundled weekly confirmed cases per included borough,
/// to be scaled like the population by `scale`) or `unemployment` (the monthly rates per
/// included borough, from July 2020, not scaled).
fn observed(o: &SourceOptions, name: &str) -> Option<Observed> {
    let c = options(o).ok()?;
    let boroughs = included(&c);
    match name {
        "weekly_cases" => {
            let weeks = data::observed_weekly_cases();
            Some(Observed {
                label: "confirmed cases".into(),
                every: 7,
                parts: boroughs
                    .iter()
                    .map(|&(b, code)| (code.to_string(), weeks.iter().map(|(by, _)| by[b]).collect()))
                    .collect(),
                scale: c.scale,
            })
        }
        "unemployment" => {
            let months = data::observed_unemployment();
            Some(Observed {
                label: "unemployment rate (percent)".into(),
                every: 30,
                parts: boroughs
                    .iter()
                    .map(|&(b, code)| (code.to_string(), months.iter().map(|m| m[b]).collect()))
                    .collect(),
                scale: 1.0,
            })
        }
        _ => None,
    }
}
