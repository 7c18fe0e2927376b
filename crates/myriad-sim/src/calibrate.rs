//! `myriad calibrate`: the retrospective analysis. Fits a weekly
//! transmission parameter (one value per week) and the initial number of
//! infections to an observed weekly series.
//!
//! Method. The model is causal: new infections in week k depend on the
//! state at the start of week k and on week k's parameter. So, for a given
//! initial count, the weekly values are fitted one week at a time: each
//! candidate value continues copies of the simulation ([`Simulation::fork`](crate::Simulation::fork))
//! through the week, and the value whose weekly count is closest to the
//! observation is kept (a grid over `[0, max]` then golden-section
//! refinement around the best grid point: gradient-free, and robust to the
//! small steps a stochastic count has). The initial count is fitted around
//! that (grid in log space, then golden section), minimising the total
//! squared error of `ln(1 + cases)` over the weeks (the counts span orders of
//! magnitude, and relative errors matter).
//!
//! With a free value every week, the weekly counts alone cannot separate
//! the initial count from the first week's value (only their product shows
//! in week 0's count). A small penalty on week-to-week changes of the value
//! (`smoothness x (ln(0.1 + value) - ln(0.1 + previous))^2`, a random-walk
//! prior on log R) resolves this: it prefers the initial count for which the
//! first weeks need no jump. `--smoothness 0` fits every week exactly
//! where possible. Every candidate runs with the same
//! seeds (common random numbers), so differences between candidates are not
//! noise, and the fitted series is exactly what `myriad run` of the fitted
//! scenario produces.

use crate::build::InputError;
use crate::error::{Error, FileContext, Result};
use crate::scenario::{self, Overrides, PopulationSource, Scenario};
use crate::simulation::{BuildInfo, Decisions, Simulation};
use crate::{build, plot};
use myriad_core::model::Layer;
use myriad_core::params::ParamValue;
use myriad_core::population::Population;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Options of `myriad calibrate`.
pub struct CalibrateOptions {
    /// Scenario file.
    pub scenario: PathBuf,
    /// `--set` assignments.
    pub set: Vec<String>,
    /// First seed (default: the scenario's).
    pub seed: Option<u64>,
    /// Seeds averaged per candidate (common random numbers).
    pub seeds: u32,
    /// Fit at most this many weeks.
    pub weeks: Option<u32>,
    /// Observed series from the bundled NYC data: `city` or a borough code.
    pub target: Option<String>,
    /// Observed series from a CSV file instead.
    pub observed: Option<PathBuf>,
    /// Column of that file.
    pub column: Option<String>,
    /// Model metric compared with the observations (summed per week).
    pub metric: Option<String>,
    /// Parameter fitted per week.
    pub param: String,
    /// Largest value tried for it [default: 15; dated fits: 60].
    pub param_max: Option<f64>,
    /// Dated fits: the parameter scaling the first observed series (default `report_probability`).
    pub report_param: Option<String>,
    /// Dated fits: the monthly labour parameter (default `work_probability`; `none`: not fitted).
    pub labour_param: Option<String>,
    /// Weight of the penalty on week-to-week changes of the fitted value.
    pub smoothness: f64,
    /// Parameter holding the initial number of infections (`None`: not fitted).
    pub initial: Option<String>,
    /// Range tried for the initial infections [default: 1 to 1% of the agents].
    pub initial_range: Option<(f64, f64)>,
    /// Output folder.
    pub out: crate::outdir::OutChoice,
    /// Replace the output folder.
    pub force: bool,
    /// Worker threads.
    pub threads: usize,
    /// Scale of the city searched on by the dated calibration (default 0.05).
    pub search_scale: Option<f64>,
    /// Dated calibration: fit the weeks again on the scenario's own city
    /// around the searched values.
    pub refine: bool,
}

/// The series a model is fitted to.
#[derive(Debug)]
struct Observed {
    /// What it is, for reports.
    label: String,
    /// Model metric summed per week to compare with it.
    metric: String,
    /// One value per week.
    values: Vec<f64>,
}

/// Read one column of weekly values from a CSV file.
fn read_observed(path: &Path, column: Option<&str>) -> Result<Vec<f64>> {
    let bad = |msg: String| InputError(format!("{}: {msg}", path.display()));
    let mut reader = csv::Reader::from_path(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| bad(format!("cannot read the header: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    let index = match column {
        Some(c) => headers
            .iter()
            .position(|h| h == c)
            .ok_or_else(|| bad(format!("no column '{c}' (columns: {})", headers.join(", "))))?,
        None if headers.len() == 1 => 0,
        None => {
            return Err(bad(format!(
                "several columns ({}); choose one with --column",
                headers.join(", ")
            ))
            .into())
        }
    };
    let mut values = Vec::new();
    for (k, record) in reader.records().enumerate() {
        let line = k + 2;
        let record = record.map_err(|e| bad(format!("line {line}: {e}")))?;
        let cell = record
            .get(index)
            .ok_or_else(|| bad(format!("line {line}: no value in column '{}'", headers[index])))?;
        let v: f64 = cell
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| {
                bad(format!(
                    "line {line}: column '{}' holds '{cell}', expected a count >= 0",
                    headers[index]
                ))
            })?;
        values.push(v);
    }
    if values.is_empty() {
        return Err(bad("no weeks in the file".into()).into());
    }
    Ok(values)
}

/// The observed series: a file, or the bundled borough weekly cases for the
/// boroughs the synthetic city includes, scaled like its population.
fn observed_series(s: &Scenario, o: &CalibrateOptions) -> Result<Observed> {
    if let Some(path) = &o.observed {
        if o.target.is_some() {
            return Err(InputError("give either --observed or --target, not both".into()).into());
        }
        let values = read_observed(path, o.column.as_deref())?;
        return Ok(Observed {
            label: match &o.column {
                Some(c) => format!("{} column {c}", path.display()),
                None => path.display().to_string(),
            },
            metric: o.metric.clone().unwrap_or_else(|| "new_infections".into()),
            values,
        });
    }
    let no_series = || {
        InputError(format!(
            "{}: the population source offers no observed weekly series, so there is nothing bundled to fit; give --observed FILE.csv",
            s.file.display()
        ))
    };
    let PopulationSource::Source { spec, .. } = &s.population else {
        return Err(no_series().into());
    };
    let obs = crate::outputs::observed(s, "weekly_cases").ok_or_else(no_series)?;
    let everywhere = (spec.observed)(&Default::default(), "weekly_cases").ok_or_else(no_series)?;
    let target = o.target.clone().unwrap_or_else(|| "city".into());
    let (chosen, metric): (Vec<usize>, String) = if target == "city" {
        ((0..obs.parts.len()).collect(), "new_infections".into())
    } else {
        if !everywhere.parts.iter().any(|(p, _)| *p == target) {
            let all: Vec<&str> = everywhere.parts.iter().map(|(p, _)| p.as_str()).collect();
            return Err(InputError(format!(
                "--target '{target}': expected city or a part of the population: {}",
                all.join(", ")
            ))
            .into());
        }
        let k = obs.parts.iter().position(|(p, _)| *p == target).ok_or_else(|| {
            InputError(format!(
                "--target {target}: the scenario's population does not include that part"
            ))
        })?;
        (vec![k], format!("new_infections_{target}"))
    };
    let weeks = obs.parts.first().map_or(0, |p| p.1.len());
    let values = (0..weeks)
        .map(|w| chosen.iter().map(|&k| obs.parts[k].1[w]).sum::<f64>() * obs.scale)
        .collect();
    let names: Vec<&str> = chosen.iter().map(|&k| obs.parts[k].0.as_str()).collect();
    Ok(Observed {
        label: format!(
            "bundled weekly {}, {}{}",
            obs.label,
            names.join("+"),
            if obs.scale < 1.0 {
                format!(" x {}", obs.scale)
            } else {
                String::new()
            }
        ),
        metric: o.metric.clone().unwrap_or(metric),
        values,
    })
}

/// Squared error of one week on the log scale.
fn week_loss(simulated: f64, observed: f64) -> f64 {
    ((1.0 + simulated).ln() - (1.0 + observed).ln()).powi(2)
}

/// Minimise `f` over `[lo, hi]`: a grid of `grid` points, then `refine`
/// golden-section steps in the interval around the best grid point. Returns
/// the best point evaluated, its value and its payload; ties keep the
/// smaller `x`.
pub fn minimise<T>(
    lo: f64,
    hi: f64,
    grid: usize,
    refine: usize,
    mut f: impl FnMut(f64) -> Result<(f64, T)>,
) -> Result<(f64, f64, T)> {
    let grid = grid.max(2);
    let step = (hi - lo) / (grid - 1) as f64;
    let mut best: Option<(f64, f64, T)> = None;
    let consider = |x: f64, fx: f64, payload: T, best: &mut Option<(f64, f64, T)>| {
        let better = match best {
            None => true,
            Some((bx, bf, _)) => fx < *bf || (fx == *bf && x < *bx),
        };
        if better {
            *best = Some((x, fx, payload));
        }
    };
    let mut best_k = 0;
    for k in 0..grid {
        let x = lo + step * k as f64;
        let (fx, payload) = f(x)?;
        let before = best.as_ref().map(|b| b.1);
        consider(x, fx, payload, &mut best);
        if before.is_none_or(|b| fx < b) {
            best_k = k;
        }
    }
    // Golden section inside the neighbouring grid cells.
    let (mut a, mut b) = (
        lo + step * best_k.saturating_sub(1) as f64,
        lo + step * (best_k + 1).min(grid - 1) as f64,
    );
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let mut c = b - ratio * (b - a);
    let mut d = a + ratio * (b - a);
    let (mut fc, pc) = f(c)?;
    consider(c, fc, pc, &mut best);
    let (mut fd, pd) = f(d)?;
    consider(d, fd, pd, &mut best);
    for _ in 0..refine {
        if fc <= fd {
            b = d;
            d = c;
            fd = fc;
            c = b - ratio * (b - a);
            let (v, p) = f(c)?;
            fc = v;
            consider(c, v, p, &mut best);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + ratio * (b - a);
            let (v, p) = f(d)?;
            fd = v;
            consider(d, v, p, &mut best);
        }
    }
    Ok(best.expect("the grid has at least two points"))
}

/// The fit for one initial count.
struct Fit {
    initial: f64,
    values: Vec<f64>,
    simulated: Vec<f64>,
    /// Sum of the weekly squared log errors.
    loss: f64,
    /// `loss` plus the smoothness penalty: what is minimised.
    objective: f64,
}

/// Penalty on a week-to-week change of the fitted parameter, on a log scale
/// (offset so that 0 is allowed).
fn change_penalty(smoothness: f64, value: f64, previous: Option<f64>) -> f64 {
    previous.map_or(0.0, |p| smoothness * ((0.1 + value).ln() - (0.1 + p).ln()).powi(2))
}

/// Runs the scenario's model week by week with a candidate parameter value.
struct Harness<'a> {
    s: &'a Scenario,
    population: Population,
    layers: Vec<Layer>,
    pool: Arc<rayon::ThreadPool>,
    info: BuildInfo,
    metric: usize,
    param: String,
    initial: Option<String>,
    seeds: Vec<u64>,
    observed: Vec<f64>,
    param_max: f64,
    smoothness: f64,
    evaluations: u64,
    stop: Arc<AtomicBool>,
}

impl Harness<'_> {
    /// Fresh simulations, one per seed, with `initial` infections; the
    /// model's rule decides (calibration does not ask an LLM).
    fn models(&self, initial: f64) -> Result<Vec<Simulation>> {
        let mut s = self.s.clone();
        if let Some(name) = &self.initial {
            s.params.set(name, ParamValue::Number(initial))?;
        }
        self.seeds
            .iter()
            .map(|&seed| {
                Simulation::from_parts(
                    &s,
                    self.population.clone(),
                    self.layers.clone(),
                    seed,
                    Decisions::Rule,
                    None,
                    self.pool.clone(),
                    self.info.clone(),
                )
            })
            .collect()
    }

    /// Continue `sim` through `week` (steps 7w+1 ..= 7w+7) with the fitted
    /// parameter at `value`; returns the week's sum of the metric.
    fn advance(&self, sim: &mut Simulation, value: f64) -> Result<f64> {
        // Like an intervention appended last: it overrides the scenario's.
        sim.set_override(&self.param, value);
        let mut total = 0.0;
        for _ in 0..7 {
            sim.step()?;
            total += sim.row()[self.metric];
        }
        Ok(total)
    }

    /// Fit every week's value in turn, starting from `initial` infections.
    fn fit(&mut self, initial: f64) -> Result<Fit> {
        let mut models = self.models(initial)?;
        let (mut values, mut simulated, mut loss, mut objective) = (Vec::new(), Vec::new(), 0.0, 0.0);
        for week in 0..self.observed.len() as u32 {
            if self.stop.load(Ordering::Relaxed) {
                return Err(Error::Run("interrupted".into()));
            }
            let observed = self.observed[week as usize];
            let previous = values.last().copied();
            let smoothness = self.smoothness;
            let (value, o, (sim, next)) = minimise(0.0, self.param_max, 13, 12, |x| {
                self.evaluations += 1;
                let mut next = Vec::with_capacity(models.len());
                let mut sum = 0.0;
                for m in &models {
                    let mut m = m.fork();
                    sum += self.advance(&mut m, x)?;
                    next.push(m);
                }
                let sim = sum / models.len() as f64;
                let objective = week_loss(sim, observed) + change_penalty(smoothness, x, previous);
                Ok((objective, (sim, next)))
            })?;
            values.push(value);
            simulated.push(sim);
            loss += week_loss(sim, observed);
            objective += o;
            models = next;
        }
        Ok(Fit {
            initial,
            values,
            simulated,
            loss,
            objective,
        })
    }
}

/// Refuse options that cannot work, before anything is built.
fn check_options(o: &CalibrateOptions) -> Result<()> {
    if o.seeds == 0 {
        return Err(InputError("--seeds must be at least 1".into()).into());
    }
    if !(o.smoothness >= 0.0 && o.smoothness.is_finite()) {
        return Err(InputError("--smoothness must be a number >= 0".into()).into());
    }
    if o.param_max.is_some_and(|m| !(m > 0.0 && m.is_finite())) {
        return Err(InputError("--param-max must be a positive number".into()).into());
    }
    Ok(())
}

/// The scenario, the observed series cut to the weeks fitted, and their number.
fn load_target(o: &CalibrateOptions, overrides: &Overrides) -> Result<(Scenario, Observed, u32)> {
    let s = scenario::load(&o.scenario, overrides)?;
    let spec_err = |name: &str| {
        InputError(format!(
            "model '{}' has no parameter '{name}' (see `myriad describe {}`)",
            s.model.name, s.model.name
        ))
    };
    s.params.spec(&o.param).map_err(|_| spec_err(&o.param))?;
    if let Some(name) = &o.initial {
        s.params.spec(name).map_err(|_| spec_err(name))?;
    }
    let mut observed = observed_series(&s, o)?;
    let weeks = (observed.values.len() as u32)
        .min(s.steps / 7)
        .min(o.weeks.unwrap_or(u32::MAX));
    if weeks == 0 {
        return Err(InputError(format!(
            "nothing to fit: the scenario runs {} steps (a week is 7) and the series has {} weeks",
            s.steps,
            observed.values.len()
        ))
        .into());
    }
    observed.values.truncate(weeks as usize);
    Ok((s, observed, weeks))
}

/// The harness on the built population and layers, with the metric compared.
fn harness<'a>(
    s: &'a Scenario,
    o: &CalibrateOptions,
    observed: &Observed,
    stop: Arc<AtomicBool>,
) -> Result<Harness<'a>> {
    let pool = crate::simulation::pool(o.threads)?;
    let population = pool.install(|| build::population(s))?;
    let (layers, reports) = pool.install(|| build::layers(s, &population))?;
    crate::ensemble::check_seeds(s.seed, o.seeds)?;
    let metrics = (s.model.metrics)();
    let metric = metrics.iter().position(|m| m.name == observed.metric).ok_or_else(|| {
        let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
        InputError(format!(
            "model '{}' has no metric '{}' (metrics: {})",
            s.model.name,
            observed.metric,
            names.join(", ")
        ))
    })?;
    Ok(Harness {
        s,
        info: BuildInfo {
            agents: population.size(),
            layers: reports,
            population_seconds: 0.0,
            layer_seconds: 0.0,
        },
        population,
        layers,
        pool,
        metric,
        param: o.param.clone(),
        initial: o.initial.clone(),
        seeds: (0..o.seeds as u64).map(|k| s.seed + k).collect(),
        observed: observed.values.clone(),
        param_max: o.param_max.unwrap_or(15.0),
        smoothness: o.smoothness,
        evaluations: 0,
        stop,
    })
}

/// The fit: the weekly values for the scenario's initial count, or (with
/// `--initial`) the best initial count in `range`, searched on a log scale.
fn search(h: &mut Harness, o: &CalibrateOptions, range: (f64, f64), weeks: u32) -> Result<Fit> {
    let Some(name) = &o.initial else {
        return h.fit(h.s.params.num(&o.param));
    };
    // Log scale: the count matters relatively. Candidates are whole
    // agents; repeated ones are looked up, not re-run.
    let (l_lo, l_hi) = ((range.0 + 1.0).ln(), (range.1 + 1.0).ln());
    let mut tried: Vec<Fit> = Vec::new();
    minimise(l_lo, l_hi, 9, 8, |x| {
        let count = (x.exp() - 1.0).round().max(0.0);
        if let Some(t) = tried.iter().find(|t| t.initial == count) {
            return Ok((t.objective, ()));
        }
        let f = h.fit(count)?;
        eprintln!(
            "  {name} = {count}: rmsle {:.4}, objective {:.5}",
            (f.loss / weeks as f64).sqrt(),
            f.objective
        );
        let objective = f.objective;
        tried.push(f);
        Ok((objective, ()))
    })?;
    tried.sort_by(|a, b| {
        a.objective
            .total_cmp(&b.objective)
            .then(a.initial.total_cmp(&b.initial))
    });
    Ok(tried.swap_remove(0))
}

/// Run the calibration and write the output folder.
pub fn run(o: &CalibrateOptions, stop: Arc<AtomicBool>) -> Result<()> {
    let wall = Instant::now();
    check_options(o)?;
    let overrides = Overrides {
        set: o.set.clone(),
        seed: o.seed,
    };
    let plain = scenario::load(&o.scenario, &overrides)?;
    if crate::calibrate_dated::applies(&plain, o) {
        return crate::calibrate_dated::run(o, stop);
    }
    if o.refine {
        return Err(InputError(
            "--refine applies to dated fits (a scenario with start_date on the synthetic city); this fit runs on the scenario's own city already".into(),
        )
        .into());
    }
    let (s, observed, weeks) = load_target(o, &overrides)?;
    let mut h = harness(&s, o, &observed, stop)?;
    let n = h.population.size();
    let range = o.initial_range.unwrap_or((1.0, (n as f64 / 100.0).round().max(10.0)));
    if !(range.0 >= 0.0 && range.1 >= range.0 && range.1 <= n as f64) {
        return Err(InputError(format!(
            "--initial-range needs 0 <= LOW <= HIGH <= {n} (the number of agents)"
        ))
        .into());
    }
    let out = o.out.create(o.force, "calibrate")?;
    eprintln!(
        "calibrating {} weekly values of '{}'{} to {} weeks of {} ({} agents, {} seed{})",
        weeks,
        o.param,
        o.initial.as_ref().map(|i| format!(" and '{i}'")).unwrap_or_default(),
        weeks,
        observed.label,
        n,
        o.seeds,
        if o.seeds == 1 { "" } else { "s" }
    );
    let fit = search(&mut h, o, range, weeks)?;
    let fitted_path = out.join("fitted.toml");
    write_fitted_scenario(&o.scenario, &overrides, o, &fit, &fitted_path)?;
    let report = Report {
        o,
        s: &s,
        observed: &observed,
        fit: &fit,
        evaluations: h.evaluations,
        seeds: &h.seeds,
        wall,
        fitted_path: &fitted_path,
    };
    report.write(&out)?;
    report.print();
    Ok(())
}

/// A finished calibration, for its files and its console table.
struct Report<'a> {
    o: &'a CalibrateOptions,
    s: &'a Scenario,
    observed: &'a Observed,
    fit: &'a Fit,
    evaluations: u64,
    seeds: &'a [u64],
    wall: Instant,
    fitted_path: &'a Path,
}

impl Report<'_> {
    fn rmsle(&self) -> f64 {
        (self.fit.loss / self.fit.values.len().max(1) as f64).sqrt()
    }

    /// `calibration.csv`, `fit.png` and `calibration.json`.
    fn write(&self, out: &Path) -> Result<()> {
        let (o, observed, fit) = (self.o, self.observed, self.fit);
        let mut table = format!("week,first_step,last_step,observed,fitted,{}\n", o.param);
        for w in 0..fit.values.len() {
            table.push_str(&format!(
                "{w},{},{},{},{},{}\n",
                7 * w + 1,
                7 * w + 7,
                observed.values[w],
                fit.simulated[w],
                fit.values[w]
            ));
        }
        let csv_path = out.join("calibration.csv");
        std::fs::write(&csv_path, table).doing(|| format!("writing {}", csv_path.display()))?;
        plot::chart_png(
            &out.join("fit.png"),
            &format!(
                "{}: weekly {} fitted to {}",
                self.s.name, observed.metric, observed.label
            ),
            "week",
            "per week",
            &[
                plot::Series {
                    markers: true,
                    ..plot::Series::line(
                        "observed",
                        observed
                            .values
                            .iter()
                            .enumerate()
                            .map(|(w, &v)| (w as f64, v))
                            .collect(),
                    )
                },
                plot::Series::line(
                    format!("fitted model ({})", observed.metric),
                    fit.simulated.iter().enumerate().map(|(w, &v)| (w as f64, v)).collect(),
                ),
            ],
        )?;
        let json_path = out.join("calibration.json");
        std::fs::write(&json_path, serde_json::to_string_pretty(&self.summary())? + "\n")
            .doing(|| format!("writing {}", json_path.display()))
    }

    fn summary(&self) -> serde_json::Value {
        let (o, observed, fit) = (self.o, self.observed, self.fit);
        json!({
            "myriad_version": env!("CARGO_PKG_VERSION"),
            "scenario_file": o.scenario.display().to_string(),
            "model": self.s.model.name,
            "observed": observed.label,
            "metric": observed.metric,
            "weeks": fit.values.len(),
            "seeds": self.seeds,
            "param": o.param,
            "fitted_values": fit.values,
            "initial_param": o.initial,
            "fitted_initial": o.initial.as_ref().map(|_| fit.initial),
            "loss": "sum over weeks of (ln(1 + fitted) - ln(1 + observed))^2",
            "loss_value": fit.loss,
            "smoothness": o.smoothness,
            "objective": "loss + smoothness x sum over weeks of (ln(0.1 + value) - ln(0.1 + previous value))^2",
            "objective_value": fit.objective,
            "rmsle": self.rmsle(),
            "observed_values": observed.values,
            "fitted_series": fit.simulated,
            "evaluations": self.evaluations,
            "threads": o.threads,
            "wall_seconds": self.wall.elapsed().as_secs_f64(),
            "fitted_scenario": self.fitted_path.display().to_string(),
        })
    }

    /// The weekly table and the fit's error on standard output.
    fn print(&self) {
        let (o, observed, fit) = (self.o, self.observed, self.fit);
        println!("week  observed    fitted  {}", o.param);
        for w in 0..fit.values.len() {
            println!(
                "{w:>4}  {:>8.0}  {:>8.1}  {:.3}",
                observed.values[w], fit.simulated[w], fit.values[w]
            );
        }
        if let Some(name) = &o.initial {
            println!("{name} = {}", fit.initial);
        }
        println!(
            "rmsle {:.4} over {} weeks ({} week-long evaluations, {:.1} s); fitted scenario: {}",
            self.rmsle(),
            fit.values.len(),
            self.evaluations,
            self.wall.elapsed().as_secs_f64(),
            self.fitted_path.display()
        );
    }
}

/// The scenario with the fitted values: `params.<initial>` set and one
/// intervention per week setting the parameter (the last one holds to the
/// end of the run). Relative data paths are made absolute so the file works
/// from the output folder.
fn write_fitted_scenario(
    file: &Path,
    overrides: &Overrides,
    o: &CalibrateOptions,
    fit: &Fit,
    out: &Path,
) -> Result<()> {
    let mut doc = scenario::resolved_document(file, overrides)?;
    let base = file.parent().unwrap_or(Path::new("."));
    let absolute = |item: &mut toml_edit::Item| {
        if let Some(p) = item.as_str() {
            let path = Path::new(p);
            if path.is_relative() {
                let joined = base.join(path);
                let full = std::fs::canonicalize(&joined).unwrap_or(joined);
                *item = toml_edit::value(full.display().to_string());
            }
        }
    };
    if let Some(pop) = doc.get_mut("population").and_then(|p| p.as_table_like_mut()) {
        if let Some(item) = pop.get_mut("file") {
            absolute(item);
        }
    }
    if let Some(layers) = doc.get_mut("layers").and_then(|l| l.as_array_of_tables_mut()) {
        for t in layers.iter_mut() {
            if let Some(item) = t.get_mut("file") {
                absolute(item);
            }
        }
    }
    if let Some(name) = &o.initial {
        if doc.get("params").is_none() {
            doc["params"] = toml_edit::table();
        }
        doc["params"][name.as_str()] = toml_edit::value(fit.initial as i64);
    }
    let mut interventions = match doc.remove("interventions") {
        Some(toml_edit::Item::ArrayOfTables(a)) => a,
        _ => toml_edit::ArrayOfTables::new(),
    };
    let weeks = fit.values.len();
    for (w, &v) in fit.values.iter().enumerate() {
        let mut t = toml_edit::Table::new();
        t["name"] = toml_edit::value(format!("{} week {w} (fitted)", o.param));
        t["start"] = toml_edit::value(7 * w as i64 + 1);
        if w + 1 < weeks {
            t["end"] = toml_edit::value(7 * w as i64 + 8);
        }
        t["param"] = toml_edit::value(o.param.as_str());
        t["value"] = toml_edit::value(v);
        interventions.push(t);
    }
    doc.insert("interventions", toml_edit::Item::ArrayOfTables(interventions));
    let header = format!(
        "# Fitted by `myriad calibrate` from {} ({} weeks, rmsle {:.4}).\n# Weekly '{}' values are the last interventions; the last holds to the end.\n",
        file.display(),
        weeks,
        (fit.loss / weeks as f64).sqrt(),
        o.param
    );
    std::fs::write(out, header + &doc.to_string()).doing(|| format!("writing {}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::minimise;

    #[test]
    fn minimise_finds_a_smooth_minimum() {
        let (x, fx, _) = minimise(0.0, 10.0, 11, 30, |x| Ok(((x - 3.7f64).powi(2), ()))).unwrap();
        assert!((x - 3.7).abs() < 1e-4, "{x}");
        assert!(fx < 1e-8);
    }

    #[test]
    fn minimise_prefers_the_global_grid_minimum() {
        // Two valleys; the deeper one is at 8.
        let f = |x: f64| Ok((((x - 2.0).powi(2)).min((x - 8.0).powi(2) - 1.0), ()));
        let (x, _, _) = minimise(0.0, 10.0, 11, 30, f).unwrap();
        assert!((x - 8.0).abs() < 1e-3, "{x}");
    }

    #[test]
    fn minimise_keeps_the_smallest_of_tied_points() {
        let (x, _, _) = minimise(0.0, 10.0, 11, 10, |x| Ok((if x < 4.0 { 1.0 } else { 0.0 }, ()))).unwrap();
        assert!((4.0..=5.0).contains(&x), "{x}");
    }
}
