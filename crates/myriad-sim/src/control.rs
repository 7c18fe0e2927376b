//! Controllable models from the outside: the provider behind
//! `[behaviour] provider = "controller" | "policy"`, and [`Env`], the
//! environment interface a training loop (and later Gymnasium and
//! PettingZoo) steps: `reset(seed)` gives observations, `step(actions)`
//! gives observations, rewards, terminations and truncations, all as flat
//! buffers in agent order.

use crate::build::{self, InputError};
use crate::error::{Error, Result};
use crate::scenario::{ControlChoice, Scenario};
use crate::simulation::{BuildInfo, Decisions, Simulation};
use myriad_core::behaviour::Behaviour;
use myriad_core::control::{first_non_finite, ControlDoc};
use myriad_policy::{ControllerBehaviour, PolicyBehaviour};
use std::sync::Arc;

/// The provider a scenario's `[behaviour]` asks for, for the run with `seed`.
pub fn provider(s: &Scenario, seed: u64) -> Box<dyn Behaviour> {
    match s.control.as_ref().expect("a control choice") {
        ControlChoice::Controller => Box::new(ControllerBehaviour::default()),
        ControlChoice::Policy { path, policy, sample } => Box::new(PolicyBehaviour::new(
            policy.clone(),
            path.display().to_string(),
            seed,
            *sample,
        )),
    }
}

/// The control declaration of the scenario's model, or an error naming it.
pub fn control_doc(s: &Scenario) -> Result<&'static ControlDoc> {
    s.model.control.ok_or_else(|| {
        InputError(format!(
            "{}: model '{}' declares no observations, actions or rewards",
            s.file.display(),
            s.model.name
        ))
        .into()
    })
}

/// One step's results, borrowed from the environment until its next step.
pub struct Transition<'a> {
    /// Observations of the new state, `agents x obs_dim`.
    pub obs: &'a [f32],
    /// Rewards of the step, one per agent.
    pub rewards: &'a [f32],
    /// Whether each agent's episode ended by the task (never, for the
    /// swarm tasks: agents do not die).
    pub terminated: &'a [bool],
    /// Whether each agent's episode was cut by the time limit (the
    /// scenario's `steps`).
    pub truncated: &'a [bool],
}

/// A controllable scenario as a vectorised environment whose entries are
/// its agents. Episodes last the scenario's `steps`; after a truncation
/// the caller resets (no automatic reset).
pub struct Env {
    scenario: Arc<Scenario>,
    pool: Arc<rayon::ThreadPool>,
    sim: Simulation,
    doc: &'static ControlDoc,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
}

impl Env {
    /// An environment over the scenario, its steps on `pool`.
    pub fn new(s: &Scenario, seed: u64, pool: Arc<rayon::ThreadPool>) -> Result<Env> {
        let doc = control_doc(s)?;
        let scenario = Arc::new(s.clone());
        let sim = Env::build(&scenario, seed, &pool)?;
        let n = sim.agents() as usize;
        Ok(Env {
            scenario,
            pool,
            sim,
            doc,
            terminated: vec![false; n],
            truncated: vec![false; n],
        })
    }

    fn build(s: &Scenario, seed: u64, pool: &Arc<rayon::ThreadPool>) -> Result<Simulation> {
        let population = pool.install(|| build::population(s))?;
        let (layers, reports) = pool.install(|| build::layers(s, &population))?;
        let info = BuildInfo {
            agents: population.size(),
            layers: reports,
            population_seconds: 0.0,
            layer_seconds: 0.0,
        };
        let mut sim = Simulation::from_parts(
            s,
            population,
            layers,
            seed,
            Decisions::External,
            None,
            pool.clone(),
            info,
        )?;
        if sim.observations().is_none() {
            return Err(Error::Run(format!("model '{}' gave no observations", s.model.name)));
        }
        let n = sim.agents() as usize;
        let d = s.model.control.map_or(0, |c| c.act_dim());
        sim.controller().expect("external").set_actions(vec![0.0; n * d]);
        Ok(sim)
    }

    /// Start a new episode from the scenario's initial state drawn with `seed`.
    pub fn reset(&mut self, seed: u64) -> Result<&[f32]> {
        self.sim = Env::build(&self.scenario, seed, &self.pool)?;
        self.terminated.fill(false);
        self.truncated.fill(false);
        Ok(self.sim.observations().expect("checked at build"))
    }

    /// Apply every agent's action (`agents x act_dim`) and step once.
    /// Actions that are not finite numbers, or of the wrong length, are an
    /// error naming the agent; nothing is stepped then.
    pub fn step(&mut self, actions: &[f32]) -> Result<Transition<'_>> {
        let (n, d) = (self.agents(), self.act_dim());
        if actions.len() != n * d {
            return Err(Error::Run(format!(
                "{} actions given for {n} agents x {d} components ({})",
                actions.len(),
                self.action_names().join(", ")
            )));
        }
        if let Some(e) = first_non_finite(actions, d, "action", &self.action_names()) {
            return Err(Error::Run(e));
        }
        self.sim
            .controller()
            .expect("external")
            .actions_mut()
            .expect("set at build")
            .copy_from_slice(actions);
        self.sim.step()?;
        if let Some(e) = self.sim.error() {
            return Err(Error::Run(format!("step {}: {e}", self.sim.step_index())));
        }
        let done = self.sim.step_index() >= self.scenario.steps;
        self.truncated.fill(done);
        Ok(Transition {
            obs: self.sim.observations().expect("checked at build"),
            rewards: self.sim.rewards().expect("a controllable model"),
            terminated: &self.terminated,
            truncated: &self.truncated,
        })
    }

    /// Observations of the current state.
    pub fn observations(&self) -> &[f32] {
        self.sim.observations().expect("checked at build")
    }

    /// Agents (vector entries).
    pub fn agents(&self) -> usize {
        self.sim.agents() as usize
    }

    /// Observation width.
    pub fn obs_dim(&self) -> usize {
        self.doc.obs_dim()
    }

    /// Action width.
    pub fn act_dim(&self) -> usize {
        self.doc.act_dim()
    }

    /// Names of the observation's components.
    pub fn observation_names(&self) -> &'static [&'static str] {
        self.doc.observation
    }

    /// Names of the action's components.
    pub fn action_names(&self) -> Vec<&'static str> {
        self.doc.actions.iter().map(|a| a.name).collect()
    }

    /// Bounds of each action component.
    pub fn action_bounds(&self) -> Vec<(f32, f32)> {
        self.sim.action_bounds()
    }

    /// The model's declaration.
    pub fn doc(&self) -> &'static ControlDoc {
        self.doc
    }

    /// The current metric row and its names.
    pub fn metrics(&self) -> (Vec<String>, &[f64]) {
        (
            self.sim.metrics().iter().map(|m| m.name.clone()).collect(),
            self.sim.row(),
        )
    }

    /// Steps taken in this episode.
    pub fn step_index(&self) -> u32 {
        self.sim.step_index()
    }

    /// The simulation underneath.
    pub fn simulation(&self) -> &Simulation {
        &self.sim
    }
}
