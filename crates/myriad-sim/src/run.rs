//! A run into an output folder: build, step with sinks, write the tables,
//! plots and summary. What `myriad run` does, and what every analysis does
//! for each of its runs.

use crate::checkpoint::{self, CheckpointSink};
use crate::error::{agree, Error, Result};
use crate::outdir::OutChoice;
use crate::outputs;
use crate::scenario::Scenario;
use crate::simulation::{SimOptions, Simulation};
use crate::sinks::{AgentsSink, CsvSink, MemorySink, Sink, TranscriptSink};
use myriad_core::comm::{Comm, Local};
use myriad_core::metrics::Recorder;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
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
    /// The other ranks, when this process is one rank of a partitioned
    /// run (`mpirun`); `None` for a run in one process. Rank 0 writes the
    /// outputs; the others only compute their part.
    pub comm: Option<Arc<dyn Comm>>,
    /// Write a checkpoint every this many steps (`<out>/checkpoint`).
    pub checkpoint_every: Option<u32>,
    /// Continue the run in this folder from its last checkpoint, writing
    /// the outputs an uninterrupted run would have written.
    pub resume: Option<PathBuf>,
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
    let comm: Arc<dyn Comm> = opts.comm.clone().unwrap_or_else(|| Arc::new(Local));
    let root = comm.rank() == 0;
    let choice = match &opts.runs {
        Some(dir) if opts.out.is_none() => OutChoice::Default(crate::outdir::default_out_in(dir, &s.name, "")),
        _ => OutChoice::new(opts.out.clone(), &s.name, ""),
    };
    let checked = match (&opts.resume, root) {
        (_, false) => Ok(()),
        (Some(dir), true) => resumable(dir),
        (None, true) => choice.check(opts.force),
    };
    agree(&*comm, checked)?;
    let sim = Simulation::build_on(
        s,
        SimOptions {
            threads: opts.threads,
            runtime: opts.runtime.clone(),
            ..SimOptions::default()
        },
        comm.clone(),
    );
    let mut sim = agree(&*comm, sim)?;
    let resumed = match &opts.resume {
        Some(dir) => Some(checkpoint::resume(&mut sim, dir, s)?),
        None => None,
    };
    let every = opts.checkpoint_every.or(resumed.as_ref().map(|r| r.every));
    if let Some(k) = every {
        agree(&*comm, checkpoint::check(k, &sim))?;
    }
    let made = match (&opts.resume, root) {
        (_, false) => Ok(PathBuf::new()),
        (Some(dir), true) => Ok(dir.clone()),
        (None, true) => choice.create(opts.force, "run"),
    };
    let out = agree(&*comm, made)?;
    // The other ranks write their checkpoints into rank 0's folder.
    let mut shared = out.to_string_lossy().into_owned().into_bytes();
    comm.broadcast_bytes(0, &mut shared);
    let shared = PathBuf::from(String::from_utf8_lossy(&shared).into_owned());
    let mut checkpoints = match every {
        Some(k) => {
            let sink = CheckpointSink::new(&shared, k, &sim)?;
            Some(match &resumed {
                Some(r) => sink.resumed_at(r.step),
                None => sink,
            })
        }
        None => None,
    };
    let mut agents = s.output.agents_every.map(|k| AgentsSink::new(&shared, k));
    // Steps this process computes (a resumed run starts past 0).
    let first_step = resumed.as_ref().map_or(0, |r| r.step);
    let history: &[Vec<f64>] = match &resumed {
        Some(r) => &r.rows[..r.step as usize],
        None => &[],
    };
    if !root {
        let mut own: Vec<&mut dyn Sink> = Vec::new();
        if let Some(a) = agents.as_mut() {
            own.push(a);
        }
        if let Some(c) = checkpoints.as_mut() {
            own.push(c);
        }
        return run_other_rank(s, sim, history, stop, extra, &mut own, first_step);
    }
    let mut csv = CsvSink::new(&out.join("timeseries.csv"));
    let mut transcript = TranscriptSink::new(&out.join("transcript.jsonl"));
    let mut memory = MemorySink::new(sim.metrics());
    let stepped = {
        let mut sinks: Vec<&mut dyn Sink> = vec![&mut csv, &mut transcript, &mut memory];
        sinks.extend(extra.iter_mut().map(|s| &mut **s as &mut dyn Sink));
        if let Some(a) = agents.as_mut() {
            sinks.push(a);
        }
        if let Some(c) = checkpoints.as_mut() {
            sinks.push(c);
        }
        sim.run_after(history, s.steps, &mut sinks, stop)
            .map_err(|e| Error::Run(format!("{e}; the steps done before it are in {}", out.display())))?
    };
    let partition = partition_facts(&sim, stepped.done - first_step);
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
            partition,
            resumed_from: resumed.as_ref().map(|r| r.step),
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

/// `--resume DIR` names a run folder with checkpoints (checked on rank 0).
fn resumable(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Err(crate::InputError(format!("--resume {}: no such run folder", dir.display())).into());
    }
    Ok(())
}

/// A rank other than 0 of a partitioned run: it steps its agents in step
/// with the others and writes nothing (rank 0 writes the outputs).
fn run_other_rank(
    s: &Scenario,
    mut sim: Simulation,
    history: &[Vec<f64>],
    stop: &AtomicBool,
    extra: &mut [&mut dyn Sink],
    own: &mut [&mut dyn Sink],
    first_step: u32,
) -> Result<RunReport> {
    let mut memory = MemorySink::new(sim.metrics());
    let stepped = {
        let mut sinks: Vec<&mut dyn Sink> = vec![&mut memory];
        sinks.extend(extra.iter_mut().map(|s| &mut **s as &mut dyn Sink));
        sinks.extend(own.iter_mut().map(|s| &mut **s as &mut dyn Sink));
        sim.run_after(history, s.steps, &mut sinks, stop)?
    };
    partition_facts(&sim, stepped.done - first_step);
    let interrupted = stepped.done < s.steps && stepped.failure.is_none();
    Ok(RunReport {
        outcome: if interrupted {
            Outcome::Interrupted
        } else {
            Outcome::Completed
        },
        out: PathBuf::new(),
        rows: memory.recorder,
        steps: stepped.done,
        agents: sim.agents(),
        run_seconds: stepped.run_seconds,
    })
}

/// What each rank of a partitioned run held and exchanged over the `steps`
/// it computed, gathered on every rank (a collective call: every rank makes
/// it at the same point); `None` for a run in one process.
fn partition_facts(sim: &Simulation, steps: u32) -> Option<serde_json::Value> {
    let comm = sim.comm();
    let (rank, ranks) = (comm.rank(), comm.ranks());
    if ranks == 1 {
        return None;
    }
    let t = comm.traffic();
    // Each rank fills its own slots; the sum gathers them.
    let fields = 4;
    let mut v = vec![0u64; ranks * fields];
    v[rank * fields] = sim.part().len() as u64;
    v[rank * fields + 1] = t.bytes_sent;
    v[rank * fields + 2] = (t.seconds * 1e6) as u64;
    v[rank * fields + 3] = peak_memory_bytes().unwrap_or(0);
    comm.sum_u64(&mut v);
    let per_rank: Vec<serde_json::Value> = (0..ranks)
        .map(|r| {
            let f = &v[r * fields..(r + 1) * fields];
            serde_json::json!({
                "rank": r,
                "agents": f[0],
                "bytes_sent": f[1],
                "seconds_exchanging": f[2] as f64 / 1e6,
                "peak_memory_bytes": f[3],
            })
        })
        .collect();
    let bytes: u64 = (0..ranks).map(|r| v[r * fields + 1]).sum();
    Some(serde_json::json!({
        "ranks": ranks,
        "bytes_sent": bytes,
        "bytes_sent_per_step": if steps > 0 { bytes as f64 / steps as f64 } else { 0.0 },
        "per_rank": per_rank,
    }))
}
