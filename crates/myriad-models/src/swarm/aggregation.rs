//! Aggregation: agents with bounded speed that should gather, a standard
//! mean-field control task.
//!
//! N agents in an L x L periodic box, L = sqrt(N / density), each seeing
//! the agents within radius r. Each step an agent moves by its velocity
//! (bounded by max_speed in length) plus a Gaussian jitter of standard
//! deviation `noise` on each axis. Its reward after the step is minus the
//! mean distance to the agents it sees, in units of r (minus 1 when it sees
//! none), minus move_cost x (speed / max_speed)². It observes the density
//! of its neighbourhood, the centroid of the agents it sees relative to
//! itself (in units of r) and the share of them in each of 8 sectors of 45
//! degrees. Its own rule is to stand still (only the jitter moves it).

use super::{normal, octant, ordered_mean, require_agents};
use myriad_core::control::{ActionDoc, ControlDoc};
use myriad_core::metrics::{Combine, MetricSpec};
use myriad_core::model::{ColumnView, Model, ModelError, ModelInput, ModelSpec, PlotPanel, Step};
use myriad_core::params::Limit::{Exclusive, Inclusive};
use myriad_core::params::ParamSet;
use myriad_core::rng::{CounterRng, Stream};
use myriad_core::space::{CellList, Torus};
use rayon::prelude::*;
use std::f64::consts::PI;

myriad_core::params! {
    /// The aggregation model's parameters.
    pub struct AggregationParams {
        /// Agents per unit area; the box side is sqrt(N / density).
        density: real(1.0, Exclusive(0.0), Inclusive(1e6)), "agents per unit area";
        /// Radius within which an agent sees others.
        radius: real(1.0, Exclusive(0.0), Inclusive(1e6)), "length";
        /// Largest distance an agent can move by its own velocity in a step.
        max_speed: real(0.1, Exclusive(0.0), Inclusive(1e3)), "length per step";
        /// Standard deviation of the jitter added to each coordinate each step.
        noise: real(0.02, Inclusive(0.0), Inclusive(1e3)), "length per step";
        /// Cost of moving at full speed for a step, subtracted from the reward (scales with speed²).
        move_cost: real(0.1, Inclusive(0.0), Inclusive(1e3)), "reward";
    }
}

fn metrics() -> Vec<MetricSpec> {
    vec![
        MetricSpec::value(
            "mean_distance",
            Combine::Mean {
                weight: "agents".into(),
            },
            "mean over agents that see someone of the mean distance to the agents they see, in units of r",
        ),
        MetricSpec::value(
            "alone",
            Combine::Mean {
                weight: "agents".into(),
            },
            "share of agents that see no other agent",
        ),
        MetricSpec::value(
            "neighbours",
            Combine::Mean {
                weight: "agents".into(),
            },
            "mean number of agents seen",
        ),
        MetricSpec::value(
            "speed",
            Combine::Mean {
                weight: "agents".into(),
            },
            "mean speed chosen, as a share of max_speed",
        ),
        MetricSpec::value(
            "reward",
            Combine::Mean {
                weight: "agents".into(),
            },
            "mean reward per agent",
        ),
    ]
}

/// Observation components.
pub const OBSERVATION: &[&str] = &[
    "neighbour_density",
    "centroid_x",
    "centroid_y",
    "sector_0",
    "sector_1",
    "sector_2",
    "sector_3",
    "sector_4",
    "sector_5",
    "sector_6",
    "sector_7",
];

/// Head for the centroid of the agents seen at full speed.
fn controller(obs: &[f32], bounds: &[(f32, f32)], out: &mut [f32]) {
    let v = bounds[0].1;
    for (o, a) in obs.chunks_exact(OBSERVATION.len()).zip(out.chunks_exact_mut(2)) {
        let (dx, dy) = (o[1], o[2]);
        let d = (dx * dx + dy * dy).sqrt();
        if d > 0.0 {
            a[0] = v * dx / d;
            a[1] = v * dy / d;
        } else {
            a[0] = 0.0;
            a[1] = 0.0;
        }
    }
}

/// The control declaration.
pub static CONTROL: ControlDoc = ControlDoc {
    observation: OBSERVATION,
    actions: &[
        ActionDoc {
            name: "vx",
            doc: "velocity along x, length per step (the speed is capped at max_speed)",
        },
        ActionDoc {
            name: "vy",
            doc: "velocity along y, length per step (the speed is capped at max_speed)",
        },
    ],
    reward: "minus the mean distance to the agents seen after the step, in units of r (minus 1 when alone), minus move_cost x (speed / max_speed)²",
    controller_doc: "head for the centroid of the agents seen at full speed (stand still when alone)",
    controller,
};

/// The registry entry.
pub static AGGREGATION: ModelSpec = ModelSpec {
    name: "aggregation",
    summary: "Agents with bounded speed in a periodic box that should gather with the agents they see; a mean-field control task",
    description: "Each step an agent moves by its chosen velocity (at most max_speed) plus Gaussian jitter and is rewarded by minus its mean distance to the agents within its radius (minus 1 when it sees none) minus a cost of moving. Uncontrolled agents stand still and only jitter.",
    params: AggregationParams::specs,
    metrics,
    columns: &[],
    exclusive: &[],
    uses_layers: false,
    decisions: &[],
    states: &[],
    control: Some(&CONTROL),
    plots: &[
        PlotPanel {
            ylabel: "distance (r)",
            metrics: &["mean_distance", "alone"],
            bars: false,
        },
        PlotPanel {
            ylabel: "reward",
            metrics: &["reward", "speed"],
            bars: false,
        },
    ],
    tables: &[],
    splits: false,
    build: |input| Aggregation::new(input).map(|m| Box::new(m) as Box<dyn Model>),
};

const JITTER: Stream = Stream::custom(42);
const OBS: usize = 11;

/// Positions in agent order and what each agent sees.
#[derive(Clone)]
pub struct Aggregation {
    x: Vec<f64>,
    y: Vec<f64>,
    cells: CellList,
    /// Per agent: agents seen and the mean distance to them (in r).
    seen: Vec<(u32, f64)>,
    obs: Vec<f32>,
    reward: Vec<f32>,
    speed: Vec<f64>,
    actions: Vec<f32>,
    expected_neighbours: f64,
    /// Buffers of the scan in cell order, kept between steps.
    sorted_seen: Vec<(u32, f64)>,
    sorted_obs: Vec<f32>,
    rank: Vec<u32>,
    rng: CounterRng,
}

impl Aggregation {
    fn new(input: ModelInput) -> Result<Aggregation, ModelError> {
        let n = input.population.size() as usize;
        require_agents(n)?;
        let p = AggregationParams::read(&input.params);
        let side = (n as f64 / p.density).sqrt();
        let torus = Torus { size: side };
        let cells = CellList::new(torus, p.radius, n).map_err(|e| {
            ModelError::Infeasible(format!(
                "params.radius: {e} (box side sqrt(N / density) = {side:.3} for {n} agents)"
            ))
        })?;
        let init = CounterRng::new(input.seed, Stream::SEEDING);
        let (x, y) = cells.uniform_points(n, &init);
        let mut m = Aggregation {
            x,
            y,
            cells,
            seen: vec![(0, 0.0); n],
            obs: vec![0.0; n * OBS],
            reward: vec![0.0; n],
            speed: vec![0.0; n],
            actions: vec![0.0; 2 * n],
            expected_neighbours: p.density * PI * p.radius * p.radius,
            sorted_seen: Vec::new(),
            sorted_obs: Vec::new(),
            rank: Vec::new(),
            rng: CounterRng::new(input.seed, JITTER),
        };
        m.scan();
        Ok(m)
    }

    /// What every agent sees of the current state.
    fn scan(&mut self) {
        self.cells.rebuild(&self.x, &self.y, |_| [0.0; 2]);
        let cells = &self.cells;
        let n = self.x.len();
        let r = cells.radius();
        let expected = self.expected_neighbours;
        let (sorted_seen, sorted_obs, rank) = (&mut self.sorted_seen, &mut self.sorted_obs, &mut self.rank);
        sorted_seen.resize(n, (0, 0.0));
        sorted_obs.resize(n * OBS, 0.0);
        sorted_seen
            .par_iter_mut()
            .zip(sorted_obs.par_chunks_mut(OBS))
            .enumerate()
            .with_min_len(1024)
            .for_each(|(k, (seen, o))| {
                let mut hist = [0u32; 8];
                let (mut cnt, mut sx, mut sy, mut sd) = (0u32, 0.0, 0.0, 0.0);
                cells.for_each_within(cells.x[k], cells.y[k], |j, dx, dy, d2| {
                    if j == k {
                        return;
                    }
                    cnt += 1;
                    sx += dx;
                    sy += dy;
                    sd += d2.sqrt();
                    hist[octant(dx, dy)] += 1;
                });
                let inv = if cnt > 0 { 1.0 / cnt as f64 } else { 0.0 };
                *seen = (cnt, sd * inv / r);
                o[0] = (cnt as f64 / expected) as f32;
                o[1] = (sx * inv / r) as f32;
                o[2] = (sy * inv / r) as f32;
                for b in 0..8 {
                    o[3 + b] = (hist[b] as f64 * inv) as f32;
                }
            });
        cells.ranks(rank);
        self.seen
            .par_iter_mut()
            .zip(self.obs.par_chunks_mut(OBS))
            .enumerate()
            .with_min_len(1024)
            .for_each(|(i, (s, o))| {
                let k = rank[i] as usize;
                *s = sorted_seen[k];
                o.copy_from_slice(&sorted_obs[k * OBS..(k + 1) * OBS]);
            });
    }
}

impl Model for Aggregation {
    fn metrics(&self) -> Vec<MetricSpec> {
        metrics()
    }

    fn agent_count(&self) -> u32 {
        self.x.len() as u32
    }

    fn observe(&self, row: &mut [f64]) {
        let n = self.x.len();
        let seen = &self.seen;
        let alone = ordered_mean(n, |i| (seen[i].0 == 0) as u8 as f64);
        let with = n as f64 * (1.0 - alone);
        let dist = if with > 0.0 {
            ordered_mean(n, |i| seen[i].1) * n as f64 / with
        } else {
            0.0
        };
        let neighbours = ordered_mean(n, |i| seen[i].0 as f64);
        let speed = ordered_mean(n, |i| self.speed[i]);
        let reward = ordered_mean(n, |i| self.reward[i] as f64);
        row.copy_from_slice(&[dist, alone, neighbours, speed, reward]);
    }

    fn step(&mut self, cx: &mut Step, row: &mut [f64]) {
        let p = AggregationParams::read(cx.params);
        let bounds = self.action_bounds(cx.params);
        let controlled = super::ask_actions(cx, &CONTROL, &self.obs, &bounds, &mut self.actions);
        let torus = self.cells.torus();
        let (actions, rng, step) = (&self.actions, &self.rng, cx.step);
        (&mut self.x, &mut self.y, &mut self.speed)
            .into_par_iter()
            .enumerate()
            .with_min_len(4096)
            .for_each(|(i, (x, y, speed))| {
                let (mut vx, mut vy) = if controlled {
                    (actions[2 * i] as f64, actions[2 * i + 1] as f64)
                } else {
                    (0.0, 0.0)
                };
                let v = (vx * vx + vy * vy).sqrt();
                if v > p.max_speed {
                    vx *= p.max_speed / v;
                    vy *= p.max_speed / v;
                }
                *speed = v.min(p.max_speed) / p.max_speed;
                let key = ((step as u64) << 32) | i as u64;
                let (jx, jy) = if p.noise > 0.0 {
                    (p.noise * normal(rng, key, 0), p.noise * normal(rng, key, 1))
                } else {
                    (0.0, 0.0)
                };
                *x = torus.wrap(*x + vx + jx);
                *y = torus.wrap(*y + vy + jy);
            });
        self.scan();
        let (seen, speed) = (&self.seen, &self.speed);
        self.reward
            .par_iter_mut()
            .enumerate()
            .with_min_len(4096)
            .for_each(|(i, r)| {
                let (cnt, d) = seen[i];
                let distance = if cnt > 0 { d } else { 1.0 };
                *r = (-distance - p.move_cost * speed[i] * speed[i]) as f32;
            });
        self.observe(row);
    }

    fn snapshot(&self) -> Box<dyn Model> {
        Box::new(self.clone())
    }

    fn agent_columns(&self) -> Vec<(&'static str, ColumnView<'_>)> {
        vec![("x", ColumnView::F64(&self.x)), ("y", ColumnView::F64(&self.y))]
    }

    fn reseed(&mut self, seed: u64) -> bool {
        self.rng = CounterRng::new(seed, JITTER);
        true
    }

    fn agent_observations(&self) -> Option<&[f32]> {
        Some(&self.obs)
    }

    fn agent_rewards(&self) -> Option<&[f32]> {
        Some(&self.reward)
    }

    fn action_bounds(&self, params: &ParamSet) -> Vec<(f32, f32)> {
        let v = AggregationParams::read(params).max_speed as f32;
        vec![(-v, v), (-v, v)]
    }
}
