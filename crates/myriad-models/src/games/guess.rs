//! Guess 2/3 of the average (AgentScope's very-large-scale experiment): N
//! players each report a number in [0, 100]; the target is `ratio` x the
//! mean of the valid reports; players within `margin` of the target win.
//! Several rounds, each player told the previous target.
//!
//! Sums run over fixed-size chunks added in order, so the statistics do not
//! depend on the number of threads.

use myriad_core::behaviour::Observations;
use myriad_core::control::{ActionDoc, ControlDoc};
use myriad_core::hash::StateHasher;
use myriad_core::metrics::{Combine, MetricSpec};
use myriad_core::model::Model;
use myriad_core::model::{ColumnView, DecisionAnswer, DecisionDoc, ModelError, ModelInput, ModelSpec, PlotPanel, Step};
use myriad_core::params::ParamSet;
use myriad_core::params::{Limit::Inclusive, ParamSpec};
use myriad_core::rng::{to_unit, CounterRng, Stream};
use rayon::prelude::*;
use std::collections::BTreeMap;

const PLAYERS: &[&str] = &["uniform", "level-k", "best-response"];
const VARIANTS: &[&str] = &["direct", "step-by-step", "rational", "strategic"];

/// Histogram bins of the reports: [0, 10), [10, 20), ..., [90, 100].
const BINS: usize = 10;
/// Reports summed per chunk (fixed, so sums are thread-count independent).
const CHUNK: usize = 1 << 14;

/// Random stream of uniform reports.
const REPORTS: Stream = Stream::custom(1);
/// Random stream of the players' levels.
const LEVELS: Stream = Stream::custom(2);

/// The instruction each prompt variant adds (the `{instruction}` placeholder).
pub fn instruction(variant: &str) -> &'static str {
    match variant {
        "step-by-step" => "Think step by step, then give your number on the last line as \"Answer: <number>\".",
        "rational" => "All players are rational. Think step by step, then give your number on the last line as \"Answer: <number>\".",
        "strategic" => "All players are rational and will try to guess the other players' strategies. Think step by step, then give your number on the last line as \"Answer: <number>\".",
        _ => "Report your number directly, with no explanation.",
    }
}

myriad_core::params! {
    /// The game's parameters.
    pub struct GuessParams {
        /// The target is ratio x the mean of the valid reports.
        ratio: real(2.0 / 3.0, Inclusive(0.0), Inclusive(10.0)), "";
        /// Players within this distance of the target win.
        margin: real(0.5, Inclusive(0.0), Inclusive(100.0)), "";
        /// Rule players: "uniform" report a uniform number in [0, 100]; "level-k" players have a level k drawn uniformly from 0..=max_level, level 0 reports uniformly, level k reports 50 x ratio^k; "best-response" players report uniformly in round 1 and the previous target afterwards (the best reply if everyone repeats last round).
        players: choice("uniform", PLAYERS), "";
        /// Highest reasoning level of level-k players.
        max_level: whole(3.0, Inclusive(0.0), Inclusive(50.0)), "";
        /// LLM prompt variant of the original study, given to prompts as {instruction}: "direct" (report directly), "step-by-step" (think step by step), "rational" (plus: all players are rational), "strategic" (plus: all players will try to guess the others' strategies).
        prompt_variant: choice("direct", VARIANTS), "";
    }
}

/// What each player observes before reporting (the same for every player
/// but its own last report and win): the game's ratio, whether a round was
/// played, the previous target, its own previous report (both divided by
/// 100, 0 before the first round) and whether it won that round.
pub const OBSERVATION: &[&str] = &["ratio", "played", "previous_target", "own_report", "won"];

/// Level-1 reasoning without memory: the previous target (the best reply
/// if everyone repeats their report), or 50 x ratio in the first round.
fn controller(obs: &[f32], bounds: &[(f32, f32)], out: &mut [f32]) {
    let (lo, hi) = bounds[0];
    for (o, a) in obs.chunks_exact(OBSERVATION.len()).zip(out.iter_mut()) {
        let report = if o[1] > 0.5 { 100.0 * o[2] } else { 50.0 * o[0] };
        *a = report.clamp(lo, hi);
    }
}

/// The control declaration: a multi-agent game for learning players.
pub static CONTROL: ControlDoc = ControlDoc {
    observation: OBSERVATION,
    actions: &[ActionDoc {
        name: "report",
        doc: "the player's number, within [0, 100]",
    }],
    reward: "1 for a win (a report within margin of the round's target), else 0",
    controller_doc: "report the previous target, or 50 x ratio in the first round (level-1 reasoning)",
    controller,
};

fn params() -> Vec<ParamSpec> {
    GuessParams::specs()
}

fn metrics() -> Vec<MetricSpec> {
    let mut v = vec![
        MetricSpec::flow("valid", "players with a valid report in [0, 100] this round"),
        MetricSpec::fraction("mean", "valid", "mean of the valid reports"),
        MetricSpec::value(
            "sd",
            Combine::Whole,
            "standard deviation of the valid reports (population)",
        ),
        MetricSpec::value("median", Combine::Whole, "median of the valid reports"),
        MetricSpec::value("target", Combine::Whole, "ratio x mean"),
        MetricSpec::flow("winners", "players within margin of the target"),
    ];
    for b in 0..BINS {
        let (lo, hi) = (b * 10, b * 10 + 10);
        v.push(MetricSpec::flow(
            &format!("reports_{lo:02}_{hi}"),
            &format!("reports in [{lo}, {hi}{}", if b + 1 == BINS { "]" } else { ")" }),
        ));
    }
    v
}

/// The registry entry.
pub static GUESS: ModelSpec = ModelSpec {
    name: "guess",
    summary: "Guess 2/3 of the average with up to millions of players",
    description: "Each round, every player reports a number in [0, 100]; the target is ratio x the mean of the valid reports, and players within margin of it win. Players are told the previous target. The rounds' statistics and a 10-bin histogram of the reports are the metrics. Set the population size to the number of players and steps to the rounds.",
    params,
    metrics,
    columns: &[],
    exclusive: &[],
    uses_layers: false,
    decisions: &[DecisionDoc {
        name: "guess",
        doc: "each round, the player's number in [0, 100] (ask = \"agents\"; an unreadable answer is an invalid report unless fallback is a number). Placeholders: {players}, {round}, {rounds_played}, {ratio} (e.g. 2/3), {previous_target} (or \"none yet\"), {instruction} (the prompt_variant's sentence), {memory}",
        answer: DecisionAnswer::Number { min: 0.0, max: 100.0 },
    }],
    states: &[],
    control: Some(&CONTROL),
    plots: &[
        PlotPanel {
            ylabel: "report",
            metrics: &["mean", "median", "target", "sd"],
            bars: false,
        },
        PlotPanel {
            ylabel: "reports",
            metrics: &[
                "reports_00_10",
                "reports_10_20",
                "reports_20_30",
                "reports_30_40",
                "reports_40_50",
                "reports_50_60",
                "reports_60_70",
                "reports_70_80",
                "reports_80_90",
                "reports_90_100",
            ],
            bars: true,
        },
    ],
    tables: &[],
    splits: false,
    build: |input| Guess::new(input).map(|m| Box::new(m) as Box<dyn Model>),
};

myriad_core::metric_columns! {
    /// Where each metric sits in the row (the histogram's bins follow its first).
    struct Cols {
        valid: "valid",
        mean: "mean",
        sd: "sd",
        median: "median",
        target: "target",
        winners: "winners",
        reports_00_10: "reports_00_10",
    }
}

/// The game's state.
#[derive(Clone)]
pub struct Guess {
    seed: u64,
    reports: Vec<f64>,
    levels: Vec<u8>,
    previous_target: Option<f64>,
    ratio: f64,
    obs: Vec<f32>,
    actions: Vec<f32>,
    reward: Vec<f32>,
}

impl Guess {
    fn new(input: ModelInput) -> Result<Guess, ModelError> {
        let n = input.population.size();
        if n == 0 {
            return Err(ModelError::Infeasible("the game needs at least one player".into()));
        }
        let max_level = GuessParams::read(&input.params).max_level as u64;
        let rng = CounterRng::new(input.seed, LEVELS);
        let levels = (0..n)
            .map(|i| rng.below(u64::from(i), 0, max_level + 1) as u8)
            .collect();
        let mut g = Guess {
            seed: input.seed,
            reports: vec![f64::NAN; n as usize],
            levels,
            previous_target: None,
            ratio: GuessParams::read(&input.params).ratio,
            obs: vec![0.0; n as usize * OBSERVATION.len()],
            actions: vec![0.0; n as usize],
            reward: vec![0.0; n as usize],
        };
        g.update_observations();
        Ok(g)
    }

    /// Every player's observation of the current state.
    fn update_observations(&mut self) {
        let (ratio, previous) = (self.ratio as f32, self.previous_target);
        let (reports, reward) = (&self.reports, &self.reward);
        self.obs
            .par_chunks_mut(OBSERVATION.len())
            .enumerate()
            .with_min_len(4096)
            .for_each(|(i, o)| {
                let own = reports[i];
                o.copy_from_slice(&[
                    ratio,
                    f32::from(u8::from(previous.is_some())),
                    previous.map_or(0.0, |t| (t / 100.0) as f32),
                    if own.is_finite() { (own / 100.0) as f32 } else { 0.0 },
                    reward[i],
                ]);
            });
    }

    /// Every player's report by the rule (NaN-free).
    fn rule_reports(&mut self, ctx: &Step) {
        let p = &GuessParams::read(ctx.params);
        let ratio = p.ratio;
        let rng = CounterRng::new(self.seed, REPORTS);
        let round = u64::from(ctx.step);
        let players = p.players.as_str();
        let previous = self.previous_target;
        let levels = &self.levels;
        self.reports.par_iter_mut().enumerate().for_each(|(i, r)| {
            let uniform = || 100.0 * to_unit(rng.draw(round, i as u64));
            *r = match (players, previous) {
                ("level-k", _) if levels[i] > 0 => 50.0 * ratio.powi(i32::from(levels[i])),
                ("best-response", Some(t)) => t.clamp(0.0, 100.0),
                _ => uniform(),
            };
        });
    }

    fn ask(&self, ctx: &mut Step) -> Option<Vec<f64>> {
        if !ctx.decide.attached() {
            return None;
        }
        let p = &GuessParams::read(ctx.params);
        let ratio = p.ratio;
        let ratio_text = if (ratio - 2.0 / 3.0).abs() < 1e-12 {
            "2/3".to_string()
        } else {
            format!("{ratio}")
        };
        let common = BTreeMap::from([
            ("players".to_string(), self.reports.len().to_string()),
            ("round".to_string(), ctx.step.to_string()),
            ("rounds_played".to_string(), (ctx.step - 1).to_string()),
            ("ratio".to_string(), ratio_text),
            (
                "previous_target".to_string(),
                self.previous_target
                    .map_or("none yet".to_string(), |t| format!("{t:.2}")),
            ),
            (
                "instruction".to_string(),
                instruction(p.prompt_variant.as_str()).to_string(),
            ),
        ]);
        let nothing = |_: &BTreeMap<String, String>| BTreeMap::new();
        let obs = Observations {
            common,
            by_group: &nothing,
            askers: None,
            states: &[],
        };
        ctx.decide.values("guess", &format!("round {}", ctx.step), &obs)
    }
}

/// Sum of `f(x)` over valid reports, in fixed chunks added in order.
fn ordered_sum(v: &[f64], f: impl Fn(f64) -> f64 + Sync) -> f64 {
    v.par_chunks(CHUNK)
        .map(|c| c.iter().filter(|x| x.is_finite()).map(|&x| f(x)).sum::<f64>())
        .collect::<Vec<f64>>()
        .iter()
        .sum()
}

/// Median of the finite values (mean of the two middle ones for an even count).
fn median(v: &[f64]) -> f64 {
    let mut x: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    let n = x.len();
    if n == 0 {
        return f64::NAN;
    }
    let (_, &mut hi, _) = x.select_nth_unstable_by(n / 2, f64::total_cmp);
    if !n.is_multiple_of(2) {
        hi
    } else {
        let lo = x[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo + hi) / 2.0
    }
}

impl Model for Guess {
    fn metrics(&self) -> Vec<MetricSpec> {
        metrics()
    }

    fn agent_count(&self) -> u32 {
        self.reports.len() as u32
    }

    fn observe(&self, row: &mut [f64]) {
        let c = Cols::new(&metrics());
        row.fill(0.0);
        // No round played: the statistics of the reports are undefined.
        for col in [c.mean, c.sd, c.median, c.target] {
            row[col] = f64::NAN;
        }
    }

    fn step(&mut self, ctx: &mut Step, row: &mut [f64]) {
        self.ratio = GuessParams::read(ctx.params).ratio;
        let bounds = self.action_bounds(ctx.params);
        let req = myriad_core::control::ActionRequest {
            step: ctx.step,
            obs: &self.obs,
            obs_dim: OBSERVATION.len(),
            bounds: &bounds,
            doc: &CONTROL,
        };
        let controlled = ctx
            .decide
            .actions(&format!("round {}", ctx.step), &req, &mut self.actions);
        let answers = if controlled { None } else { self.ask(ctx) };
        if controlled {
            let actions = &self.actions;
            self.reports
                .par_iter_mut()
                .enumerate()
                .with_min_len(4096)
                .for_each(|(i, r)| *r = (actions[i] as f64).clamp(0.0, 100.0));
        } else {
            self.apply(answers, ctx);
        }
        self.score(ctx, row);
    }

    fn snapshot(&self) -> Box<dyn Model> {
        Box::new(self.clone())
    }

    fn agent_columns(&self) -> Vec<(&'static str, ColumnView<'_>)> {
        vec![
            ("report", ColumnView::F64(&self.reports)),
            ("level", ColumnView::U8(&self.levels)),
        ]
    }

    fn hash_extra(&self, h: &mut StateHasher) {
        h.f64(self.previous_target.unwrap_or(f64::NAN));
    }

    fn agent_observations(&self) -> Option<&[f32]> {
        Some(&self.obs)
    }

    fn agent_rewards(&self) -> Option<&[f32]> {
        Some(&self.reward)
    }

    fn action_bounds(&self, _params: &ParamSet) -> Vec<(f32, f32)> {
        vec![(0.0, 100.0)]
    }
}

impl Guess {
    /// The reports of a round not under control: the LLM's answers, or the rule.
    fn apply(&mut self, answers: Option<Vec<f64>>, ctx: &Step) {
        match answers {
            // LLM reports: unreadable ones (NaN) are invalid.
            // Written in place: the column's memory is shared with Python views.
            Some(v) => {
                for (r, x) in self.reports.iter_mut().zip(v) {
                    *r = if (0.0..=100.0).contains(&x) { x } else { f64::NAN };
                }
            }
            None => self.rule_reports(ctx),
        }
    }

    /// The round's statistics, winners (rewards) and the next observations.
    fn score(&mut self, ctx: &Step, row: &mut [f64]) {
        let valid = self
            .reports
            .par_chunks(CHUNK)
            .map(|c| c.iter().filter(|x| x.is_finite()).count())
            .sum::<usize>();
        let n = valid as f64;
        let mean = ordered_sum(&self.reports, |x| x) / n;
        let sd = (ordered_sum(&self.reports, |x| (x - mean) * (x - mean)) / n).sqrt();
        let target = GuessParams::read(ctx.params).ratio * mean;
        let margin = GuessParams::read(ctx.params).margin;
        let (winners, bins) = self
            .reports
            .par_chunks(CHUNK)
            .map(|c| {
                let mut w = 0u64;
                let mut b = [0u64; BINS];
                for &x in c.iter().filter(|x| x.is_finite()) {
                    w += u64::from((x - target).abs() <= margin);
                    b[((x / 10.0) as usize).min(BINS - 1)] += 1;
                }
                (w, b)
            })
            .reduce(
                || (0, [0; BINS]),
                |(w1, mut b1), (w2, b2)| {
                    for (x, y) in b1.iter_mut().zip(b2) {
                        *x += y;
                    }
                    (w1 + w2, b1)
                },
            );
        let c = Cols::new(&metrics());
        row[c.valid] = n;
        row[c.mean] = mean;
        row[c.sd] = sd;
        row[c.median] = median(&self.reports);
        row[c.target] = target;
        row[c.winners] = winners as f64;
        for (k, b) in bins.into_iter().enumerate() {
            row[c.reports_00_10 + k] = b as f64;
        }
        if target.is_finite() {
            self.previous_target = Some(target);
        }
        let reports = &self.reports;
        self.reward
            .par_iter_mut()
            .enumerate()
            .with_min_len(4096)
            .for_each(|(i, r)| *r = f32::from(u8::from((reports[i] - target).abs() <= margin)));
        self.update_observations();
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts_ignores_invalid_reports() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, f64::NAN, 3.0, 2.0]), 2.5);
        assert!(median(&[f64::NAN]).is_nan());
    }
}
