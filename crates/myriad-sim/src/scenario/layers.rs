//! `[[layers]]`: contact layers, each a generator with its parameters, an
//! edge list file, or well-mixed contact.

use super::{check_sizes, LayerKind, LayerSpec, PopulationSource};
use crate::toml_reader::{ScenarioError, Table};
use myriad_core::generators::DegreeDistribution;
use myriad_core::model::ModelSpec;
use std::path::Path;

const LAYER_TYPES: &[&str] = &[
    "erdos_renyi",
    "configuration",
    "random_regular",
    "watts_strogatz",
    "barabasi_albert",
    "groups",
    "edge_list",
    "well_mixed",
];

fn positive(x: f64) -> bool {
    x > 0.0
}

/// Every layer, checked against the model (does it read layers?) and,
/// for generated populations, against the population size.
pub(super) fn parse(
    root: &mut Table,
    model: &ModelSpec,
    base_dir: &Path,
    population: &PopulationSource,
    file: &Path,
) -> Result<Vec<LayerSpec>, ScenarioError> {
    let mut layers: Vec<LayerSpec> = Vec::new();
    for t in root.tables("layers")? {
        let layer = parse_one(t, base_dir, &layers)?;
        layers.push(layer);
    }
    if layers.is_empty() && model.uses_layers {
        return Err(root.error_here("no contact layers: add at least one [[layers]] table"));
    }
    if !layers.is_empty() && !model.uses_layers {
        return Err(root.error_here(format!(
            "model '{}' has no contact layers: remove the [[layers]] tables",
            model.name
        )));
    }
    if let PopulationSource::Synthetic(n) = population {
        check_sizes(&layers, *n).map_err(|(i, key, msg)| {
            let (path, line) = &layers[i].origin;
            ScenarioError {
                file: file.to_path_buf(),
                line: *line,
                key: format!("{path}.{key}"),
                message: msg,
            }
        })?;
    }
    Ok(layers)
}

/// One `[[layers]]` table (`before`: the layers above it).
fn parse_one(mut t: Table, base_dir: &Path, before: &[LayerSpec]) -> Result<LayerSpec, ScenarioError> {
    let name = t.string("name")?.ok_or_else(|| t.error_here("missing key 'name'"))?;
    if before.iter().any(|l| l.name == name) {
        return Err(t.error("name", format!("layer name '{name}' is used twice")));
    }
    let weight = t.f64_where("weight", |w| w >= 0.0, "a number >= 0")?.unwrap_or(1.0);
    let ty = t
        .string("type")?
        .ok_or_else(|| t.error_here(format!("missing key 'type' (one of {})", LAYER_TYPES.join(", "))))?;
    let kind = match ty.as_str() {
        "erdos_renyi" => LayerKind::ErdosRenyi {
            mean_degree: t
                .f64_where("mean_degree", positive, "a number > 0")?
                .ok_or_else(|| t.missing("mean_degree", "erdos_renyi needs mean_degree"))?,
        },
        "configuration" => configuration(&mut t)?,
        "random_regular" => LayerKind::RandomRegular {
            degree: t
                .int("degree", 1, 100_000)?
                .ok_or_else(|| t.missing("degree", "random_regular needs degree"))? as u32,
        },
        "watts_strogatz" => watts_strogatz(&mut t)?,
        "barabasi_albert" => LayerKind::BarabasiAlbert {
            m: t.int("m", 1, 100_000)?
                .ok_or_else(|| t.missing("m", "barabasi_albert needs m (edges per new agent)"))? as u32,
        },
        "groups" if t.raw("column").is_some() => LayerKind::GroupsByColumn {
            column: t.string("column")?.unwrap_or_default(),
        },
        "groups" => groups(&mut t)?,
        "edge_list" => LayerKind::EdgeList {
            path: base_dir.join(
                t.string("file")?
                    .ok_or_else(|| t.missing("file", "edge_list needs file = \"edges.csv\""))?,
            ),
        },
        "well_mixed" => LayerKind::WellMixed,
        other => {
            return Err(t.error(
                "type",
                format!(
                    "unknown layer type '{other}'{} (known: {})",
                    myriad_core::params::closest(other, LAYER_TYPES.iter().copied())
                        .map(|c| format!(", did you mean '{c}'?"))
                        .unwrap_or_default(),
                    LAYER_TYPES.join(", ")
                ),
            ))
        }
    };
    let origin = (t.path.clone(), t.error_here("").line);
    t.finish()?;
    Ok(LayerSpec {
        name,
        weight,
        kind,
        origin,
    })
}

/// The configuration model: an explicit degree sequence or a distribution.
fn configuration(t: &mut Table) -> Result<LayerKind, ScenarioError> {
    let degrees = t.numbers("degrees")?;
    let dist = t.string("distribution")?;
    let mean = t.f64_where("mean", positive, "a number > 0")?;
    let dispersion = t.f64_where("dispersion", positive, "a number > 0")?;
    match (degrees, dist.as_deref()) {
        (Some(d), None) => {
            if let Some(bad) = d
                .iter()
                .find(|x| x.fract() != 0.0 || **x < 0.0 || **x > u32::MAX as f64)
            {
                return Err(t.error("degrees", format!("degrees must be whole numbers >= 0, found {bad}")));
            }
            Ok(LayerKind::DegreeSequence(d.iter().map(|&x| x as u32).collect()))
        }
        (None, Some(dname)) => {
            let need_mean = || mean.ok_or_else(|| t.error_here(format!("distribution \"{dname}\" needs mean")));
            Ok(LayerKind::Configuration(match dname {
                "poisson" => DegreeDistribution::Poisson { mean: need_mean()? },
                "negative_binomial" => DegreeDistribution::NegativeBinomial {
                    mean: need_mean()?,
                    dispersion: dispersion.ok_or_else(|| {
                        t.error_here(
                            "distribution \"negative_binomial\" needs dispersion (k > 0; variance = mean + mean^2/k)",
                        )
                    })?,
                },
                _ => return Err(t.error(
                    "distribution",
                    "must be \"poisson\" or \"negative_binomial\" (for a fixed degree use type = \"random_regular\")",
                )),
            }))
        }
        (Some(_), Some(_)) => Err(t.error("distribution", "give either degrees or distribution, not both")),
        (None, None) => Err(t.missing(
            "degrees",
            "configuration needs degrees = [...] or distribution = \"poisson\" | \"negative_binomial\"",
        )),
    }
}

/// The Watts-Strogatz small world: an even ring degree and a rewiring chance.
fn watts_strogatz(t: &mut Table) -> Result<LayerKind, ScenarioError> {
    let k = t
        .int("k", 2, 100_000)?
        .ok_or_else(|| t.missing("k", "watts_strogatz needs k (even number of ring neighbours)"))?;
    if k % 2 != 0 {
        return Err(t.error("k", format!("must be even (k/2 neighbours on each side), got {k}")));
    }
    let rewire = t
        .f64_where("rewire", |p| (0.0..=1.0).contains(&p), "a probability in [0, 1]")?
        .ok_or_else(|| t.missing("rewire", "watts_strogatz needs rewire (probability)"))?;
    Ok(LayerKind::WattsStrogatz { k: k as u32, rewire })
}

/// Fully connected groups of one size or of a size distribution.
fn groups(t: &mut Table) -> Result<LayerKind, ScenarioError> {
    let size = t.int("size", 1, 100_000)?;
    let sizes = t.numbers("sizes")?;
    let size_weights = match (size, sizes) {
        (Some(s), None) => {
            let mut w = vec![0.0; s as usize];
            w[s as usize - 1] = 1.0;
            w
        }
        (None, Some(w)) => {
            if w.is_empty()
                || w.len() > 100_000
                || w.iter().any(|x| *x < 0.0 || !x.is_finite())
                || w.iter().sum::<f64>() <= 0.0
            {
                return Err(t.error(
                    "sizes",
                    "must list relative weights (>= 0, not all 0) of group sizes 1, 2, 3, ...",
                ));
            }
            w
        }
        (Some(_), Some(_)) => return Err(t.error("sizes", "give either size or sizes, not both")),
        (None, None) => {
            return Err(t.missing(
                "size",
                "groups needs size = N or sizes = [weight of size 1, weight of size 2, ...]",
            ))
        }
    };
    Ok(LayerKind::Groups { size_weights })
}
