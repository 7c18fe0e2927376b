//! The Donor Game with cultural evolution ("Cultural Evolution of
//! Cooperation among LLM Agents", Vallinder & Hughes 2024).
//!
//! One step is one generation. The population (an even number n of agents,
//! 12 in the study) is split once per generation, at random, into two
//! halves A and B. A game has n rounds: in round r, A_i meets
//! B_((i + floor(r/2)) mod n/2), and A donates in even rounds, B in odd
//! ones, so every agent meets each agent of the other half once as donor
//! and once as recipient. A generation plays `games` games in a row
//! (resources carry over). The donor gives any amount up to its resources;
//! the recipient receives it times `multiplier`. With punishment on, a donor
//! may instead pay x for the recipient to lose 2x (floored at 0).
//!
//! After a generation the richer half survives (ties broken at random),
//! everyone's resources return to the endowment, and n/2 new agents take
//! the others' places, each copying a random survivor's strategy with a
//! mutation.
//!
//! The most the average can reach (multiplier m >= 1, endowment e, R =
//! games x n rounds) is e (1 + m) m^(R-1) / 2: when everyone always gives
//! everything, the holding half's wealth is multiplied by m every round
//! after the first. Keeping a unit back forgoes that factor, and punishing
//! only destroys, so no schedule of choices does better.

use myriad_core::behaviour::Observations;
use myriad_core::hash::StateHasher;
use myriad_core::metrics::{Combine, MetricSpec};
use myriad_core::model::Model;
use myriad_core::model::{ColumnView, DecisionAnswer, DecisionDoc, ModelError, ModelInput, ModelSpec, PlotPanel, Step};
use myriad_core::params::{Limit::Inclusive, ParamSpec};
use myriad_core::rng::{to_unit, CounterRng, Stream};
use serde_json::json;
use std::collections::{BTreeMap, VecDeque};

const PLAYERS: &[&str] = &["evolving", "fixed"];
const SWITCH: &[&str] = &["off", "on"];

/// Largest population whose individual donations go to the transcript
/// (n x n/2 lines per game).
const TRANSCRIPT_AGENTS: usize = 100;

/// Most agents a generation may have.
const MAX_AGENTS: usize = 4000;

/// Random stream of the split into halves.
const SPLIT: Stream = Stream::custom(1);
/// Random stream of strategies (initial draws and mutations).
const STRATEGY: Stream = Stream::custom(2);
/// Random stream of survival ties and parents.
const SELECTION: Stream = Stream::custom(3);

/// The most the average final resources can reach (see the module docs).
pub fn max_average(endowment: f64, multiplier: f64, rounds: u32) -> f64 {
    if multiplier < 1.0 || rounds == 0 {
        return endowment;
    }
    endowment * (1.0 + multiplier) * multiplier.powi(rounds as i32 - 1) / 2.0
}

myriad_core::params! {
    /// The game's parameters.
    pub struct DonorParams {
        /// Resources of every agent at the start of a generation.
        endowment: real(10.0, Inclusive(0.0), Inclusive(1e9)), "units";
        /// The recipient receives the donation times this (the study uses 1.5, 2 and 3).
        multiplier: real(2.0, Inclusive(0.0), Inclusive(100.0)), "";
        /// Games played in a row per generation, each of n rounds (n agents).
        games: whole(2.0, Inclusive(1.0), Inclusive(1000.0)), "games per generation";
        /// How many of the recipient's last donations (as donor) the donor sees.
        trace_length: whole(3.0, Inclusive(0.0), Inclusive(100.0)), "donations";
        /// "on": a donor may pay x for the recipient to lose 2x (floored at 0) instead of giving.
        punishment: choice("off", SWITCH), "";
        /// Rule players give a fraction g + r x (recipient's recent fraction - g) of their resources (g generosity, r reciprocity). "evolving": the first generation draws g and r uniformly in [0, 1], new agents copy a survivor's with Gaussian mutation; "fixed": every agent uses the parameters generosity and reciprocity.
        players: choice("evolving", PLAYERS), "";
        /// g of "fixed" players.
        generosity: real(0.5, Inclusive(0.0), Inclusive(1.0)), "fraction of resources";
        /// r of "fixed" players: how far they move towards the recipient's own recent generosity.
        reciprocity: real(0.0, Inclusive(0.0), Inclusive(1.0)), "";
        /// Standard deviation of the Gaussian change to a copied strategy (results clamped to [0, 1]).
        mutation: real(0.1, Inclusive(0.0), Inclusive(10.0)), "";
        /// With punishment on, rule players punish a recipient whose recent donations average below this fraction, spending punish_fraction of their resources.
        punish_below: real(0.1, Inclusive(0.0), Inclusive(1.0)), "fraction";
        /// What a rule player spends on a punishment.
        punish_fraction: real(0.1, Inclusive(0.0), Inclusive(1.0)), "fraction of resources";
    }
}

fn params() -> Vec<ParamSpec> {
    DonorParams::specs()
}

fn metrics() -> Vec<MetricSpec> {
    vec![
        MetricSpec::fraction("mean_resources", "agents", "average final resources of the generation"),
        MetricSpec::value("min_resources", Combine::Min, "smallest final resources"),
        MetricSpec::value("max_resources", Combine::Max, "largest final resources"),
        MetricSpec::fraction(
            "donation_fraction",
            "donations",
            "mean share of their resources donors gave (donors with resources)",
        ),
        MetricSpec::flow("punishments", "punishments this generation"),
        MetricSpec::fraction(
            "mean_generosity",
            "agents",
            "mean g of the generation's rule strategies",
        ),
        MetricSpec::value(
            "max_reachable",
            Combine::Whole,
            "the most mean_resources can reach under this schedule",
        ),
        MetricSpec::flow(
            "llm_invalid",
            "LLM answers this generation that could not be read (the rule was used)",
        ),
    ]
}

/// The registry entry.
pub static DONOR: ModelSpec = ModelSpec {
    name: "donor",
    summary: "Donor Game with cultural evolution across generations",
    description: "One step is a generation of n agents (n even; 12 in the study). The population is split at random into halves; a game has n rounds, in round r agent A_i meets B_(i + r/2 mod n/2), A donating in even rounds and B in odd ones, so everyone meets each agent of the other half once as donor and once as recipient. `games` games run in a row. Donors give any amount up to their resources; the recipient receives it x multiplier; donors see the recipient's last trace_length donations. After each generation the richer half survives and n/2 new agents copy survivors' strategies with mutation. The most the average can reach is endowment x (1 + m) x m^(R-1) / 2 for m >= 1 and R = games x n rounds (everyone always giving everything); it is the max_reachable metric.",
    params,
    metrics,
    columns: &[],
    exclusive: &[],
    uses_layers: false,
    decisions: &[DecisionDoc {
        name: "strategy",
        doc: "at the start of a generation, each new agent (everyone in the first) writes its strategy in free text; it fills {strategy} in that agent's donate prompts, and the survivors' strategies fill {advice} for the next generation's newcomers. Placeholders: {agent}, {generation}, {multiplier}, {endowment}, {punishment}, {advice}",
        answer: DecisionAnswer::Text,
    }, DecisionDoc {
        name: "donate",
        doc: "how many units the donor gives this round, a number from 0 to its resources (cut to them); with punishment on, a negative number -x pays x to take 2x from the recipient. ask = \"agents\"; only the round's donors are asked. Placeholders: {agent}, {generation}, {round}, {resources}, {recipient}, {recipient_resources}, {recipient_traces}, {multiplier}, {punishment} (a sentence, or empty), {advice} (the survivors' strategies if written, else their mean donated share last generation), {strategy} (the agent's own, if written), {memory}",
        answer: DecisionAnswer::Number { min: -1e15, max: 1e15 },
    }],
    states: &[],
    control: None,
    plots: &[
        PlotPanel {
            ylabel: "final resources",
            metrics: &["mean_resources", "min_resources", "max_resources"],
            bars: false,
        },
        PlotPanel {
            ylabel: "share of resources",
            metrics: &["donation_fraction", "mean_generosity"],
            bars: false,
        },
    ],
    tables: &[],
    splits: false,
    build: |input| Donor::new(input).map(|m| Box::new(m) as Box<dyn Model>),
};

/// One donation as the recipient's future donors see it.
#[derive(Clone, Debug)]
struct Trace {
    recipient: usize,
    given: f64,
    had: f64,
}

myriad_core::metric_columns! {
    /// Where each metric sits in the row.
    struct Cols {
        mean_resources: "mean_resources",
        min_resources: "min_resources",
        max_resources: "max_resources",
        donation_fraction: "donation_fraction",
        punishments: "punishments",
        mean_generosity: "mean_generosity",
        max_reachable: "max_reachable",
        llm_invalid: "llm_invalid",
    }
}

/// The game's state between generations.
#[derive(Clone)]
pub struct Donor {
    n: usize,
    seed: u64,
    generosity: Vec<f64>,
    reciprocity: Vec<f64>,
    survivor_share: Option<f64>,
    max_reachable: f64,
    strategies: Vec<Option<String>>,
    survivor_strategies: Option<String>,
}

impl Donor {
    fn new(input: ModelInput) -> Result<Donor, ModelError> {
        let n = input.population.size() as usize;
        if n < 2 || !n.is_multiple_of(2) {
            return Err(ModelError::Infeasible(format!(
                "the donor game needs an even number of agents, at least 2 (the population has {n})"
            )));
        }
        // Everyone meets everyone of the other half twice per game: n^2/2
        // donations per game.
        if n > MAX_AGENTS {
            return Err(ModelError::Infeasible(format!(
                "the donor game plays n x n/2 donations per game; {n} agents is more than the {MAX_AGENTS} it accepts"
            )));
        }
        let p = &DonorParams::read(&input.params);
        let (generosity, reciprocity) = if p.players.as_str() == "fixed" {
            (vec![p.generosity; n], vec![p.reciprocity; n])
        } else {
            let rng = CounterRng::new(input.seed, STRATEGY);
            (
                (0..n).map(|i| to_unit(rng.draw(0, 2 * i as u64))).collect(),
                (0..n).map(|i| to_unit(rng.draw(0, 2 * i as u64 + 1))).collect(),
            )
        };
        Ok(Donor {
            n,
            seed: input.seed,
            generosity,
            reciprocity,
            survivor_share: None,
            max_reachable: max_average(p.endowment, p.multiplier, (p.games as usize * n) as u32),
            strategies: vec![None; n],
            survivor_strategies: None,
        })
    }

    /// What a rule player gives (positive) or spends punishing (negative).
    fn rule(&self, i: usize, resources: f64, seen: Option<f64>, punish: Option<(f64, f64)>) -> f64 {
        let g = self.generosity[i];
        let recent = seen.unwrap_or(g);
        if let (Some((below, spend)), Some(s)) = (punish, seen) {
            if s < below {
                return -spend * resources;
            }
        }
        (g + self.reciprocity[i] * (recent - g)).clamp(0.0, 1.0) * resources
    }
}

/// Mean donated share of a trace list.
fn share(traces: &VecDeque<Trace>) -> Option<f64> {
    let v: Vec<f64> = traces.iter().filter(|t| t.had > 0.0).map(|t| t.given / t.had).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// A standard normal draw from two uniforms (Box-Muller).
fn gaussian(rng: &CounterRng, a: u64, b: u64) -> f64 {
    let u1 = 1.0 - to_unit(rng.draw(a, 2 * b));
    let u2 = to_unit(rng.draw(a, 2 * b + 1));
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl Model for Donor {
    fn metrics(&self) -> Vec<MetricSpec> {
        metrics()
    }

    fn agent_count(&self) -> u32 {
        self.n as u32
    }

    fn observe(&self, row: &mut [f64]) {
        let c = Cols::new(&metrics());
        // No generation has been played yet: resources and donations are undefined.
        row.fill(0.0);
        for col in [c.mean_resources, c.min_resources, c.max_resources, c.donation_fraction] {
            row[col] = f64::NAN;
        }
        row[c.mean_generosity] = self.generosity.iter().sum::<f64>() / self.n as f64;
        row[c.max_reachable] = self.max_reachable;
    }

    /// One generation: strategies written (LLM players), the games played,
    /// the row, then selection and the newcomers.
    fn step(&mut self, ctx: &mut Step, row: &mut [f64]) {
        let p = DonorParams::read(ctx.params);
        let punish = (p.punishment.as_str() == "on").then_some((p.punish_below, p.punish_fraction));
        self.write_strategies(ctx, punish.is_some());
        let played = self.play(ctx, &p, punish);
        self.max_reachable = max_average(p.endowment, p.multiplier, (p.games as usize * self.n) as u32);
        self.write_row(&played, row);
        self.select(ctx, &p, &played);
    }

    fn snapshot(&self) -> Box<dyn Model> {
        Box::new(self.clone())
    }

    fn agent_columns(&self) -> Vec<(&'static str, ColumnView<'_>)> {
        vec![
            ("generosity", ColumnView::F64(&self.generosity)),
            ("reciprocity", ColumnView::F64(&self.reciprocity)),
        ]
    }

    fn hash_extra(&self, h: &mut StateHasher) {
        h.f64(self.survivor_share.unwrap_or(f64::NAN));
        self.strategies
            .iter()
            .for_each(|s| h.str(s.as_deref().unwrap_or("\u{0}")));
        h.str(self.survivor_strategies.as_deref().unwrap_or("\u{0}"));
    }
}

/// What a generation's games left.
struct Played {
    resources: Vec<f64>,
    traces: Vec<VecDeque<Trace>>,
    shares: Vec<f64>,
    punishments: u64,
    invalid: u64,
}

impl Donor {
    /// The generation's games: in round r, each agent of one half meets the
    /// one r/2 places along in the other half, donors alternating.
    fn play(&self, ctx: &mut Step, p: &DonorParams, punish: Option<(f64, f64)>) -> Played {
        let (n, half) = (self.n, self.n / 2);
        let generation = u64::from(ctx.step);
        let mut g = Played {
            resources: vec![p.endowment; n],
            traces: vec![VecDeque::new(); n],
            shares: Vec::new(),
            punishments: 0,
            invalid: 0,
        };
        // A seeded shuffle: sort by random keys.
        let split_rng = CounterRng::new(self.seed, SPLIT);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (split_rng.draw(generation, i as u64), i));
        let (a, b) = order.split_at(half);
        for round in 0..p.games as usize * n {
            let r = round % n;
            let pairs: Vec<(usize, usize)> = (0..half)
                .map(|i| {
                    let (x, y) = (a[i], b[(i + r / 2) % half]);
                    if r.is_multiple_of(2) {
                        (x, y)
                    } else {
                        (y, x)
                    }
                })
                .collect();
            let asked = self.ask(ctx, round, &pairs, &g.resources, &g.traces, punish.is_some());
            for &(donor, recipient) in &pairs {
                let had = g.resources[donor];
                let seen = share(&g.traces[recipient]);
                let choice = match asked.as_ref().map(|v| v[donor]) {
                    Some(x) if x.is_finite() => x,
                    Some(_) => {
                        g.invalid += 1;
                        self.rule(donor, had, seen, punish)
                    }
                    None => self.rule(donor, had, seen, punish),
                };
                self.donate(ctx, &mut g, (donor, recipient), choice, round, p, punish.is_some());
            }
        }
        g
    }

    /// One donation (or punishment), its transcript event and its trace.
    #[allow(clippy::too_many_arguments)]
    fn donate(
        &self,
        ctx: &mut Step,
        g: &mut Played,
        (donor, recipient): (usize, usize),
        choice: f64,
        round: usize,
        p: &DonorParams,
        punishing: bool,
    ) {
        let had = g.resources[donor];
        let punished = choice < 0.0 && punishing;
        let given = if punished {
            let x = (-choice).min(had);
            g.resources[donor] -= x;
            g.resources[recipient] = (g.resources[recipient] - 2.0 * x).max(0.0);
            g.punishments += 1;
            0.0
        } else {
            let d = choice.clamp(0.0, had);
            g.resources[donor] -= d;
            g.resources[recipient] += p.multiplier * d;
            d
        };
        if had > 0.0 {
            g.shares.push(given / had);
        }
        if self.n <= TRANSCRIPT_AGENTS {
            ctx.events.push(json!({
                "kind": "donate",
                "round": round + 1,
                "donor": donor,
                "recipient": recipient,
                "had": had,
                "gave": given,
                "punished": punished,
            }));
        }
        g.traces[donor].push_back(Trace { recipient, given, had });
        if g.traces[donor].len() > p.trace_length as usize {
            g.traces[donor].pop_front();
        }
    }

    fn write_row(&self, g: &Played, row: &mut [f64]) {
        let c = Cols::new(&metrics());
        let n = self.n as f64;
        row[c.mean_resources] = g.resources.iter().sum::<f64>() / n;
        row[c.min_resources] = g.resources.iter().copied().fold(f64::INFINITY, f64::min);
        row[c.max_resources] = g.resources.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        row[c.donation_fraction] = if g.shares.is_empty() {
            0.0
        } else {
            g.shares.iter().sum::<f64>() / g.shares.len() as f64
        };
        row[c.punishments] = g.punishments as f64;
        row[c.mean_generosity] = self.generosity.iter().sum::<f64>() / n;
        row[c.max_reachable] = self.max_reachable;
        row[c.llm_invalid] = g.invalid as f64;
    }

    /// Selection: the richer half survives (ties broken at random); the
    /// others are replaced by newcomers copying a survivor's strategy with
    /// mutation (evolving players), and are forgotten by the provider.
    fn select(&mut self, ctx: &mut Step, p: &DonorParams, g: &Played) {
        let (n, half) = (self.n, self.n / 2);
        let generation = u64::from(ctx.step);
        let sel = CounterRng::new(self.seed, SELECTION);
        let mut rank: Vec<usize> = (0..n).collect();
        rank.sort_by(|&x, &y| {
            g.resources[y]
                .total_cmp(&g.resources[x])
                .then(sel.draw(generation, x as u64).cmp(&sel.draw(generation, y as u64)))
        });
        let (survivors, dead) = rank.split_at(half);
        let written: Vec<String> = survivors
            .iter()
            .filter_map(|&i| self.strategies[i].as_ref().map(|s| format!("agent {i}: {s}")))
            .collect();
        self.survivor_strategies = (!written.is_empty()).then(|| written.join("\n"));
        for &slot in dead {
            self.strategies[slot] = None;
            ctx.decide.replace_agent(slot as u32);
        }
        let survivor_shares: Vec<f64> = survivors.iter().filter_map(|&i| share(&g.traces[i])).collect();
        self.survivor_share =
            (!survivor_shares.is_empty()).then(|| survivor_shares.iter().sum::<f64>() / survivor_shares.len() as f64);
        if p.players.as_str() == "evolving" {
            let mutation = CounterRng::new(self.seed, STRATEGY);
            for (k, &slot) in dead.iter().enumerate() {
                let parent = survivors[sel.below(generation, (n + k) as u64, half as u64) as usize];
                let (gen, rec) = (self.generosity[parent], self.reciprocity[parent]);
                self.generosity[slot] =
                    (gen + p.mutation * gaussian(&mutation, generation, 2 * slot as u64)).clamp(0.0, 1.0);
                self.reciprocity[slot] =
                    (rec + p.mutation * gaussian(&mutation, generation, 2 * slot as u64 + 1)).clamp(0.0, 1.0);
            }
        }
    }
}

impl Donor {
    /// What newcomers are told about the survivors of the last generation.
    fn advice(&self) -> String {
        match (&self.survivor_strategies, self.survivor_share) {
            (Some(s), _) => format!("Strategies of the survivors of the previous generation:\n{s}"),
            (None, Some(s)) => format!(
                "The survivors of the previous generation gave on average {:.0}% of their resources.",
                100.0 * s
            ),
            (None, None) => "You are in the first generation.".to_string(),
        }
    }

    /// Agents without a written strategy write one (LLM players only).
    fn write_strategies(&mut self, ctx: &mut Step, punishment: bool) {
        if !ctx.decide.attached() {
            return;
        }
        let askers: Vec<u32> = (0..self.n as u32)
            .filter(|&i| self.strategies[i as usize].is_none())
            .collect();
        if askers.is_empty() {
            return;
        }
        let p = &DonorParams::read(ctx.params);
        let common = BTreeMap::from([
            ("generation".to_string(), ctx.step.to_string()),
            ("multiplier".to_string(), format!("{}", p.multiplier)),
            ("endowment".to_string(), format!("{}", p.endowment)),
            (
                "punishment".to_string(),
                if punishment {
                    "Instead of giving, a donor may punish the recipient: pay x units to take 2x units from them."
                        .to_string()
                } else {
                    String::new()
                },
            ),
            ("advice".to_string(), self.advice()),
        ]);
        let nothing = |_: &BTreeMap<String, String>| BTreeMap::new();
        let obs = Observations {
            common,
            by_group: &nothing,
            askers: Some(&askers),
            states: &[],
        };
        let when = format!("generation {}", ctx.step);
        if let Some(texts) = ctx.decide.texts("strategy", &when, &obs) {
            for (&i, t) in askers.iter().zip(texts) {
                if let Some(t) = t {
                    ctx.events.push(json!({"kind": "strategy", "agent": i, "text": t}));
                    self.strategies[i as usize] = Some(t);
                }
            }
        }
    }

    /// The LLM donors' choices this round, indexed by agent (None without a provider).
    fn ask(
        &self,
        ctx: &mut Step,
        round: usize,
        pairs: &[(usize, usize)],
        resources: &[f64],
        traces: &[VecDeque<Trace>],
        punishment: bool,
    ) -> Option<Vec<f64>> {
        if !ctx.decide.attached() {
            return None;
        }
        let m = DonorParams::read(ctx.params).multiplier;
        let common = BTreeMap::from([
            ("generation".to_string(), ctx.step.to_string()),
            ("round".to_string(), (round + 1).to_string()),
            ("multiplier".to_string(), format!("{m}")),
            (
                "punishment".to_string(),
                if punishment {
                    "Instead of giving, you may punish the recipient: answer -x to pay x units and take 2x units from them.".to_string()
                } else {
                    String::new()
                },
            ),
            ("advice".to_string(), self.advice()),
        ]);
        let mut partner: BTreeMap<usize, usize> = BTreeMap::new();
        for &(d, r) in pairs {
            partner.insert(d, r);
        }
        let by_agent = |attrs: &BTreeMap<String, String>| {
            let Some(d) = attrs.get("agent").and_then(|a| a.parse::<usize>().ok()) else {
                return BTreeMap::new();
            };
            let Some(&r) = partner.get(&d) else {
                return BTreeMap::new();
            };
            let seen = if traces[r].is_empty() {
                "none yet".to_string()
            } else {
                traces[r]
                    .iter()
                    .map(|t| format!("gave {:.2} of {:.2} units to agent {}", t.given, t.had, t.recipient))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            BTreeMap::from([
                (
                    "strategy".to_string(),
                    self.strategies[d].clone().unwrap_or_else(|| "none written".to_string()),
                ),
                ("resources".to_string(), format!("{:.2}", resources[d])),
                ("recipient".to_string(), r.to_string()),
                ("recipient_resources".to_string(), format!("{:.2}", resources[r])),
                ("recipient_traces".to_string(), seen),
            ])
        };
        let askers: Vec<u32> = pairs.iter().map(|&(d, _)| d as u32).collect();
        let obs = Observations {
            common,
            by_group: &by_agent,
            askers: Some(&askers),
            states: &[],
        };
        ctx.decide
            .values("donate", &format!("generation {} round {}", ctx.step, round + 1), &obs)
    }
}
