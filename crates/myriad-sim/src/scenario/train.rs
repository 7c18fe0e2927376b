//! `[train]`: how `myriad train` trains the scenario's shared policy with
//! PPO (every setting has a default; the table records how a shipped
//! policy was made).

use super::TrainSpec;
use crate::toml_reader::{ScenarioError, Table};
use myriad_core::model::ModelSpec;

/// Read `[train]` (defaults when absent); refused for a model that is not controllable.
pub(super) fn parse(root: &mut Table, model: &'static ModelSpec) -> Result<TrainSpec, ScenarioError> {
    let d = TrainSpec::default();
    let Some(mut t) = root.table("train")? else {
        return Ok(d);
    };
    if model.control.is_none() {
        return Err(t.error_here(format!(
            "model '{}' declares no actions and rewards: nothing to train",
            model.name
        )));
    }
    let positive = |x: f64| x > 0.0 && x.is_finite();
    let unit = |x: f64| (0.0..=1.0).contains(&x);
    let spec = TrainSpec {
        iterations: t.int("iterations", 1, 1_000_000)?.map_or(d.iterations, |v| v as u32),
        envs: t.int("envs", 1, 100_000)?.map_or(d.envs, |v| v as u32),
        agents: t.int("agents", 1, u32::MAX as i64)?.map(|v| v as u32),
        hidden: t.int("hidden", 1, 4096)?.map_or(d.hidden, |v| v as usize),
        layers: t.int("layers", 1, 8)?.map_or(d.layers, |v| v as usize),
        learning_rate: t
            .f64_where("learning_rate", positive, "a positive number")?
            .unwrap_or(d.learning_rate),
        gamma: t.f64_where("gamma", unit, "in [0, 1]")?.unwrap_or(d.gamma),
        lambda: t.f64_where("lambda", unit, "in [0, 1]")?.unwrap_or(d.lambda),
        clip: t.f64_where("clip", positive, "a positive number")?.unwrap_or(d.clip),
        epochs: t.int("epochs", 1, 1000)?.map_or(d.epochs, |v| v as u32),
        minibatch: t.int("minibatch", 1, 1 << 30)?.map_or(d.minibatch, |v| v as usize),
        entropy: t
            .f64_where("entropy", |x| x >= 0.0, "zero or more")?
            .unwrap_or(d.entropy),
        value_coef: t
            .f64_where("value_coef", |x| x >= 0.0, "zero or more")?
            .unwrap_or(d.value_coef),
        init_log_std: t
            .f64_where(
                "init_log_std",
                |x| x.is_finite() && x.abs() < 10.0,
                "between -10 and 10",
            )?
            .unwrap_or(d.init_log_std),
        central_critic: match t.string("critic")?.as_deref() {
            None | Some("central") => true,
            Some("local") => false,
            Some(other) => {
                return Err(t.error(
                    "critic",
                    format!("'{other}': use central (sees the swarm's mean observation) or local"),
                ))
            }
        },
        eval_seeds: t.int("eval_seeds", 1, 10_000)?.map_or(d.eval_seeds, |v| v as u32),
        checkpoint_every: t
            .int("checkpoint_every", 1, 1_000_000)?
            .map_or(d.checkpoint_every, |v| v as u32),
    };
    t.finish()?;
    Ok(spec)
}
