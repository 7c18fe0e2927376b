//! Discrete-time SIR and SEIR epidemics on contact layers.
//!
//! Each day (step):
//! 1. every infectious agent tries to infect each susceptible neighbour on
//!    each network layer, independently, with probability
//!    `beta x layer weight x edge weight`; on a well-mixed layer a susceptible
//!    agent escapes each of the `I` infectious agents with probability
//!    `1 - beta x weight`;
//! 2. agents infected today enter E (SEIR) or I (SIR); agents whose stage
//!    timer runs out move on (E to I, I to R).
//!
//! Step 1 reads only yesterday's stages and writes only an "infected today"
//! flag whose final value does not depend on the order of writes, so the
//! step runs on any number of threads with identical results.
//!
//! Timing: an agent infected on day `t` is counted in E on days
//! `t .. t+L-1` and in I on days `t+L .. t+L+D-1` (SIR: `L = 0`), and makes
//! its transmission attempts on days `t+L+1 .. t+L+D`. With a fixed
//! infectious period `D`, each edge therefore transmits with probability
//! `T = 1 - (1 - beta w)^D`, which maps the final size exactly onto bond
//! percolation with occupation probability `T` (Newman 2002).

use crate::setup::{check_layer_sizes, initial_stages, seed_infections};
use myriad_core::calendar::PeriodKind;
use myriad_core::comm::{Comm, Part};
use myriad_core::cross::Marks;
use myriad_core::hash::StateHasher;
use myriad_core::metrics::MetricSpec;
use myriad_core::model::{
    ColumnDoc, ColumnView, Contacts, Layer, Model, ModelError, ModelInput, ModelSpec, PeriodicTable, Step, TableKind,
};
use myriad_core::params::{Limit::Inclusive, ParamSpec};
use myriad_core::rng::{bernoulli_threshold, geometric_steps, CounterRng, Stream};
use rayon::prelude::*;
use std::sync::Arc;

/// Disease stages, stored as `u8` per agent.
pub use crate::setup::{E, I, R, S};

const DURATIONS: &[&str] = &["fixed", "geometric"];

myriad_core::params! {
    /// The parameters of SIR and SEIR.
    pub struct EpidemicParams {
        /// Chance that an infectious agent infects a given susceptible contact on one day, before layer and edge weights (the product is capped at 1).
        beta: real(0.05, Inclusive(0.0), Inclusive(1.0)), "probability per contact per day";
        /// Days in I; the mean when infectious_distribution = "geometric" (a fixed period is rounded to whole days).
        infectious_period: real(5.0, Inclusive(1.0), Inclusive(65535.0)), "days";
        /// "fixed": every agent is infectious for infectious_period days; "geometric": each day in I ends with probability 1/infectious_period.
        infectious_distribution: choice("fixed", DURATIONS), "";
        /// Agents infectious on day 0, chosen uniformly among susceptible agents. Set this or initial_fraction, not both.
        initial_infected: whole(10.0, Inclusive(0.0), Inclusive(u32::MAX as f64)), "agents";
        /// Share of the population infectious on day 0 (rounded to whole agents); when above 0 it replaces initial_infected.
        initial_fraction: real(0.0, Inclusive(0.0), Inclusive(1.0)), "fraction of agents";
    }
}

myriad_core::params! {
    /// The latent stage of SEIR.
    pub struct LatentParams {
        /// Days in E before becoming infectious; the mean when latent_distribution = "geometric" (a fixed period is rounded to whole days).
        latent_period: real(3.0, Inclusive(1.0), Inclusive(65535.0)), "days";
        /// "fixed": every agent stays latent_period days; "geometric": each day in E ends with probability 1/latent_period.
        latent_distribution: choice("fixed", DURATIONS), "";
    }
}

fn params(latent: bool) -> Vec<ParamSpec> {
    let mut v = EpidemicParams::specs();
    if latent {
        // After beta, as the stages come.
        v.splice(1..1, LatentParams::specs());
    }
    v
}

fn metric_specs(latent: bool) -> Vec<MetricSpec> {
    let mut v = vec![MetricSpec::stock("S", "susceptible agents at the end of the day")];
    if latent {
        v.push(MetricSpec::stock("E", "exposed (infected, not yet infectious) agents"));
    }
    v.extend([
        MetricSpec::stock("I", "infectious agents"),
        MetricSpec::stock("R", "recovered agents"),
        MetricSpec::flow("new_infections", "agents infected during the day"),
    ]);
    v
}

/// Steps are days: weekly sums of the daily counts, beside the observed
/// weekly cases where the population source has them.
pub const WEEKLY: PeriodicTable = PeriodicTable {
    file: "weekly.csv",
    period: "week",
    every: PeriodKind::Week,
    kind: TableKind::FlowSums,
    observed: &[("new_infections", "weekly_cases")],
};

const COLUMNS: &[ColumnDoc] = &[ColumnDoc {
    name: "stage",
    doc: "initial stage per agent: 0/S susceptible, 1/E exposed (SEIR only), 2/I infectious, 3/R recovered; seeding by initial_infected then picks among the susceptible",
    labels: &["S", "E", "I", "R"],
}];

const EXCLUSIVE: &[&[&str]] = &[&["initial_infected", "initial_fraction"]];

/// The SIR model's registry entry.
pub static SIR: ModelSpec = ModelSpec {
    name: "sir",
    summary: "Discrete-time SIR epidemic on contact layers",
    description: "Susceptible agents are infected by infectious contacts (each contact, each day, with probability beta x layer weight x edge weight), stay infectious for a fixed or geometric period, then recover for good.",
    params: || params(false),
    metrics: || metric_specs(false),
    columns: COLUMNS,
    exclusive: EXCLUSIVE,
    uses_layers: true,
    decisions: &[],
    states: &[],
    control: None,
    plots: &[],
    tables: &[WEEKLY],
    splits: true,
    build: |input| Epidemic::new(input, false).map(|m| Box::new(m) as Box<dyn Model>),
};

/// The SEIR model's registry entry.
pub static SEIR: ModelSpec = ModelSpec {
    name: "seir",
    summary: "Discrete-time SEIR epidemic on contact layers",
    description: "As sir, with a latent stage: infected agents spend a fixed or geometric latent period in E, not yet infectious, before entering I.",
    params: || params(true),
    metrics: || metric_specs(true),
    columns: COLUMNS,
    exclusive: EXCLUSIVE,
    uses_layers: true,
    decisions: &[],
    states: &[],
    control: None,
    plots: &[],
    tables: &[WEEKLY],
    splits: true,
    build: |input| Epidemic::new(input, true).map(|m| Box::new(m) as Box<dyn Model>),
};

/// Infections to seed on day 0.
fn wanted(params: &myriad_core::params::ParamSet, n: u32) -> u64 {
    let p = EpidemicParams::read(params);
    if p.initial_fraction > 0.0 {
        (p.initial_fraction * n as f64).round() as u64
    } else {
        p.initial_infected as u64
    }
}

/// A rank's stages on day 0 when every agent starts susceptible: the same
/// agents [`seed_infections`] would choose over the whole population.
fn seeded_part(part: &Part, wanted: u64, seed: u64) -> Result<Vec<u8>, ModelError> {
    let mut stage = vec![S; part.len()];
    for k in crate::setup::seeded(part.total() as u64, wanted, seed)? {
        if part.owns(k as u32) {
            stage[(k - part.lo() as u64) as usize] = I;
        }
    }
    Ok(stage)
}

/// How a stage's length is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Duration {
    Fixed(u32),
    Geometric(f64),
}

impl Duration {
    fn new(mean: f64, distribution: &str) -> Duration {
        match distribution {
            "geometric" => Duration::Geometric(mean),
            _ => Duration::Fixed(mean.round().max(1.0) as u32),
        }
    }

    #[inline]
    fn draw(self, rng: &CounterRng, step: u32, agent: u32, stage: u8) -> u16 {
        let d = match self {
            Duration::Fixed(d) => d,
            Duration::Geometric(mean) => {
                geometric_steps(mean, myriad_core::rng::to_unit(rng.at(step, agent, stage as u64)))
            }
        };
        d.clamp(1, u16::MAX as u32) as u16
    }
}

/// Where each metric sits in the row.
#[derive(Clone, Copy, Debug)]
struct Cols {
    s: usize,
    e: Option<usize>,
    i: usize,
    r: usize,
    new_infections: usize,
}

impl Cols {
    fn new(latent: bool) -> Cols {
        let l = myriad_core::metrics::RowLayout::new(&metric_specs(latent));
        Cols {
            s: l.at("S"),
            e: latent.then(|| l.at("E")),
            i: l.at("I"),
            r: l.at("R"),
            new_infections: l.at("new_infections"),
        }
    }
}

/// SIR or SEIR state: one stage byte and one timer per agent (per agent of
/// this rank's part, in a partitioned run).
pub struct Epidemic {
    latent: bool,
    cols: Cols,
    stage: Vec<u8>,
    timer: Vec<u16>,
    hit: Marks,
    layers: Arc<Vec<Layer>>,
    transmission: CounterRng,
    durations: CounterRng,
    latent_period: Duration,
    infectious_period: Duration,
    // Stage counts over all ranks.
    counts: [u64; 4],
    part: Part,
    comm: Arc<dyn Comm>,
}

impl Clone for Epidemic {
    fn clone(&self) -> Epidemic {
        Epidemic {
            latent: self.latent,
            cols: self.cols,
            stage: self.stage.clone(),
            timer: self.timer.clone(),
            // Flags are clear between steps.
            hit: self.hit.clone(),
            layers: self.layers.clone(),
            transmission: self.transmission,
            durations: self.durations,
            latent_period: self.latent_period,
            infectious_period: self.infectious_period,
            counts: self.counts,
            part: self.part.clone(),
            comm: self.comm.clone(),
        }
    }
}

/// Per-chunk tallies of the transition phase: stage counts and new infections.
#[derive(Clone, Copy, Default)]
struct Tally {
    counts: [u64; 4],
    new_infections: u64,
}

impl Tally {
    fn add(mut self, o: Tally) -> Tally {
        for k in 0..4 {
            self.counts[k] += o.counts[k];
        }
        self.new_infections += o.new_infections;
        self
    }
}

const CHUNK: usize = 1 << 14;

impl Epidemic {
    /// Build the model: read initial stages, seed infections, check layers.
    /// In a partitioned run the layers hold this rank's rows, and the
    /// model keeps only its agents' state; the seeding is drawn over the
    /// whole population on every rank, so that it is the same on any
    /// number of ranks.
    pub fn new(input: ModelInput, latent: bool) -> Result<Epidemic, ModelError> {
        let ModelInput {
            population,
            layers,
            params,
            seed,
            split,
        } = input;
        let n = population.size();
        let part = split.part_of(n);
        check_layer_sizes(&layers, part.len() as u32)?;
        let wanted = wanted(&params, n);
        let stage = if population.column("stage").is_none() && part.len() < n as usize {
            // Everyone susceptible: the seeded agents are the chosen ids
            // themselves, so a rank makes only its own agents' stages.
            seeded_part(&part, wanted, seed)?
        } else {
            let mut all = initial_stages(&population, latent)?;
            seed_infections(&mut all, wanted, seed)?;
            if part.len() < all.len() {
                all = all[part.lo() as usize..part.hi() as usize].to_vec();
            }
            all
        };
        drop(population);
        let p = EpidemicParams::read(&params);
        let latent_period = if latent {
            let l = LatentParams::read(&params);
            Duration::new(l.latent_period, &l.latent_distribution)
        } else {
            Duration::Fixed(1)
        };
        let infectious_period = Duration::new(p.infectious_period, &p.infectious_distribution);

        let durations = CounterRng::new(seed, Stream::DURATION);
        let lo = part.lo();
        let timer: Vec<u16> = stage
            .par_iter()
            .enumerate()
            .map(|(i, &s)| match s {
                E => latent_period.draw(&durations, 0, lo + i as u32, E),
                I => infectious_period.draw(&durations, 0, lo + i as u32, I),
                _ => 0,
            })
            .collect();
        let mut counts = [0u64; 4];
        for &s in &stage {
            counts[s as usize] += 1;
        }
        split.comm.sum_u64(&mut counts);
        Ok(Epidemic {
            latent,
            cols: Cols::new(latent),
            hit: Marks::new(stage.len()),
            stage,
            timer,
            layers: Arc::new(layers),
            transmission: CounterRng::new(seed, Stream::TRANSMISSION),
            durations,
            latent_period,
            infectious_period,
            counts,
            part,
            comm: split.comm,
        })
    }

    /// Current stage of every agent.
    pub fn stages(&self) -> &[u8] {
        &self.stage
    }

    fn write_row(&self, row: &mut [f64], new_infections: u64) {
        let c = &self.cols;
        row[c.s] = self.counts[S as usize] as f64;
        if let Some(e) = c.e {
            row[e] = self.counts[E as usize] as f64;
        }
        row[c.i] = self.counts[I as usize] as f64;
        row[c.r] = self.counts[R as usize] as f64;
        row[c.new_infections] = new_infections as f64;
    }

    /// Phase 1: infectious agents push infection attempts along network
    /// edges. Returns the hits on other ranks' agents, per rank (sorted,
    /// without repeats; empty in a single process).
    fn transmit_on_networks(&self, ctx: &Step) -> Vec<Vec<u32>> {
        let beta = EpidemicParams::read(ctx.params).beta;
        let stage = &self.stage;
        let hit = &self.hit;
        let rng = &self.transmission;
        let step = ctx.step;
        let n = stage.len();
        let lo = self.part.lo();
        let networks: Vec<(u64, &myriad_core::Csr, f64)> = self
            .layers
            .iter()
            .enumerate()
            .filter_map(|(l, layer)| match &layer.contacts {
                Contacts::Network(csr) => Some((l as u64, csr, beta * ctx.layer_weights[l])),
                Contacts::WellMixed => None,
            })
            .filter(|(_, _, p)| *p > 0.0)
            .collect();
        let ranks = self.part.ranks();
        if networks.is_empty() {
            return vec![Vec::new(); ranks];
        }
        let attempts = Attempts {
            stage,
            hit,
            rng,
            step,
            lo,
            networks: &networks,
        };
        if ranks == 1 {
            (0..n)
                .into_par_iter()
                .with_min_len(CHUNK)
                .for_each(|i| attempts.row::<false>(i, &mut |_| unreachable!("one rank owns every agent")));
            return vec![Vec::new()];
        }
        let part = &self.part;
        let empty = || vec![Vec::<u32>::new(); ranks];
        let mut out = (0..n)
            .into_par_iter()
            .with_min_len(CHUNK)
            .fold(empty, |mut out, i| {
                attempts.row::<true>(i, &mut |j| out[part.owner(j)].push(j));
                out
            })
            .reduce(empty, |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| x.extend(y));
                a
            });
        out.par_iter_mut().for_each(|v| {
            v.sort_unstable();
            v.dedup();
        });
        out
    }

    /// Hits other ranks sent to this one's agents: susceptible targets are
    /// marked (marks are an OR, so the order of arrival does not matter).
    fn receive_hits(&self, hits: &[u32]) {
        let lo = self.part.lo();
        for &j in hits {
            let local = (j - lo) as usize;
            if self.stage[local] == S {
                self.hit.mark(local);
            }
        }
    }
}

/// What phase 1 reads: the stages before the step, the marks, the draws
/// and the networks open today.
struct Attempts<'a> {
    stage: &'a [u8],
    hit: &'a Marks,
    rng: &'a CounterRng,
    step: u32,
    lo: u32,
    networks: &'a [(u64, &'a myriad_core::Csr, f64)],
}

impl Attempts<'_> {
    /// Row `i` (local) of every network. `remote` takes hits on agents
    /// this rank does not own, whose stage it cannot see (their owner
    /// ignores hits on agents that are not susceptible). `SPLIT` is false
    /// for a single process, where every target is local, so that its loop
    /// has no ownership test.
    #[inline]
    fn row<const SPLIT: bool>(&self, i: usize, remote: &mut impl FnMut(u32)) {
        let stage = self.stage;
        if stage[i] != I {
            return;
        }
        let infector = self.lo + i as u32;
        for &(l, csr, p) in self.networks {
            let (start, _) = csr.range(i as u32);
            let slot = csr.first_slot() + start as u64;
            let threshold = bernoulli_threshold(p);
            let weights = csr.edge_weights(i as u32);
            for (k, &j) in csr.neighbours(i as u32).iter().enumerate() {
                let local = j.wrapping_sub(self.lo) as usize;
                let mine = !SPLIT || local < stage.len();
                if mine && (stage[local] != S || self.hit.is_marked(local)) {
                    continue;
                }
                let t = match weights {
                    None => threshold,
                    Some(w) => bernoulli_threshold(p * w[k] as f64),
                };
                // The draw is keyed by (step, infector, layer, global edge
                // slot), so skipping already-hit targets changes no outcome,
                // and neither does the number of ranks.
                if self.rng.at(self.step, infector, (l << 48) | (slot + k as u64)) < t {
                    if mine {
                        self.hit.mark(local);
                    } else {
                        remote(j);
                    }
                }
            }
        }
    }
}

impl Model for Epidemic {
    fn metrics(&self) -> Vec<MetricSpec> {
        metric_specs(self.latent)
    }

    fn agent_count(&self) -> u32 {
        self.part.total()
    }

    fn observe(&self, row: &mut [f64]) {
        self.write_row(row, 0);
    }

    fn snapshot(&self) -> Box<dyn Model> {
        Box::new(self.clone())
    }

    fn column_labels(&self, column: &str) -> Option<&'static [&'static str]> {
        (column == "stage").then_some(&crate::setup::STAGE_LABELS[..])
    }

    fn agent_columns(&self) -> Vec<(&'static str, ColumnView<'_>)> {
        vec![
            ("stage", ColumnView::U8(&self.stage)),
            ("timer", ColumnView::U16(&self.timer)),
        ]
    }

    fn hash_extra(&self, h: &mut StateHasher) {
        self.counts.iter().for_each(|&c| h.u64(c));
    }

    fn saves_state(&self) -> bool {
        true
    }

    fn save_state(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.latent as u32).to_le_bytes());
        out.extend_from_slice(&self.part.lo().to_le_bytes());
        out.extend_from_slice(&(self.stage.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.stage);
        self.timer.iter().for_each(|t| out.extend_from_slice(&t.to_le_bytes()));
        self.counts.iter().for_each(|c| out.extend_from_slice(&c.to_le_bytes()));
    }

    fn load_state(&mut self, bytes: &[u8]) -> Result<(), String> {
        let n = self.stage.len();
        let want = 4 + 4 + 8 + n + 2 * n + 8 * 4;
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        if bytes.len() < 16 {
            return Err(format!("state of {} bytes is too short", bytes.len()));
        }
        let stored = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        if word(0) != self.latent as u32 {
            return Err("the state is of the other model (sir/seir)".into());
        }
        if word(4) != self.part.lo() || stored != n as u64 {
            return Err(format!(
                "the state holds agents {}..{}, this process owns {}..{}",
                word(4),
                word(4) as u64 + stored,
                self.part.lo(),
                self.part.hi()
            ));
        }
        if bytes.len() != want {
            return Err(format!("state of {} bytes, expected {want}", bytes.len()));
        }
        let stage = &bytes[16..16 + n];
        let timer: Vec<u16> = bytes[16 + n..16 + 3 * n]
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        let counts: [u64; 4] =
            std::array::from_fn(|k| u64::from_le_bytes(bytes[16 + 3 * n + 8 * k..][..8].try_into().expect("8 bytes")));
        // Everything is checked before anything is replaced: a stage code
        // the model has, a running timer for the agents in E and I (a zero
        // would wrap when it counts down), and, in one process, counts that
        // are this state's.
        let agent = |i: usize| self.part.lo() as usize + i;
        if let Some(bad) = stage.iter().position(|&s| s > R || (!self.latent && s == E)) {
            return Err(format!("agent {} has stage code {}", agent(bad), stage[bad]));
        }
        if let Some(bad) = (0..n).position(|i| matches!(stage[i], E | I) && timer[i] == 0) {
            return Err(format!(
                "agent {} is in stage {} with no time left",
                agent(bad),
                stage[bad]
            ));
        }
        if self.part.ranks() == 1 {
            let mut own = [0u64; 4];
            stage.iter().for_each(|&s| own[s as usize] += 1);
            if own != counts {
                return Err(format!(
                    "the stage counts {counts:?} are not those of its agents, {own:?}"
                ));
            }
        }
        self.stage.copy_from_slice(stage);
        self.timer = timer;
        self.counts = counts;
        Ok(())
    }

    fn step(&mut self, ctx: &mut Step, row: &mut [f64]) {
        let outgoing = self.transmit_on_networks(ctx);
        if self.part.ranks() > 1 {
            let incoming = self.comm.exchange_u32(&outgoing);
            self.receive_hits(&incoming);
        }

        // Well-mixed layers: escape probability from each infectious agent.
        let beta = EpidemicParams::read(ctx.params).beta;
        let infectious = self.counts[I as usize] as f64;
        let mut escape_mixed = 1.0;
        for (l, layer) in self.layers.iter().enumerate() {
            if layer.contacts == Contacts::WellMixed {
                let p = (beta * ctx.layer_weights[l]).clamp(0.0, 1.0);
                escape_mixed *= (1.0 - p).powf(infectious);
            }
        }
        let mixed_threshold = bernoulli_threshold(1.0 - escape_mixed);

        let step = ctx.step;
        let latent = self.latent;
        let (lp, ip) = (self.latent_period, self.infectious_period);
        let (tx, dur, hit) = (&self.transmission, &self.durations, &self.hit);
        let lo = self.part.lo();
        let tally = self
            .stage
            .par_chunks_mut(CHUNK)
            .zip(self.timer.par_chunks_mut(CHUNK))
            .enumerate()
            .map(|(c, (stage, timer))| {
                let mut t = Tally::default();
                for k in 0..stage.len() {
                    let i = lo + (c * CHUNK + k) as u32;
                    match stage[k] {
                        S => {
                            let was_hit = hit.take(c * CHUNK + k);
                            let infected =
                                was_hit || (mixed_threshold > 0 && tx.at(step, i, u64::MAX) < mixed_threshold);
                            if infected {
                                t.new_infections += 1;
                                if latent {
                                    stage[k] = E;
                                    timer[k] = lp.draw(dur, step, i, E);
                                } else {
                                    stage[k] = I;
                                    timer[k] = ip.draw(dur, step, i, I);
                                }
                            }
                        }
                        E => {
                            timer[k] -= 1;
                            if timer[k] == 0 {
                                stage[k] = I;
                                timer[k] = ip.draw(dur, step, i, I);
                            }
                        }
                        I => {
                            timer[k] -= 1;
                            if timer[k] == 0 {
                                stage[k] = R;
                            }
                        }
                        _ => {}
                    }
                    t.counts[stage[k] as usize] += 1;
                }
                t
            })
            .reduce(Tally::default, Tally::add);
        let mut totals = [
            tally.counts[0],
            tally.counts[1],
            tally.counts[2],
            tally.counts[3],
            tally.new_infections,
        ];
        self.comm.sum_u64(&mut totals);
        self.counts = [totals[0], totals[1], totals[2], totals[3]];
        self.write_row(row, totals[4]);
    }
}
