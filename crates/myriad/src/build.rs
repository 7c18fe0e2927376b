//! Turning a checked scenario into a model: load or make the population,
//! generate or import each contact layer.

use crate::scenario::{check_sizes, LayerKind, LayerSpec, PopulationSource, Scenario};
use anyhow::{anyhow, Context, Result};
use myriad_core::generators::{
    barabasi_albert, configuration, erdos_renyi, groups, random_regular, sample_degrees, watts_strogatz,
};
use myriad_core::model::{Contacts, Layer};
use myriad_core::population::Population;
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
    anyhow!("{}{at}: {path}.{key}: {msg}", s.file.display())
}

/// Build every layer over `n` agents, in scenario order.
pub fn layers(s: &Scenario, n: u32) -> Result<(Vec<Layer>, Vec<LayerReport>)> {
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
