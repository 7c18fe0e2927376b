//! The GovSim commons ("Cooperate or Collapse", Piatti et al. 2024): agents
//! share a renewable resource under three framings with identical dynamics
//! (fish in a lake, grass on a pasture, unpolluted water).
//!
//! Each month every agent privately asks for a whole number of units. If the
//! total fits in the stock, everyone gets what they asked; otherwise units
//! are handed out one at a time, each to an agent drawn uniformly among
//! those still wanting (seeded). The run collapses when the stock after the
//! harvest is below the collapse threshold; otherwise the remainder doubles,
//! capped at the capacity.

use super::gini;
use myriad_core::behaviour::Observations;
use myriad_core::hash::StateHasher;
use myriad_core::metrics::{Combine, MetricSpec};
use myriad_core::model::Model;
use myriad_core::model::{
    ColumnView, Decide, DecisionAnswer, DecisionDoc, ModelError, ModelInput, ModelSpec, PlotPanel, Step,
};
use myriad_core::params::{Limit::Inclusive, ParamSpec};
use myriad_core::rng::{CounterRng, Stream};
use serde_json::json;
use std::collections::BTreeMap;

/// Largest commons whose individual harvests go to the transcript (a line
/// per agent and month).
const TRANSCRIPT_AGENTS: usize = 1000;

/// What a text placeholder holds before there is anything to show.
const NONE_YET: &str = "none yet";

const FRAMINGS: &[&str] = &["fishery", "pasture", "pollution"];
const PLAYERS: &[&str] = &["constant", "sustainable", "greedy", "random"];
const SWITCH: &[&str] = &["off", "on"];

/// Random stream of the hand-out of scarce units.
const ALLOCATION: Stream = Stream::custom(1);
/// Random stream of `random` players.
const RANDOM_PLAYERS: Stream = Stream::custom(2);

myriad_core::params! {
    /// The game's parameters.
    pub struct CommonsParams {
        /// Story told to LLM players (fish in a lake in tons, grass on a pasture in hectares, unpolluted water in percent); the dynamics are identical.
        framing: choice("fishery", FRAMINGS), "";
        /// Largest stock; the pool starts full.
        capacity: whole(100.0, Inclusive(1.0), Inclusive(1e6)), "units";
        /// The resource collapses (and the run ends) when the stock after a harvest is below this.
        collapse_threshold: real(5.0, Inclusive(0.0), Inclusive(1e6)), "units";
        /// Largest amount an agent may ask for in a month (larger answers are cut to it).
        max_request: whole(100.0, Inclusive(0.0), Inclusive(1e6)), "units";
        /// Rule of players without an LLM (and of LLM players whose answer is unreadable): "constant" asks `request`; "sustainable" asks the universalization threshold floor(floor(stock/2)/agents); "greedy" asks max_request; "random" asks a uniform whole number in [0, max_request].
        players: choice("constant", PLAYERS), "";
        /// What a "constant" player asks for each month.
        request: whole(10.0, Inclusive(0.0), Inclusive(1e6)), "units per month";
        /// Month from which a greedy newcomer (one more agent, always rule-driven) joins; 0: none.
        newcomer_month: whole(0.0, Inclusive(0.0), Inclusive(1e6)), "month";
        /// What the newcomer asks for each month.
        newcomer_request: whole(50.0, Inclusive(0.0), Inclusive(1e6)), "units per month";
        /// "on" fills the {hint} placeholder of LLM prompts with "if everyone takes more than f, the stock shrinks" (f the sustainable threshold); "off" leaves it empty.
        universalization: choice("off", SWITCH), "";
        /// "on": after the harvests are made public, LLM players hold a discussion (the `discuss` decision) and each writes a reflection (`reflect`), both shown in next month's prompts; "off" is GovSim's no-communication perturbation. Rule players never talk.
        communication: choice("on", SWITCH), "";
        /// Most utterances in a month's discussion; agents speak in turn, and one saying [end] closes it.
        utterances: whole(10.0, Inclusive(0.0), Inclusive(1000.0)), "per month";
        /// f0 of the efficiency metric: the total monthly harvest the full pool sustains (half the capacity).
        sustainable_total: real(50.0, Inclusive(0.0), Inclusive(1e6)), "units per month";
    }
}

fn params() -> Vec<ParamSpec> {
    CommonsParams::specs()
}

fn metrics() -> Vec<MetricSpec> {
    vec![
        MetricSpec::value("stock", Combine::Whole, "units in the pool at the end of the month (after regrowth; after the harvest if it collapsed)"),
        MetricSpec::value("sustainable_threshold", Combine::Whole, "f = floor(floor(stock/2)/agents) at the start of the month: the most each agent can take without shrinking the stock"),
        MetricSpec::flow("requested", "units asked for this month").real(),
        MetricSpec::flow("harvest", "units handed out this month").real(),
        MetricSpec::stock("agents", "agents taking part this month"),
        MetricSpec::value("collapsed", Combine::Max, "1 once the resource has collapsed").whole(),
        MetricSpec::value("survival_time", Combine::Whole, "months the resource lasted so far (the collapse month counts)"),
        MetricSpec::value("mean_gain", Combine::Mean { weight: "agents".into() }, "units harvested so far per agent (the original agents)"),
        MetricSpec::value("efficiency", Combine::Whole, "1 - max(0, t x f0 - total harvest)/(t x f0) after t months"),
        MetricSpec::value("equality", Combine::Whole, "1 - Gini of the units harvested so far by every agent that has played"),
        MetricSpec::fraction("over_usage", "requests so far", "share of requests so far above the sustainable threshold"),
        MetricSpec::flow("llm_invalid", "LLM answers this month that could not be read (the rule was used)"),
        MetricSpec::flow("utterances", "utterances in this month's discussion"),
    ]
}

/// The registry entry.
pub static COMMONS: ModelSpec = ModelSpec {
    name: "commons",
    summary: "GovSim commons: agents share a renewable pool (fishery, pasture, pollution)",
    description: "Each month every agent privately asks for a whole number of units. If the total fits in the stock, everyone gets what they asked; otherwise units are handed out one at a time to an agent drawn uniformly among those still wanting. The resource collapses when the stock after the harvest is below collapse_threshold; otherwise it doubles, capped at capacity. Set the population size to the number of agents (5 in GovSim) and steps to the months (12). Asked 10 each by 5 agents the pool stays full; 11 each collapses it in month 4; 20 each in month 1.",
    params,
    metrics,
    columns: &[],
    exclusive: &[],
    uses_layers: false,
    decisions: &[
        DecisionDoc {
            name: "harvest",
            doc: "each month, how many units does the agent ask for? a number in [0, max_request], rounded; ask = \"agents\". Placeholders: {agent}, {agents}, {month}, {stock}, {capacity}, {resource}, {unit}, {threshold}, {hint} (universalization, or empty), {last_harvests} (everyone's harvest last month), {your_total}, {discussion} (last month's, or \"none\"), {reflection} (the agent's own, from last month), {memory}",
            answer: DecisionAnswer::Number { min: 0.0, max: 1e6 },
        },
        DecisionDoc {
            name: "discuss",
            doc: "after the harvests, what the agent says to the group (free text; [end] closes the discussion). Placeholders: those of harvest plus {harvests} (this month's, public) and {conversation} (so far)",
            answer: DecisionAnswer::Text,
        },
        DecisionDoc {
            name: "reflect",
            doc: "after the discussion, what the agent takes away for next month (free text, shown to it as {reflection}). Placeholders: as discuss",
            answer: DecisionAnswer::Text,
        },
    ],
    states: &[],
    control: None,
    plots: &[
        PlotPanel {
            ylabel: "units",
            metrics: &["stock", "requested", "harvest"],
            bars: false,
        },
        PlotPanel {
            ylabel: "share",
            metrics: &["efficiency", "equality", "over_usage"],
            bars: false,
        },
    ],
    tables: &[],
    splits: false,
    build: |input| Commons::new(input).map(|m| Box::new(m) as Box<dyn Model>),
};

myriad_core::metric_columns! {
    /// Where each metric sits in the row.
    struct Cols {
        stock: "stock",
        sustainable_threshold: "sustainable_threshold",
        requested: "requested",
        harvest: "harvest",
        agents: "agents",
        collapsed: "collapsed",
        survival_time: "survival_time",
        mean_gain: "mean_gain",
        efficiency: "efficiency",
        equality: "equality",
        over_usage: "over_usage",
        llm_invalid: "llm_invalid",
        utterances: "utterances",
    }
}

/// The commons' state.
#[derive(Clone)]
pub struct Commons {
    agents: u32,
    seed: u64,
    stock: f64,
    collapsed_in: Option<u32>,
    gains: Vec<f64>,
    last_harvests: Vec<Option<u64>>,
    requests_made: u64,
    requests_over: u64,
    total_harvest: f64,
    sustainable_f0: f64,
    discussion: String,
    reflections: Vec<String>,
}

impl Commons {
    fn new(input: ModelInput) -> Result<Commons, ModelError> {
        let agents = input.population.size();
        if agents == 0 {
            return Err(ModelError::Infeasible("the commons needs at least one agent".into()));
        }
        let newcomer = CommonsParams::read(&input.params).newcomer_month > 0.0;
        let all = agents as usize + usize::from(newcomer);
        Ok(Commons {
            agents,
            seed: input.seed,
            stock: CommonsParams::read(&input.params).capacity,
            collapsed_in: None,
            gains: vec![0.0; all],
            last_harvests: vec![None; all],
            requests_made: 0,
            requests_over: 0,
            total_harvest: 0.0,
            sustainable_f0: CommonsParams::read(&input.params).sustainable_total,
            discussion: NONE_YET.to_string(),
            reflections: vec![NONE_YET.to_string(); agents as usize],
        })
    }

    fn row(&self, month: u32, m: &Month, row: &mut [f64]) {
        let p = self.sustainable_f0 * month as f64;
        let efficiency = if month == 0 || p <= 0.0 {
            1.0
        } else {
            1.0 - (p - self.total_harvest).max(0.0) / p
        };
        let played: Vec<f64> = self
            .gains
            .iter()
            .zip(&self.last_harvests)
            .filter(|(_, h)| h.is_some())
            .map(|(g, _)| *g)
            .collect();
        let original = &self.gains[..self.agents as usize];
        let c = Cols::new(&metrics());
        row[c.stock] = self.stock;
        row[c.sustainable_threshold] = m.threshold;
        row[c.requested] = m.requested;
        row[c.harvest] = m.harvest;
        row[c.agents] = m.active as f64;
        row[c.collapsed] = f64::from(u8::from(self.collapsed_in.is_some()));
        row[c.survival_time] = self.collapsed_in.unwrap_or(month) as f64;
        row[c.mean_gain] = original.iter().sum::<f64>() / original.len() as f64;
        row[c.efficiency] = efficiency;
        row[c.equality] = 1.0 - gini(&played);
        row[c.over_usage] = if self.requests_made == 0 {
            0.0
        } else {
            self.requests_over as f64 / self.requests_made as f64
        };
        row[c.llm_invalid] = m.invalid as f64;
        row[c.utterances] = m.utterances as f64;
    }
}

/// What happened in one month.
#[derive(Default)]
struct Month {
    threshold: f64,
    requested: f64,
    harvest: f64,
    active: usize,
    invalid: u64,
    utterances: u64,
}

/// Each agent's harvest when `requests` exceed or fit the `stock`.
fn allocate(requests: &[u64], stock: u64, rng: &CounterRng, month: u32) -> Vec<u64> {
    let total: u64 = requests.iter().sum();
    if total <= stock {
        return requests.to_vec();
    }
    let mut got = vec![0u64; requests.len()];
    let mut wanting: Vec<usize> = (0..requests.len()).filter(|&i| requests[i] > 0).collect();
    for unit in 0..stock {
        let k = rng.below(u64::from(month), unit, wanting.len() as u64) as usize;
        let i = wanting[k];
        got[i] += 1;
        if got[i] == requests[i] {
            // O(1); the order stays a function of the seed.
            wanting.swap_remove(k);
        }
    }
    got
}

impl Model for Commons {
    fn metrics(&self) -> Vec<MetricSpec> {
        metrics()
    }

    fn agent_count(&self) -> u32 {
        self.gains.len() as u32
    }

    fn observe(&self, row: &mut [f64]) {
        let m = Month {
            threshold: ((self.stock / 2.0).floor() / f64::from(self.agents)).floor(),
            active: self.agents as usize,
            ..Month::default()
        };
        self.row(0, &m, row);
    }

    fn step(&mut self, ctx: &mut Step, row: &mut [f64]) {
        let month = ctx.step;
        let p = &CommonsParams::read(ctx.params);
        self.sustainable_f0 = p.sustainable_total;
        let newcomer_month = p.newcomer_month as u32;
        let newcomer = newcomer_month > 0 && month >= newcomer_month && self.gains.len() > self.agents as usize;
        let active = self.agents as usize + usize::from(newcomer);
        let threshold = ((self.stock / 2.0).floor() / active as f64).floor();
        if self.collapsed_in.is_some() {
            let m = Month {
                threshold,
                active,
                ..Month::default()
            };
            self.row(month, &m, row);
            return;
        }
        let asked = self.ask(ctx, threshold, active);
        let (requests, invalid) = self.requests(p, month, threshold, active, asked.as_deref());
        self.requests_made += requests.len() as u64;
        self.requests_over += requests.iter().filter(|&&r| r as f64 > threshold).count() as u64;
        let got = allocate(
            &requests,
            self.stock.floor() as u64,
            &CounterRng::new(self.seed, ALLOCATION),
            month,
        );
        let harvest: u64 = got.iter().sum();
        for (i, &g) in got.iter().enumerate() {
            self.gains[i] += g as f64;
            self.last_harvests[i] = Some(g);
        }
        self.total_harvest += harvest as f64;
        self.stock -= harvest as f64;
        if self.stock < p.collapse_threshold {
            self.collapsed_in = Some(month);
        } else {
            self.stock = (2.0 * self.stock).min(p.capacity);
        }
        if active <= TRANSCRIPT_AGENTS {
            for (i, (&asked, &got)) in requests.iter().zip(&got).enumerate() {
                ctx.events
                    .push(json!({"kind": "harvest", "agent": i, "asked": asked, "got": got}));
            }
        }
        let utterances = if self.collapsed_in.is_none() && p.communication.as_str() == "on" {
            self.talk(ctx, threshold, active)
        } else {
            0
        };
        let m = Month {
            threshold,
            requested: requests.iter().sum::<u64>() as f64,
            harvest: harvest as f64,
            active,
            invalid,
            utterances,
        };
        self.row(month, &m, row);
    }

    fn snapshot(&self) -> Box<dyn Model> {
        Box::new(self.clone())
    }

    fn agent_columns(&self) -> Vec<(&'static str, ColumnView<'_>)> {
        vec![("gain", ColumnView::F64(&self.gains))]
    }

    fn hash_extra(&self, h: &mut StateHasher) {
        h.f64(self.stock);
        h.u64(self.collapsed_in.map_or(u64::MAX, u64::from));
        self.last_harvests.iter().for_each(|x| h.u64(x.unwrap_or(u64::MAX)));
        h.u64(self.requests_made);
        h.u64(self.requests_over);
        h.f64(self.total_harvest);
        h.str(&self.discussion);
        self.reflections.iter().for_each(|r| h.str(r));
    }
}

impl Commons {
    /// Each active agent's request: the LLM's answer where readable (a
    /// whole number), else the rule; and how many answers were unreadable.
    fn requests(
        &self,
        p: &CommonsParams,
        month: u32,
        threshold: f64,
        active: usize,
        asked: Option<&[f64]>,
    ) -> (Vec<u64>, u64) {
        let (agents, seed, max_request) = (self.agents as usize, self.seed, p.max_request);
        let rule = |i: usize| -> f64 {
            if i >= agents {
                return p.newcomer_request;
            }
            match p.players.as_str() {
                "sustainable" => threshold,
                "greedy" => max_request,
                "random" => {
                    CounterRng::new(seed, RANDOM_PLAYERS).below(u64::from(month), i as u64, max_request as u64 + 1)
                        as f64
                }
                _ => p.request,
            }
        };
        let mut invalid = 0;
        let requests = (0..active)
            .map(|i| {
                let v = match asked.and_then(|a| a.get(i)) {
                    Some(v) if v.is_finite() => v.round(),
                    Some(_) => {
                        invalid += 1;
                        rule(i)
                    }
                    None => rule(i),
                };
                v.clamp(0.0, max_request) as u64
            })
            .collect();
        (requests, invalid)
    }
}

impl Commons {
    /// Placeholder values every prompt of the month shares.
    fn common(&self, ctx: &Step, threshold: f64, active: usize) -> BTreeMap<String, String> {
        let p = &CommonsParams::read(ctx.params);
        let (resource, unit, what) = match p.framing.as_str() {
            "pasture" => ("hectares of grass on the shared pasture", "hectares", "pasture"),
            "pollution" => (
                "percent of unpolluted water in the shared river",
                "percent",
                "clean water",
            ),
            _ => ("tons of fish in the shared lake", "tons", "fish population"),
        };
        let hint = if p.universalization.as_str() == "on" {
            format!("If everyone takes more than {threshold} {unit}, the {what} will shrink.")
        } else {
            String::new()
        };
        let last = self.harvest_list().unwrap_or_else(|| NONE_YET.to_string());
        BTreeMap::from([
            ("month".to_string(), ctx.step.to_string()),
            ("agents".to_string(), active.to_string()),
            ("stock".to_string(), format!("{}", self.stock)),
            ("capacity".to_string(), format!("{}", p.capacity)),
            ("resource".to_string(), resource.to_string()),
            ("unit".to_string(), unit.to_string()),
            ("threshold".to_string(), format!("{threshold}")),
            ("hint".to_string(), hint),
            ("last_harvests".to_string(), last),
            ("discussion".to_string(), self.discussion.clone()),
        ])
    }

    /// Everyone's latest harvest, "agent 0: 10, agent 1: 12, ..." (None
    /// before the first month).
    fn harvest_list(&self) -> Option<String> {
        let list: Vec<String> = self
            .last_harvests
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.map(|h| format!("agent {i}: {h}")))
            .collect();
        (!list.is_empty()).then(|| list.join(", "))
    }

    /// Put a question to the LLM players `askers` with the month's shared
    /// values `common`; each agent also sees its own total and reflection.
    fn put<R>(
        &self,
        decide: &mut Decide,
        common: BTreeMap<String, String>,
        askers: &[u32],
        ask: impl FnOnce(&mut Decide, &Observations) -> R,
    ) -> R {
        let (gains, reflections) = (&self.gains, &self.reflections);
        let by_agent = move |attrs: &BTreeMap<String, String>| {
            let i = attrs.get("agent").and_then(|a| a.parse::<usize>().ok());
            let total = i.and_then(|i| gains.get(i)).copied().unwrap_or(0.0);
            let reflection = i
                .and_then(|i| reflections.get(i))
                .cloned()
                .unwrap_or_else(|| NONE_YET.to_string());
            BTreeMap::from([
                ("your_total".to_string(), format!("{total}")),
                ("reflection".to_string(), reflection),
            ])
        };
        let obs = Observations {
            common,
            by_group: &by_agent,
            askers: Some(askers),
            states: &[],
        };
        ask(decide, &obs)
    }

    /// The LLM players' requests this month (None without a provider).
    fn ask(&self, ctx: &mut Step, threshold: f64, active: usize) -> Option<Vec<f64>> {
        if !ctx.decide.attached() {
            return None;
        }
        let common = self.common(ctx, threshold, active);
        let askers: Vec<u32> = (0..self.agents).collect();
        let when = format!("month {}", ctx.step);
        self.put(&mut ctx.decide, common, &askers, |d, obs| {
            d.values("harvest", &when, obs)
        })
    }

    /// The month's discussion and reflections (LLM players only); returns
    /// the number of utterances.
    fn talk(&mut self, ctx: &mut Step, threshold: f64, active: usize) -> u64 {
        if !ctx.decide.attached() {
            return 0;
        }
        let when = format!("month {}", ctx.step);
        let mut common = self.common(ctx, threshold, active);
        common.insert("harvests".to_string(), self.harvest_list().unwrap_or_default());
        let mut lines: Vec<String> = Vec::new();
        let limit = CommonsParams::read(ctx.params).utterances as u64;
        for u in 0..limit {
            let speaker = (u % u64::from(self.agents)) as u32;
            let mut c = common.clone();
            c.insert("conversation".to_string(), conversation(&lines));
            let texts = self.put(&mut ctx.decide, c, &[speaker], |d, obs| d.texts("discuss", &when, obs));
            let Some(texts) = texts else { break };
            let (text, ended) = closing(&texts.into_iter().next().flatten().unwrap_or_default());
            if !text.is_empty() {
                ctx.events.push(json!({"kind": "say", "agent": speaker, "text": text}));
                lines.push(format!("agent {speaker}: {text}"));
            }
            if ended {
                break;
            }
        }
        common.insert("conversation".to_string(), conversation(&lines));
        let askers: Vec<u32> = (0..self.agents).collect();
        if let Some(texts) = self.put(&mut ctx.decide, common, &askers, |d, obs| {
            d.texts("reflect", &when, obs)
        }) {
            for (i, t) in texts.into_iter().enumerate() {
                if let Some(t) = t {
                    ctx.events.push(json!({"kind": "reflect", "agent": i, "text": t}));
                    self.reflections[i] = t;
                }
            }
        }
        // Next month's prompts show this month's discussion only (bounded).
        self.discussion = if lines.is_empty() {
            "none".to_string()
        } else {
            lines.join("\n")
        };
        lines.len() as u64
    }
}

/// An utterance without its closing mark, and whether it had one ("[end]",
/// in any case).
fn closing(text: &str) -> (String, bool) {
    const MARK: &str = "[end]";
    let lower = text.to_ascii_lowercase();
    let mut kept = String::with_capacity(text.len());
    let mut rest = 0;
    let mut ended = false;
    // ASCII lowercasing keeps byte offsets, so `lower`'s matches index `text`.
    for (at, _) in lower.match_indices(MARK) {
        kept.push_str(&text[rest..at]);
        rest = at + MARK.len();
        ended = true;
    }
    kept.push_str(&text[rest..]);
    (kept.trim().to_string(), ended)
}

/// A conversation as prompt text.
fn conversation(lines: &[String]) -> String {
    if lines.is_empty() {
        "(nobody has spoken yet)".to_string()
    } else {
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::closing;

    #[test]
    fn the_closing_mark_is_found_and_removed_in_any_case() {
        assert_eq!(closing("Agreed. [end]"), ("Agreed.".to_string(), true));
        assert_eq!(closing("[END] fine"), ("fine".to_string(), true));
        assert_eq!(closing("Done [End]."), ("Done .".to_string(), true));
        assert_eq!(closing("We take 10."), ("We take 10.".to_string(), false));
        assert_eq!(closing("[end]"), (String::new(), true));
    }
}
