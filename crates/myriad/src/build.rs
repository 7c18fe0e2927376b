//! Turning a checked scenario into a model: load or make the population,
//! generate or import each contact layer.

use crate::scenario::{check_sizes, LayerKind, LayerSpec, PopulationSource, Scenario};
use anyhow::{Context, Result};
use myriad_core::generators::{
    barabasi_albert, configuration, erdos_renyi, groups, groups_from_ids, random_regular, sample_degrees,
    watts_strogatz,
};
use myriad_core::model::{Contacts, Layer};
use myriad_core::population::{ColumnData, Population};
use myriad_core::{BuildReport, CounterRng, Csr, EdgeList, Stream};
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
}

/// Load the population named by the scenario.
pub fn population(s: &Scenario) -> Result<Population> {
    match &s.population {
        PopulationSource::Synthetic(n) => Ok(Population::synthetic(*n)),
        PopulationSource::City(opts) => {
            let pop = myriad_models::nyc::build_city(opts, s.seed)?;
            check_sizes(&s.layers, pop.size()).map_err(|(i, key, msg)| located(s, &s.layers[i], key, &msg))?;
            Ok(pop)
        }
        PopulationSource::File { path, columns } => {
            let pop = myriad_io::read_population(path, columns)?;
            check_sizes(&s.layers, pop.size()).map_err(|(i, key, msg)| located(s, &s.layers[i], key, &msg))?;
            Ok(pop)
        }
    }
}

fn located(s: &Scenario, layer: &LayerSpec, key: &str, msg: &str) -> anyhow::Error {
    let (path, line) = &layer.origin;
    let at = line.map(|l| format!(":{l}")).unwrap_or_default();
    anyhow::Error::new(InputError(format!("{}{at}: {path}.{key}: {msg}", s.file.display())))
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
/// files and population columns they read.
pub fn check_layer_inputs(s: &Scenario, pop: &Population) -> Result<()> {
    for l in &s.layers {
        match &l.kind {
            LayerKind::EdgeList { path } => {
                myriad_io::read_edge_list(path, pop.size())?;
            }
            LayerKind::GroupsByColumn { column } => {
                group_ids(s, l, pop, column).map_err(|e| anyhow::Error::new(InputError(format!("{e:#}"))))?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// An error caused by the user's input (reported with exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Build every layer over `n` agents, in scenario order.
pub fn layers(s: &Scenario, pop: &Population) -> Result<(Vec<Layer>, Vec<LayerReport>)> {
    let n = pop.size();
    let mut layers = Vec::new();
    let mut reports = Vec::new();
    for (i, spec) in s.layers.iter().enumerate() {
        let t0 = Instant::now();
        let rng = CounterRng::new(s.seed, Stream((Stream::NETWORK.0 << 32) | i as u64));
        let mut odd = false;
        let edges: Option<EdgeList> = match &spec.kind {
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
            LayerKind::WattsStrogatz { k, rewire } => Some(watts_strogatz(n, *k, *rewire, &rng)),
            LayerKind::BarabasiAlbert { m } => Some(barabasi_albert(n, *m, &rng)),
            LayerKind::Groups { size_weights } => Some(groups(n, size_weights, &rng).0),
            LayerKind::GroupsByColumn { column } => {
                let ids = group_ids(s, spec, pop, column)?;
                Some(groups_from_ids(ids))
            }
            LayerKind::EdgeList { path } => Some(myriad_io::read_edge_list(path, n)?.0),
            LayerKind::WellMixed => None,
        };
        let (contacts, report) = match edges {
            Some(e) => {
                let (csr, r) = Csr::from_edges(n, e).with_context(|| format!("building layer '{}'", spec.name))?;
                (Contacts::Network(csr), r)
            }
            None => (Contacts::WellMixed, BuildReport::default()),
        };
        let mean_degree = match &contacts {
            Contacts::Network(c) => c.mean_degree(),
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
        });
        layers.push(Layer {
            name: spec.name.clone(),
            contacts,
            weight: spec.weight,
        });
    }
    Ok((layers, reports))
}
