//! Does it work: the mean return per agent of the uncontrolled model (its
//! own rule), the hand-written controller and a policy, each over the same
//! held-out seeds, with a 95% interval over seeds.

use crate::{Result, TrainError};
use myriad_policy::{ControllerBehaviour, Policy, PolicyBehaviour};
use myriad_sim::scenario::Scenario;
use myriad_sim::{Decisions, SimOptions, Simulation};
use statrs::distribution::{ContinuousCDF, StudentsT};
use std::path::Path;
use std::sync::Arc;

/// First held-out seed: training episodes draw 63-bit seeds from a hash,
/// evaluation uses these consecutive ones.
pub const EVAL_SEED: u64 = 1_000_000;

/// Mean return per agent over seeds, with its 95% interval.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Estimate {
    /// Who decided: rule, controller or policy.
    pub decisions: String,
    /// Mean over seeds of the mean return per agent.
    pub mean: f64,
    /// Half-width of the 95% t-interval over seeds.
    pub half_width: f64,
    /// Each seed's mean return per agent.
    pub per_seed: Vec<f64>,
    /// Mean of the model's first metric (its order measure) over the last
    /// quarter of the steps, averaged over seeds.
    pub final_metric: f64,
    /// Its name.
    pub metric: String,
}

/// The three estimates on one scenario.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Comparison {
    /// Agents per swarm.
    pub agents: u32,
    /// Steps per episode.
    pub steps: u32,
    /// Seeds used.
    pub seeds: Vec<u64>,
    /// Uncontrolled, controller, and policy (if given).
    pub estimates: Vec<Estimate>,
    /// Paired differences on the same seeds: policy - rule, policy - controller.
    pub differences: Vec<Difference>,
}

/// The mean of a paired difference of returns over seeds, with its 95% interval.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Difference {
    /// What is compared, e.g. `policy - controller`.
    pub label: String,
    /// Mean difference of mean return per agent.
    pub mean: f64,
    /// Half-width of the 95% t-interval.
    pub half_width: f64,
}

impl Comparison {
    /// `evaluation.csv` and `evaluation.json`.
    pub fn write(&self, out: &Path) -> Result<()> {
        let mut csv = String::from("decisions,agents,seeds,mean_return,ci95_low,ci95_high,final_metric,metric\n");
        for e in &self.estimates {
            csv.push_str(&format!(
                "{},{},{},{},{},{},{},{}\n",
                e.decisions,
                self.agents,
                self.seeds.len(),
                e.mean,
                e.mean - e.half_width,
                e.mean + e.half_width,
                e.final_metric,
                e.metric
            ));
        }
        for d in &self.differences {
            csv.push_str(&format!(
                "{},{},{},{},{},{},,\n",
                d.label,
                self.agents,
                self.seeds.len(),
                d.mean,
                d.mean - d.half_width,
                d.mean + d.half_width
            ));
        }
        let p = out.join("evaluation.csv");
        std::fs::write(&p, csv).map_err(|e| TrainError::Run(format!("{}: {e}", p.display())))?;
        let p = out.join("evaluation.json");
        std::fs::write(&p, serde_json::to_string_pretty(self).expect("plain values"))
            .map_err(|e| TrainError::Run(format!("{}: {e}", p.display())))
    }
}

/// Mean and 95% t-interval half-width of `xs`.
pub fn interval(xs: &[f64]) -> (f64, f64) {
    let k = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / k;
    if xs.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (k - 1.0);
    let t = StudentsT::new(0.0, 1.0, k - 1.0).expect("k > 1").inverse_cdf(0.975);
    (mean, t * (var / k).sqrt())
}

/// Mean return per agent of one run: the sum over steps of the `reward`
/// metric (the mean reward over agents), and the model's first metric over
/// the last quarter of the steps.
pub fn episode(s: &Scenario, seed: u64, decisions: Decisions) -> Result<(f64, f64)> {
    let mut sim = Simulation::build(
        s,
        SimOptions {
            threads: Some(rayon::current_num_threads()),
            runtime: None,
            decisions,
        },
    )?;
    let reward = sim
        .metrics()
        .iter()
        .position(|m| m.name == "reward")
        .ok_or_else(|| TrainError::Input(format!("model '{}' has no reward metric", s.model.name)))?;
    let (mut total, mut tail, mut tail_n) = (0.0, 0.0, 0u32);
    let from = s.steps - s.steps / 4;
    for _ in 0..s.steps {
        sim.step()?;
        if let Some(e) = sim.error() {
            return Err(TrainError::Run(format!("seed {seed}, step {}: {e}", sim.step_index())));
        }
        total += sim.row()[reward];
        if sim.step_index() > from {
            tail += sim.row()[0];
            tail_n += 1;
        }
    }
    Ok((total, tail / tail_n.max(1) as f64))
}

fn estimate(s: &Scenario, seeds: &[u64], label: &str, make: &dyn Fn(u64) -> Decisions) -> Result<Estimate> {
    let mut per_seed = Vec::new();
    let mut metric = 0.0;
    for &seed in seeds {
        let mut s = s.clone();
        s.seed = seed;
        let (r, m) = episode(&s, seed, make(seed))?;
        per_seed.push(r);
        metric += m;
    }
    let (mean, half_width) = interval(&per_seed);
    Ok(Estimate {
        decisions: label.into(),
        mean,
        half_width,
        per_seed,
        final_metric: metric / seeds.len() as f64,
        metric: String::new(),
    })
}

/// Uncontrolled, controller and (when given) policy on `seeds` held-out seeds.
pub fn compare(s: &Scenario, policy: Option<Arc<Policy>>, seeds: u32) -> Result<Comparison> {
    let seeds: Vec<u64> = (0..seeds as u64).map(|k| EVAL_SEED + k).collect();
    let metric = s.model.metrics_names_first();
    let mut estimates = vec![
        estimate(s, &seeds, "rule", &|_| Decisions::Rule)?,
        estimate(s, &seeds, "controller", &|_| {
            Decisions::Provider(Box::new(ControllerBehaviour::default()))
        })?,
    ];
    if let Some(p) = policy {
        estimates.push(estimate(s, &seeds, "policy", &|seed| {
            Decisions::Provider(Box::new(PolicyBehaviour::new(p.clone(), "trained".into(), seed, true)))
        })?);
    }
    for e in &mut estimates {
        e.metric = metric.clone();
    }
    let mut differences = Vec::new();
    if let Some(p) = estimates.get(2) {
        for base in &estimates[..2] {
            let d: Vec<f64> = p.per_seed.iter().zip(&base.per_seed).map(|(a, b)| a - b).collect();
            let (mean, half_width) = interval(&d);
            differences.push(Difference {
                label: format!("policy - {}", base.decisions),
                mean,
                half_width,
            });
        }
    }
    Ok(Comparison {
        agents: crate::agents_of(s),
        steps: s.steps,
        seeds,
        estimates,
        differences,
    })
}

trait FirstMetric {
    fn metrics_names_first(&self) -> String;
}

impl FirstMetric for myriad_core::model::ModelSpec {
    fn metrics_names_first(&self) -> String {
        (self.metrics)().first().map_or(String::new(), |m| m.name.clone())
    }
}
