//! The files a run writes once its steps are done: the Parquet time series,
//! the model's periodic tables (with the observed series its population
//! source offers beside them), the plots and `summary.json`.

use crate::error::{Error, FileContext, Result};
use crate::plot;
use crate::scenario::{PopulationSource, Scenario};
use crate::simulation::Simulation;
use myriad_core::metrics::{MetricKind, Recorder};
use myriad_core::model::{PeriodicTable, TableKind};
use myriad_core::source::Observed;
use serde_json::json;
use std::path::Path;

/// Facts of a run for its summary.
pub struct RunFacts {
    /// Steps completed.
    pub done: u32,
    /// Stopped by Ctrl-C before the last step.
    pub interrupted: bool,
    /// The provider's failure that stopped it.
    pub failure: Option<String>,
    /// Seconds spent stepping.
    pub run_seconds: f64,
    /// Seconds since the run began.
    pub wall_seconds: f64,
}

/// The Parquet time series, the plot and the model's periodic tables.
pub fn write_all(out: &Path, s: &Scenario, rows: &Recorder) -> Result<()> {
    let specs = rows.specs();
    if s.output.parquet {
        let all: Vec<&[f64]> = (0..rows.len()).map(|i| rows.row(i)).collect();
        myriad_io::write_timeseries_parquet(&out.join("timeseries.parquet"), specs, rows.steps(), &all)?;
    }
    if s.output.plot {
        plot::timeseries_png(
            &out.join("timeseries.png"),
            &format!("{} ({})", s.name, s.model.name),
            rows,
            s.model.plots,
        )?;
    }
    for table in s.model.tables {
        let observed = table.observed.and_then(|name| observed(s, name));
        match table.kind {
            TableKind::FlowSums => flow_sums(out, s, table, rows, observed.as_ref())?,
            TableKind::Readings { prefix } => readings(out, s, table, prefix, rows, observed.as_ref())?,
        }
    }
    Ok(())
}

/// The series `name` the scenario's population source offers, if any.
pub fn observed(s: &Scenario, name: &str) -> Option<Observed> {
    match &s.population {
        PopulationSource::Source { spec, options } => (spec.observed)(options, name),
        _ => None,
    }
}

/// Sums of every flow metric over each complete period (steps 1..=every,
/// ...): the names and, per period, the sums. None when the model has no
/// flow or no period completed.
pub fn period_sums(rows: &Recorder, every: u32) -> Option<(Vec<String>, Vec<Vec<f64>>)> {
    let cols: Vec<usize> = rows
        .specs()
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == MetricKind::Flow)
        .map(|(j, _)| j)
        .collect();
    let steps = rows.steps();
    let complete = steps.last().copied().unwrap_or(0) / every;
    if cols.is_empty() || complete == 0 {
        return None;
    }
    let mut periods = vec![vec![0.0; cols.len()]; complete as usize];
    for (i, &step) in steps.iter().enumerate() {
        if step == 0 || step > complete * every {
            continue;
        }
        let w = ((step - 1) / every) as usize;
        for (k, &j) in cols.iter().enumerate() {
            periods[w][k] += rows.row(i)[j];
        }
    }
    Some((cols.iter().map(|&j| rows.specs()[j].name.clone()).collect(), periods))
}

/// A table of flow sums per period (`weekly.csv`), and its plot against
/// the observed series.
fn flow_sums(out: &Path, s: &Scenario, t: &PeriodicTable, rows: &Recorder, obs: Option<&Observed>) -> Result<()> {
    let Some((names, periods)) = period_sums(rows, t.every) else {
        return Ok(());
    };
    let mut text = format!("{},first_step,last_step,{}\n", t.period, names.join(","));
    let e = t.every as usize;
    for (w, sums) in periods.iter().enumerate() {
        let values: Vec<String> = sums.iter().map(|x| format!("{}", *x as i64)).collect();
        text.push_str(&format!("{w},{},{},{}\n", e * w + 1, e * w + e, values.join(",")));
    }
    let path = out.join(t.file);
    std::fs::write(&path, text).doing(|| format!("writing {}", path.display()))?;
    if let (true, Some(o)) = (s.output.plot, obs.filter(|o| o.every == t.every)) {
        let total: Vec<f64> = (0..o.parts.first().map_or(0, |p| p.1.len()))
            .map(|k| o.parts.iter().map(|(_, v)| v[k]).sum::<f64>() * o.scale)
            .collect();
        let place = o.parts.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>().join("+");
        plot::weekly_vs_observed(
            &out.join(format!("{}.png", t.observed.unwrap_or("observed"))),
            &periods,
            &total,
            &place,
            o.scale,
        )?;
    }
    Ok(())
}

/// Metrics starting with `prefix`, read every `every` steps
/// (`monthly.csv`), beside the observed values of each part, and plotted.
fn readings(
    out: &Path,
    s: &Scenario,
    t: &PeriodicTable,
    prefix: &str,
    rows: &Recorder,
    obs: Option<&Observed>,
) -> Result<()> {
    let cols: Vec<usize> = rows
        .specs()
        .iter()
        .enumerate()
        .filter(|(_, m)| m.name.starts_with(prefix))
        .map(|(j, _)| j)
        .collect();
    if cols.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = cols.iter().map(|&j| rows.specs()[j].name.clone()).collect();
    let periods: Vec<(u32, Vec<f64>)> = rows
        .steps()
        .iter()
        .enumerate()
        .filter(|(_, &step)| step.is_multiple_of(t.every))
        .map(|(i, &step)| (step, cols.iter().map(|&j| rows.row(i)[j]).collect()))
        .collect();
    let mut text = format!("{},step,{}", t.period, names.join(","));
    if let (Some(o), Some(name)) = (obs, t.observed) {
        for (part, _) in &o.parts {
            text.push_str(&format!(",observed_{name}_{part}"));
        }
    }
    text.push('\n');
    for (step, values) in &periods {
        let k = (step / t.every) as usize;
        let v: Vec<String> = values.iter().map(|x| x.to_string()).collect();
        text.push_str(&format!("{k},{step},{}", v.join(",")));
        if let Some(o) = obs {
            for (_, series) in &o.parts {
                match series.get(k) {
                    Some(x) => text.push_str(&format!(",{}", x * o.scale)),
                    None => text.push(','),
                }
            }
        }
        text.push('\n');
    }
    let path = out.join(t.file);
    std::fs::write(&path, text).doing(|| format!("writing {}", path.display()))?;
    if let (true, Some(o), Some(name)) = (s.output.plot, obs, t.observed) {
        plot_readings(out, s, prefix, name, &names, &periods, o, t.every)?;
    }
    Ok(())
}

/// Modelled readings per part (lines) against the observed values (points).
#[allow(clippy::too_many_arguments)]
fn plot_readings(
    out: &Path,
    s: &Scenario,
    prefix: &str,
    name: &str,
    names: &[String],
    periods: &[(u32, Vec<f64>)],
    o: &Observed,
    every: u32,
) -> Result<()> {
    let mut series = Vec::new();
    for (colour, (part, values)) in o.parts.iter().enumerate() {
        let Some(j) = names.iter().position(|n| *n == format!("{prefix}{part}")) else {
            continue;
        };
        series.push(plot::Series {
            colour: Some(colour),
            ..plot::Series::line(
                format!("{part} model"),
                periods.iter().map(|(step, v)| ((step / every) as f64, v[j])).collect(),
            )
        });
        series.push(plot::Series {
            colour: Some(colour),
            markers: true,
            ..plot::Series::line(
                format!("{part} observed"),
                values
                    .iter()
                    .take(periods.len())
                    .enumerate()
                    .map(|(k, x)| (k as f64, x * o.scale))
                    .collect(),
            )
        });
    }
    plot::chart_png(
        &out.join(format!("{name}.png")),
        &format!("{}: {}, model vs observed", s.name, o.label),
        "period",
        &o.label,
        &series,
    )
}

/// `summary.json`: the resolved scenario, seed, threads, version, layers,
/// timing, memory, the provider's counters, the error if any, and the last row.
pub fn write_summary(out: &Path, sim: &Simulation, rows: &Recorder, f: &RunFacts) -> Result<()> {
    let s = sim.scenario();
    let specs = rows.specs();
    let last = rows.last().ok_or_else(|| Error::Run("no row recorded".into()))?;
    let final_metrics: serde_json::Map<String, serde_json::Value> = specs
        .iter()
        .zip(last)
        .map(|(sp, &v)| {
            let j = if sp.integer { json!(v as i64) } else { json!(v) };
            (sp.name.clone(), j)
        })
        .collect();
    let params: serde_json::Map<String, serde_json::Value> = s
        .params
        .iter()
        .map(|(k, v)| {
            let j = match v {
                myriad_core::params::ParamValue::Number(x) => json!(x),
                myriad_core::params::ParamValue::Choice(w) => json!(w),
            };
            (k.to_string(), j)
        })
        .collect();
    let info = sim.info();
    let n = info.agents;
    let agent_steps = n as f64 * f.done as f64;
    let summary = json!({
        "myriad_version": env!("CARGO_PKG_VERSION"),
        "scenario_file": s.file.display().to_string(),
        "scenario": s.resolved,
        "model": s.model.name,
        "params": params,
        "seed": s.seed,
        "threads": sim.threads(),
        "agents": n,
        "steps_requested": s.steps,
        "steps_completed": f.done,
        "interrupted": f.interrupted,
        "layers": info.layers,
        "timing": {
            "wall_seconds": f.wall_seconds,
            "build_seconds": info.layer_seconds,
            "run_seconds": f.run_seconds,
            "seconds_per_step": if f.done > 0 { f.run_seconds / f.done as f64 } else { 0.0 },
            "agent_steps_per_second": if f.run_seconds > 0.0 { agent_steps / f.run_seconds } else { 0.0 },
        },
        "peak_memory_bytes": crate::run::peak_memory_bytes(),
        "behaviour": sim.provider_report(),
        "error": f.failure,
        "final_metrics": final_metrics,
    });
    let path = out.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
        .doing(|| format!("writing {}", path.display()))
}
