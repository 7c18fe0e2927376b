//! Decision providers for controllable models: a learned policy, and the
//! model's hand-written controller.

use crate::Policy;
use myriad_core::behaviour::{Behaviour, Observations};
use myriad_core::control::{first_non_finite, ActionRequest};
use myriad_core::rng::{CounterRng, Stream};
use std::sync::Arc;
use std::time::Instant;

/// `[behaviour] provider = "policy"`: every agent's action from one shared
/// policy, sampled with the run's counter-based randomness (or its mean).
#[derive(Clone)]
pub struct PolicyBehaviour {
    policy: Arc<Policy>,
    file: String,
    rng: Option<CounterRng>,
    agent_steps: u64,
    seconds: f64,
}

impl PolicyBehaviour {
    /// A provider for the run with `seed`; `sample` draws actions from the
    /// policy's distribution, else takes its mean.
    pub fn new(policy: Arc<Policy>, file: String, seed: u64, sample: bool) -> PolicyBehaviour {
        PolicyBehaviour {
            policy,
            file,
            rng: sample.then(|| CounterRng::new(seed, Stream::DECISION)),
            agent_steps: 0,
            seconds: 0.0,
        }
    }
}

impl Behaviour for PolicyBehaviour {
    fn probabilities(&mut self, _decision: &str, _obs: &Observations) -> Result<Option<Vec<f64>>, String> {
        Ok(None)
    }

    fn actions(&mut self, req: &ActionRequest, out: &mut [f32]) -> Result<bool, String> {
        if req.obs_dim != self.policy.obs_dim() || req.act_dim() != self.policy.act_dim() {
            return Err(format!(
                "policy {} takes {} observations and gives {} actions; the model has {} and {}",
                self.file,
                self.policy.obs_dim(),
                self.policy.act_dim(),
                req.obs_dim,
                req.act_dim()
            ));
        }
        if let Some(e) = first_non_finite(req.obs, req.obs_dim, "observation", req.doc.observation) {
            return Err(format!("{e}: the policy cannot act on it"));
        }
        let t = Instant::now();
        self.policy.act(req.obs, req.step, self.rng.as_ref(), req.bounds, out);
        self.seconds += t.elapsed().as_secs_f64();
        self.agent_steps += req.agents() as u64;
        Ok(true)
    }

    fn mentions(&self, _placeholder: &str) -> bool {
        false
    }

    fn report(&self) -> serde_json::Value {
        serde_json::json!({
            "provider": "policy",
            "file": self.file,
            "actions": if self.rng.is_some() { "sample" } else { "mean" },
            "agent_steps": self.agent_steps,
            "inference_seconds": self.seconds,
            "training": self.policy.spec.training,
        })
    }

    fn snapshot(&self) -> Box<dyn Behaviour> {
        Box::new(self.clone())
    }
}

/// `[behaviour] provider = "controller"`: the model's hand-written
/// controller, from the same observations a policy gets.
#[derive(Clone, Default)]
pub struct ControllerBehaviour {
    agent_steps: u64,
}

impl Behaviour for ControllerBehaviour {
    fn probabilities(&mut self, _decision: &str, _obs: &Observations) -> Result<Option<Vec<f64>>, String> {
        Ok(None)
    }

    fn actions(&mut self, req: &ActionRequest, out: &mut [f32]) -> Result<bool, String> {
        if let Some(e) = first_non_finite(req.obs, req.obs_dim, "observation", req.doc.observation) {
            return Err(format!("{e}: the controller cannot act on it"));
        }
        (req.doc.controller)(req.obs, req.bounds, out);
        self.agent_steps += req.agents() as u64;
        Ok(true)
    }

    fn mentions(&self, _placeholder: &str) -> bool {
        false
    }

    fn report(&self) -> serde_json::Value {
        serde_json::json!({"provider": "controller", "agent_steps": self.agent_steps})
    }

    fn snapshot(&self) -> Box<dyn Behaviour> {
        Box::new(self.clone())
    }
}
