//! The files a run writes once its steps are done: the Parquet time series,
//! the model's periodic tables (with the observed series its population
//! source offers beside them), the plots and `summary.json`.

use crate::error::{Error, FileContext, Result};
use crate::plot;
use crate::scenario::{PopulationSource, Scenario};
use crate::simulation::Simulation;
use myriad_core::calendar::{Calendar, Period, PeriodKind};
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
    /// For a partitioned run: the ranks, their agents, exchange volume and time.
    pub partition: Option<serde_json::Value>,
    /// The step of the checkpoint a resumed run continued from.
    pub resumed_from: Option<u32>,
}

/// The Parquet time series, the plot and the model's periodic tables.
pub fn write_all(out: &Path, s: &Scenario, rows: &Recorder) -> Result<()> {
    let specs = rows.specs();
    if s.output.parquet {
        let all: Vec<&[f64]> = (0..rows.len()).map(|i| rows.row(i)).collect();
        myriad_io::write_timeseries_parquet(&out.join("timeseries.parquet"), specs, rows.steps(), &all, &s.calendar)?;
    }
    if s.output.plot {
        plot::timeseries_png(
            &out.join("timeseries.png"),
            &format!("{} ({})", s.name, s.model.name),
            rows,
            s.model.plots,
        )?;
    }
    let mut panels = Vec::new();
    for table in s.model.tables {
        panels.push(match table.kind {
            TableKind::FlowSums => flow_sums(out, s, table, rows)?,
            TableKind::Readings { prefix } => readings(out, s, table, prefix, rows)?,
        });
    }
    if s.output.plot {
        crate::dated_plots::overview(out, s, &panels)?;
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

/// Sums of every flow metric over each complete period of `kind`: the
/// names, the periods and, per period, the sums. None when the model has
/// no flow or no period completed.
pub fn period_sums(rows: &Recorder, calendar: &Calendar, kind: PeriodKind) -> Option<FlowSums> {
    let cols: Vec<usize> = rows
        .specs()
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == MetricKind::Flow)
        .map(|(j, _)| j)
        .collect();
    let steps = rows.steps();
    let periods = calendar.periods(kind, steps.last().copied().unwrap_or(0));
    if cols.is_empty() || periods.is_empty() {
        return None;
    }
    let mut sums = vec![vec![0.0; cols.len()]; periods.len()];
    let mut p = 0;
    for (i, &step) in steps.iter().enumerate() {
        while p < periods.len() && step > periods[p].last {
            p += 1;
        }
        if p == periods.len() {
            break;
        }
        if step >= periods[p].first {
            for (k, &j) in cols.iter().enumerate() {
                sums[p][k] += rows.row(i)[j];
            }
        }
    }
    Some(FlowSums {
        names: cols.iter().map(|&j| rows.specs()[j].name.clone()).collect(),
        periods,
        sums,
    })
}

/// Flow metrics summed per period.
pub struct FlowSums {
    /// Metric names, in column order.
    pub names: Vec<String>,
    /// The periods.
    pub periods: Vec<Period>,
    /// Per period, one sum per metric.
    pub sums: Vec<Vec<f64>>,
}

impl FlowSums {
    /// The sums of metric `name` per period.
    pub fn column(&self, name: &str) -> Option<Vec<f64>> {
        let k = self.names.iter().position(|n| n == name)?;
        Some(self.sums.iter().map(|v| v[k]).collect())
    }
}

/// The observed series of a table that the source offers and that can be
/// placed on this run's periods: (model metric, series name, series).
pub(crate) fn placed<'a>(s: &Scenario, t: &'a PeriodicTable, periods: &[Period]) -> Vec<(&'a str, &'a str, Observed)> {
    t.observed
        .iter()
        .filter_map(|&(metric, name)| {
            let o = observed(s, name)?;
            let any = periods
                .iter()
                .any(|p| o.for_period(&s.calendar, t.every, p, None).is_some());
            any.then_some((metric, name, o))
        })
        .collect()
}

/// A table of flow sums per period (`weekly.csv`) with the observed series
/// beside it, and its plots; on a dated run, the city panels drawn.
fn flow_sums(out: &Path, s: &Scenario, t: &PeriodicTable, rows: &Recorder) -> Result<Vec<plot::Panel>> {
    let Some(f) = period_sums(rows, &s.calendar, t.every) else {
        return Ok(Vec::new());
    };
    let obs = placed(s, t, &f.periods);
    let values: Vec<Vec<String>> = f
        .sums
        .iter()
        .map(|v| v.iter().map(|x| format!("{}", *x as i64)).collect())
        .collect();
    write_table(out, s, t, &f.periods, &f.names, &values, &obs)?;
    if !s.output.plot {
        return Ok(Vec::new());
    }
    match s.calendar.start() {
        Some(_) if !obs.is_empty() => crate::dated_plots::weekly(out, s, &f, &obs, t.every),
        None => {
            for (metric, name, o) in &obs {
                let Some(model) = f.column(metric) else { continue };
                let total: Vec<f64> = f
                    .periods
                    .iter()
                    .map_while(|p| o.for_period(&s.calendar, t.every, p, None))
                    .collect();
                let place = o.parts.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>().join("+");
                let weeks: Vec<Vec<f64>> = model.iter().map(|&x| vec![x]).collect();
                plot::weekly_vs_observed(&out.join(format!("{name}.png")), &weeks, &total, &place, o.scale)?;
            }
            Ok(Vec::new())
        }
        Some(_) => Ok(Vec::new()),
    }
}

/// A periodic table: `<period>,first_step,last_step[,<period>_start]`, the
/// model's columns, then each observed series per part (empty where it
/// does not cover the period). Periods count from 0.
fn write_table(
    out: &Path,
    s: &Scenario,
    t: &PeriodicTable,
    periods: &[Period],
    names: &[String],
    values: &[Vec<String>],
    obs: &[(&str, &str, Observed)],
) -> Result<()> {
    let dated = s.calendar.start().is_some();
    let mut text = format!("{},first_step,last_step", t.period);
    if dated {
        text.push_str(&format!(",{}_start", t.period));
    }
    text.push_str(&format!(",{}", names.join(",")));
    for (_, name, o) in obs {
        for (part, _) in &o.parts {
            text.push_str(&format!(",observed_{name}_{part}"));
        }
    }
    text.push('\n');
    for (p, v) in periods.iter().zip(values) {
        text.push_str(&format!("{},{},{}", p.index, p.first, p.last));
        if dated {
            text.push_str(&format!(",{}", s.calendar.label(p.first)));
        }
        text.push_str(&format!(",{}", v.join(",")));
        for (_, _, o) in obs {
            for k in 0..o.parts.len() {
                match o.for_period(&s.calendar, t.every, p, Some(k)) {
                    Some(x) => text.push_str(&format!(",{x}")),
                    None => text.push(','),
                }
            }
        }
        text.push('\n');
    }
    let path = out.join(t.file);
    std::fs::write(&path, text).doing(|| format!("writing {}", path.display()))
}

/// Metrics starting with `prefix`, read at the end of each period
/// (`monthly.csv`), beside the observed values of each part, and plotted.
fn readings(out: &Path, s: &Scenario, t: &PeriodicTable, prefix: &str, rows: &Recorder) -> Result<Vec<plot::Panel>> {
    let cols: Vec<usize> = rows
        .specs()
        .iter()
        .enumerate()
        .filter(|(_, m)| m.name.starts_with(prefix))
        .map(|(j, _)| j)
        .collect();
    if cols.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = cols.iter().map(|&j| rows.specs()[j].name.clone()).collect();
    let last = rows.steps().last().copied().unwrap_or(0);
    let periods = s.calendar.periods(t.every, last);
    // The periods whose last step was recorded, and their readings.
    let (periods, values): (Vec<Period>, Vec<Vec<f64>>) = periods
        .into_iter()
        .filter_map(|p| {
            let i = rows.steps().binary_search(&p.last).ok()?;
            let v = cols.iter().map(|&j| rows.row(i)[j]).collect();
            Some((p, v))
        })
        .unzip();
    let obs = placed(s, t, &periods);
    let text: Vec<Vec<String>> = values
        .iter()
        .map(|v| v.iter().map(|x| x.to_string()).collect())
        .collect();
    write_table(out, s, t, &periods, &names, &text, &obs)?;
    match (s.output.plot, obs.first()) {
        (true, Some((_, name, o))) => plot_readings(out, s, prefix, name, &names, &periods, &values, o, t.every),
        _ => Ok(Vec::new()),
    }
}

/// Modelled readings per part (lines) against the observed values
/// (points); on a dated run, the panel drawn.
#[allow(clippy::too_many_arguments)]
fn plot_readings(
    out: &Path,
    s: &Scenario,
    prefix: &str,
    name: &str,
    names: &[String],
    periods: &[Period],
    values: &[Vec<f64>],
    o: &Observed,
    kind: PeriodKind,
) -> Result<Vec<plot::Panel>> {
    let dated = s.calendar.start().is_some();
    // Dated runs: x is the day (step) the reading is taken; undated: the period number.
    let x = |p: &Period| {
        if dated {
            f64::from(p.last)
        } else {
            f64::from(p.index + 1)
        }
    };
    let mut series = Vec::new();
    for (colour, (part, _)) in o.parts.iter().enumerate() {
        let Some(j) = names.iter().position(|n| *n == format!("{prefix}{part}")) else {
            continue;
        };
        series.push(plot::Series {
            colour: Some(colour),
            ..plot::Series::line(
                format!("{part} model"),
                periods.iter().zip(values).map(|(p, v)| (x(p), v[j])).collect(),
            )
        });
        series.push(plot::Series {
            colour: Some(colour),
            markers: true,
            ..plot::Series::line(
                format!("{part} observed"),
                periods
                    .iter()
                    .filter_map(|p| Some((x(p), o.for_period(&s.calendar, kind, p, Some(colour))?)))
                    .collect(),
            )
        });
    }
    let title = format!("{}: {}, model vs observed", s.name, o.label);
    let path = out.join(format!("{name}.png"));
    match s.calendar.start() {
        Some(start) => {
            let panel = plot::Panel {
                title: o.label.clone(),
                ylabel: o.label.clone(),
                series,
            };
            plot::dated_png(
                &path,
                &title,
                start,
                std::slice::from_ref(&panel),
                &crate::dated_plots::shades(s),
            )?;
            Ok(vec![panel])
        }
        None => {
            plot::chart_png(&path, &title, "period", &o.label, &series)?;
            Ok(Vec::new())
        }
    }
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
    let mut summary = summary;
    if let Some(p) = &f.partition {
        summary["partition"] = p.clone();
    }
    if let Some(step) = f.resumed_from {
        summary["resumed_from_step"] = json!(step);
    }
    let path = out.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
        .doing(|| format!("writing {}", path.display()))
}
