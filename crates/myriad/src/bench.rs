//! `myriad bench`: SEIR or the COVID-19 model on an Erdős–Rényi network,
//! timed by phase. One configuration per process, so that peak memory
//! belongs to it alone.

use anyhow::Result;
use myriad_core::generators::erdos_renyi;
use myriad_core::model::{Contacts, Decide, Layer, ModelInput, Step};
use myriad_core::params::{ParamSet, ParamValue};
use myriad_core::population::Population;
use myriad_core::{CounterRng, Csr, Stream};
use std::io::Write;
use std::time::Instant;

/// Benchmark settings.
pub struct BenchOptions {
    /// `seir` or `covid`.
    pub model: String,
    /// Agents.
    pub agents: u32,
    /// Mean degree.
    pub degree: f64,
    /// Simulated days.
    pub days: u32,
    /// Worker threads.
    pub threads: usize,
}

/// Run the benchmark on a pool of `o.threads` workers and print one
/// Markdown table row plus a JSON line.
pub fn run(o: &BenchOptions) -> Result<()> {
    let pool = myriad_sim::simulation::pool(o.threads)?;
    pool.install(|| run_in_pool(o))
}

fn run_in_pool(o: &BenchOptions) -> Result<()> {
    let t0 = Instant::now();
    let rng = CounterRng::new(1, Stream::NETWORK);
    let edges = erdos_renyi(o.agents, o.degree, &rng);
    let (csr, _) = Csr::from_edges(o.agents, edges)?;
    let build = t0.elapsed().as_secs_f64();
    let layers = vec![Layer {
        name: "contacts".into(),
        contacts: Contacts::Network(csr),
        weight: 1.0,
    }];
    let (params, population) = match o.model.as_str() {
        "seir" => {
            let mut params = ParamSet::defaults((myriad_models::find("seir").expect("seir is registered").params)());
            // R = c T with T = 1 - (1 - beta)^5 ~ 0.226 for c = 10: a real epidemic
            // that grows through the benchmark window.
            params.set("beta", ParamValue::Number(0.05))?;
            params.set("initial_fraction", ParamValue::Number(0.001))?;
            (params, Population::synthetic(o.agents))
        }
        "covid" => {
            // The reference setup: agents with age groups on one contact
            // network and nothing else (no random community contacts), weekly
            // isolation and work decisions, reference disease parameters.
            let mut params = ParamSet::defaults((myriad_models::find("covid").expect("covid is registered").params)());
            params.set(
                "initial_infected",
                ParamValue::Number((o.agents as f64 / 1000.0).ceil()),
            )?;
            for p in ["community_mean_u19", "community_mean_adult", "community_mean_65a"] {
                params.set(p, ParamValue::Number(0.0))?;
            }
            (params, age_population(o.agents)?)
        }
        other => anyhow::bail!(myriad_sim::InputError(format!(
            "--model '{other}': the benchmark runs seir or covid"
        ))),
    };
    let mut model = (myriad_models::find(&o.model).expect("checked above").build)(ModelInput {
        population,
        layers,
        params: params.clone(),
        seed: 1,
        split: myriad_core::comm::Split::single(),
    })?;
    let mut row = vec![0.0; model.metrics().len()];
    let t1 = Instant::now();
    let (mut error, mut events) = (None, Vec::new());
    for step in 1..=o.days {
        let mut cx = Step {
            step,
            params: &params,
            layer_weights: &[1.0],
            calendar: &myriad_core::Calendar::undated(),
            decide: Decide::new(None, &mut error),
            events: &mut events,
        };
        model.step(&mut cx, &mut row);
    }
    let run = t1.elapsed().as_secs_f64();
    let per_day = run / o.days as f64;
    let rate = o.agents as f64 * o.days as f64 / run;
    let peak = myriad_sim::run::peak_memory_bytes().unwrap_or(0) as f64 / (1u64 << 20) as f64;
    // Both models report S first.
    let infected = o.agents as f64 - row[0];
    // Written with errors ignored, so piping into `head` is not a crash.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {:.2} | {:.4} | {:.1} | {:.0} | {:.1}% |",
        o.model,
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
            "model": o.model, "agents": o.agents, "mean_degree": o.degree, "threads": o.threads, "days": o.days,
            "network_build_seconds": build, "seconds_per_day": per_day,
            "agent_steps_per_second": rate, "peak_memory_mib": peak,
            "ever_infected_fraction": infected / o.agents as f64,
        })
    );
    Ok(())
}

/// Agents with NYC-like age groups (the Brooklyn shares, assigned in
/// proportion, in agent order) and employment for ages 20-64.
fn age_population(n: u32) -> Result<Population> {
    use myriad_core::population::{Column, ColumnData};
    let cells = myriad_models::nyc::data::tables().brooklyn_total;
    let by_age: Vec<f64> = (0..6).map(|a| cells[a * 12..(a + 1) * 12].iter().sum()).collect();
    let total: f64 = by_age.iter().sum();
    let mut age = Vec::with_capacity(n as usize);
    let mut cumulative = 0.0;
    for (a, share) in by_age.iter().enumerate() {
        cumulative += share / total;
        let upto = ((cumulative * n as f64).round() as usize).min(n as usize);
        age.resize(upto.max(age.len()), a as i64);
    }
    age.resize(n as usize, 5);
    let employment = age.iter().map(|&a| i64::from((1..=4).contains(&a))).collect();
    Ok(Population::from_columns(
        n as u64,
        vec![
            Column {
                name: "age_group".into(),
                data: ColumnData::Int(age),
            },
            Column {
                name: "employment".into(),
                data: ColumnData::Int(employment),
            },
        ],
    )?)
}
