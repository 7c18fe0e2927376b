//! Controllable models: what an agent observes, the action it takes and
//! the reward it gets, declared by the model so that the same model runs
//! under its own rule, a hand-written controller, a learned policy or an
//! external training loop.
//!
//! Observations, actions and rewards are flat `f32` buffers in agent order
//! (`agents x dim`), the layout a batched policy and a vectorised
//! environment both want.

/// One component of an agent's action.
#[derive(Clone, Copy, Debug)]
pub struct ActionDoc {
    /// Name, e.g. `turn`.
    pub name: &'static str,
    /// Meaning and unit.
    pub doc: &'static str,
}

/// A hand-written controller: every agent's action (`out`, `agents x
/// act_dim`) from its observation (`obs`, `agents x obs_dim`) within the
/// bounds of each action component.
pub type Controller = fn(obs: &[f32], bounds: &[(f32, f32)], out: &mut [f32]);

/// A controllable model's declaration.
#[derive(Clone, Copy, Debug)]
pub struct ControlDoc {
    /// Names of the observation's components, in order.
    pub observation: &'static [&'static str],
    /// The action's components, in order (bounds come from the parameters:
    /// [`crate::model::Model::action_bounds`]).
    pub actions: &'static [ActionDoc],
    /// What an agent is rewarded for, in words.
    pub reward: &'static str,
    /// What the hand-written controller (`provider = "controller"`) does.
    pub controller_doc: &'static str,
    /// The hand-written controller: actions from observations alone
    /// (decentralised, like a policy), within the bounds.
    pub controller: Controller,
}

impl ControlDoc {
    /// Observation width.
    pub fn obs_dim(&self) -> usize {
        self.observation.len()
    }

    /// Action width.
    pub fn act_dim(&self) -> usize {
        self.actions.len()
    }
}

/// What a provider is given to choose every agent's action.
pub struct ActionRequest<'a> {
    /// The step being computed.
    pub step: u32,
    /// Observations, `agents x obs_dim`, agent order.
    pub obs: &'a [f32],
    /// Observation width.
    pub obs_dim: usize,
    /// Lower and upper bound of each action component.
    pub bounds: &'a [(f32, f32)],
    /// The model's declaration.
    pub doc: &'static ControlDoc,
}

impl ActionRequest<'_> {
    /// Number of agents.
    pub fn agents(&self) -> usize {
        self.obs.len() / self.obs_dim.max(1)
    }

    /// Action width.
    pub fn act_dim(&self) -> usize {
        self.bounds.len()
    }
}

/// The first agent whose values are not finite, as an error message
/// naming `what` (observation, action) and the component.
pub fn first_non_finite(values: &[f32], dim: usize, what: &str, names: &[&str]) -> Option<String> {
    let k = values.iter().position(|v| !v.is_finite())?;
    let (agent, c) = (k / dim.max(1), k % dim.max(1));
    Some(format!(
        "{what} of agent {agent} is not a finite number ({} = {})",
        names.get(c).copied().unwrap_or("?"),
        values[k]
    ))
}
