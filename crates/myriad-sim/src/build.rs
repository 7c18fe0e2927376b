//! Turning a checked scenario into a model: load or make the population,
//! generate or import each contact layer.

use crate::error::{Error, Result};
use crate::scenario::{check_sizes, LayerKind, LayerSpec, PopulationSource, Scenario};
use myriad_core::comm::Split;
use myriad_core::generators::{
    barabasi_albert, configuration, erdos_renyi, erdos_renyi_touching, groups, groups_from_ids,
    groups_from_ids_touching, groups_touching, random_regular, sample_degrees, watts_strogatz, watts_strogatz_touching,
};
use myriad_core::model::{Contacts, Layer};
use myriad_core::population::{ColumnData, Population};
use myriad_core::{BuildReport, CounterRng, Csr, EdgeList, Stream};
use rayon::prelude::*;
use serde::Serialize;
use std::time::Instant;

/// What building one layer did.
#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    /// Layer name.
    pub name: String,
    /// Distinct undirected edges (0 for well-mixed layers).
    pub edges: u64,
    /// Mean degree.
    pub mean_degree: f64,
    /// Self-loops removed.
    pub self_loops_removed: u64,
    /// Duplicate edges merged.
    pub duplicates_merged: u64,
    /// A stub dropped because the degree sum was odd (configuration model).
    pub odd_stub_dropped: bool,
    /// Seconds spent building it.
    pub seconds: f64,
    /// In a partitioned run: the share of the layer's edges whose two ends
    /// are on different ranks (each such edge is a possible exchange).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crossing_share: Option<f64>,
}

/// Load the population named by the scenario.
pub fn population(s: &Scenario) -> Result<Population> {
    match &s.population {
        PopulationSource::Synthetic(n) => Ok(Population::synthetic(*n)),
        PopulationSource::Source { spec, options } => {
            let pop = (spec.build)(options, s.seed)
                .map_err(|e| InputError(format!("{}: population: {e}", s.file.display())))?;
            check_sizes(&s.layers, pop.size()).map_err(|(i, key, msg)| located(s, &s.layers[i], key, &msg))?;
            Ok(pop)
        }
        PopulationSource::File { path, columns } => {
            let pop = myriad_io::read_population(path, columns).map_err(|e| match e {
                // A missing file: say which key named it.
                myriad_io::IoError::File { .. } => {
                    Error::Input(InputError(format!("{}: population.file: {e}", s.file.display())))
                }
                e => e.into(),
            })?;
            check_sizes(&s.layers, pop.size()).map_err(|(i, key, msg)| located(s, &s.layers[i], key, &msg))?;
            let est = crate::resources::estimate(pop.size() as f64, &s.layers);
            crate::resources::check(&est, s.memory_gb)
                .map_err(|m| InputError(format!("{}: population.file: {m}", s.file.display())))?;
            Ok(pop)
        }
    }
}

fn located(s: &Scenario, layer: &LayerSpec, key: &str, msg: &str) -> Error {
    let (path, line) = &layer.origin;
    let at = line.map(|l| format!(":{l}")).unwrap_or_default();
    Error::Input(InputError(format!("{}{at}: {path}.{key}: {msg}", s.file.display())))
}

/// The integer group-id column a `groups` layer names, or a located error.
pub fn group_ids<'p>(s: &Scenario, spec: &LayerSpec, pop: &'p Population, column: &str) -> Result<&'p [i64]> {
    match pop.column(column).map(|c| &c.data) {
        Some(ColumnData::Int(v)) => Ok(v),
        Some(_) => Err(located(
            s,
            spec,
            "column",
            &format!("population column '{column}' must hold whole numbers (group ids)"),
        )),
        None => {
            let names: Vec<&str> = pop.columns().iter().map(|c| c.name.as_str()).collect();
            Err(located(
                s,
                spec,
                "column",
                &format!(
                    "the population has no column '{column}' (columns: {})",
                    names.join(", ")
                ),
            ))
        }
    }
}

/// Check what can be checked of the layers without building them: data
/// files and population columns they read, and the memory the layers will
/// take with the population.
pub fn check_layer_inputs(s: &Scenario, pop: &Population) -> Result<()> {
    let mut est = crate::resources::estimate(pop.size() as f64, &s.layers);
    for l in &s.layers {
        match &l.kind {
            LayerKind::EdgeList { path } => {
                let (edges, _) = read_edges(s, l, path, pop.size())?;
                est.directed_edges += edges.ends.len() as f64;
            }
            LayerKind::GroupsByColumn { column } => {
                let ids = group_ids(s, l, pop, column).map_err(|e| Error::Input(InputError(format!("{e:#}"))))?;
                est.directed_edges += 2.0 * myriad_core::generators::group_pairs(ids);
            }
            _ => {}
        }
    }
    crate::resources::check(&est, s.memory_gb)
        .map_err(|m| InputError(format!("{}: [layers]: {m}", s.file.display())))?;
    Ok(())
}

/// Read an edge-list layer's file; errors name the scenario key too.
fn read_edges(
    s: &Scenario,
    spec: &LayerSpec,
    path: &std::path::Path,
    n: u32,
) -> Result<(EdgeList, myriad_io::EdgeListInfo)> {
    myriad_io::read_edge_list(path, n).map_err(|e| located(s, spec, "file", &e.to_string()))
}

pub use crate::error::InputError;

/// Build every layer over `n` agents, in scenario order.
pub fn layers(s: &Scenario, pop: &Population) -> Result<(Vec<Layer>, Vec<LayerReport>)> {
    layers_split(s, pop, &Split::single())
}

/// Build this rank's rows of every layer (all rows for a single process).
/// Every rank draws the same edges; an Erdős–Rényi or small-world layer
/// keeps only those touching its rows as it draws them, and a layer of
/// groups (generated or read from a population column) makes only the
/// groups with a member in its rows, so no rank holds the whole layer. The
/// other kinds (configuration, scale-free, edge lists) are made whole and
/// cut to the rank's rows.
pub fn layers_split(s: &Scenario, pop: &Population, split: &Split) -> Result<(Vec<Layer>, Vec<LayerReport>)> {
    let n = pop.size();
    let part = split.part_of(n);
    let rows = part.lo()..part.hi();
    // Data-driven group layers can ask for far more edges than the
    // population suggests (one group of a million agents): refuse first.
    let mut est = crate::resources::estimate(n as f64, &s.layers);
    for spec in &s.layers {
        if let LayerKind::GroupsByColumn { column } = &spec.kind {
            est.directed_edges += 2.0 * myriad_core::generators::group_pairs(group_ids(s, spec, pop, column)?);
        }
    }
    crate::resources::check(&est, s.memory_gb)
        .map_err(|m| InputError(format!("{}: [layers]: {m}", s.file.display())))?;
    let mut layers = Vec::new();
    let mut reports = Vec::new();
    for (i, spec) in s.layers.iter().enumerate() {
        let t0 = Instant::now();
        let rng = CounterRng::new(s.seed, Stream((Stream::NETWORK.0 << 32) | i as u64));
        let mut odd = false;
        let edges: Option<EdgeList> = match &spec.kind {
            LayerKind::ErdosRenyi { mean_degree } if split.is_split() => {
                Some(erdos_renyi_touching(n, *mean_degree, &rng, rows.clone()))
            }
            LayerKind::ErdosRenyi { mean_degree } => Some(erdos_renyi(n, *mean_degree, &rng)),
            LayerKind::Configuration(dist) => {
                let (e, o) = configuration(&sample_degrees(n, dist, &rng), &rng);
                odd = o;
                Some(e)
            }
            LayerKind::DegreeSequence(d) => {
                let (e, o) = configuration(d, &rng);
                odd = o;
                Some(e)
            }
            LayerKind::RandomRegular { degree } => {
                let (e, o) = random_regular(n, *degree, &rng);
                odd = o;
                Some(e)
            }
            LayerKind::WattsStrogatz { k, rewire } if split.is_split() => {
                Some(watts_strogatz_touching(n, *k, *rewire, &rng, rows.clone()))
            }
            LayerKind::WattsStrogatz { k, rewire } => Some(watts_strogatz(n, *k, *rewire, &rng)),
            LayerKind::BarabasiAlbert { m } => Some(barabasi_albert(n, *m, &rng)),
            LayerKind::Groups { size_weights } if split.is_split() => {
                Some(groups_touching(n, size_weights, &rng, rows.clone()))
            }
            LayerKind::Groups { size_weights } => Some(groups(n, size_weights, &rng).0),
            LayerKind::GroupsByColumn { column } if split.is_split() => {
                Some(groups_from_ids_touching(group_ids(s, spec, pop, column)?, rows.clone()))
            }
            LayerKind::GroupsByColumn { column } => Some(groups_from_ids(group_ids(s, spec, pop, column)?)),
            LayerKind::EdgeList { path } => Some(read_edges(s, spec, path, n)?.0),
            LayerKind::WellMixed => None,
        };
        let mut crossing_share = None;
        let (contacts, report) = match edges {
            Some(e) if split.is_split() => {
                let (csr, mut r) = Csr::rows_from_edges(n, rows.clone(), e)
                    .map_err(|e| located(s, spec, "type", &format!("building layer '{}': {e}", spec.name)))?;
                let slot = split.comm.exclusive_sum_u64(csr.entries());
                let csr = csr.at_slot(slot);
                let crossing = (0..csr.n())
                    .into_par_iter()
                    .map(|i| csr.neighbours(i).iter().filter(|&&j| !part.owns(j)).count() as u64)
                    .sum::<u64>();
                let mut totals = [csr.entries(), crossing, r.input_edges, r.self_loops_removed];
                split.comm.sum_u64(&mut totals);
                r.edges = totals[0] / 2;
                r.input_edges = totals[2];
                r.self_loops_removed = totals[3];
                r.duplicates_merged = r.input_edges - r.self_loops_removed - r.edges;
                crossing_share = Some(if totals[0] == 0 {
                    0.0
                } else {
                    totals[1] as f64 / totals[0] as f64
                });
                (Contacts::Network(csr), r)
            }
            Some(e) => {
                let (csr, r) = Csr::from_edges(n, e)
                    .map_err(|e| located(s, spec, "type", &format!("building layer '{}': {e}", spec.name)))?;
                (Contacts::Network(csr), r)
            }
            None => (Contacts::WellMixed, BuildReport::default()),
        };
        let mean_degree = match &contacts {
            Contacts::Network(_) if n > 0 => 2.0 * report.edges as f64 / n as f64,
            Contacts::Network(_) => 0.0,
            Contacts::WellMixed => n.saturating_sub(1) as f64,
        };
        reports.push(LayerReport {
            name: spec.name.clone(),
            edges: report.edges,
            mean_degree,
            self_loops_removed: report.self_loops_removed,
            duplicates_merged: report.duplicates_merged,
            odd_stub_dropped: odd,
            seconds: t0.elapsed().as_secs_f64(),
            crossing_share,
        });
        layers.push(Layer {
            name: spec.name.clone(),
            contacts,
            weight: spec.weight,
        });
    }
    Ok((layers, reports))
}

/// Set the model up on the population with the scenario's layers left
/// empty: every check the model makes of its columns and parameters
/// (stage values, seeding more infections than susceptible agents, game
/// sizes) runs, at the cost of the agents' state but none of the contacts.
/// `validate` uses it, so that a scenario that validates can run.
pub fn check_model(s: &Scenario, population: Population) -> Result<()> {
    let n = population.size();
    let layers = s
        .layers
        .iter()
        .map(|spec| {
            let contacts = match spec.kind {
                LayerKind::WellMixed => Contacts::WellMixed,
                _ => Contacts::Network(Csr::from_edges(n, EdgeList::default())?.0),
            };
            Ok(Layer {
                name: spec.name.clone(),
                contacts,
                weight: spec.weight,
            })
        })
        .collect::<Result<Vec<_>, myriad_core::CsrError>>()?;
    (s.model.build)(myriad_core::model::ModelInput {
        population,
        layers,
        params: s.params.clone(),
        seed: s.seed,
        split: myriad_core::comm::Split::single(),
    })
    .map(drop)
    .map_err(|e| {
        Error::Input(InputError(format!(
            "{}: cannot set up model '{}': {e}",
            s.file.display(),
            s.model.name
        )))
    })
}
