//! `myriad bench`: SEIR on an Erdős–Rényi network, timed by phase. One
//! configuration per process, so that peak memory belongs to it alone.

use crate::run::peak_memory_bytes;
use anyhow::Result;
use myriad_core::generators::erdos_renyi;
use myriad_core::model::{Contacts, Layer, StepContext};
use myriad_core::params::{ParamSet, ParamValue};
use myriad_core::population::Population;
use myriad_core::{CounterRng, Csr, Stream};
use myriad_models::ModelInput;
use std::io::Write;
use std::time::Instant;

/// Benchmark settings.
pub struct BenchOptions {
    /// Agents.
    pub agents: u32,
    /// Mean degree.
    pub degree: f64,
    /// Simulated days.
    pub days: u32,
    /// Worker threads.
    pub threads: usize,
}

/// Run the benchmark and print one Markdown table row plus a JSON line.
pub fn run(o: &BenchOptions) -> Result<()> {
    let t0 = Instant::now();
    let rng = CounterRng::new(1, Stream::NETWORK);
    let edges = erdos_renyi(o.agents, o.degree, &rng);
    let (csr, _) = Csr::from_edges(o.agents, edges)?;
    let build = t0.elapsed().as_secs_f64();
    let mut params = ParamSet::defaults((myriad_models::find("seir").expect("seir is registered").params)());
    // R = c T with T = 1 - (1 - beta)^5 ~ 0.226 for c = 10: a real epidemic
    // that grows through the benchmark window.
    params.set("beta", ParamValue::Number(0.05))?;
    params.set("initial_fraction", ParamValue::Number(0.001))?;
    let mut model = (myriad_models::find("seir").expect("registered").build)(ModelInput {
        population: Population::synthetic(o.agents),
        layers: vec![Layer {
            name: "contacts".into(),
            contacts: Contacts::Network(csr),
            weight: 1.0,
        }],
        params: params.clone(),
        seed: 1,
    })?;
    let mut row = vec![0.0; model.metrics().len()];
    let t1 = Instant::now();
    for step in 1..=o.days {
        model.step(
            &StepContext {
                step,
                params: &params,
                layer_weights: &[1.0],
            },
            &mut row,
        );
    }
    let run = t1.elapsed().as_secs_f64();
    let per_day = run / o.days as f64;
    let rate = o.agents as f64 * o.days as f64 / run;
    let peak = peak_memory_bytes().unwrap_or(0) as f64 / (1u64 << 20) as f64;
    let infected = o.agents as f64 - row[0];
    // Written with errors ignored, so piping into `head` is not a crash.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "| {} | {} | {} | {:.2} | {:.3} | {:.1} | {:.0} | {:.1}% |",
        o.agents,
        o.degree,
        o.threads,
        build,
        per_day,
        rate / 1e6,
        peak,
        100.0 * infected / o.agents as f64
    );
    let _ = writeln!(
        out,
        "{}",
        serde_json::json!({
            "agents": o.agents, "mean_degree": o.degree, "threads": o.threads, "days": o.days,
            "network_build_seconds": build, "seconds_per_day": per_day,
            "agent_steps_per_second": rate, "peak_memory_mib": peak,
            "ever_infected_fraction": infected / o.agents as f64,
        })
    );
    Ok(())
}
