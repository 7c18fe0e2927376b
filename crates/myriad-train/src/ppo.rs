//! Proximal policy optimisation over many copies of a swarm: rollouts of
//! one episode per copy with the shared policy (every agent's trajectory is
//! a sample), generalised advantage estimation per agent, then epochs of
//! clipped-objective minibatch updates with Adam.

use crate::net::Mlp;
use candle_core::{Device, Tensor, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use myriad_core::rng::{CounterRng, Stream};
use myriad_policy::{Policy, PolicySpec};
use myriad_sim::control::Env;
use myriad_sim::scenario::TrainSpec;
use rayon::prelude::*;

type CResult<T> = candle_core::Result<T>;

/// The learner: actor, its log standard deviations, critic and optimiser.
pub struct Learner {
    /// Policy network (observation to action means).
    pub actor: Mlp,
    /// Log standard deviation per action component.
    pub log_std: candle_core::Var,
    /// Value network.
    pub critic: Mlp,
    opt: AdamW,
    dev: Device,
    central: bool,
}

/// What one iteration measured.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct IterationStats {
    /// Iteration number, from 1.
    pub iteration: u32,
    /// Agent-steps simulated so far.
    pub agent_steps: u64,
    /// Mean undiscounted return per agent over the iteration's episodes.
    pub mean_return: f64,
    /// Entropy of the action distribution (nats, summed over components).
    pub entropy: f64,
    /// Mean value loss over the updates.
    pub value_loss: f64,
    /// Mean clipped policy loss over the updates.
    pub policy_loss: f64,
    /// Mean approximate KL divergence between old and new policy.
    pub approx_kl: f64,
    /// Seconds of the iteration (rollout and update).
    pub seconds: f64,
}

impl Learner {
    /// Fresh networks for `obs_dim` observations and `act_dim` actions.
    pub fn new(spec: &TrainSpec, obs_dim: usize, act_dim: usize, seed: u64) -> CResult<Learner> {
        let dev = Device::Cpu;
        let rng = CounterRng::new(seed, Stream::custom(90));
        let mut sizes = vec![obs_dim];
        sizes.extend(std::iter::repeat_n(spec.hidden, spec.layers));
        let mut actor_sizes = sizes.clone();
        actor_sizes.push(act_dim);
        let mut critic_sizes = sizes;
        if spec.central_critic {
            critic_sizes[0] = 2 * obs_dim;
        }
        critic_sizes.push(1);
        let actor = Mlp::new(&actor_sizes, &rng, 1, 0.01, &dev)?;
        let critic = Mlp::new(&critic_sizes, &rng, 2, 1.0, &dev)?;
        let log_std = candle_core::Var::from_tensor(&Tensor::from_vec(
            vec![spec.init_log_std as f32; act_dim],
            act_dim,
            &dev,
        )?)?;
        Learner::assemble(spec, actor, log_std, critic, dev)
    }

    /// A learner continuing from saved networks.
    pub fn resume(spec: &TrainSpec, policy: &Policy, critic: &[myriad_policy::Dense]) -> CResult<Learner> {
        let dev = Device::Cpu;
        let actor = Mlp::from_dense(&policy.layers, &dev)?;
        let critic = Mlp::from_dense(critic, &dev)?;
        let log_std =
            candle_core::Var::from_tensor(&Tensor::from_vec(policy.log_std.clone(), policy.log_std.len(), &dev)?)?;
        Learner::assemble(spec, actor, log_std, critic, dev)
    }

    fn assemble(spec: &TrainSpec, actor: Mlp, log_std: candle_core::Var, critic: Mlp, dev: Device) -> CResult<Learner> {
        let mut vars = actor.vars();
        vars.push(log_std.clone());
        vars.extend(critic.vars());
        let opt = AdamW::new(
            vars,
            ParamsAdamW {
                lr: spec.learning_rate,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
            },
        )?;
        Ok(Learner {
            actor,
            log_std,
            critic,
            opt,
            dev,
            central: spec.central_critic,
        })
    }

    /// The current policy, for inference.
    pub fn policy(&self, spec: PolicySpec) -> CResult<Policy> {
        Ok(Policy {
            spec,
            layers: self.actor.to_dense()?,
            log_std: self.log_std.as_tensor().to_vec1()?,
        })
    }

    /// One iteration: an episode of every copy, then the updates.
    pub fn iterate(
        &mut self,
        envs: &mut [Env],
        spec: &TrainSpec,
        policy: &Policy,
        seed: u64,
        iteration: u32,
    ) -> CResult<IterationStats> {
        let t0 = std::time::Instant::now();
        let batch = rollout(envs, policy, seed, iteration).map_err(candle_core::Error::msg)?;
        let (obs_dim, act_dim) = (policy.obs_dim(), policy.act_dim());
        let (e_count, steps, n) = (envs.len(), batch.steps, batch.agents);
        // Critic inputs of every state, the final one included.
        let critic_in = |e: usize, t: usize| -> Vec<f32> {
            let obs = &batch.obs[e][t];
            if !self.central {
                return obs.clone();
            }
            let mean = &batch.mean_obs[e][t];
            let mut v = Vec::with_capacity(n * 2 * obs_dim);
            for row in obs.chunks_exact(obs_dim) {
                v.extend_from_slice(row);
                v.extend_from_slice(mean);
            }
            v
        };
        let cdim = if self.central { 2 * obs_dim } else { obs_dim };
        // Values of every state (no gradient): per copy, (steps + 1) x n.
        let mut values = Vec::with_capacity(e_count);
        let mut critic_rows = Vec::with_capacity(e_count);
        for e in 0..e_count {
            let mut all = Vec::with_capacity((steps + 1) * n * cdim);
            for t in 0..=steps {
                all.extend(critic_in(e, t));
            }
            let x = Tensor::from_vec(all, ((steps + 1) * n, cdim), &self.dev)?;
            values.push(self.critic.forward(&x)?.flatten_all()?.to_vec1::<f32>()?);
            critic_rows.push(x);
        }
        // GAE per agent, bootstrapping the truncated end with its value.
        let m = e_count * steps * n;
        let mut adv = vec![0.0f32; m];
        let mut ret = vec![0.0f32; m];
        let (g, l) = (spec.gamma as f32, spec.lambda as f32);
        for (e, (vals, rews)) in values.iter().zip(&batch.rewards).enumerate() {
            for i in 0..n {
                let mut a = 0.0f32;
                for t in (0..steps).rev() {
                    let v = vals[t * n + i];
                    let next = vals[(t + 1) * n + i];
                    let delta = rews[t][i] + g * next - v;
                    a = delta + g * l * a;
                    let k = (e * steps + t) * n + i;
                    adv[k] = a;
                    ret[k] = a + v;
                }
            }
        }
        // Flat training samples.
        let mut obs_flat = Vec::with_capacity(m * obs_dim);
        let mut act_flat = Vec::with_capacity(m * act_dim);
        for e in 0..e_count {
            for t in 0..steps {
                obs_flat.extend_from_slice(&batch.obs[e][t]);
                act_flat.extend_from_slice(&batch.actions[e][t]);
            }
        }
        let obs_t = Tensor::from_vec(obs_flat, (m, obs_dim), &self.dev)?;
        let act_t = Tensor::from_vec(act_flat, (m, act_dim), &self.dev)?;
        let crit_t = Tensor::cat(
            &critic_rows
                .iter()
                .map(|x| x.narrow(0, 0, steps * n))
                .collect::<CResult<Vec<_>>>()?,
            0,
        )?;
        let adv_t = Tensor::from_vec(adv, m, &self.dev)?;
        let ret_t = Tensor::from_vec(ret, m, &self.dev)?;
        let old_logp = self.log_prob(&obs_t, &act_t)?.detach();
        let mean_return = batch.returns.iter().sum::<f64>() / batch.returns.len() as f64;

        let rng = CounterRng::new(seed, Stream::custom(91));
        let mb = spec.minibatch.min(m).max(1);
        let (mut vl, mut pl, mut kl, mut updates) = (0.0, 0.0, 0.0, 0u32);
        for epoch in 0..spec.epochs {
            let order = permutation(m, &rng, ((iteration as u64) << 32) | epoch as u64);
            for chunk in order.chunks(mb) {
                let idx = Tensor::from_vec(chunk.to_vec(), chunk.len(), &self.dev)?;
                let o = obs_t.index_select(&idx, 0)?;
                let a = act_t.index_select(&idx, 0)?;
                let c = crit_t.index_select(&idx, 0)?;
                let adv = adv_t.index_select(&idx, 0)?;
                let adv = normalise(&adv)?;
                let ret = ret_t.index_select(&idx, 0)?;
                let old = old_logp.index_select(&idx, 0)?;
                let logp = self.log_prob(&o, &a)?;
                let ratio = (&logp - &old)?.exp()?;
                let clipped = ratio.clamp(1.0 - spec.clip as f32, 1.0 + spec.clip as f32)?;
                let surrogate = (&ratio * &adv)?.minimum(&(&clipped * &adv)?)?;
                let policy_loss = surrogate.mean_all()?.neg()?;
                let v = self.critic.forward(&c)?.flatten_all()?;
                let value_loss = (&v - &ret)?.sqr()?.mean_all()?;
                let entropy = self.entropy()?;
                let loss = ((&policy_loss + (&value_loss * spec.value_coef)?)? - (&entropy * spec.entropy)?)?;
                self.opt.backward_step(&loss)?;
                vl += value_loss.to_scalar::<f32>()? as f64;
                pl += policy_loss.to_scalar::<f32>()? as f64;
                kl += (&old - &logp)?.mean_all()?.to_scalar::<f32>()? as f64;
                updates += 1;
            }
        }
        let u = updates.max(1) as f64;
        Ok(IterationStats {
            iteration,
            agent_steps: (m) as u64,
            mean_return,
            entropy: self.entropy()?.to_scalar::<f32>()? as f64,
            value_loss: vl / u,
            policy_loss: pl / u,
            approx_kl: kl / u,
            seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// Log-density of actions under the Gaussian policy, per row.
    fn log_prob(&self, obs: &Tensor, act: &Tensor) -> CResult<Tensor> {
        let mean = self.actor.forward(obs)?;
        let log_std = self.log_std.as_tensor();
        let z = act.broadcast_sub(&mean)?.broadcast_div(&log_std.exp()?)?;
        let per = ((z.sqr()? * -0.5)?.broadcast_sub(log_std)? - 0.5 * (2.0 * std::f64::consts::PI).ln())?;
        per.sum(D::Minus1)
    }

    /// Entropy of the Gaussian, summed over components.
    fn entropy(&self) -> CResult<Tensor> {
        let k = 0.5 * (2.0 * std::f64::consts::PI * std::f64::consts::E).ln();
        (self.log_std.as_tensor() + k)?.sum_all()
    }
}

/// Zero mean, unit standard deviation.
fn normalise(x: &Tensor) -> CResult<Tensor> {
    let mean = x.mean_all()?;
    let centred = x.broadcast_sub(&mean)?;
    let std = (centred.sqr()?.mean_all()? + 1e-8)?.sqrt()?;
    centred.broadcast_div(&std)
}

/// A permutation of `0..m` (Fisher-Yates on counter draws keyed by `key`).
fn permutation(m: usize, rng: &CounterRng, key: u64) -> Vec<u32> {
    let mut p: Vec<u32> = (0..m as u32).collect();
    for i in (1..m).rev() {
        let j = rng.below(key, i as u64, i as u64 + 1) as usize;
        p.swap(i, j);
    }
    p
}

/// One episode of every copy.
pub struct Batch {
    /// Per copy, per step (the final state included): observations.
    pub obs: Vec<Vec<Vec<f32>>>,
    /// Per copy, per step: the swarm's mean observation.
    pub mean_obs: Vec<Vec<Vec<f32>>>,
    /// Per copy, per step: the actions drawn (before clipping).
    pub actions: Vec<Vec<Vec<f32>>>,
    /// Per copy, per step: rewards.
    pub rewards: Vec<Vec<Vec<f32>>>,
    /// Per copy: mean undiscounted return per agent.
    pub returns: Vec<f64>,
    /// Steps per episode.
    pub steps: usize,
    /// Agents per copy.
    pub agents: usize,
}

/// The seed of copy `e`'s episode in `iteration` (training seeds; the
/// evaluation uses seeds far from them).
pub fn episode_seed(seed: u64, iteration: u32, e: usize) -> u64 {
    CounterRng::new(seed, Stream::custom(92)).draw(iteration as u64, e as u64) >> 1
}

/// Run one episode of every copy in parallel with `policy` (actions
/// sampled from it, not clipped: the model clips what it applies).
pub fn rollout(envs: &mut [Env], policy: &Policy, seed: u64, iteration: u32) -> Result<Batch, String> {
    let results: Vec<_> = envs
        .par_iter_mut()
        .enumerate()
        .map(|(e, env)| -> Result<_, String> {
            let s = episode_seed(seed, iteration, e);
            let rng = CounterRng::new(s, Stream::DECISION);
            let obs0 = env.reset(s).map_err(|e| e.to_string())?.to_vec();
            let (n, d) = (env.agents(), env.act_dim());
            let steps = env.simulation().scenario().steps as usize;
            let mut obs = vec![obs0];
            let mut acts = Vec::with_capacity(steps);
            let mut rews = Vec::with_capacity(steps);
            let mut total = 0.0f64;
            for t in 0..steps {
                let mut a = vec![0.0f32; n * d];
                policy.act(&obs[t], t as u32 + 1, Some(&rng), &[], &mut a);
                let tr = env.step(&a).map_err(|e| e.to_string())?;
                total += tr.rewards.iter().map(|&r| r as f64).sum::<f64>();
                rews.push(tr.rewards.to_vec());
                obs.push(tr.obs.to_vec());
                acts.push(a);
            }
            let od = env.obs_dim();
            let mean_obs = obs
                .iter()
                .map(|o| {
                    let mut m = vec![0.0f32; od];
                    for row in o.chunks_exact(od) {
                        for k in 0..od {
                            m[k] += row[k];
                        }
                    }
                    m.iter_mut().for_each(|x| *x /= n as f32);
                    m
                })
                .collect();
            Ok((obs, mean_obs, acts, rews, total / n as f64, steps, n))
        })
        .collect();
    let mut b = Batch {
        obs: vec![],
        mean_obs: vec![],
        actions: vec![],
        rewards: vec![],
        returns: vec![],
        steps: 0,
        agents: 0,
    };
    for r in results {
        let (o, mo, a, rw, ret, steps, n) = r?;
        b.obs.push(o);
        b.mean_obs.push(mo);
        b.actions.push(a);
        b.rewards.push(rw);
        b.returns.push(ret);
        b.steps = steps;
        b.agents = n;
    }
    Ok(b)
}
