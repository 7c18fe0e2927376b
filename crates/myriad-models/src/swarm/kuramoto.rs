//! The Kuramoto model of coupled oscillators, and synchronisation as a
//! control task.
//!
//! N oscillators with phases theta_i and natural frequencies omega_i follow
//! d theta_i / dt = omega_i + (K / N) sum_j sin(theta_j - theta_i) + u_i,
//! integrated by the explicit Euler scheme with step dt, plus phase noise
//! sqrt(2 D dt) x a standard normal per step when D > 0. All-to-all, the sum
//! is K R sin(psi - theta_i) (a well-mixed layer, or none) with the order parameter R e^{i psi} = (1/N)
//! sum_j e^{i theta_j}, so a step costs O(N). With a network layer
//! (`[[layers]]`), an oscillator couples to its neighbours instead:
//! (K / k_i) sum over its k_i neighbours. Natural frequencies are drawn from
//! a Lorentzian of half-width gamma (for which Kuramoto's theory gives the
//! stationary R = sqrt(1 - 2 gamma / K) above K_c = 2 gamma and R -> 0 below),
//! a Gaussian of standard deviation sigma (K_c = 2 / (pi g(0)) = sigma x
//! sqrt(8 / pi)), or all equal.
//!
//! As a control task, an oscillator adds its own frequency input u_i in
//! [-max_input, max_input]. It observes the mean field as it sees it (R
//! cos(psi - theta_i) and R sin(psi - theta_i), or the same over its
//! neighbours on a network) and its own natural frequency relative to the
//! mean, in units of the width. Its reward each step is R cos(psi - theta_i)
//! after the step (its contribution to synchrony; the mean over oscillators
//! is R²) minus input_cost x u_i².

use super::{normal, ordered_mean, polar_order, require_agents, wrap_angle};
use myriad_core::control::{ActionDoc, ControlDoc};
use myriad_core::metrics::{Combine, MetricSpec};
use myriad_core::model::{ColumnView, Contacts, Layer, Model, ModelError, ModelInput, ModelSpec, PlotPanel, Step};
use myriad_core::params::Limit::{Exclusive, Inclusive};
use myriad_core::params::ParamSet;
use myriad_core::rng::{CounterRng, Stream};
use rayon::prelude::*;
use statrs::distribution::{ContinuousCDF, Normal};
use std::f64::consts::PI;
use std::sync::Arc;

fn standard_normal() -> Normal {
    Normal::standard()
}

myriad_core::params! {
    /// The Kuramoto model's parameters.
    pub struct KuramotoParams {
        /// Coupling strength K.
        coupling: real(2.0, Inclusive(0.0), Inclusive(1e6)), "per unit time";
        /// Distribution of natural frequencies: "lorentzian" (half-width = width), "gaussian" (standard deviation = width) or "identical" (all equal to mean_frequency).
        frequencies: choice("lorentzian", &["lorentzian", "gaussian", "identical"]), "";
        /// Half-width gamma (Lorentzian) or standard deviation sigma (Gaussian) of the natural frequencies.
        width: real(0.5, Inclusive(0.0), Inclusive(1e6)), "radians per unit time";
        /// Centre of the natural frequencies.
        mean_frequency: real(0.0, Inclusive(-1e6), Inclusive(1e6)), "radians per unit time";
        /// How frequencies are drawn: "random" (independent draws) or "quantiles" (omega_i at the (i + 1/2)/N quantiles, the usual way to reduce finite-N disorder).
        sampling: choice("random", &["random", "quantiles"]), "";
        /// Time step of the explicit Euler integrator.
        dt: real(0.05, Exclusive(0.0), Inclusive(10.0)), "time units per step";
        /// Phase diffusion D: each step adds sqrt(2 D dt) x a standard normal.
        noise: real(0.0, Inclusive(0.0), Inclusive(1e6)), "radians² per unit time";
        /// Initial phases: "random" (uniform) or "aligned" (all 0).
        initial: choice("random", &["random", "aligned"]), "";
        /// Largest frequency input a controller or policy may apply.
        max_input: real(1.0, Exclusive(0.0), Inclusive(1e6)), "radians per unit time";
        /// Cost per squared unit of input, subtracted from the reward.
        input_cost: real(0.1, Inclusive(0.0), Inclusive(1e6)), "reward per (rad/time)²";
    }
}

fn metrics() -> Vec<MetricSpec> {
    vec![
        MetricSpec::value("order", Combine::Whole, "order parameter R = |sum of e^{i theta}| / N"),
        MetricSpec::value(
            "input",
            Combine::Mean {
                weight: "agents".into(),
            },
            "mean absolute control input (radians per unit time)",
        ),
        MetricSpec::value(
            "reward",
            Combine::Mean {
                weight: "agents".into(),
            },
            "mean reward per oscillator: R cos(psi - theta_i) - input_cost x u²",
        ),
    ]
}

/// Observation components.
pub const OBSERVATION: &[&str] = &["field_cos", "field_sin", "own_frequency"];

/// Steer toward the mean phase: u = max_input x sin(psi - theta_i).
fn controller(obs: &[f32], bounds: &[(f32, f32)], out: &mut [f32]) {
    let (lo, hi) = bounds[0];
    for (o, u) in obs.chunks_exact(OBSERVATION.len()).zip(out.iter_mut()) {
        let r = (o[0] * o[0] + o[1] * o[1]).sqrt();
        *u = if r > 0.0 { (hi * o[1] / r).clamp(lo, hi) } else { 0.0 };
    }
}

/// The control declaration.
pub static CONTROL: ControlDoc = ControlDoc {
    observation: OBSERVATION,
    actions: &[ActionDoc {
        name: "input",
        doc: "frequency input u added to d theta / dt, within [-max_input, max_input]",
    }],
    reward: "R cos(psi - theta_i) after the step (the oscillator's share of synchrony; the mean is R²) minus input_cost x u²",
    controller_doc: "steer toward the mean phase at full strength: u = max_input x sin(psi - theta_i)",
    controller,
};

/// The registry entry.
pub static KURAMOTO: ModelSpec = ModelSpec {
    name: "kuramoto",
    summary: "Coupled phase oscillators (Kuramoto), all-to-all in O(N) or on a contact layer; a synchronisation control task",
    description: "Each oscillator advances its phase at its natural frequency plus K times the mean of sin(theta_j - theta_i) over all oscillators (through the order parameter) or over its neighbours on a network layer, by explicit Euler steps of dt, with optional phase noise. Under a controller or policy each oscillator adds a bounded frequency input and is rewarded for its share of synchrony minus the input's cost.",
    params: KuramotoParams::specs,
    metrics,
    columns: &[],
    exclusive: &[],
    uses_layers: true,
    decisions: &[],
    states: &[],
    control: Some(&CONTROL),
    plots: &[
        PlotPanel {
            ylabel: "synchrony",
            metrics: &["order"],
            bars: false,
        },
        PlotPanel {
            ylabel: "reward",
            metrics: &["reward", "input"],
            bars: false,
        },
    ],
    tables: &[],
    splits: false,
    build: |input| Kuramoto::new(input).map(|m| Box::new(m) as Box<dyn Model>),
};

const NOISE: Stream = Stream::custom(41);
const OBS: usize = 3;

/// Phases and natural frequencies in agent order, and the field each
/// oscillator feels.
#[derive(Clone)]
pub struct Kuramoto {
    theta: Vec<f64>,
    omega: Vec<f64>,
    network: Option<Arc<Layer>>,
    /// Per oscillator: the field it feels (R cos, R sin in its own frame).
    field: Vec<[f64; 2]>,
    obs: Vec<f32>,
    reward: Vec<f32>,
    input: Vec<f64>,
    actions: Vec<f32>,
    scale: f64,
    rng: CounterRng,
}

/// Natural frequency number i of n.
fn frequency(p: &KuramotoParams, init: &CounterRng, i: usize, n: usize) -> f64 {
    let u = match p.sampling.as_str() {
        "quantiles" => (i as f64 + 0.5) / n as f64,
        // In (0, 1): the Lorentzian quantile is infinite at 0.
        _ => (init.uniform(i as u64, 3) + 0.5 / (1u64 << 53) as f64).min(1.0 - 1e-16),
    };
    let dev = match p.frequencies.as_str() {
        "lorentzian" => p.width * (PI * (u - 0.5)).tan(),
        "gaussian" => p.width * standard_normal().inverse_cdf(u),
        _ => 0.0,
    };
    p.mean_frequency + dev
}

impl Kuramoto {
    fn new(input: ModelInput) -> Result<Kuramoto, ModelError> {
        let n = input.population.size() as usize;
        require_agents(n)?;
        let p = KuramotoParams::read(&input.params);
        crate::setup::check_layer_sizes(&input.layers, n as u32)?;
        let mut network = None;
        for l in input.layers {
            match l.contacts {
                Contacts::Network(_) if network.is_none() => network = Some(Arc::new(l)),
                Contacts::Network(_) => {
                    return Err(ModelError::Infeasible(
                        "kuramoto couples over at most one network layer".into(),
                    ))
                }
                Contacts::WellMixed => {}
            }
        }
        let init = CounterRng::new(input.seed, Stream::SEEDING);
        let theta = (0..n)
            .map(|i| match p.initial.as_str() {
                "aligned" => 0.0,
                _ => wrap_angle((init.uniform(i as u64, 2) - 0.5) * 2.0 * PI),
            })
            .collect();
        let omega = (0..n).map(|i| frequency(&p, &init, i, n)).collect();
        let mut m = Kuramoto {
            theta,
            omega,
            network,
            field: vec![[0.0; 2]; n],
            obs: vec![0.0; n * OBS],
            reward: vec![0.0; n],
            input: vec![0.0; n],
            actions: vec![0.0; n],
            scale: if p.width > 0.0 { p.width } else { 1.0 },
            rng: CounterRng::new(input.seed, NOISE),
        };
        m.feel(p.mean_frequency);
        Ok(m)
    }

    /// The field every oscillator feels, and its observation.
    fn feel(&mut self, mean_frequency: f64) {
        let theta = &self.theta;
        match &self.network {
            None => {
                let (r, psi) = polar_order(theta);
                self.field
                    .par_iter_mut()
                    .enumerate()
                    .with_min_len(4096)
                    .for_each(|(i, f)| {
                        let (s, c) = (psi - theta[i]).sin_cos();
                        *f = [r * c, r * s];
                    });
            }
            Some(layer) => {
                let Contacts::Network(csr) = &layer.contacts else {
                    unreachable!("network layers only")
                };
                self.field
                    .par_iter_mut()
                    .enumerate()
                    .with_min_len(1024)
                    .for_each(|(i, f)| {
                        let nb = csr.neighbours(i as u32);
                        let (mut c, mut s) = (0.0, 0.0);
                        for &j in nb {
                            let (sj, cj) = (theta[j as usize] - theta[i]).sin_cos();
                            c += cj;
                            s += sj;
                        }
                        let k = nb.len().max(1) as f64;
                        *f = [c / k, s / k];
                    });
            }
        }
        let (field, omega, scale) = (&self.field, &self.omega, self.scale);
        self.obs
            .par_chunks_mut(OBS)
            .enumerate()
            .with_min_len(4096)
            .for_each(|(i, o)| {
                o[0] = field[i][0] as f32;
                o[1] = field[i][1] as f32;
                o[2] = ((omega[i] - mean_frequency) / scale) as f32;
            });
    }
}

impl Model for Kuramoto {
    fn metrics(&self) -> Vec<MetricSpec> {
        metrics()
    }

    fn agent_count(&self) -> u32 {
        self.theta.len() as u32
    }

    fn observe(&self, row: &mut [f64]) {
        let n = self.theta.len();
        let (r, _) = polar_order(&self.theta);
        let input = ordered_mean(n, |i| self.input[i].abs());
        let reward = ordered_mean(n, |i| self.reward[i] as f64);
        row.copy_from_slice(&[r, input, reward]);
    }

    fn step(&mut self, cx: &mut Step, row: &mut [f64]) {
        let p = KuramotoParams::read(cx.params);
        let bounds = self.action_bounds(cx.params);
        let controlled = super::ask_actions(cx, &CONTROL, &self.obs, &bounds, &mut self.actions);
        let (field, omega, actions, rng, step) = (&self.field, &self.omega, &self.actions, &self.rng, cx.step);
        let diffusion = (2.0 * p.noise * p.dt).sqrt();
        (&mut self.theta, &mut self.input)
            .into_par_iter()
            .enumerate()
            .with_min_len(4096)
            .for_each(|(i, (th, u))| {
                *u = if controlled {
                    (actions[i] as f64).clamp(-p.max_input, p.max_input)
                } else {
                    0.0
                };
                // The field's sine component in the oscillator's frame is
                // R sin(psi - theta_i): the coupling term over K.
                let mut next = *th + p.dt * (omega[i] + p.coupling * field[i][1] + *u);
                if diffusion > 0.0 {
                    next += diffusion * normal(rng, ((step as u64) << 32) | i as u64, 0);
                }
                *th = wrap_angle(next);
            });
        self.feel(p.mean_frequency);
        let (field, input) = (&self.field, &self.input);
        self.reward
            .par_iter_mut()
            .enumerate()
            .with_min_len(4096)
            .for_each(|(i, r)| *r = (field[i][0] - p.input_cost * input[i] * input[i]) as f32);
        self.observe(row);
    }

    fn snapshot(&self) -> Box<dyn Model> {
        Box::new(self.clone())
    }

    fn agent_columns(&self) -> Vec<(&'static str, ColumnView<'_>)> {
        vec![
            ("phase", ColumnView::F64(&self.theta)),
            ("frequency", ColumnView::F64(&self.omega)),
        ]
    }

    fn reseed(&mut self, seed: u64) -> bool {
        self.rng = CounterRng::new(seed, NOISE);
        true
    }

    fn agent_observations(&self) -> Option<&[f32]> {
        Some(&self.obs)
    }

    fn agent_rewards(&self) -> Option<&[f32]> {
        Some(&self.reward)
    }

    fn action_bounds(&self, params: &ParamSet) -> Vec<(f32, f32)> {
        let m = KuramotoParams::read(params).max_input as f32;
        vec![(-m, m)]
    }
}
