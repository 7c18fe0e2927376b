//! `myriad calibrate` on a dated run whose population source offers dated
//! observed series for the model's weekly table (the synthetic city: the
//! Health Department's cases, hospitalisations and deaths): the model is
//! fitted to all of them together, week by week on the run's calendar.
//!
//! What is compared comes from the model: the `(metric, series)` pairs of
//! its weekly table whose series the source offers by date (for `covid`:
//! reported cases against confirmed cases, admissions, deaths). The first
//! pair is the one the reporting parameter scales.
//!
//! What is fitted: for every calendar week `w`, the transmission parameter
//! (`--param`, default `r_week`) and the reporting parameter
//! (`--report-param`, default `report_probability`) of that week's
//! infections; the initial infections (`--initial`, default
//! `initial_infected`; `none` keeps the scenario's); and, where the model
//! has `seed_weight_<part>` parameters (`seed_weight_bk`, ...), where they
//! are seeded: each part's observed first-series count per resident over
//! the first three weeks, relative to the mean over parts, set once from the
//! data before the search.
//!
//! Method. The model is causal, so weeks are fitted in order from copies
//! of the committed simulation ([`Simulation::fork`]). Infections of week
//! `w` show up later (for `covid`: reports about a week later, admissions
//! about 12 days later, deaths about 23 days later). So each candidate `r`
//! for week `w` runs `1 + lookahead` weeks (3) with `r` held, and its loss
//! is, over weeks `w + 1 ..= w + 3`, the sum over the series of squared
//! errors of `ln(1 + weekly count)`, the first series after rescaling by the
//! reporting correction below: the log scale because counts span four
//! orders of magnitude and relative misses matter; equal weights because
//! each series is one view of the same infections. The search is over
//! `ln r` in `[ln(prev / 3), ln(prev x 3)]` within `(0.001, --param-max]`
//! (a grid of 7, then 5 golden-section steps): transmission does not jump
//! more than threefold in a week. The reporting parameter of week `w` is
//! then set by a ratio: the week after `w` is when most of week `w`'s
//! infections are reported, so `q_w = q_(w-1) x observed / modelled` first
//! series of week `w + 1`, clamped to [0.002, 1]. The last week has no
//! later week to score it, so it keeps the week before's values. The week is committed by
//! running it once with `(r_w, q_w)`. Every candidate uses the same seed
//! (common random numbers), so `myriad run fitted.toml` at the searched
//! scale reproduces the fitted series exactly (tested).
//!
//! Then, where the model has monthly readings with a dated observed series
//! (`covid`: unemployment per borough from July 2020), the labour parameter
//! is fitted month by month (`labour.rs`) with the weekly values held, the
//! weeks are fitted again with the monthly values in force (work changes
//! who meets at work), and a final replay with every fitted value in force
//! gives the series reported and written.
//!
//! Initial infections: candidates on a log grid (5, then 3 golden steps)
//! each fitted over the first 5 weeks with a coarser search; the best is kept.
//!
//! Cost. Each week costs about 14 candidates x 4 weeks of simulation; on the
//! full city that is beyond 30 minutes on 2 cores, so the search runs on a
//! scaled city (`--search-scale`, default 0.05: 430,000 residents in the
//! same kinds of households, schools and workplaces) and the fitted scenario
//! is written for the scenario's own scale (initial infections divided by
//! the search scale), to be confirmed by `myriad run fitted.toml`.
//!
//! `--refine`: small differences between the scaled and the full city
//! compound over months (the winter wave grew 1.5-2 times too fast at full
//! scale), so the weeks are fitted once more on the scenario's own city,
//! each week's value searched within a factor 1.5 of the scaled search's
//! (grid of 3, 2 golden steps), with the initial infections (scaled up)
//! and the labour values kept; `fitted.toml` then holds the refined values
//! and reproduces them at its own scale.

pub mod forecast;
mod held;
mod labour;

use crate::build::{self, InputError};
use crate::calibrate::{minimise, CalibrateOptions};
use crate::error::{Error, FileContext, Result};
use crate::outputs::observed;
use crate::scenario::{self, Overrides, Scenario};
use crate::simulation::{BuildInfo, Decisions, Simulation};
use myriad_core::calendar::{Period, PeriodKind};
use myriad_core::model::{Layer, TableKind};
use myriad_core::params::ParamValue;
use myriad_core::population::{ColumnData, Population};
use myriad_core::source::{Observed, Timing};
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Weeks after the fitted one whose counts score it.
const LOOKAHEAD: usize = 3;
/// Refining at full scale: each week's value is searched within this
/// factor of the scaled search's (differences between the scaled and the
/// full city are small week to week, but compound over months).
const REFINE_FACTOR: f64 = 1.5;

/// Largest transmission value tried when `--param-max` is not given.
const DEFAULT_PARAM_MAX: f64 = 60.0;

/// The model's weekly `(metric, series)` pairs whose series the source
/// offers by date, with the series.
fn compared(s: &Scenario) -> Vec<(&'static str, Observed)> {
    s.model
        .tables
        .iter()
        .filter(|t| t.kind == TableKind::FlowSums && t.every == PeriodKind::Week)
        .flat_map(|t| t.observed.iter())
        .filter_map(|&(metric, name)| {
            let o = observed(s, name)?;
            matches!(o.timing, Timing::Daily(_)).then_some((metric, o))
        })
        .collect()
}

/// Is this a dated scenario with dated observed series to fit (and no
/// `--observed` file, which the weekly fit of `calibrate` handles)?
pub fn applies(s: &Scenario, o: &CalibrateOptions) -> bool {
    o.observed.is_none() && s.calendar.start().is_some() && !compared(s).is_empty()
}

/// Options of the weekly single-series fit that mean nothing here.
fn refuse_other_options(o: &CalibrateOptions) -> Result<()> {
    let bad = |what: &str| -> Result<()> {
        Err(InputError(format!(
            "{what} applies to the fit of one weekly series; this dated scenario is fitted to every dated observed series of its population together (see `myriad calibrate --help`)"
        ))
        .into())
    };
    if o.target.is_some() {
        return bad("--target");
    }
    if o.metric.is_some() {
        return bad("--metric");
    }
    if o.column.is_some() {
        return bad("--column");
    }
    if o.seeds != 1 {
        return bad("--seeds");
    }
    Ok(())
}

/// Root-mean-square error of ln(1 + weekly count) of a fit, per series.
fn rmsle(fit: &Fit, t: &Target) -> Vec<f64> {
    fit.model
        .iter()
        .zip(&t.values)
        .map(|(m, o)| {
            let sum: f64 = m.iter().zip(o).map(|(&m, &o)| err(m, o)).sum();
            (sum / m.len().max(1) as f64).sqrt()
        })
        .collect()
}

/// Step `sim` once; a provider failure (an LLM endpoint gone, say) is an
/// error here, not a step finished on the model's rule, so that a fit or a
/// forecast of the LLM arm never silently becomes the heuristic's.
pub(super) fn step_or_fail(sim: &mut Simulation) -> Result<()> {
    sim.step()?;
    match sim.error() {
        None => Ok(()),
        Some(e) => Err(Error::Run(format!(
            "step {} ({}): the behaviour provider failed: {e}",
            sim.step_index(),
            sim.scenario().calendar.label(sim.step_index())
        ))),
    }
}

/// Observed weekly totals: the weeks, and per series one value per week.
struct Target {
    weeks: Vec<Period>,
    values: Vec<Vec<f64>>,
}

/// The whole weeks the observed series cover (from the first), at most `weeks`.
fn target(s: &Scenario, obs: &[(&str, Observed)], weeks: Option<u32>) -> Result<Target> {
    let mut kept = Vec::new();
    let mut values = vec![Vec::new(); obs.len()];
    for p in s.calendar.periods(PeriodKind::Week, s.steps) {
        let v: Option<Vec<f64>> = obs
            .iter()
            .map(|(_, o)| o.for_period(&s.calendar, PeriodKind::Week, &p, None))
            .collect();
        let Some(v) = v else { break };
        for (series, x) in values.iter_mut().zip(v) {
            series.push(x);
        }
        kept.push(p);
        if weeks.is_some_and(|w| kept.len() as u32 >= w) {
            break;
        }
    }
    if kept.len() < 2 {
        let start = s.calendar.start().map(|d| d.to_string()).unwrap_or_default();
        return Err(InputError(format!(
            "{}: start_date {start}: the observed series cover fewer than two whole weeks from the run's first week, so there is nothing to fit",
            s.file.display()
        ))
        .into());
    }
    Ok(Target { weeks: kept, values })
}

fn err(model: f64, observed: f64) -> f64 {
    ((1.0 + model).ln() - (1.0 + observed).ln()).powi(2)
}

/// The parameters fitted.
struct Params {
    transmission: String,
    report: String,
    initial: Option<String>,
    max: f64,
}

/// What was chosen, and the model's weekly totals with it.
pub(super) struct Fit {
    initial: f64,
    r: Vec<f64>,
    q: Vec<f64>,
    /// Per series, per committed week.
    model: Vec<Vec<f64>>,
    loss: f64,
}

pub(super) struct Search<'a> {
    s: Scenario,
    population: Population,
    layers: Vec<Layer>,
    pool: Arc<rayon::ThreadPool>,
    info: BuildInfo,
    cols: Vec<usize>,
    t: &'a Target,
    p: &'a Params,
    /// Monthly labour values in force during the weekly fit (second pass).
    labour: Option<labour::Labour>,
    /// Decisions from a provider instead of the model's rule.
    provider: Option<held::HeldInForks>,
    /// Initial infections already searched for (on the same first weeks).
    initial_known: Option<f64>,
    /// Refining: the weekly values found by the scaled search.
    prior: Option<Vec<f64>>,
    evaluations: u64,
    stop: Arc<AtomicBool>,
}

impl Search<'_> {
    /// Run `sim` through week `p` with `(r, q)`; the week's totals per series.
    fn week(&self, sim: &mut Simulation, p: &Period, r: f64, q: f64) -> Result<Vec<f64>> {
        sim.set_override(&self.p.transmission, r);
        sim.set_override(&self.p.report, q);
        let mut sums = vec![0.0; self.cols.len()];
        for step in p.first..=p.last {
            if let Some((param, v)) = self.labour.as_ref().and_then(|l| l.value_at(step)) {
                sim.set_override(param, v);
            }
            step_or_fail(sim)?;
            for (sum, &c) in sums.iter_mut().zip(&self.cols) {
                *sum += sim.row()[c];
            }
        }
        Ok(sums)
    }

    /// A new simulation with `initial` infections, stepped to just before
    /// the first whole week (on the scenario's own values).
    pub(super) fn fresh(&self, initial: f64) -> Result<Simulation> {
        let mut s = self.s.clone();
        if let Some(name) = &self.p.initial {
            s.params.set(name, ParamValue::Number(initial))?;
        }
        let mut sim = Simulation::from_parts(
            &s,
            self.population.clone(),
            self.layers.clone(),
            s.seed,
            match &self.provider {
                None => Decisions::Rule,
                Some(p) => Decisions::Provider(Box::new(p.root())),
            },
            None,
            self.pool.clone(),
            self.info.clone(),
        )?;
        while sim.step_index() + 1 < self.t.weeks[0].first {
            step_or_fail(&mut sim)?;
        }
        Ok(sim)
    }

    /// Fit weeks `0..weeks` from `initial` infections; `grid`/`refine` size the search.
    fn fit(&mut self, initial: f64, weeks: usize, grid: usize, refine: usize) -> Result<Fit> {
        let mut sim = self.fresh(initial)?;
        let n = self.cols.len();
        let mut fit = Fit {
            initial,
            r: Vec::new(),
            q: Vec::new(),
            model: vec![Vec::new(); n],
            loss: 0.0,
        };
        let (mut r_prev, mut q_prev) = (
            self.s.params.num(&self.p.transmission),
            self.s.params.num(&self.p.report),
        );
        let t = self.t;
        for w in 0..weeks {
            if self.stop.load(Ordering::Relaxed) {
                return Err(Error::Run("interrupted".into()));
            }
            let ahead = &t.weeks[w..(w + 1 + LOOKAHEAD).min(t.weeks.len())];
            // Around the week before's value, or, refining, around the
            // value the scaled search found for this week.
            let (centre, factor) = match &self.prior {
                Some(p) if w < p.len() => (p[w], REFINE_FACTOR),
                _ => (r_prev, 3.0),
            };
            let lo = (centre / factor).clamp(1e-3, self.p.max).ln();
            let hi = (centre * factor).clamp(1e-3, self.p.max).ln();
            let max = self.p.max;
            // The last week has no later week to score it by (its infections
            // are reported the week after): nothing observed says how it
            // differs from the week before, so it keeps that week's value.
            let held = ahead.len() == 1;
            let (x, _, _) = if held {
                (r_prev.clamp(1e-3, max).ln(), 0.0, ())
            } else {
                minimise(lo, hi, grid, refine, |x| {
                    self.evaluations += 1;
                    let r = x.exp().min(max);
                    let mut m = sim.fork();
                    let mut rows = Vec::new();
                    for p in ahead {
                        rows.push(self.week(&mut m, p, r, q_prev)?);
                    }
                    // The reporting correction the ratio rule would apply next.
                    let kappa = match rows.get(1) {
                        Some(r1) if r1[0] > 0.0 => t.values[0][w + 1] / r1[0],
                        _ => 1.0,
                    };
                    let mut loss = 0.0;
                    for (k, row) in rows.iter().enumerate().skip(1) {
                        for (j, &x) in row.iter().enumerate() {
                            let scale = if j == 0 { kappa } else { 1.0 };
                            loss += err(x * scale, t.values[j][w + k]);
                        }
                    }
                    Ok((loss, ()))
                })?
            };
            let r = x.exp().min(max);
            let q = if w + 1 < t.weeks.len() {
                let mut m = sim.fork();
                self.week(&mut m, &t.weeks[w], r, q_prev)?;
                let next = self.week(&mut m, &t.weeks[w + 1], r, q_prev)?;
                if next[0] > 0.0 {
                    (q_prev * t.values[0][w + 1] / next[0]).clamp(0.002, 1.0)
                } else {
                    q_prev
                }
            } else {
                q_prev
            };
            let row = self.week(&mut sim, &t.weeks[w], r, q)?;
            for (k, &x) in row.iter().enumerate() {
                fit.model[k].push(x);
                fit.loss += err(x, t.values[k][w]);
            }
            fit.r.push(r);
            fit.q.push(q);
            (r_prev, q_prev) = (r, q);
            if self.prior.is_some() && (w + 1) % 10 == 0 {
                // Refining the whole city is slow: say how far it is.
                eprintln!("  {} of {weeks} weeks refined", w + 1);
            }
        }
        Ok(fit)
    }
}

impl Search<'_> {
    /// Run once more from the start with every fitted value in force: the
    /// weekly totals per series and, with `labour`, its month-end readings.
    fn final_replay(&self, fit: &mut Fit, labour: Option<&mut labour::Labour>) -> Result<Simulation> {
        let mut sim = self.fresh(fit.initial)?;
        let n = self.cols.len();
        fit.model = vec![Vec::new(); n];
        fit.loss = 0.0;
        let mut months = Vec::new();
        for (w, p) in self.t.weeks.iter().enumerate().take(fit.r.len()) {
            let mut sums = vec![0.0; n];
            for step in p.first..=p.last {
                self.replay_to(&mut sim, fit, labour.as_deref(), step)?;
                for (sum, &c) in sums.iter_mut().zip(&self.cols) {
                    *sum += sim.row()[c];
                }
                if let Some(l) = labour.as_deref() {
                    if l.months.iter().any(|m| m.last == step) {
                        months.push(l.cols.iter().map(|&c| sim.row()[c]).collect::<Vec<f64>>());
                    }
                }
            }
            for (k, &x) in sums.iter().enumerate() {
                fit.model[k].push(x);
                fit.loss += err(x, self.t.values[k][w]);
            }
        }
        if let Some(l) = labour {
            l.model = months;
        }
        Ok(sim)
    }
}

/// Residents per part of the population (the `borough` column's labels).
fn residents_by_part(population: &Population) -> Vec<(String, f64)> {
    let Some(ColumnData::Text { codes, labels }) = population.column("borough").map(|c| &c.data) else {
        return Vec::new();
    };
    let mut counts = vec![0.0; labels.len()];
    for &c in codes {
        counts[c as usize] += 1.0;
    }
    labels.iter().cloned().zip(counts).collect()
}

/// `seed_weight_<part>` per part the model has a parameter for: the part's
/// first-series count per resident over the first three weeks, relative to
/// the mean over parts (1 where a part had none).
fn seed_weights(s: &Scenario, first: &Observed, weeks: &[Period], residents: &[(String, f64)]) -> Vec<(String, f64)> {
    let rate: Vec<f64> = first
        .parts
        .iter()
        .enumerate()
        .map(|(k, (part, _))| {
            let count: f64 = weeks
                .iter()
                .take(3)
                .filter_map(|p| first.for_period(&s.calendar, PeriodKind::Week, p, Some(k)))
                .sum();
            let n = residents.iter().find(|(p, _)| p == part).map_or(0.0, |x| x.1);
            if n > 0.0 {
                count / n
            } else {
                0.0
            }
        })
        .collect();
    let mean = rate.iter().sum::<f64>() / rate.len().max(1) as f64;
    first
        .parts
        .iter()
        .zip(rate)
        .map(|((p, _), r)| {
            let w = if mean > 0.0 && r > 0.0 { r / mean } else { 1.0 };
            (format!("seed_weight_{}", p.to_lowercase()), w)
        })
        .filter(|(name, _)| s.params.spec(name).is_ok())
        .collect()
}

/// The parameters fitted, each checked against the model.
fn fitted_params(s: &Scenario, o: &CalibrateOptions) -> Result<Params> {
    let report = o.report_param.clone().unwrap_or_else(|| "report_probability".into());
    let p = Params {
        transmission: o.param.clone(),
        report,
        initial: o.initial.clone(),
        max: o.param_max.unwrap_or(DEFAULT_PARAM_MAX),
    };
    if !(p.max > 0.001 && p.max.is_finite()) {
        return Err(InputError("--param-max must be a number above 0.001".into()).into());
    }
    for (name, what) in [
        (Some(&p.transmission), "--param"),
        (Some(&p.report), "--report-param"),
        (p.initial.as_ref(), "--initial"),
    ] {
        if let Some(name) = name {
            s.params.spec(name).map_err(|_| {
                InputError(format!(
                    "{what}: model '{}' has no parameter '{name}' (see `myriad describe {}`)",
                    s.model.name, s.model.name
                ))
            })?;
        }
    }
    Ok(p)
}

/// Everything a dated search is built from, once per command.
pub(super) struct Prepared {
    /// The scenario at the searched scale, seed weights set.
    s: Scenario,
    obs: Vec<(&'static str, Observed)>,
    population: Population,
    layers: Vec<Layer>,
    pool: Arc<rayon::ThreadPool>,
    info: BuildInfo,
    cols: Vec<usize>,
    weights: Vec<(String, f64)>,
    params: Params,
    scale: f64,
}

/// Load the scenario at `scale` of its own, check the options, build the
/// population and layers, and set the seed weights from the observed data.
fn prepare(o: &CalibrateOptions, full: &Overrides, scale: f64) -> Result<Prepared> {
    if !(scale > 0.0 && scale <= 1.0) {
        return Err(InputError(format!("--search-scale must be in (0, 1], got {scale}")).into());
    }
    let given = scenario::load(&o.scenario, full)?;
    let own_scale = given.resolved["population"]["scale"].as_f64().unwrap_or(1.0);
    let mut searched = full.clone();
    searched.set.push(format!("population.scale={}", own_scale * scale));
    let mut s = scenario::load(&o.scenario, &searched)?;
    let params = fitted_params(&s, o)?;
    let obs = compared(&s);
    if s.calendar.start().is_none() || obs.is_empty() {
        return Err(InputError(format!(
            "{}: fitting to dated observed series needs start_date and a population source with dated series for the model's weekly table (the synthetic city with model covid)",
            o.scenario.display()
        ))
        .into());
    }
    let all_weeks = target(&s, &obs, None)?;
    let pool = crate::simulation::pool(o.threads)?;
    let population = pool.install(|| build::population(&s))?;
    let weights = seed_weights(&s, &obs[0].1, &all_weeks.weeks, &residents_by_part(&population));
    for (name, w) in &weights {
        s.params.set(name, ParamValue::Number(*w))?;
    }
    let (layers, reports) = pool.install(|| build::layers(&s, &population))?;
    let info = BuildInfo {
        agents: population.size(),
        layers: reports,
        population_seconds: 0.0,
        layer_seconds: 0.0,
    };
    let metrics = (s.model.metrics)();
    let cols = obs
        .iter()
        .map(|(m, _)| {
            metrics
                .iter()
                .position(|x| x.name == *m)
                .expect("a table names the model's metrics")
        })
        .collect();
    Ok(Prepared {
        s,
        obs,
        population,
        layers,
        pool,
        info,
        cols,
        weights,
        params,
        scale,
    })
}

impl<'a> Search<'a> {
    /// A search over `t` from what `pre` built, deciding by the model's
    /// rule (`provider` None) or by `provider`.
    fn new(
        pre: &Prepared,
        t: &'a Target,
        p: &'a Params,
        provider: Option<held::HeldInForks>,
        stop: Arc<AtomicBool>,
    ) -> Search<'a> {
        Search {
            s: pre.s.clone(),
            population: pre.population.clone(),
            layers: pre.layers.clone(),
            pool: pre.pool.clone(),
            info: pre.info.clone(),
            cols: pre.cols.clone(),
            t,
            p,
            labour: None,
            provider,
            initial_known: None,
            prior: None,
            evaluations: 0,
            stop,
        }
    }

    /// The whole dated fit (initial infections, weeks, labour months,
    /// weeks again, final replay): what was fitted, the labour stage, and
    /// the simulation at the end of the last fitted week.
    fn calibrate(&mut self, o: &CalibrateOptions) -> Result<(Fit, Option<labour::Labour>, Simulation)> {
        let (t, params) = (self.t, self.p);
        let n = self.population.size();
        let initial = match (&params.initial, self.initial_known) {
            // Not fitted: the scenario's own count is used (and not reported).
            (None, _) => 0.0,
            (Some(_), Some(known)) => known,
            (Some(name), None) => {
                let range = o.initial_range.unwrap_or((10.0, (n as f64 / 200.0).max(100.0)));
                if !(range.0 >= 1.0 && range.1 >= range.0 && range.1 <= n as f64) {
                    return Err(InputError(format!(
                        "--initial-range needs 1 <= LOW <= HIGH <= {n} (the agents searched)"
                    ))
                    .into());
                }
                let short = (LOOKAHEAD + 2).min(t.weeks.len());
                let mut tried: Vec<(f64, f64)> = Vec::new();
                minimise(range.0.ln(), range.1.ln(), 5, 3, |x| {
                    let count = x.exp().round();
                    if let Some(&(_, loss)) = tried.iter().find(|(c, _)| *c == count) {
                        return Ok((loss, ()));
                    }
                    let f = self.fit(count, short, 5, 2)?;
                    eprintln!("  {name} = {count}: loss over {short} weeks {:.3}", f.loss);
                    tried.push((count, f.loss));
                    Ok((f.loss, ()))
                })?;
                tried.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.total_cmp(&b.0)));
                tried[0].0
            }
        };
        let mut fit = self.fit(initial, t.weeks.len(), 7, 5)?;
        let last_step = t.weeks[fit.r.len() - 1].last;
        let s = &self.s;
        let mut labour = match (&o.labour_param, labour::readings(s)) {
            (Some(name), _) if name == "none" => None,
            (Some(name), None) => {
                return Err(InputError(format!(
                    "--labour-param {name}: the population offers no dated monthly readings for model '{}'",
                    s.model.name
                ))
                .into())
            }
            (name, Some((prefix, readings))) => {
                let param = name.clone().unwrap_or_else(|| "work_probability".into());
                if s.params.spec(&param).is_err() {
                    if name.is_some() {
                        return Err(InputError(format!(
                            "--labour-param: model '{}' has no parameter '{param}'",
                            s.model.name
                        ))
                        .into());
                    }
                    None
                } else {
                    labour::setup(self, &param, prefix, &readings, last_step)
                }
            }
            (None, None) => None,
        };
        if let Some(l) = labour.take() {
            eprintln!(
                "fitting {} for {} months to the observed monthly readings",
                l.param,
                l.months.len()
            );
            let l = self.fit_labour(&fit, l)?;
            // Work changes who meets at work: fit the weeks again with the
            // monthly values in force.
            eprintln!("fitting the weeks again with {} in force", l.param);
            self.labour = Some(l);
            fit = self.fit(initial, t.weeks.len(), 7, 5)?;
            labour = self.labour.take();
        }
        let sim = self.final_replay(&mut fit, labour.as_mut())?;
        Ok((fit, labour, sim))
    }
}

impl Search<'_> {
    /// Fit this search's weeks again on its city (the scenario's own),
    /// each week's value within [`REFINE_FACTOR`] of `fit`'s, which was
    /// searched at `scale` of it; the initial infections scaled up and the
    /// `labour` values kept. What was fitted, the labour stage with its
    /// readings replayed, and the simulation at the last fitted week.
    fn refine(
        &mut self,
        fit: &Fit,
        labour: Option<labour::Labour>,
        scale: f64,
    ) -> Result<(Fit, Option<labour::Labour>, Simulation)> {
        self.prior = Some(fit.r.clone());
        self.labour = labour;
        let initial = match self.p.initial {
            Some(_) => (fit.initial / scale).round(),
            None => 0.0,
        };
        let mut refined = self.fit(initial, self.t.weeks.len(), 3, 2)?;
        let mut labour = self.labour.take();
        let sim = self.final_replay(&mut refined, labour.as_mut())?;
        Ok((refined, labour, sim))
    }
}

/// Fit, write `calibration.csv`, `calibration.json`, `fit.png` and `fitted.toml`.
pub fn run(o: &CalibrateOptions, stop: Arc<AtomicBool>) -> Result<()> {
    let wall = Instant::now();
    refuse_other_options(o)?;
    let full = Overrides {
        set: o.set.clone(),
        seed: o.seed,
    };
    let pre = prepare(o, &full, o.search_scale.unwrap_or(0.05))?;
    let t = target(&pre.s, &pre.obs, o.weeks)?;
    let out = o.out.create(o.force, "calibrate")?;
    let names: Vec<&str> = pre.obs.iter().map(|(_, o)| o.label.as_str()).collect();
    let (params, s) = (&pre.params, &pre.s);
    eprintln!(
        "calibrating {} and {} for {} weeks{} to {} ({} agents at scale {}, seed {})",
        params.transmission,
        params.report,
        t.weeks.len(),
        params.initial.as_ref().map(|i| format!(" and {i}")).unwrap_or_default(),
        names.join(", "),
        pre.population.size(),
        pre.scale,
        s.seed
    );
    let mut search = Search::new(&pre, &t, params, None, stop.clone());
    let (fit, labour, _) = search.calibrate(o)?;
    let mut evaluations = search.evaluations;
    if !(o.refine && pre.scale < 1.0) {
        let report = Report {
            s,
            t: &t,
            obs: &pre.obs,
            fit: &fit,
            p: params,
            scale: pre.scale,
            weights: &pre.weights,
            agents: pre.population.size(),
            evaluations,
            wall: wall.elapsed().as_secs_f64(),
            labour: labour.as_ref(),
            searched: None,
        };
        return report.write(&out, o, &full);
    }
    // The scaled and the full city differ a little week to week, which
    // compounds over months: fit the weeks once more on the scenario's own
    // city, each within a factor of the scaled search's value.
    let searched = rmsle(&fit, &t);
    drop(search);
    let own = prepare(o, &full, 1.0)?;
    let own_t = target(&own.s, &own.obs, o.weeks)?;
    eprintln!(
        "refining {} and {} for {} weeks on the scenario's own city ({} agents)",
        params.transmission,
        params.report,
        own_t.weeks.len(),
        own.population.size()
    );
    let mut refine = Search::new(&own, &own_t, params, None, stop);
    let (refined, labour, _) = refine.refine(&fit, labour, pre.scale)?;
    evaluations += refine.evaluations;
    let report = Report {
        s: &own.s,
        t: &own_t,
        obs: &own.obs,
        fit: &refined,
        p: params,
        scale: 1.0,
        weights: &own.weights,
        agents: own.population.size(),
        evaluations,
        wall: wall.elapsed().as_secs_f64(),
        labour: labour.as_ref(),
        searched: Some((pre.scale, searched)),
    };
    report.write(&out, o, &full)
}

struct Report<'a> {
    s: &'a Scenario,
    t: &'a Target,
    obs: &'a [(&'static str, Observed)],
    fit: &'a Fit,
    p: &'a Params,
    scale: f64,
    weights: &'a [(String, f64)],
    agents: u32,
    evaluations: u64,
    wall: f64,
    labour: Option<&'a labour::Labour>,
    /// Refined on the full city: the searched scale and the fit there.
    searched: Option<(f64, Vec<f64>)>,
}

impl Report<'_> {
    /// Root-mean-square error of ln(1 + weekly count), per series.
    fn rmsle(&self) -> Vec<f64> {
        self.fit
            .model
            .iter()
            .zip(&self.t.values)
            .map(|(m, o)| {
                let sum: f64 = m.iter().zip(o).map(|(&m, &o)| err(m, o)).sum();
                (sum / m.len().max(1) as f64).sqrt()
            })
            .collect()
    }

    fn write(&self, out: &Path, o: &CalibrateOptions, full: &Overrides) -> Result<()> {
        let (t, fit, cal) = (self.t, self.fit, &self.s.calendar);
        let mut table = String::from("week,week_start");
        for (metric, ob) in self.obs {
            let name = ob.label.replace(' ', "_");
            table.push_str(&format!(",observed_{name},model_{metric}"));
        }
        table.push_str(&format!(",{},{}\n", self.p.transmission, self.p.report));
        for (w, p) in t.weeks.iter().enumerate().take(fit.r.len()) {
            table.push_str(&format!("{w},{}", cal.label(p.first)));
            for k in 0..self.obs.len() {
                table.push_str(&format!(",{},{}", t.values[k][w], fit.model[k][w]));
            }
            table.push_str(&format!(",{},{}\n", fit.r[w], fit.q[w]));
        }
        let path = out.join("calibration.csv");
        std::fs::write(&path, table).doing(|| format!("writing {}", path.display()))?;
        self.plot(out)?;
        let fitted = out.join("fitted.toml");
        write_fitted(&o.scenario, full, self, &fitted)?;
        let rmsle = self.rmsle();
        let by_series: serde_json::Map<String, serde_json::Value> = self
            .obs
            .iter()
            .zip(&rmsle)
            .map(|((m, _), e)| (m.to_string(), json!(e)))
            .collect();
        let mut summary = json!({
            "myriad_version": env!("CARGO_PKG_VERSION"),
            "scenario_file": o.scenario.display().to_string(),
            "search_scale": self.scale,
            "agents_searched": self.agents,
            "weeks": fit.r.len(),
            "first_week": cal.label(t.weeks[0].first),
            "series": self.obs.iter().map(|(m, ob)| format!("{m} vs {}", ob.label)).collect::<Vec<_>>(),
            "loss": "per series and week, (ln(1 + model) - ln(1 + observed))^2, weights 1",
            "rmsle": by_series,
            "initial_param": self.p.initial,
            "initial_searched": self.p.initial.as_ref().map(|_| fit.initial),
            "initial_fitted_scenario": self.p.initial.as_ref().map(|_| (fit.initial / self.scale).round()),
            "seed_weights": self.weights.iter().map(|(p, w)| (p.clone(), json!(w))).collect::<serde_json::Map<_, _>>(),
            "param": self.p.transmission,
            "fitted_values": fit.r,
            "report_param": self.p.report,
            "report_values": fit.q,
            "evaluations": self.evaluations,
            "threads": o.threads,
            "wall_seconds": self.wall,
            "fitted_scenario": fitted.display().to_string(),
        });
        if let Some((scale, errors)) = &self.searched {
            summary["refined_on_own_city"] = json!({
                "searched_scale": scale,
                "rmsle_at_searched_scale": self.obs.iter().zip(errors).map(|((m, _), e)| (m.to_string(), json!(e))).collect::<serde_json::Map<_, _>>(),
                "method": "each week's value searched again within a factor 1.5 of the scaled search's (grid 3, 2 golden steps); the reporting values by the same ratio rule; initial infections and labour values kept",
            });
        }
        if let Some(l) = self.labour {
            summary["labour"] = l.summary(cal);
            l.write(out, cal)?;
            self.plot_labour(out, l)?;
        }
        let path = out.join("calibration.json");
        std::fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
            .doing(|| format!("writing {}", path.display()))?;
        let errors: Vec<String> = self
            .obs
            .iter()
            .zip(&rmsle)
            .map(|((m, _), e)| format!("{m} {e:.3}"))
            .collect();
        println!(
            "fitted {} weeks in {:.0} s ({} week-long candidate runs); rmsle of ln(1 + weekly count): {}",
            fit.r.len(),
            self.wall,
            self.evaluations,
            errors.join(", ")
        );
        if let Some(name) = &self.p.initial {
            println!(
                "{name} = {} at search scale {} ({} in the fitted scenario)",
                fit.initial,
                self.scale,
                (fit.initial / self.scale).round()
            );
        }
        if let Some(l) = self.labour {
            let errors: Vec<String> = l
                .parts
                .iter()
                .zip(l.rmse())
                .map(|(p, e)| format!("{p} {e:.2}"))
                .collect();
            println!(
                "{} fitted for {} months; RMSE of the monthly readings (points): {}",
                l.param,
                l.months.len(),
                errors.join(", ")
            );
        }
        println!("fitted scenario: {}", fitted.display());
        Ok(())
    }

    /// `fit_labour.png`: the monthly readings per part, model and observed.
    fn plot_labour(&self, out: &Path, l: &labour::Labour) -> Result<()> {
        let Some(start) = self.s.calendar.start() else {
            return Ok(());
        };
        let mut series = Vec::new();
        for (k, part) in l.parts.iter().enumerate() {
            let at = |m: usize| f64::from(l.months[m].last);
            series.push(crate::plot::Series {
                colour: Some(k),
                ..crate::plot::Series::line(
                    format!("{part} model"),
                    l.model.iter().enumerate().map(|(m, v)| (at(m), v[k])).collect(),
                )
            });
            series.push(crate::plot::Series {
                colour: Some(k),
                markers: true,
                ..crate::plot::Series::line(
                    format!("{part} observed"),
                    l.observed.iter().enumerate().map(|(m, v)| (at(m), v[k])).collect(),
                )
            });
        }
        crate::plot::dated_png(
            &out.join("fit_labour.png"),
            &format!(
                "{}: {} fitted per month (searched at scale {})",
                self.s.name, l.param, self.scale
            ),
            start,
            &[crate::plot::Panel {
                title: String::new(),
                ylabel: "monthly reading".into(),
                series,
            }],
            &[],
        )
    }

    fn plot(&self, out: &Path) -> Result<()> {
        let Some(start) = self.s.calendar.start() else {
            return Ok(());
        };
        let mid = |p: &Period| f64::from(p.first + p.last) / 2.0;
        let panels: Vec<crate::plot::Panel> = self
            .obs
            .iter()
            .enumerate()
            .map(|(k, (metric, ob))| crate::plot::Panel {
                title: format!("{} (searched at scale {})", ob.label, self.scale),
                ylabel: "per week".into(),
                series: vec![
                    crate::plot::Series::line(
                        format!("fitted model: {metric}"),
                        self.t
                            .weeks
                            .iter()
                            .zip(&self.fit.model[k])
                            .map(|(p, &v)| (mid(p), v))
                            .collect(),
                    ),
                    crate::plot::Series {
                        markers: true,
                        colour: Some(2),
                        ..crate::plot::Series::line(
                            "observed",
                            self.t
                                .weeks
                                .iter()
                                .zip(&self.t.values[k])
                                .map(|(p, &v)| (mid(p), v))
                                .collect(),
                        )
                    },
                ],
            })
            .collect();
        crate::plot::dated_png(
            &out.join("fit.png"),
            &format!("{}: calibration", self.s.name),
            start,
            &panels,
            &crate::dated_plots::shades(self.s),
        )
    }
}

/// The scenario with the fitted values, at its own scale: the initial
/// infections (divided by the searched scale) and the seed weights in
/// `[params]`, and per week one intervention for each fitted parameter, by
/// date. Values are written in full, so the fit is reproduced exactly.
fn write_fitted(file: &Path, full: &Overrides, r: &Report, out: &Path) -> Result<()> {
    let mut doc = scenario::resolved_document(file, full)?;
    if doc.get("params").is_none() {
        doc["params"] = toml_edit::table();
    }
    if let Some(name) = &r.p.initial {
        doc["params"][name.as_str()] = toml_edit::value((r.fit.initial / r.scale).round() as i64);
    }
    for (name, w) in r.weights {
        doc["params"][name.as_str()] = toml_edit::value(*w);
    }
    let mut interventions = match doc.remove("interventions") {
        Some(toml_edit::Item::ArrayOfTables(a)) => a,
        _ => toml_edit::ArrayOfTables::new(),
    };
    let cal = &r.s.calendar;
    let weeks = r.fit.r.len();
    for (w, p) in r.t.weeks.iter().enumerate().take(weeks) {
        for (param, v) in [(&r.p.transmission, r.fit.r[w]), (&r.p.report, r.fit.q[w])] {
            let mut t = toml_edit::Table::new();
            t["name"] = toml_edit::value(format!("{param} fitted, week of {}", cal.label(p.first)));
            t["start"] = toml_edit::value(cal.label(p.first));
            if w + 1 < weeks {
                t["end"] = toml_edit::value(cal.label(p.last + 1));
            }
            t["param"] = toml_edit::value(param.as_str());
            t["value"] = toml_edit::value(v);
            interventions.push(t);
        }
    }
    if let Some(l) = r.labour {
        for (m, p) in l.months.iter().enumerate() {
            let mut t = toml_edit::Table::new();
            t["name"] = toml_edit::value(format!("{} fitted, month of {}", l.param, cal.label(p.first)));
            t["start"] = toml_edit::value(cal.label(p.first));
            if m + 1 < l.months.len() {
                t["end"] = toml_edit::value(cal.label(p.last + 1));
            }
            t["param"] = toml_edit::value(l.param.as_str());
            t["value"] = toml_edit::value(l.values[m]);
            interventions.push(t);
        }
    }
    doc.insert("interventions", toml_edit::Item::ArrayOfTables(interventions));
    let errors: Vec<String> = r
        .obs
        .iter()
        .zip(r.rmsle())
        .map(|((m, _), e)| format!("{m} {e:.3}"))
        .collect();
    let place = match &r.searched {
        Some((scale, _)) => {
            format!("searched on a city at {scale} of its scale, then refined on the city itself (--refine)")
        }
        None => format!("on a city at {} of its scale", r.scale),
    };
    let header = format!(
        "# Fitted by `myriad calibrate` from {}, {place} ({} weeks; rmsle of ln(1 + weekly count) there: {}).\n# The weekly {} and {} values are the last interventions; the last week's hold to the end.\n",
        file.display(),
        weeks,
        errors.join(", "),
        r.p.transmission,
        r.p.report
    );
    std::fs::write(out, header + &doc.to_string()).doing(|| format!("writing {}", out.display()))
}
