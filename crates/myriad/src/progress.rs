//! What a run shows on the terminal: the build, a progress bar (plain log
//! lines when standard error is not a terminal), the result; and Ctrl-C.

use indicatif::{ProgressBar, ProgressStyle};
use myriad_core::metrics::MetricSpec;
use myriad_sim::run::{Outcome, RunReport};
use myriad_sim::sinks::{RunStart, Sink, SinkError};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The step being computed (0 before the run's first), for the message of
/// an interrupted partitioned run, whose rank 0 may be waiting on another
/// rank when the signal comes.
static RUNNING_STEP: AtomicU32 = AtomicU32::new(0);

/// Install the Ctrl-C (and SIGTERM) handler: the first sets `stop` (the run
/// finishes its step and writes what it has), a second ends the process.
pub fn stop_on_ctrl_c() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            // At once, without running exit handlers: the embedded model's
            // C++ statics must not be destroyed under its worker threads
            // (a crash instead of exit code 130).
            // SAFETY: _exit ends the process; it touches no Rust state.
            unsafe { libc::_exit(130) }
        }
        // Under mpirun every rank gets the signal; rank 0 speaks for the run.
        let (rank, ranks) = crate::ranks::from_environment();
        let step = RUNNING_STEP.load(Ordering::SeqCst);
        if rank == 0 && ranks > 1 && step > 0 {
            // mpirun also stops the ranks this way when one of them dies:
            // this line names the step, mpirun the rank.
            let done = match step - 1 {
                0 => "no step has finished".to_string(),
                1 => "step 1 is in the output folder".to_string(),
                k => format!("steps 1 to {k} are in the output folder"),
            };
            eprintln!(
                "\ninterrupted during step {step} ({done}): finishing the step and writing what is done (Ctrl-C again to abort), unless a rank has died (mpirun names it below)"
            );
        } else if rank == 0 {
            eprintln!("\ninterrupted: finishing the current step and writing what is done (Ctrl-C again to abort)");
        }
    })
    .map_err(|e| anyhow::anyhow!("installing the Ctrl-C handler: {e}"))?;
    Ok(stop)
}

/// A sink showing the run's progress.
pub struct Progress {
    quiet: bool,
    bar: Option<ProgressBar>,
    steps: u32,
    agents: u32,
    specs: Vec<MetricSpec>,
    started: Instant,
}

impl Progress {
    /// Silent with `quiet`.
    pub fn new(quiet: bool) -> Progress {
        Progress {
            quiet,
            bar: None,
            steps: 0,
            agents: 0,
            specs: Vec::new(),
            started: Instant::now(),
        }
    }

    fn log(&self, msg: String) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }

    /// The closing line of a finished or interrupted run.
    pub fn done(&self, r: &RunReport) {
        let rate = r.agents as f64 * r.steps as f64 / r.run_seconds.max(1e-9);
        self.log(format!(
            "{} {} steps of {} agents in {:.2} s ({:.1} M agent-steps/s); results in {}",
            if r.outcome == Outcome::Interrupted {
                "interrupted after"
            } else {
                "done:"
            },
            r.steps,
            r.agents,
            r.run_seconds,
            rate / 1e6,
            r.out.display()
        ));
    }
}

impl Sink for Progress {
    fn start(&mut self, run: &RunStart) -> Result<(), SinkError> {
        let b = run.built;
        self.log(format!(
            "population: {} agents ({:.2} s)",
            b.agents, b.population_seconds
        ));
        for r in &b.layers {
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
            self.log(format!(
                "layer '{}': {} edges, mean degree {:.3} ({:.2} s){extra}",
                r.name, r.edges, r.mean_degree, r.seconds
            ));
        }
        self.steps = run.steps;
        self.agents = run.agents;
        self.specs = run.metrics.to_vec();
        self.bar = (!self.quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(run.steps as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30.cyan/blue} step {pos}/{len}  {msg}  ETA {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar
        });
        self.started = Instant::now();
        Ok(())
    }

    fn row(&mut self, step: u32, row: &[f64]) -> Result<(), SinkError> {
        RUNNING_STEP.store(step + 1, Ordering::SeqCst);
        if step == 0 {
            return Ok(());
        }
        let rate = self.agents as f64 * step as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        if let Some(b) = &self.bar {
            b.set_position(step as u64);
            b.set_message(format!("{:.1} M agents/s", rate / 1e6));
        } else if !self.quiet && (step.is_multiple_of((self.steps / 10).max(1)) || step == self.steps) {
            // The first few metrics are the headline ones; the rest are in the files.
            let values: Vec<String> = self
                .specs
                .iter()
                .zip(row)
                .take(8)
                .map(|(s, v)| format!("{}={}", s.name, s.format(*v)))
                .collect();
            eprintln!(
                "step {step}/{}  {}  {:.1} M agent-steps/s",
                self.steps,
                values.join(" "),
                rate / 1e6
            );
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        Ok(())
    }
}
