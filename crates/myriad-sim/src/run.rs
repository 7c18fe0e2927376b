//! A run into an output folder: build, step with sinks, write the tables,
//! plots and summary. What `myriad run` does, and what every analysis does
//! for each of its runs.

use crate::error::{Error, Result};
use crate::outdir::OutChoice;
use crate::outputs;
use crate::scenario::Scenario;
use crate::simulation::{SimOptions, Simulation};
use crate::sinks::{CsvSink, MemorySink, Sink, TranscriptSink};
use myriad_core::metrics::Recorder;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// Options of one run.
pub struct RunOptions {
    /// Output folder (default `<runs>/<name>-<timestamp>`).
    pub out: Option<PathBuf>,
    /// Where default output folders go [default: `runs`].
    pub runs: Option<PathBuf>,
    /// Replace an existing output folder.
    pub force: bool,
    /// Worker threads [default: all cores].
    pub threads: Option<usize>,
    /// The async runtime for LLM providers (`None`: one of the run's own).
    pub runtime: Option<tokio::runtime::Handle>,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// All steps done.
    Completed,
    /// Stopped by the stop flag (Ctrl-C); the outputs hold the steps finished.
    Interrupted,
}

/// What a finished run returns to its caller.
pub struct RunReport {
    /// How it ended.
    pub outcome: Outcome,
    /// The output folder.
    pub out: PathBuf,
    /// Every row (step 0 first).
    pub rows: Recorder,
    /// Steps completed.
    pub steps: u32,
    /// Agents.
    pub agents: u32,
    /// Seconds spent stepping.
    pub run_seconds: f64,
}

/// Peak resident memory of this process in bytes (Linux `VmHWM`).
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Run a scenario into its output folder. Everything that can fail because
/// of the input (population file, edge lists, layer sizes) is done before
/// the folder is made. `extra` sinks (a progress display) see every row.
pub fn run_to_folder(
    s: &Scenario,
    opts: &RunOptions,
    stop: &AtomicBool,
    extra: &mut [&mut dyn Sink],
) -> Result<RunReport> {
    let wall = Instant::now();
    let choice = match &opts.runs {
        Some(dir) if opts.out.is_none() => OutChoice::Default(crate::outdir::default_out_in(dir, &s.name, "")),
        _ => OutChoice::new(opts.out.clone(), &s.name, ""),
    };
    choice.check(opts.force)?;
    let mut sim = Simulation::build(
        s,
        SimOptions {
            threads: opts.threads,
            runtime: opts.runtime.clone(),
            ..SimOptions::default()
        },
    )?;
    let out = choice.create(opts.force, "run")?;
    let mut csv = CsvSink::new(&out.join("timeseries.csv"));
    let mut transcript = TranscriptSink::new(&out.join("transcript.jsonl"));
    let mut memory = MemorySink::new(sim.metrics());
    let stepped = {
        let mut sinks: Vec<&mut dyn Sink> = vec![&mut csv, &mut transcript, &mut memory];
        sinks.extend(extra.iter_mut().map(|s| &mut **s as &mut dyn Sink));
        sim.run(s.steps, &mut sinks, stop)
            .map_err(|e| Error::Run(format!("{e}; the steps done before it are in {}", out.display())))?
    };
    let rows = memory.recorder;
    // Stopped early by Ctrl-C; a provider failure is reported as "error" instead.
    let interrupted = stepped.done < s.steps && stepped.failure.is_none();
    outputs::write_all(&out, s, &rows)?;
    outputs::write_summary(
        &out,
        &sim,
        &rows,
        &outputs::RunFacts {
            done: stepped.done,
            interrupted,
            failure: stepped.failure.clone(),
            run_seconds: stepped.run_seconds,
            wall_seconds: wall.elapsed().as_secs_f64(),
        },
    )?;
    if let Some(f) = stepped.failure {
        return Err(Error::Run(format!(
            "{f}\nthe {} steps done are in {} (summary.json has \"error\")",
            stepped.done,
            out.display()
        )));
    }
    Ok(RunReport {
        outcome: if interrupted {
            Outcome::Interrupted
        } else {
            Outcome::Completed
        },
        out,
        rows,
        steps: stepped.done,
        agents: sim.agents(),
        run_seconds: stepped.run_seconds,
    })
}
