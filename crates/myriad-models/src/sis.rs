//! SIS on contact layers: the smallest complete model, and the example of
//! `docs/adding-a-model.md`.
//!
//! Each day an infectious agent infects each susceptible neighbour on a
//! network layer with probability `beta x layer weight` (on a well-mixed
//! layer a susceptible agent escapes each of the `I` infectious with
//! probability `1 - beta x weight`), then each infectious agent recovers,
//! susceptible again, with probability `gamma`. No immunity: the epidemic
//! settles at an endemic level when `beta` outweighs `gamma`.

use myriad_core::cross::Marks;
use myriad_core::metrics::MetricSpec;
use myriad_core::model::{ColumnView, Contacts, Layer, Model, ModelError, ModelInput, ModelSpec, Step};
use myriad_core::params::Limit::Inclusive;
use myriad_core::rng::{bernoulli_threshold, CounterRng, Stream};
use rayon::prelude::*;

myriad_core::params! {
    /// The SIS model's parameters.
    pub struct SisParams {
        /// Chance that an infectious agent infects a given susceptible contact on one day.
        beta: real(0.05, Inclusive(0.0), Inclusive(1.0)), "probability per contact per day";
        /// Chance that an infectious agent recovers (and is susceptible again) on one day.
        gamma: real(0.2, Inclusive(0.0), Inclusive(1.0)), "probability per day";
        /// Agents infectious on day 0, spread evenly over the ids.
        initial_infected: whole(10.0, Inclusive(0.0), Inclusive(u32::MAX as f64)), "agents";
    }
}

fn metrics() -> Vec<MetricSpec> {
    vec![
        MetricSpec::stock("S", "susceptible agents"),
        MetricSpec::stock("I", "infectious agents"),
        MetricSpec::flow("new_infections", "agents infected during the day"),
    ]
}

/// The registry entry.
pub static SIS: ModelSpec = ModelSpec {
    name: "sis",
    summary: "Discrete-time SIS epidemic on contact layers (the model of docs/adding-a-model.md)",
    description: "Susceptible agents are infected by infectious contacts (each contact, each day, with probability beta x layer weight); infectious agents recover with probability gamma per day and are susceptible again.",
    params: SisParams::specs,
    metrics,
    columns: &[],
    exclusive: &[],
    uses_layers: true,
    decisions: &[],
    states: &[],
    control: None,
    plots: &[],
    tables: &[crate::epidemic::WEEKLY],
    splits: false,
    build: |input| Sis::new(input).map(|m| Box::new(m) as Box<dyn Model>),
};

/// One infection flag per agent, and the contact layers.
#[derive(Clone)]
pub struct Sis {
    infectious: Vec<bool>,
    hit: Marks,
    layers: std::sync::Arc<Vec<Layer>>,
    rng: CounterRng,
    new_infections: u64,
}

impl Sis {
    fn new(input: ModelInput) -> Result<Sis, ModelError> {
        let n = input.population.size() as usize;
        crate::setup::check_layer_sizes(&input.layers, n as u32)?;
        let seeds = SisParams::read(&input.params).initial_infected as usize;
        if seeds > n {
            return Err(ModelError::Infeasible(format!(
                "cannot seed {seeds} infections among {n} agents"
            )));
        }
        let mut infectious = vec![false; n];
        for k in 0..seeds {
            infectious[k * n / seeds.max(1)] = true;
        }
        Ok(Sis {
            infectious,
            hit: Marks::new(n),
            layers: std::sync::Arc::new(input.layers),
            rng: CounterRng::new(input.seed, Stream::TRANSMISSION),
            new_infections: 0,
        })
    }

    /// Infectious agents mark the susceptible contacts they infect.
    fn transmit(&self, step: u32, p: &SisParams, weights: &[f64]) {
        let (infectious, hit, rng) = (&self.infectious, &self.hit, &self.rng);
        (0..infectious.len()).into_par_iter().for_each(|j| {
            if !infectious[j] {
                return;
            }
            for (l, layer) in self.layers.iter().enumerate() {
                let Contacts::Network(csr) = &layer.contacts else {
                    continue;
                };
                let threshold = bernoulli_threshold(p.beta * weights[l]);
                let (start, _) = csr.range(j as u32);
                for (k, &i) in csr.neighbours(j as u32).iter().enumerate() {
                    let slot = ((l as u64) << 48) | (start + k) as u64;
                    if !infectious[i as usize] && rng.at(step, j as u32, slot) < threshold {
                        hit.mark(i as usize);
                    }
                }
            }
        });
    }
}

impl Model for Sis {
    fn metrics(&self) -> Vec<MetricSpec> {
        metrics()
    }

    fn agent_count(&self) -> u32 {
        self.infectious.len() as u32
    }

    fn observe(&self, row: &mut [f64]) {
        let i = self.infectious.iter().filter(|&&x| x).count() as f64;
        row.copy_from_slice(&[self.infectious.len() as f64 - i, i, self.new_infections as f64]);
    }

    fn step(&mut self, cx: &mut Step, row: &mut [f64]) {
        let p = SisParams::read(cx.params);
        self.transmit(cx.step, &p, cx.layer_weights);
        // Well-mixed layers: the chance of escaping every infectious agent.
        let i = self.infectious.iter().filter(|&&x| x).count() as f64;
        let escape: f64 = self
            .layers
            .iter()
            .zip(cx.layer_weights)
            .fold(1.0, |e, (l, w)| match l.contacts {
                Contacts::WellMixed => e * (1.0 - (p.beta * w).clamp(0.0, 1.0)).powf(i),
                Contacts::Network(_) => e,
            });
        let mixed = bernoulli_threshold(1.0 - escape);
        let recover = bernoulli_threshold(p.gamma);
        let (step, hit, rng) = (cx.step, &self.hit, &self.rng);
        self.new_infections = self
            .infectious
            .par_iter_mut()
            .enumerate()
            .map(|(a, inf)| {
                let marked = hit.take(a);
                if *inf {
                    *inf = rng.at(step, a as u32, u64::MAX - 1) >= recover;
                    0
                } else {
                    *inf = marked || (mixed > 0 && rng.at(step, a as u32, u64::MAX) < mixed);
                    *inf as u64
                }
            })
            .sum();
        self.observe(row);
    }

    fn snapshot(&self) -> Box<dyn Model> {
        Box::new(self.clone())
    }

    fn agent_columns(&self) -> Vec<(&'static str, ColumnView<'_>)> {
        vec![("infectious", ColumnView::Bool(&self.infectious))]
    }
}

/// The endemic level of the well-mixed SIS chain with `n` agents: the
/// fraction `i` where new infections balance recoveries,
/// `(1 - i) (1 - (1 - beta w)^(i n)) = gamma i` (by bisection).
pub fn endemic_fraction(beta_w: f64, gamma: f64, n: f64) -> f64 {
    let f = |i: f64| (1.0 - i) * (1.0 - (1.0 - beta_w).powf(i * n)) - gamma * i;
    let (mut lo, mut hi) = (1e-9, 1.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if f(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}
