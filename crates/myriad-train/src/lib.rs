//! myriad-train: `myriad train`, the shared policy of a controllable
//! scenario trained with PPO (clipped objective, generalised advantage
//! estimation, Adam) on many copies of the swarm stepped in parallel, with
//! an optional centralised critic that also sees the swarm's mean
//! observation (centralised training, decentralised execution: the policy
//! itself sees only the agent's own observation).
//!
//! Tensors, automatic differentiation and Adam come from candle; rollouts
//! use the same inference code as runs (`myriad_policy`), so the policy
//! trained is the policy run.
//!
//! Reproducibility: with the same scenario, seed and thread count, training
//! writes the same bytes. Rollouts do not depend on the thread count (each
//! copy steps on one thread, actions are drawn from counter-based
//! randomness); candle's matrix products split their work by the thread
//! count, so updates are only guaranteed identical for the same count.
//! Resuming from a checkpoint continues from its weights but with fresh
//! Adam moments (candle's optimiser does not expose them), so a resumed
//! training is close to, not identical with, an uninterrupted one.

#![deny(missing_docs)]

pub mod evaluate;
pub mod net;
pub mod ppo;

use myriad_policy::{Dense, Policy, PolicySpec};
use myriad_sim::control::{control_doc, Env};
use myriad_sim::scenario::{PopulationSource, Scenario};
use ppo::{IterationStats, Learner};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Errors of a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Bad settings or files, named.
    #[error("{0}")]
    Input(String),
    /// The simulation or the learner failed.
    #[error("{0}")]
    Run(String),
}

impl TrainError {
    /// Is it bad input (exit code 2) rather than a failure while running?
    pub fn is_input(&self) -> bool {
        matches!(self, TrainError::Input(_))
    }
}

impl From<candle_core::Error> for TrainError {
    fn from(e: candle_core::Error) -> TrainError {
        TrainError::Run(format!("learner: {e}"))
    }
}

impl From<myriad_sim::Error> for TrainError {
    fn from(e: myriad_sim::Error) -> TrainError {
        if e.is_input() {
            TrainError::Input(e.to_string())
        } else {
            TrainError::Run(e.to_string())
        }
    }
}

/// Result of this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// How to train.
pub struct TrainOptions {
    /// Where the training writes (policy, checkpoints, curve, evaluation).
    pub out: PathBuf,
    /// Training seed (default: the scenario's).
    pub seed: u64,
    /// Worker threads.
    pub threads: usize,
    /// Continue from the newest checkpoint in this folder.
    pub resume: Option<PathBuf>,
    /// Set to stop after the current iteration (the files are kept).
    pub stop: Arc<AtomicBool>,
}

/// What a training run produced.
pub struct TrainOutcome {
    /// The policy file written.
    pub policy_file: PathBuf,
    /// Per-iteration statistics.
    pub history: Vec<IterationStats>,
    /// The held-out evaluation (absent when interrupted).
    pub evaluation: Option<evaluate::Comparison>,
    /// Stopped before the last iteration.
    pub interrupted: bool,
}

/// Agents of a generated population (0 for others).
pub fn agents_of(s: &Scenario) -> u32 {
    match s.population {
        PopulationSource::Synthetic(n) => n,
        _ => 0,
    }
}

/// The scenario with `n` agents per copy.
pub fn with_agents(s: &Scenario, n: u32) -> Scenario {
    let mut s = s.clone();
    s.population = PopulationSource::Synthetic(n);
    s
}

/// Train the scenario's shared policy, writing into `opts.out`; `progress`
/// sees each iteration's statistics.
pub fn train(s: &Scenario, opts: &TrainOptions, progress: &mut dyn FnMut(&IterationStats)) -> Result<TrainOutcome> {
    let doc = control_doc(s).map_err(|e| TrainError::Input(e.to_string()))?;
    if !matches!(s.population, PopulationSource::Synthetic(_)) {
        return Err(TrainError::Input(format!(
            "{}: training needs a generated population ([population] size = N)",
            s.file.display()
        )));
    }
    let spec = &s.train;
    let train_s = match spec.agents {
        Some(n) => with_agents(s, n),
        None => s.clone(),
    };
    std::fs::create_dir_all(opts.out.join("checkpoints"))
        .map_err(|e| TrainError::Input(format!("{}: {e}", opts.out.display())))?;
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(opts.threads)
            .build()
            .map_err(|e| TrainError::Run(format!("starting worker threads: {e}")))?,
    );
    let policy_spec = PolicySpec {
        model: s.model.name.to_string(),
        observation: doc.observation.iter().map(|x| x.to_string()).collect(),
        actions: doc.actions.iter().map(|a| a.name.to_string()).collect(),
        training: serde_json::json!({
            "scenario": s.name,
            "seed": opts.seed,
            "iterations": spec.iterations,
            "envs": spec.envs,
            "agents": agents_of(&train_s),
            "steps": s.steps,
            "hidden": spec.hidden,
            "layers": spec.layers,
            "critic": if spec.central_critic { "central" } else { "local" },
            "myriad": env!("CARGO_PKG_VERSION"),
        }),
    };
    let (mut learner, mut history) = match &opts.resume {
        None => (Learner::new(spec, doc.obs_dim(), doc.act_dim(), opts.seed)?, Vec::new()),
        Some(dir) => {
            let (policy, critic, history) = load_checkpoint(dir, &policy_spec)?;
            (Learner::resume(spec, &policy, &critic)?, history)
        }
    };
    let mut envs = (0..spec.envs)
        .map(|e| {
            let one = Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .build()
                    .map_err(|e| TrainError::Run(e.to_string()))?,
            );
            Env::new(&train_s, e as u64, one).map_err(TrainError::from)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut interrupted = false;
    let start = history.len() as u32;
    for iteration in start + 1..=spec.iterations {
        if opts.stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        let policy = learner.policy(policy_spec.clone())?;
        let mut stats = pool.install(|| learner.iterate(&mut envs, spec, &policy, opts.seed, iteration))?;
        stats.agent_steps += history.last().map_or(0, |h: &IterationStats| h.agent_steps);
        progress(&stats);
        history.push(stats);
        if iteration % spec.checkpoint_every == 0 || iteration == spec.iterations {
            save_checkpoint(&opts.out, &learner, &policy_spec, &history)?;
        }
        write_curve(&opts.out, &history)?;
    }
    let policy = learner.policy(policy_spec)?;
    let policy_file = opts.out.join("policy.safetensors");
    policy.save(&policy_file).map_err(|e| TrainError::Run(e.to_string()))?;
    let evaluation = if interrupted {
        None
    } else {
        let c = pool.install(|| evaluate::compare(&train_s, Some(Arc::new(policy)), spec.eval_seeds))?;
        c.write(&opts.out)?;
        Some(c)
    };
    Ok(TrainOutcome {
        policy_file,
        history,
        evaluation,
        interrupted,
    })
}

fn io(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Run(format!("{}: {e}", path.display()))
}

/// `training.csv` and `training.png`.
fn write_curve(out: &Path, history: &[IterationStats]) -> Result<()> {
    let path = out.join("training.csv");
    let mut text = String::from("iteration,agent_steps,mean_return,entropy,value_loss,policy_loss,approx_kl,seconds\n");
    for h in history {
        text.push_str(&format!(
            "{},{},{},{},{},{},{},{:.3}\n",
            h.iteration, h.agent_steps, h.mean_return, h.entropy, h.value_loss, h.policy_loss, h.approx_kl, h.seconds
        ));
    }
    std::fs::write(&path, text).map_err(|e| io(&path, e))?;
    let series = |f: fn(&IterationStats) -> f64, label: &str| {
        myriad_sim::plot_data::Series::line(label, history.iter().map(|h| (h.iteration as f64, f(h))).collect())
    };
    for (file, ylabel, s) in [
        (
            "training.png",
            "mean return per agent",
            series(|h| h.mean_return, "return"),
        ),
        (
            "training_entropy.png",
            "entropy (nats)",
            series(|h| h.entropy, "entropy"),
        ),
        (
            "training_value_loss.png",
            "value loss",
            series(|h| h.value_loss, "value loss"),
        ),
    ] {
        let p = out.join(file);
        myriad_sim::plot::chart_png(&p, ylabel, "iteration", ylabel, &[s]).map_err(|e| io(&p, e))?;
    }
    Ok(())
}

/// A checkpoint: the policy file with the critic's layers and the history
/// beside it.
fn save_checkpoint(out: &Path, learner: &Learner, spec: &PolicySpec, history: &[IterationStats]) -> Result<()> {
    let it = history.last().map_or(0, |h| h.iteration);
    let dir = out.join("checkpoints");
    let policy = learner.policy(spec.clone())?;
    policy
        .save(&dir.join(format!("policy-{it:05}.safetensors")))
        .map_err(|e| TrainError::Run(e.to_string()))?;
    let critic = Policy {
        spec: PolicySpec {
            model: spec.model.clone(),
            observation: vec!["critic input".into(); learner.critic.to_dense()?[0].inputs],
            actions: vec!["value".into()],
            training: serde_json::to_value(history).expect("plain numbers"),
        },
        layers: learner.critic.to_dense()?,
        log_std: vec![0.0],
    };
    critic
        .save(&dir.join(format!("critic-{it:05}.safetensors")))
        .map_err(|e| TrainError::Run(e.to_string()))
}

/// The newest checkpoint in `dir` (a training folder or its `checkpoints`).
fn load_checkpoint(dir: &Path, spec: &PolicySpec) -> Result<(Policy, Vec<Dense>, Vec<IterationStats>)> {
    let cdir = if dir.join("checkpoints").is_dir() {
        dir.join("checkpoints")
    } else {
        dir.to_path_buf()
    };
    let mut its: Vec<String> = std::fs::read_dir(&cdir)
        .map_err(|e| TrainError::Input(format!("--resume {}: {e}", cdir.display())))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.strip_prefix("policy-")?
                .strip_suffix(".safetensors")
                .map(|s| s.to_string())
        })
        .collect();
    its.sort();
    let it = its.last().ok_or_else(|| {
        TrainError::Input(format!(
            "--resume {}: no checkpoint (policy-NNNNN.safetensors) there",
            cdir.display()
        ))
    })?;
    let ppath = cdir.join(format!("policy-{it}.safetensors"));
    let policy = Policy::load(&ppath).map_err(|e| TrainError::Input(e.to_string()))?;
    let obs: Vec<&str> = spec.observation.iter().map(|s| s.as_str()).collect();
    let acts: Vec<&str> = spec.actions.iter().map(|s| s.as_str()).collect();
    policy
        .check_fits(&ppath, &spec.model, &obs, &acts)
        .map_err(|e| TrainError::Input(e.to_string()))?;
    let cpath = cdir.join(format!("critic-{it}.safetensors"));
    let critic = Policy::load(&cpath).map_err(|e| TrainError::Input(e.to_string()))?;
    let history: Vec<IterationStats> = serde_json::from_value(critic.spec.training.clone())
        .map_err(|e| TrainError::Input(format!("{}: no training history ({e})", cpath.display())))?;
    Ok((policy, critic.layers, history))
}
