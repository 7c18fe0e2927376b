//! The `myriad` command line.

mod bench;
mod build;
mod ensemble;
mod plot;
mod run;
mod scenario;
mod toml_reader;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// myriad: large population models — millions of agents whose decisions come
/// from rules, LLMs or learned policies — reproducible on one machine.
#[derive(Parser)]
#[command(name = "myriad", version, about, long_about = None)]
#[command(
    after_help = "Start with:  myriad run scenarios/seir-city.toml\nModels:      myriad models, myriad describe seir"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario and write timeseries.csv/.parquet, summary.json and timeseries.png.
    Run {
        /// Scenario file (TOML).
        scenario: PathBuf,
        /// Output folder [default: runs/<scenario>-<timestamp>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace the output folder if it exists.
        #[arg(long)]
        force: bool,
        /// Run seed (replaces the scenario's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Worker threads [default: all cores]. Results do not depend on it.
        #[arg(long)]
        threads: Option<usize>,
        /// Change a scenario value, e.g. --set params.beta=0.03 or --set layers.community.mean_degree=8.
        #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
        set: Vec<String>,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Run a scenario over N consecutive seeds; write each run and the median and 5-95% band per step.
    Ensemble {
        /// Scenario file (TOML).
        scenario: PathBuf,
        /// Number of runs (seeds seed, seed+1, ...).
        #[arg(long, default_value_t = 20)]
        runs: u32,
        /// Output folder [default: runs/<scenario>-ensemble-<timestamp>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace the output folder if it holds an earlier ensemble.
        #[arg(long)]
        force: bool,
        /// First seed (replaces the scenario's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Worker threads [default: all cores].
        #[arg(long)]
        threads: Option<usize>,
        /// Change a scenario value, as for `run`.
        #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
        set: Vec<String>,
    },
    /// Check a scenario (keys, ranges, data files) without running it.
    Validate {
        /// Scenario file (TOML).
        scenario: PathBuf,
        /// Change a scenario value before checking.
        #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
        set: Vec<String>,
    },
    /// List the models.
    Models,
    /// Show a model's parameters (defaults, units, ranges), metrics and population columns.
    Describe {
        /// Model name (see `myriad models`).
        model: String,
    },
    /// Time SEIR on an Erdős–Rényi network (network build, seconds per day, peak memory).
    Bench {
        /// Number of agents.
        #[arg(long, default_value_t = 1_000_000)]
        agents: u32,
        /// Mean degree.
        #[arg(long, default_value_t = 10.0)]
        degree: f64,
        /// Simulated days.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Worker threads [default: all cores].
        #[arg(long)]
        threads: Option<usize>,
    },
}

/// Exit codes: 0 success, 1 failure while running, 2 bad input, 130 interrupted.
fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            let input_error = e.downcast_ref::<toml_reader::ScenarioError>().is_some()
                || e.downcast_ref::<myriad_io::IoError>().is_some()
                || e.chain().any(|c| c.is::<InputError>());
            ExitCode::from(if input_error { 2 } else { 1 })
        }
    }
}

use build::InputError;

fn threads(n: Option<usize>) -> Result<usize> {
    let n = n.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if n == 0 {
        return Err(InputError("--threads must be at least 1".into()).into());
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .context("starting worker threads")?;
    Ok(n)
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run {
            scenario,
            out,
            force,
            seed,
            threads: t,
            set,
            quiet,
        } => {
            let s = scenario::load(&scenario, &scenario::Overrides { set, seed })?;
            let threads = threads(t)?;
            let stop = run::stop_on_ctrl_c()?;
            let opts = run::RunOptions {
                out,
                force,
                threads,
                quiet,
            };
            match run::run(&s, &opts, stop).map_err(classify)? {
                run::Outcome::Completed => Ok(ExitCode::SUCCESS),
                run::Outcome::Interrupted => Ok(ExitCode::from(130)),
            }
        }
        Command::Ensemble {
            scenario,
            runs,
            out,
            force,
            seed,
            threads: t,
            set,
        } => {
            let s = scenario::load(&scenario, &scenario::Overrides { set: set.clone(), seed })?;
            let threads = threads(t)?;
            let out = out.unwrap_or_else(|| run::default_out(&s.name, "-ensemble"));
            let stop = run::stop_on_ctrl_c()?;
            let opts = ensemble::EnsembleOptions {
                scenario,
                runs,
                out,
                force,
                set,
                seed,
                threads,
            };
            ensemble::run(&opts, stop).map_err(classify)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { scenario, set } => {
            let s = scenario::load(&scenario, &scenario::Overrides { set, seed: None })?;
            // Data files are read too: a scenario that validates can run.
            let pop = build::population(&s).map_err(classify)?;
            build::check_layer_inputs(&s, &pop)?;
            println!(
                "{}: ok (model {}, {} agents, {} layers, {} interventions, {} steps, seed {})",
                scenario.display(),
                s.model.name,
                pop.size(),
                s.layers.len(),
                s.schedule.items().len(),
                s.steps,
                s.seed
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Models => {
            for m in myriad_models::models() {
                println!("{:<8} {}", m.name, m.summary);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Describe { model } => {
            let m = myriad_models::find(&model).ok_or_else(|| {
                let names: Vec<&str> = myriad_models::models().iter().map(|m| m.name).collect();
                InputError(format!("unknown model '{model}' (known models: {})", names.join(", ")))
            })?;
            print!("{}", describe(m));
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            agents,
            degree,
            days,
            threads: t,
        } => {
            let threads = threads(t)?;
            bench::run(&bench::BenchOptions {
                agents,
                degree,
                days,
                threads,
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Errors from reading data files are input errors.
fn classify(e: anyhow::Error) -> anyhow::Error {
    if e.downcast_ref::<myriad_io::IoError>().is_some() {
        return e;
    }
    if e.chain()
        .any(|c| c.is::<myriad_models::ModelError>() || c.is::<myriad_core::CsrError>())
    {
        anyhow::Error::new(InputError(format!("{e:#}")))
    } else {
        e
    }
}

fn describe(m: &myriad_models::ModelInfo) -> String {
    let mut s = format!(
        "{} — {}\n\n{}\n\nParameters ([params] in a scenario):\n",
        m.name, m.summary, m.description
    );
    for p in (m.params)() {
        s.push_str(&format!(
            "  {:<24} default {:<12} {}\n",
            p.name,
            p.default.to_string(),
            if p.unit.is_empty() {
                String::new()
            } else {
                format!("[{}]", p.unit)
            }
        ));
        s.push_str(&format!("  {:<24} {}; {}\n", "", p.range_text(), p.doc));
    }
    s.push_str("\nMetrics (columns of timeseries.csv after `step`):\n");
    for mt in (m.metrics)() {
        s.push_str(&format!("  {:<24} {}\n", mt.name, mt.doc));
    }
    if !m.columns.is_empty() {
        s.push_str("\nPopulation columns read when present:\n");
        for c in m.columns {
            s.push_str(&format!("  {:<24} {}\n", c.name, c.doc));
        }
    }
    s
}
