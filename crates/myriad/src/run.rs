//! `myriad run`: build, step, record, write the output folder.

use crate::outdir::OutChoice;
use crate::scenario::Scenario;
use crate::{build, plot};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use myriad_core::metrics::Recorder;
use myriad_core::model::StepContext;
use myriad_io::TimeseriesCsv;
use myriad_models::ModelInput;
use serde_json::json;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Install the Ctrl-C handler: the first press sets `stop` (the run
/// finishes its step and writes what it has), a second ends the process.
pub fn stop_on_ctrl_c() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: finishing the current step and writing what is done (Ctrl-C again to abort)");
    })
    .context("installing the Ctrl-C handler")?;
    Ok(stop)
}

/// Options of one run.
pub struct RunOptions {
    /// Output folder (default `runs/<name>-<timestamp>`).
    pub out: Option<PathBuf>,
    /// Replace an existing output folder.
    pub force: bool,
    /// Worker threads (the rayon pool must already have this many).
    pub threads: usize,
    /// Suppress progress output.
    pub quiet: bool,
}

/// How a run ended.
pub enum Outcome {
    /// All steps done.
    Completed,
    /// Stopped by Ctrl-C; the outputs hold the steps finished.
    Interrupted,
}

/// Peak resident memory of this process in bytes (Linux `VmHWM`).
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Append a step's transcript events, one JSON object per line with the step.
fn append_events(path: &std::path::Path, step: u32, events: &[serde_json::Value]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let mut text = String::new();
    for e in events {
        let mut e = e.clone();
        if let Some(obj) = e.as_object_mut() {
            obj.insert("step".into(), json!(step));
        }
        text.push_str(&e.to_string());
        text.push('\n');
    }
    f.write_all(text.as_bytes())?;
    f.flush()
}

/// Run a scenario. Everything that can fail because of the input (population
/// file, edge lists, layer sizes) is done before the output folder is made.
pub fn run(s: &Scenario, opts: &RunOptions, stop: Arc<AtomicBool>) -> Result<Outcome> {
    let wall = Instant::now();
    let choice = OutChoice::new(opts.out.clone(), &s.name, "");
    choice.check(opts.force)?;
    let log = |msg: String| {
        if !opts.quiet {
            eprintln!("{msg}");
        }
    };
    let t_pop = Instant::now();
    let population = build::population(s)?;
    let n = population.size();
    log(format!(
        "population: {n} agents ({:.2} s)",
        t_pop.elapsed().as_secs_f64()
    ));
    let t_layers = Instant::now();
    let (layers, layer_reports) = build::layers(s, &population)?;
    for r in &layer_reports {
        let mut extra = String::new();
        if r.self_loops_removed + r.duplicates_merged > 0 {
            extra = format!(
                ", removed {} self-loops and merged {} duplicate edges",
                r.self_loops_removed, r.duplicates_merged
            );
        }
        if r.odd_stub_dropped {
            extra.push_str(", dropped one stub (odd degree sum)");
        }
        log(format!(
            "layer '{}': {} edges, mean degree {:.3} ({:.2} s){extra}",
            r.name, r.edges, r.mean_degree, r.seconds
        ));
    }
    let build_seconds = t_layers.elapsed().as_secs_f64();
    let base_weights: Vec<f64> = layers.iter().map(|l| l.weight).collect();
    let provider = crate::behaviour::provider(s, &population)?;
    let mut model = (s.model.build)(ModelInput {
        population,
        layers,
        params: s.params.clone(),
        seed: s.seed,
    })
    .with_context(|| format!("{}: cannot set up model '{}'", s.file.display(), s.model.name))?;
    if let Some(p) = provider {
        model
            .set_behaviour(p)
            .map_err(|e| build::InputError(format!("{}: [behaviour]: {e}", s.file.display())))?;
    }

    let out = choice.create(opts.force, "run")?;
    let specs = model.metrics();
    let mut rec = Recorder::new(specs.clone());
    let csv = Arc::new(Mutex::new(TimeseriesCsv::create(&out.join("timeseries.csv"), &specs)?));
    let write_error: Arc<Mutex<Option<myriad_io::IoError>>> = Arc::default();
    {
        let (csv, write_error) = (csv.clone(), write_error.clone());
        rec.subscribe(move |step, row| {
            let mut slot = write_error.lock().expect("writer lock");
            if slot.is_none() {
                if let Err(e) = csv.lock().expect("writer lock").write_row(step, row) {
                    *slot = Some(e);
                }
            }
        });
    }

    let mut row = vec![0.0; specs.len()];
    model.observe(&mut row);
    rec.record(0, &row);

    let progress = Progress::new(s.steps, n, opts.quiet);
    let t_run = Instant::now();
    let mut done = 0;
    let mut failure = None;
    for step in 1..=s.steps {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let in_force = s
            .schedule
            .in_force(step, &s.params, &base_weights)
            .context("intervention schedule")?;
        model.step(
            &StepContext {
                step,
                params: &in_force.params,
                layer_weights: &in_force.layer_weights,
            },
            &mut row,
        );
        rec.record(step, &row);
        let events = model.take_transcript();
        if !events.is_empty() {
            let path = out.join("transcript.jsonl");
            append_events(&path, step, &events).with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some(e) = model.take_error() {
            // The step finished on fallbacks; stop here and keep what is done.
            failure = Some(format!("step {step}: {e}"));
            done = step;
            break;
        }
        if let Some(e) = write_error.lock().expect("writer lock").take() {
            return Err(e).context(format!("writing step {step}; steps before it are in {}", out.display()));
        }
        done = step;
        progress.tick(step, t_run.elapsed().as_secs_f64(), &specs, &row);
    }
    progress.finish();
    let run_seconds = t_run.elapsed().as_secs_f64();
    // Stopped early by Ctrl-C; a provider failure is reported as "error" instead.
    let interrupted = done < s.steps && failure.is_none();

    let steps = rec.steps().to_vec();
    let rows: Vec<&[f64]> = (0..rec.len()).map(|i| rec.row(i)).collect();
    if s.output.parquet {
        myriad_io::write_timeseries_parquet(&out.join("timeseries.parquet"), &specs, &steps, &rows)?;
    }
    if s.output.plot {
        plot::timeseries_png(
            &out.join("timeseries.png"),
            &format!("{} ({})", s.name, s.model.name),
            &rec,
            s.model.plots,
        )?;
    }
    let weekly = weekly_sums(&rec);
    if let Some((names, weeks)) = &weekly {
        write_weekly(&out.join("weekly.csv"), names, weeks)?;
        // Observed cases only describe the synthetic city: the boroughs it
        // includes, scaled like its population.
        if let (true, crate::scenario::PopulationSource::City(opts)) = (s.output.plot, &s.population) {
            let codes = myriad_models::nyc::data::BOROUGHS;
            let included: Vec<usize> = (0..5)
                .filter(|&b| opts.boroughs.is_empty() || opts.boroughs.iter().any(|x| x == codes[b]))
                .collect();
            let observed: Vec<f64> = myriad_models::nyc::data::observed_weekly_cases()
                .iter()
                .map(|(by, _)| included.iter().map(|&b| by[b]).sum::<f64>() * opts.scale)
                .collect();
            let label = if included.len() == 5 {
                "NYC".to_string()
            } else {
                included.iter().map(|&b| codes[b]).collect::<Vec<_>>().join("+")
            };
            plot::weekly_vs_observed(&out.join("weekly_cases.png"), weeks, &observed, &label, opts.scale)?;
        }
    }
    if let Some(months) = monthly_rows(&rec) {
        write_monthly(&out.join("monthly.csv"), s, &months)?;
        if let (true, crate::scenario::PopulationSource::City(opts)) = (s.output.plot, &s.population) {
            plot_unemployment(&out.join("unemployment.png"), s, opts, &months)?;
        }
    }
    let last = rec.last().expect("step 0 is always recorded");
    let final_metrics: serde_json::Map<String, serde_json::Value> = specs
        .iter()
        .zip(last)
        .map(|(sp, &v)| {
            let j = match sp.kind {
                myriad_core::metrics::MetricKind::Count => json!(v as i64),
                myriad_core::metrics::MetricKind::Value => json!(v),
            };
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
    let agent_steps = n as f64 * done as f64;
    let summary = json!({
        "myriad_version": env!("CARGO_PKG_VERSION"),
        "scenario_file": s.file.display().to_string(),
        "scenario": s.resolved,
        "model": s.model.name,
        "params": params,
        "seed": s.seed,
        "threads": opts.threads,
        "agents": n,
        "steps_requested": s.steps,
        "steps_completed": done,
        "interrupted": interrupted,
        "layers": layer_reports,
        "timing": {
            "wall_seconds": wall.elapsed().as_secs_f64(),
            "build_seconds": build_seconds,
            "run_seconds": run_seconds,
            "seconds_per_step": if done > 0 { run_seconds / done as f64 } else { 0.0 },
            "agent_steps_per_second": if run_seconds > 0.0 { agent_steps / run_seconds } else { 0.0 },
        },
        "peak_memory_bytes": peak_memory_bytes(),
        "behaviour": model.behaviour_report(),
        "error": failure,
        "final_metrics": final_metrics,
    });
    let summary_path = out.join("summary.json");
    std::fs::write(&summary_path, serde_json::to_string_pretty(&summary)? + "\n")
        .with_context(|| format!("writing {}", summary_path.display()))?;
    if let Some(f) = failure {
        bail!(
            "{f}\nthe {done} steps done are in {} (summary.json has \"error\")",
            out.display()
        );
    }
    log(format!(
        "{} {done} steps of {n} agents in {run_seconds:.2} s ({:.1} M agent-steps/s); results in {}",
        if interrupted { "interrupted after" } else { "done:" },
        agent_steps / run_seconds.max(1e-9) / 1e6,
        out.display()
    ));
    Ok(if interrupted {
        Outcome::Interrupted
    } else {
        Outcome::Completed
    })
}

/// Sums of the per-step event counts (`new_*` count metrics) over each
/// complete week of 7 steps (steps 1-7, 8-14, ...): the names and, per week,
/// the sums. None when the model has no such metric or no week completed.
fn weekly_sums(rec: &Recorder) -> Option<(Vec<String>, Vec<Vec<f64>>)> {
    let cols: Vec<usize> = rec
        .specs()
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == myriad_core::metrics::MetricKind::Count && s.name.starts_with("new_"))
        .map(|(j, _)| j)
        .collect();
    let steps = rec.steps();
    let complete = steps.last().copied().unwrap_or(0) / 7;
    if cols.is_empty() || complete == 0 {
        return None;
    }
    let mut weeks = vec![vec![0.0; cols.len()]; complete as usize];
    for (i, &step) in steps.iter().enumerate() {
        if step == 0 || step > complete * 7 {
            continue;
        }
        let w = ((step - 1) / 7) as usize;
        for (k, &j) in cols.iter().enumerate() {
            weeks[w][k] += rec.row(i)[j];
        }
    }
    Some((cols.iter().map(|&j| rec.specs()[j].name.clone()).collect(), weeks))
}

fn write_weekly(path: &Path, names: &[String], weeks: &[Vec<f64>]) -> Result<()> {
    let mut text = format!("week,first_step,last_step,{}\n", names.join(","));
    for (w, sums) in weeks.iter().enumerate() {
        let values: Vec<String> = sums.iter().map(|x| format!("{}", *x as i64)).collect();
        text.push_str(&format!("{w},{},{},{}\n", 7 * w + 1, 7 * w + 7, values.join(",")));
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Monthly metrics (`unemployment_<borough>`), read at steps 0, 30, 60, ...:
/// per month, the step and the values. None if the model has none.
struct Months {
    names: Vec<String>,
    rows: Vec<(u32, Vec<f64>)>,
}

fn monthly_rows(rec: &Recorder) -> Option<Months> {
    let cols: Vec<usize> = rec
        .specs()
        .iter()
        .enumerate()
        .filter(|(_, s)| s.name.starts_with("unemployment_"))
        .map(|(j, _)| j)
        .collect();
    if cols.is_empty() {
        return None;
    }
    let rows = rec
        .steps()
        .iter()
        .enumerate()
        .filter(|(_, &step)| step.is_multiple_of(30))
        .map(|(i, &step)| (step, cols.iter().map(|&j| rec.row(i)[j]).collect()))
        .collect();
    Some(Months {
        names: cols.iter().map(|&j| rec.specs()[j].name.clone()).collect(),
        rows,
    })
}

/// Boroughs of the synthetic city in the scenario: (index, code).
fn city_boroughs(opts: &myriad_models::nyc::CityOptions) -> Vec<(usize, &'static str)> {
    myriad_models::nyc::data::BOROUGHS
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, c)| opts.boroughs.is_empty() || opts.boroughs.iter().any(|x| x == c))
        .collect()
}

/// `monthly.csv`: month k is the month ending at step 30k (month 0: the
/// initial state); for the synthetic city, the observed rate of the k-th
/// month of borough_unemployment.csv beside it (month 0: its first month).
fn write_monthly(path: &Path, s: &Scenario, m: &Months) -> Result<()> {
    let observed = match &s.population {
        crate::scenario::PopulationSource::City(opts) => {
            Some((city_boroughs(opts), myriad_models::nyc::data::observed_unemployment()))
        }
        _ => None,
    };
    let mut text = format!("month,step,{}", m.names.join(","));
    if let Some((boroughs, _)) = &observed {
        for (_, code) in boroughs {
            text.push_str(&format!(",observed_unemployment_{code}"));
        }
    }
    text.push('\n');
    for (step, values) in &m.rows {
        let month = (step / 30) as usize;
        let v: Vec<String> = values.iter().map(|x| x.to_string()).collect();
        text.push_str(&format!("{month},{step},{}", v.join(",")));
        if let Some((boroughs, obs)) = &observed {
            for &(b, _) in boroughs {
                match obs.get(month) {
                    Some(o) => text.push_str(&format!(",{}", o[b])),
                    None => text.push(','),
                }
            }
        }
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// `unemployment.png`: modelled monthly unemployment per borough (lines)
/// against the observed rates (points), same colour per borough.
fn plot_unemployment(path: &Path, s: &Scenario, opts: &myriad_models::nyc::CityOptions, m: &Months) -> Result<()> {
    let observed = myriad_models::nyc::data::observed_unemployment();
    let months = m.rows.len();
    let mut series = Vec::new();
    for (b, code) in city_boroughs(opts) {
        let Some(j) = m.names.iter().position(|n| *n == format!("unemployment_{code}")) else {
            continue;
        };
        series.push(plot::Series {
            colour: Some(b),
            ..plot::Series::line(
                format!("{code} model"),
                m.rows.iter().map(|(step, v)| ((step / 30) as f64, v[j])).collect(),
            )
        });
        series.push(plot::Series {
            colour: Some(b),
            markers: true,
            ..plot::Series::line(
                format!("{code} observed"),
                observed
                    .iter()
                    .take(months)
                    .enumerate()
                    .map(|(k, o)| (k as f64, o[b]))
                    .collect(),
            )
        });
    }
    plot::chart_png(
        path,
        &format!("{}: unemployment rate by borough, model vs observed", s.name),
        "month",
        "percent",
        &series,
    )
}

/// A progress bar on a terminal, plain log lines otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    steps: u32,
    agents: u32,
    quiet: bool,
}

impl Progress {
    fn new(steps: u32, agents: u32, quiet: bool) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new(steps as u64);
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30.cyan/blue} step {pos}/{len}  {msg}  ETA {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b
        });
        Progress {
            bar,
            steps,
            agents,
            quiet,
        }
    }

    fn tick(&self, step: u32, elapsed: f64, specs: &[myriad_core::metrics::MetricSpec], row: &[f64]) {
        let rate = self.agents as f64 * step as f64 / elapsed.max(1e-9);
        if let Some(b) = &self.bar {
            b.set_position(step as u64);
            b.set_message(format!("{:.1} M agents/s", rate / 1e6));
        } else if !self.quiet && (step.is_multiple_of((self.steps / 10).max(1)) || step == self.steps) {
            // The first few metrics are the headline ones; the rest are in the files.
            let values: Vec<String> = specs
                .iter()
                .zip(row)
                .take(8)
                .map(|(s, v)| format!("{}={}", s.name, myriad_io::timeseries::format_value(s.kind, *v)))
                .collect();
            eprintln!(
                "step {step}/{}  {}  {:.1} M agent-steps/s",
                self.steps,
                values.join(" "),
                rate / 1e6
            );
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
