//! The Vicsek model (Vicsek, Czirók, Ben-Jacob, Cohen and Shochet, "Novel
//! type of phase transition in a system of self-driven particles", PRL 75,
//! 1226, 1995), and heading alignment as a control task.
//!
//! N agents move in an L x L periodic box, L = sqrt(N / density), at a
//! constant speed v. Each step every agent's heading becomes the direction
//! of the sum of the unit vectors of all agents within radius r of it (itself
//! included) plus a noise drawn uniformly from [-eta/2, eta/2]; then it moves
//! v along its new heading. All agents update from the state before the
//! step. The metric is the polar order v_a = |sum of e^{i theta}| / N: near 1
//! when headings align, about sqrt(pi) / (2 sqrt(N)) when they are random.
//!
//! As a control task, an agent chooses its own turn `a` in
//! [-max_turn, max_turn] instead of the alignment rule; the noise and the
//! move are unchanged. It observes the density of its neighbourhood, the
//! mean of its neighbours' headings relative to its own (cos and sin) and a
//! histogram of those relative headings in 8 sectors of 45 degrees. Its
//! reward each step is the mean cosine between its new heading and its
//! neighbours' (0 alone) minus turn_cost x a², so that aligning pays and
//! turning costs. The classic rule's turn (to the local mean heading) is
//! charged the same cost, so the rule, a hand-written controller and a
//! policy are compared on one reward.

use super::{octant, ordered_mean, polar_order, require_agents, wrap_angle};
use myriad_core::control::{ActionDoc, ControlDoc};
use myriad_core::metrics::{Combine, MetricSpec};
use myriad_core::model::{ColumnView, Model, ModelError, ModelInput, ModelSpec, PlotPanel, Step};
use myriad_core::params::Limit::{Exclusive, Inclusive};
use myriad_core::params::ParamSet;
use myriad_core::rng::{to_unit, CounterRng, Stream};
use myriad_core::space::{CellList, Torus};
use rayon::prelude::*;
use std::f64::consts::PI;

myriad_core::params! {
    /// The Vicsek model's parameters.
    pub struct VicsekParams {
        /// Agents per unit area, rho = N / L²; the box side is sqrt(N / density).
        density: real(4.0, Exclusive(0.0), Inclusive(1e6)), "agents per unit area";
        /// Distance moved per step.
        speed: real(0.03, Inclusive(0.0), Inclusive(1e3)), "length per step";
        /// Interaction radius r: an agent aligns with the agents within it.
        radius: real(1.0, Exclusive(0.0), Inclusive(1e6)), "length";
        /// Width eta of the uniform heading noise, drawn from [-eta/2, eta/2] each step.
        noise: real(2.0, Inclusive(0.0), Inclusive(2.0 * PI)), "radians";
        /// Initial headings: "random" (uniform) or "aligned" (all 0).
        initial: choice("random", &["random", "aligned"]), "";
        /// Largest turn a controller or policy may make in one step (the rule is not bounded).
        max_turn: real(PI / 4.0, Exclusive(0.0), Inclusive(PI)), "radians per step";
        /// Cost per squared radian of turning, subtracted from the reward.
        turn_cost: real(0.2, Inclusive(0.0), Inclusive(1e3)), "reward per rad²";
    }
}

fn metrics() -> Vec<MetricSpec> {
    vec![
        MetricSpec::value("order", Combine::Whole, "polar order v_a = |sum of e^{i theta}| / N"),
        MetricSpec::value(
            "alignment",
            Combine::Mean {
                weight: "agents".into(),
            },
            "mean over agents of the mean cosine between an agent's heading and its neighbours'",
        ),
        MetricSpec::value(
            "turn",
            Combine::Mean {
                weight: "agents".into(),
            },
            "mean absolute turn made by the rule, controller or policy (radians)",
        ),
        MetricSpec::value(
            "reward",
            Combine::Mean {
                weight: "agents".into(),
            },
            "mean reward per agent: alignment - turn_cost x turn²",
        ),
    ]
}

/// Observation components.
pub const OBSERVATION: &[&str] = &[
    "neighbour_density",
    "mean_cos",
    "mean_sin",
    "sector_0",
    "sector_1",
    "sector_2",
    "sector_3",
    "sector_4",
    "sector_5",
    "sector_6",
    "sector_7",
];

/// Turn toward the neighbours' mean heading, as far as the bound allows.
fn controller(obs: &[f32], bounds: &[(f32, f32)], out: &mut [f32]) {
    let (lo, hi) = bounds[0];
    for (o, a) in obs.chunks_exact(OBSERVATION.len()).zip(out.iter_mut()) {
        let (c, s) = (o[1], o[2]);
        *a = if c == 0.0 && s == 0.0 {
            0.0
        } else {
            s.atan2(c).clamp(lo, hi)
        };
    }
}

/// The control declaration.
pub static CONTROL: ControlDoc = ControlDoc {
    observation: OBSERVATION,
    actions: &[ActionDoc {
        name: "turn",
        doc: "change of heading before the noise, radians, within [-max_turn, max_turn]",
    }],
    reward:
        "mean cosine between the agent's new heading and its neighbours' headings (0 with none) minus turn_cost x turn²",
    controller_doc:
        "turn toward the neighbours' mean heading as far as max_turn allows (the Vicsek rule with bounded turning)",
    controller,
};

/// The registry entry.
pub static VICSEK: ModelSpec = ModelSpec {
    name: "vicsek",
    summary: "Self-propelled agents aligning with their neighbours in a periodic box (Vicsek et al. 1995); a heading-alignment control task",
    description: "Agents move at constant speed in a periodic box; each step an agent's heading becomes the direction of the summed unit vectors of the agents within its radius (itself included) plus uniform noise in [-eta/2, eta/2], then it moves. Under a controller or policy an agent chooses its turn instead (bounded by max_turn) and is rewarded for alignment with its neighbours minus a turning cost.",
    params: VicsekParams::specs,
    metrics,
    columns: &[],
    exclusive: &[],
    uses_layers: false,
    decisions: &[],
    states: &[],
    control: Some(&CONTROL),
    plots: &[
        PlotPanel {
            ylabel: "order",
            metrics: &["order", "alignment"],
            bars: false,
        },
        PlotPanel {
            ylabel: "reward",
            metrics: &["reward", "turn"],
            bars: false,
        },
    ],
    tables: &[],
    splits: false,
    build: |input| Vicsek::new(input).map(|m| Box::new(m) as Box<dyn Model>),
};

const NOISE: Stream = Stream::custom(40);
const OBS: usize = 11;

/// Positions and headings, in agent order, and the neighbourhoods of the
/// current state.
#[derive(Clone)]
pub struct Vicsek {
    x: Vec<f64>,
    y: Vec<f64>,
    theta: Vec<f64>,
    cells: CellList,
    /// Per agent: neighbours (itself excluded) and the sums of their
    /// relative heading vectors, of the current state.
    local: Vec<[f64; 3]>,
    obs: Vec<f32>,
    reward: Vec<f32>,
    turn: Vec<f64>,
    actions: Vec<f32>,
    expected_neighbours: f64,
    /// Whether `obs` describes the current state (uncontrolled runs skip it).
    observed: bool,
    /// Buffers of the scan, kept between steps.
    scratch: Scratch,
    rng: CounterRng,
}

impl Vicsek {
    fn new(input: ModelInput) -> Result<Vicsek, ModelError> {
        let n = input.population.size() as usize;
        require_agents(n)?;
        let p = VicsekParams::read(&input.params);
        let side = (n as f64 / p.density).sqrt();
        let torus = Torus { size: side };
        let cells = CellList::new(torus, p.radius, n).map_err(|e| {
            ModelError::Infeasible(format!(
                "params.radius: {e} (box side sqrt(N / density) = {side:.3} for {n} agents)"
            ))
        })?;
        let init = CounterRng::new(input.seed, Stream::SEEDING);
        let (x, y) = cells.uniform_points(n, &init);
        let theta = (0..n)
            .map(|i| match p.initial.as_str() {
                "aligned" => 0.0,
                _ => wrap_angle((init.uniform(i as u64, 2) - 0.5) * 2.0 * PI),
            })
            .collect();
        let mut m = Vicsek {
            x,
            y,
            theta,
            cells,
            local: vec![[0.0; 3]; n],
            obs: vec![0.0; n * OBS],
            reward: vec![0.0; n],
            turn: vec![0.0; n],
            actions: vec![0.0; n],
            expected_neighbours: p.density * PI * p.radius * p.radius,
            observed: false,
            scratch: Scratch::default(),
            rng: CounterRng::new(input.seed, NOISE),
        };
        m.scan(true);
        Ok(m)
    }

    /// Rebuild the cell list and read every agent's neighbourhood (and,
    /// when `observe`, its observation).
    fn scan(&mut self, observe: bool) {
        self.observed = observe;
        let theta = &self.theta;
        self.cells.rebuild(&self.x, &self.y, |i| {
            let (s, c) = theta[i].sin_cos();
            [c, s]
        });
        let cells = &self.cells;
        let n = self.x.len();
        // Visit agents in cell order (neighbour reads stay in cache), keep
        // the results by sorted index, then put them back in agent order.
        let Scratch {
            local: sorted_local,
            obs: sorted_obs,
            rank,
        } = &mut self.scratch;
        sorted_local.resize(n, [0.0; 3]);
        if observe {
            sorted_obs.resize(n * OBS, 0.0);
        }
        let expected = self.expected_neighbours;
        let work = |k: usize, local: &mut [f64; 3], obs: Option<&mut [f32]>| {
            let [ci, si] = cells.payload[k];
            let (mut cnt, mut sc, mut ss) = (0u32, 0.0, 0.0);
            match obs {
                None => cells.for_each_within(cells.x[k], cells.y[k], |j, _, _, _| {
                    let [cj, sj] = cells.payload[j];
                    cnt += 1;
                    // Neighbour's heading relative to this agent's.
                    sc += cj * ci + sj * si;
                    ss += sj * ci - cj * si;
                }),
                Some(o) => {
                    let mut hist = [0u32; 8];
                    cells.for_each_within(cells.x[k], cells.y[k], |j, _, _, _| {
                        let [cj, sj] = cells.payload[j];
                        let (c, s) = (cj * ci + sj * si, sj * ci - cj * si);
                        cnt += 1;
                        sc += c;
                        ss += s;
                        hist[octant(c, s)] += 1;
                    });
                    // Itself was counted: relative heading 0, sector 0.
                    let n = cnt - 1;
                    let (c, s) = (sc - 1.0, ss);
                    hist[0] -= 1;
                    let inv = if n > 0 { 1.0 / n as f64 } else { 0.0 };
                    o[0] = (n as f64 / expected) as f32;
                    o[1] = (c * inv) as f32;
                    o[2] = (s * inv) as f32;
                    for b in 0..8 {
                        o[3 + b] = (hist[b] as f64 * inv) as f32;
                    }
                }
            }
            // Without itself: its own unit vector adds (1, 0) in its frame.
            *local = [(cnt - 1) as f64, sc - 1.0, ss];
        };
        if observe {
            sorted_local
                .par_iter_mut()
                .zip(sorted_obs.par_chunks_mut(OBS))
                .enumerate()
                .with_min_len(1024)
                .for_each(|(k, (l, o))| work(k, l, Some(o)));
        } else {
            sorted_local
                .par_iter_mut()
                .enumerate()
                .with_min_len(1024)
                .for_each(|(k, l)| work(k, l, None));
        }
        cells.ranks(rank);
        self.local
            .par_iter_mut()
            .enumerate()
            .with_min_len(4096)
            .for_each(|(i, l)| *l = sorted_local[rank[i] as usize]);
        if observe {
            self.obs
                .par_chunks_mut(OBS)
                .enumerate()
                .with_min_len(1024)
                .for_each(|(i, o)| {
                    let k = rank[i] as usize;
                    o.copy_from_slice(&sorted_obs[k * OBS..(k + 1) * OBS]);
                });
        }
    }
}

/// Per-step buffers in cell order, and each agent's place in it.
#[derive(Clone, Default)]
struct Scratch {
    local: Vec<[f64; 3]>,
    obs: Vec<f32>,
    rank: Vec<u32>,
}

impl Model for Vicsek {
    fn metrics(&self) -> Vec<MetricSpec> {
        metrics()
    }

    fn agent_count(&self) -> u32 {
        self.x.len() as u32
    }

    fn observe(&self, row: &mut [f64]) {
        let n = self.x.len();
        let (order, _) = polar_order(&self.theta);
        let local = &self.local;
        let alignment = ordered_mean(n, |i| {
            let [c, sc, _] = local[i];
            if c > 0.0 {
                sc / c
            } else {
                0.0
            }
        });
        let turn = ordered_mean(n, |i| self.turn[i].abs());
        let reward = ordered_mean(n, |i| self.reward[i] as f64);
        row.copy_from_slice(&[order, alignment, turn, reward]);
    }

    fn step(&mut self, cx: &mut Step, row: &mut [f64]) {
        let p = VicsekParams::read(cx.params);
        let bounds = self.action_bounds(cx.params);
        let controlled = super::ask_actions(cx, &CONTROL, &self.obs, &bounds, &mut self.actions);
        let torus = self.cells.torus();
        let (rng, step, local, actions) = (&self.rng, cx.step, &self.local, &self.actions);
        let max_turn = p.max_turn;
        (&mut self.theta, &mut self.x, &mut self.y, &mut self.turn)
            .into_par_iter()
            .enumerate()
            .with_min_len(4096)
            .for_each(|(i, (th, x, y, turn))| {
                *turn = if controlled {
                    (actions[i] as f64).clamp(-max_turn, max_turn)
                } else {
                    // The rule: the direction of the summed unit vectors,
                    // itself included, in the agent's own frame.
                    let [_, sc, ss] = local[i];
                    ss.atan2(1.0 + sc)
                };
                let noise = (to_unit(rng.at(step, i as u32, 0)) - 0.5) * p.noise;
                *th = wrap_angle(*th + *turn + noise);
                let (s, c) = th.sin_cos();
                *x = torus.wrap(*x + p.speed * c);
                *y = torus.wrap(*y + p.speed * s);
            });
        self.scan(cx.decide.attached());
        let (local, turn) = (&self.local, &self.turn);
        self.reward
            .par_iter_mut()
            .enumerate()
            .with_min_len(4096)
            .for_each(|(i, r)| {
                let [c, sc, _] = local[i];
                let align = if c > 0.0 { sc / c } else { 0.0 };
                *r = (align - p.turn_cost * turn[i] * turn[i]) as f32;
            });
        self.observe(row);
    }

    fn snapshot(&self) -> Box<dyn Model> {
        Box::new(self.clone())
    }

    fn agent_columns(&self) -> Vec<(&'static str, ColumnView<'_>)> {
        vec![
            ("x", ColumnView::F64(&self.x)),
            ("y", ColumnView::F64(&self.y)),
            ("heading", ColumnView::F64(&self.theta)),
        ]
    }

    fn reseed(&mut self, seed: u64) -> bool {
        self.rng = CounterRng::new(seed, NOISE);
        true
    }

    fn agent_observations(&self) -> Option<&[f32]> {
        self.observed.then_some(&self.obs[..])
    }

    fn agent_rewards(&self) -> Option<&[f32]> {
        Some(&self.reward)
    }

    fn action_bounds(&self, params: &ParamSet) -> Vec<(f32, f32)> {
        let m = VicsekParams::read(params).max_turn as f32;
        vec![(-m, m)]
    }
}
