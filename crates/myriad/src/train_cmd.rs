//! `myriad train` and `myriad evaluate`: a controllable scenario's shared
//! policy trained with PPO, and the uncontrolled model, its hand-written
//! controller and a policy compared on held-out seeds at several swarm sizes.

use crate::{OutArgs, ScenarioArgs};
use anyhow::{Context, Result};
use myriad_sim::scenario::ControlChoice;
use myriad_sim::InputError;
use myriad_train::evaluate::{self, Comparison};
use myriad_train::{TrainOptions, TrainOutcome};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// `myriad train`.
pub fn train(
    scenario: &ScenarioArgs,
    output: &OutArgs,
    resume: Option<PathBuf>,
    policy_out: Option<PathBuf>,
    quiet: bool,
) -> Result<ExitCode> {
    let (s, threads, out, stop) = match &resume {
        // A resumed training continues in its own folder.
        Some(dir) => {
            if !dir.is_dir() {
                return Err(InputError(format!("--resume {}: no such training folder", dir.display())).into());
            }
            let s = scenario.load()?;
            (
                s,
                crate::threads(scenario.threads)?,
                dir.clone(),
                crate::progress::stop_on_ctrl_c()?,
            )
        }
        None => {
            let p = scenario.prepare(output, "-train")?;
            let s = scenario.load()?;
            let dir = p.out.create(output.force, "train")?;
            (s, p.threads, dir, p.stop)
        }
    };
    let seed = s.seed;
    let opts = TrainOptions {
        out: out.clone(),
        seed,
        threads,
        resume,
        stop: stop.clone(),
    };
    let spec = &s.train;
    if !quiet {
        eprintln!(
            "training {} on {} copies x {} agents x {} steps, {} iterations, {} threads -> {}",
            s.name,
            spec.envs,
            spec.agents.unwrap_or(myriad_train::agents_of(&s)),
            s.steps,
            spec.iterations,
            threads,
            out.display()
        );
    }
    let t = std::time::Instant::now();
    let outcome: TrainOutcome = myriad_train::train(&s, &opts, &mut |it| {
        if !quiet {
            eprintln!(
                "iteration {:>4}: return {:>9.4}  entropy {:>7.3}  value loss {:>9.5}  kl {:>8.5}  ({:.1} s)",
                it.iteration, it.mean_return, it.entropy, it.value_loss, it.approx_kl, it.seconds
            );
        }
    })?;
    let wall = t.elapsed().as_secs_f64();
    if let Some(p) = &policy_out {
        std::fs::copy(&outcome.policy_file, p).with_context(|| format!("copying the policy to {}", p.display()))?;
    }
    let steps = outcome.history.last().map_or(0, |h| h.agent_steps);
    let summary = serde_json::json!({
        "scenario": s.name,
        "seed": seed,
        "threads": threads,
        "iterations": outcome.history.len(),
        "agent_steps": steps,
        "wall_seconds": wall,
        "agent_steps_per_second": steps as f64 / wall,
        "interrupted": outcome.interrupted,
        "evaluation": outcome.evaluation,
    });
    let path = out.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)?)
        .with_context(|| format!("writing {}", path.display()))?;
    if outcome.interrupted {
        eprintln!(
            "interrupted after {} iterations; the policy so far is {} (continue with --resume {})",
            outcome.history.len(),
            outcome.policy_file.display(),
            out.display()
        );
        return Ok(ExitCode::from(1));
    }
    if let Some(c) = &outcome.evaluation {
        print_comparison(c);
    }
    eprintln!(
        "{} agent-steps in {:.1} s ({:.0} per second); policy {}",
        steps,
        wall,
        steps as f64 / wall,
        outcome.policy_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn print_comparison(c: &Comparison) {
    eprintln!(
        "held-out seeds ({}), {} agents, {} steps: mean return per agent (95% interval)",
        c.seeds.len(),
        c.agents,
        c.steps
    );
    for e in &c.estimates {
        eprintln!(
            "  {:<10} {:>10.4}  [{:.4}, {:.4}]   {} {:.3}",
            e.decisions,
            e.mean,
            e.mean - e.half_width,
            e.mean + e.half_width,
            e.metric,
            e.final_metric
        );
    }
    for d in &c.differences {
        eprintln!(
            "  {:<22} {:>+10.4}  [{:+.4}, {:+.4}]  (paired over the same seeds)",
            d.label,
            d.mean,
            d.mean - d.half_width,
            d.mean + d.half_width
        );
    }
}

/// `myriad evaluate`.
pub fn evaluate(
    scenario: &ScenarioArgs,
    output: &OutArgs,
    policy: Option<PathBuf>,
    agents: Vec<u32>,
    seeds: u32,
) -> Result<ExitCode> {
    let p = scenario.prepare(output, "-evaluate")?;
    let s = scenario.load()?;
    if s.model.control.is_none() {
        return Err(InputError(format!(
            "{}: model '{}' declares no actions and rewards",
            s.file.display(),
            s.model.name
        ))
        .into());
    }
    let policy = match (policy, &s.control) {
        (Some(path), _) => {
            let pol = myriad_policy::Policy::load(&path)?;
            let doc = s.model.control.expect("checked");
            let acts: Vec<&str> = doc.actions.iter().map(|a| a.name).collect();
            pol.check_fits(&path, s.model.name, doc.observation, &acts)?;
            Some(Arc::new(pol))
        }
        (None, Some(ControlChoice::Policy { policy, .. })) => Some(policy.clone()),
        (None, _) => None,
    };
    let sizes = if agents.is_empty() {
        vec![myriad_train::agents_of(&s)]
    } else {
        agents
    };
    if sizes.contains(&0) {
        return Err(InputError("--agents: a swarm needs at least one agent".into()).into());
    }
    let dir = p.out.create(output.force, "evaluate")?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(p.threads).build()?;
    let mut rows = String::from("agents,decisions,seeds,mean_return,ci95_low,ci95_high,final_metric,metric,seconds\n");
    let mut all = Vec::new();
    for &n in &sizes {
        if p.stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let sn = myriad_train::with_agents(&s, n);
        let t = std::time::Instant::now();
        let c = pool.install(|| evaluate::compare(&sn, policy.clone(), seeds))?;
        let secs = t.elapsed().as_secs_f64();
        print_comparison(&c);
        for e in &c.estimates {
            rows.push_str(&format!(
                "{},{},{},{},{},{},{},{},{:.2}\n",
                n,
                e.decisions,
                seeds,
                e.mean,
                e.mean - e.half_width,
                e.mean + e.half_width,
                e.final_metric,
                e.metric,
                secs
            ));
        }
        for d in &c.differences {
            rows.push_str(&format!(
                "{},{},{},{},{},{},,,{:.2}\n",
                n,
                d.label,
                seeds,
                d.mean,
                d.mean - d.half_width,
                d.mean + d.half_width,
                secs
            ));
        }
        // Written after each size, so an interrupted evaluation keeps what is done.
        let path = dir.join("evaluation.csv");
        std::fs::write(&path, &rows).with_context(|| format!("writing {}", path.display()))?;
        all.push(c);
    }
    let path = dir.join("evaluation.json");
    std::fs::write(&path, serde_json::to_string_pretty(&all)?)
        .with_context(|| format!("writing {}", path.display()))?;
    if all.len() > 1 {
        let mut series = Vec::new();
        for (k, label) in ["rule", "controller", "policy"].iter().enumerate() {
            let mut s = myriad_sim::plot_data::Series::line(
                *label,
                all.iter()
                    .filter_map(|c| c.estimates.get(k).map(|e| ((c.agents as f64).log10(), e.mean)))
                    .collect(),
            );
            s.band = all
                .iter()
                .filter_map(|c| {
                    c.estimates
                        .get(k)
                        .map(|e| ((c.agents as f64).log10(), e.mean - e.half_width, e.mean + e.half_width))
                })
                .collect();
            s.markers = true;
            if !s.points.is_empty() {
                series.push(s);
            }
        }
        let png = dir.join("evaluation.png");
        myriad_sim::plot::chart_png(
            &png,
            &format!("{}: mean return per agent against swarm size", s.name),
            "log10 agents",
            "mean return per agent",
            &series,
        )?;
    }
    eprintln!("evaluation of {} sizes in {}", all.len(), dir.display());
    Ok(ExitCode::SUCCESS)
}
