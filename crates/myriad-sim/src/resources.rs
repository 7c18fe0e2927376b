//! What a scenario will need before it is built: agents, contact edges and
//! bytes, checked against a memory limit, so that a scenario too large for
//! the machine is refused with a message instead of aborting the process
//! when an allocation fails.

use crate::scenario::{LayerKind, LayerSpec};
use std::sync::OnceLock;

/// Bytes per agent for its columns and model state (measured: the SEIR
/// model on 10M agents needs about 48 bytes per agent besides its edges;
/// the covid model on the synthetic city about 60), rounded up.
pub const BYTES_PER_AGENT: f64 = 64.0;

/// Bytes per directed edge while a layer is built (the edge list and the
/// CSR it becomes are both alive for a moment).
pub const BYTES_PER_EDGE: f64 = 12.0;

/// An estimate of a scenario's size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// Agents.
    pub agents: f64,
    /// Directed edges over all layers (twice the undirected edges).
    pub directed_edges: f64,
}

impl Estimate {
    /// Bytes needed at the peak.
    pub fn bytes(&self) -> f64 {
        self.agents * BYTES_PER_AGENT + self.directed_edges * BYTES_PER_EDGE
    }
}

/// Expected directed edges of a generated layer over `n` agents; `None`
/// for layers whose size depends on data (edge lists, groups by column),
/// which are checked when their data is read.
pub fn layer_edges(kind: &LayerKind, n: f64) -> Option<f64> {
    Some(match kind {
        LayerKind::ErdosRenyi { mean_degree } => n * mean_degree,
        LayerKind::Configuration(d) => n * d.mean(),
        LayerKind::DegreeSequence(d) => d.iter().map(|&x| x as f64).sum(),
        LayerKind::RandomRegular { degree } => n * *degree as f64,
        LayerKind::WattsStrogatz { k, .. } => n * *k as f64,
        LayerKind::BarabasiAlbert { m } => 2.0 * n * *m as f64,
        LayerKind::Groups { size_weights } => {
            // An agent is in a group of size s with probability proportional
            // to s w_s, and then has s - 1 contacts.
            let (mut members, mut degree) = (0.0, 0.0);
            for (k, w) in size_weights.iter().enumerate() {
                let s = (k + 1) as f64;
                members += s * w;
                degree += s * w * (s - 1.0);
            }
            if members > 0.0 {
                n * degree / members
            } else {
                0.0
            }
        }
        LayerKind::GroupsByColumn { .. } | LayerKind::EdgeList { .. } | LayerKind::WellMixed => return None,
    })
}

/// The estimate for `n` agents and the generated layers.
pub fn estimate(n: f64, layers: &[LayerSpec]) -> Estimate {
    Estimate {
        agents: n,
        directed_edges: layers.iter().filter_map(|l| layer_edges(&l.kind, n)).sum(),
    }
}

/// Physical memory of this machine in bytes (Linux `MemTotal`), if known.
pub fn physical_memory() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

/// The default memory limit: 90% of physical memory (16 GB if unknown).
pub fn default_limit_gb() -> f64 {
    physical_memory().map_or(16.0, |b| 0.9 * b / 1e9)
}

/// This process's part in a partitioned run: (ranks on this machine, ranks).
static MACHINE_SHARE: OnceLock<(usize, usize)> = OnceLock::new();

/// Declare this process one of `ranks` processes of a partitioned run,
/// `here` of them on this machine (set once, when MPI starts): memory
/// checks then ask for this machine's share of the run, so that a run over
/// a cluster is not refused for the memory of one machine.
pub fn set_machine_share(here: usize, ranks: usize) {
    let _ = MACHINE_SHARE.set((here, ranks));
}

/// Refuse `e` if it needs more than `limit_gb` (this machine's share of it
/// in a partitioned run, see [`set_machine_share`]): the message says what
/// it would need, what the machine has and which key raises the limit.
pub fn check(e: &Estimate, limit_gb: f64) -> Result<(), String> {
    let (here, ranks) = MACHINE_SHARE.get().copied().unwrap_or((1, 1));
    check_here(e, limit_gb, here, ranks)
}

/// [`check`] for a run split over `ranks` processes, `here` of them on this
/// machine: it needs their share of the run's memory (the limit is per
/// machine; on one machine with every rank, the whole run's). The estimate
/// is rough: a rank also holds the whole population's columns while it
/// builds.
pub fn check_here(e: &Estimate, limit_gb: f64, here: usize, ranks: usize) -> Result<(), String> {
    let ranks = ranks.max(1);
    let need = e.bytes() / 1e9 * here.min(ranks) as f64 / ranks as f64;
    if need <= limit_gb {
        return Ok(());
    }
    let machine = physical_memory()
        .map(|b| format!("this machine has {:.1} GB", b / 1e9))
        .unwrap_or_else(|| "this machine's memory is unknown".into());
    let share = if here < ranks {
        format!(" for the {here} of its {ranks} processes on this machine")
    } else {
        String::new()
    };
    Err(format!(
        "this scenario would need about {need:.1} GB{share} ({:.0} agents, {:.3e} contact edges) but the limit is {limit_gb:.1} GB ({machine}); make it smaller, or raise the limit deliberately with [limits] memory_gb = {:.0} (or --set limits.memory_gb={:.0})",
        e.agents,
        e.directed_edges / 2.0,
        need.ceil(),
        need.ceil()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_layers_count_each_member_s_minus_one_contacts() {
        // All groups of 4: every agent has 3 contacts.
        let e = layer_edges(
            &LayerKind::Groups {
                size_weights: vec![0.0, 0.0, 0.0, 1.0],
            },
            1000.0,
        )
        .unwrap();
        assert!((e - 3000.0).abs() < 1e-9);
    }

    #[test]
    fn a_machine_holding_some_of_the_ranks_needs_their_share() {
        // 1e9 agents: 64 GB of agents, 120 GB of edges.
        let e = Estimate {
            agents: 1e9,
            directed_edges: 1e10,
        };
        assert!(check_here(&e, 100.0, 4, 4).is_err());
        assert!(check_here(&e, 100.0, 2, 4).is_ok());
        let msg = check_here(&e, 40.0, 1, 4).unwrap_err();
        assert!(msg.contains("about 46.0 GB for the 1 of its 4 processes"), "{msg}");
        assert_eq!(check_here(&e, 100.0, 1, 1), check(&e, 100.0));
    }

    #[test]
    fn a_population_beyond_memory_is_refused_naming_the_key() {
        let e = estimate(4_294_967_295.0, &[]);
        let msg = check(&e, 20.0).unwrap_err();
        assert!(msg.contains("limits.memory_gb") && msg.contains("275"), "{msg}");
        assert!(check(&estimate(1e6, &[]), 20.0).is_ok());
    }
}
