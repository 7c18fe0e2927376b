//! `myriad calibrate` on a dated run whose population source offers the
//! surveillance series (`cases`, `hospitalisations`, `deaths`): the whole
//! city is fitted to its reported cases, hospital admissions and deaths
//! together, week by week on the run's calendar.
//!
//! What is fitted: for every calendar week `w`, the transmission scale
//! (`r_week`) and the reporting probability (`report_probability`) of the
//! infections of that week; the initial infections (`initial_infected`);
//! and where they are seeded (`seed_weight_<borough>`: each borough's
//! confirmed cases per resident over the first three weeks of observations,
//! relative to the city's, set once from the data before the search).
//!
//! Method. The model is causal, so weeks are fitted in order from copies
//! of the committed simulation ([`Simulation::fork`]). Infections of week
//! `w` show up later: as reports about a week later, admissions about 12
//! days later and deaths about 23 days later. So each candidate `r` for
//! week `w` runs `1 + lookahead` weeks with `r` held, and its loss is, over
//! weeks `w + 1 ..= w + lookahead`, the sum of squared errors of
//! `ln(1 + weekly count)` of admissions and deaths (weight 1 each) and of
//! reported cases after rescaling by the reporting correction below (weight
//! 1): the log scale because counts span four orders of magnitude and
//! relative misses matter; equal weights because each series is one view
//! of the same infections. The search is over `ln r` in
//! `[ln(prev / 3), ln(prev x 3)]` (within [0.001, 60]) (a grid of 7, then 5 golden-section
//! steps): transmission does not jump more than threefold in a week.
//! The reporting probability of week `w` is then set by a ratio: the week
//! after `w` is when most of week `w`'s infections are reported (mean
//! delay 8 days), so `q_w = q_(w-1) x observed / modelled` reports of week
//! `w + 1`, clamped to [0.002, 1]. The week is committed by running it once
//! with `(r_w, q_w)`. Every candidate uses the same seed (common random
//! numbers), so the fitted series is exactly what `myriad run fitted.toml`
//! gives at the searched scale.
//!
//! Initial infections: candidates on a log grid (5, then 3 golden steps)
//! each fitted over the first `lookahead + 2` weeks; the best is kept.
//!
//! Cost. Each week costs about 13 candidates x (1 + lookahead) weeks of
//! simulation; on the full city that is far beyond 30 minutes on 2 cores,
//! so the search runs on a scaled city (`--search-scale`, default 0.05:
//! 430,000 residents in the same households, schools and workplaces
//! structure) and the fitted scenario is written for the full city
//! (`initial_infected` divided by the scale), to be confirmed by
//! `myriad run fitted.toml`.

use crate::build::{self, InputError};
use crate::calibrate::{minimise, CalibrateOptions};
use crate::error::{Error, FileContext, Result};
use crate::outputs::observed;
use crate::scenario::{self, Overrides, Scenario};
use crate::simulation::{BuildInfo, Decisions, Simulation};
use myriad_core::calendar::{Period, PeriodKind};
use myriad_core::model::Layer;
use myriad_core::params::ParamValue;
use myriad_core::population::{ColumnData, Population};
use myriad_core::source::Observed;
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The series fitted, in loss order.
const SERIES: [(&str, &str); 3] = [
    ("new_reported_cases", "cases"),
    ("new_hospitalisations", "hospitalisations"),
    ("new_deaths", "deaths"),
];
/// Weeks after the fitted one whose counts score it.
const LOOKAHEAD: usize = 3;
/// Boroughs' parameter suffixes, in the source's part order.
const SEED_WEIGHTS: [(&str, &str); 5] = [
    ("BK", "seed_weight_bk"),
    ("BX", "seed_weight_bx"),
    ("MN", "seed_weight_mn"),
    ("QN", "seed_weight_qn"),
    ("SI", "seed_weight_si"),
];

/// Can this scenario be fitted to dated surveillance series?
pub fn applies(s: &Scenario, o: &CalibrateOptions) -> bool {
    o.observed.is_none() && s.calendar.start().is_some() && SERIES.iter().all(|(_, n)| observed(s, n).is_some())
}

/// Observed weekly totals: per series, per week.
struct Target {
    weeks: Vec<Period>,
    values: [Vec<f64>; 3],
}

fn target(s: &Scenario, weeks: Option<u32>) -> Result<(Target, Vec<Observed>)> {
    let periods = s.calendar.periods(PeriodKind::Week, s.steps);
    let obs: Vec<Observed> = SERIES
        .iter()
        .map(|(_, n)| observed(s, n).expect("checked by applies"))
        .collect();
    let mut kept = Vec::new();
    let mut values: [Vec<f64>; 3] = Default::default();
    for p in periods {
        let v: Option<Vec<f64>> = obs
            .iter()
            .map(|o| o.for_period(&s.calendar, PeriodKind::Week, &p, None))
            .collect();
        let Some(v) = v else { break };
        for k in 0..3 {
            values[k].push(v[k]);
        }
        kept.push(p);
        if weeks.is_some_and(|w| kept.len() as u32 >= w) {
            break;
        }
    }
    if kept.len() < 2 {
        let start = s.calendar.start().map(|d| d.to_string()).unwrap_or_default();
        return Err(InputError(format!(
            "{}: start_date {start}: the observed series cover fewer than two whole weeks of this run, so there is nothing to fit",
            s.file.display()
        ))
        .into());
    }
    Ok((Target { weeks: kept, values }, obs))
}

fn err(model: f64, observed: f64) -> f64 {
    ((1.0 + model).ln() - (1.0 + observed).ln()).powi(2)
}

/// The committed state and what was chosen so far.
struct Fit {
    initial: f64,
    r: Vec<f64>,
    q: Vec<f64>,
    /// Model weekly totals per series, per committed week.
    model: [Vec<f64>; 3],
    loss: f64,
}

struct Search<'a> {
    s: Scenario,
    population: Population,
    layers: Vec<Layer>,
    pool: Arc<rayon::ThreadPool>,
    info: BuildInfo,
    cols: [usize; 3],
    t: &'a Target,
    evaluations: u64,
    stop: Arc<AtomicBool>,
}

impl Search<'_> {
    /// Run `sim` through week `p` with `(r, q)`; the week's totals.
    fn week(&self, sim: &mut Simulation, p: &Period, r: f64, q: f64) -> Result<[f64; 3]> {
        sim.set_override("r_week", r);
        sim.set_override("report_probability", q);
        let mut sums = [0.0; 3];
        for _ in p.first..=p.last {
            sim.step()?;
            for (sum, &c) in sums.iter_mut().zip(&self.cols) {
                *sum += sim.row()[c];
            }
        }
        Ok(sums)
    }

    fn fresh(&self, initial: f64) -> Result<Simulation> {
        let mut s = self.s.clone();
        s.params.set("initial_infected", ParamValue::Number(initial.round()))?;
        Simulation::from_parts(
            &s,
            self.population.clone(),
            self.layers.clone(),
            s.seed,
            Decisions::Rule,
            None,
            self.pool.clone(),
            self.info.clone(),
        )
    }

    /// Fit weeks `0..weeks` from `initial` infections; `grid`/`refine` size the search.
    fn fit(&mut self, initial: f64, weeks: usize, grid: usize, refine: usize) -> Result<Fit> {
        let mut sim = self.fresh(initial)?;
        let mut fit = Fit {
            initial,
            r: Vec::new(),
            q: Vec::new(),
            model: Default::default(),
            loss: 0.0,
        };
        let (mut r_prev, mut q_prev) = (self.s.params.num("r_week"), self.s.params.num("report_probability"));
        for w in 0..weeks {
            if self.stop.load(Ordering::Relaxed) {
                return Err(Error::Run("interrupted".into()));
            }
            let ahead: Vec<&Period> = self.t.weeks[w..(w + 1 + LOOKAHEAD).min(self.t.weeks.len())]
                .iter()
                .collect();
            let t = self.t;
            let (lo, hi) = (
                (r_prev / 3.0).clamp(1e-3, 30.0).ln(),
                (r_prev * 3.0).clamp(0.01, 60.0).ln(),
            );
            let (x, _, _) = minimise(lo, hi, grid, refine, |x| {
                self.evaluations += 1;
                let mut m = sim.fork();
                let mut rows = Vec::new();
                for p in &ahead {
                    rows.push(self.week(&mut m, p, x.exp(), q_prev)?);
                }
                // The reporting correction the ratio rule would apply next.
                let kappa = match rows.get(1) {
                    Some(r1) if r1[0] > 0.0 => t.values[0][w + 1] / r1[0],
                    _ => 1.0,
                };
                let mut loss = 0.0;
                for (k, row) in rows.iter().enumerate().skip(1) {
                    loss += err(row[0] * kappa, t.values[0][w + k])
                        + err(row[1], t.values[1][w + k])
                        + err(row[2], t.values[2][w + k]);
                }
                Ok((loss, ()))
            })?;
            let r = x.exp();
            // Reporting: the ratio of next week's reports, from a trial run.
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
        }
        Ok(fit)
    }
}

/// Each borough's confirmed cases per resident in the first three weeks,
/// relative to the city's (1 where there were none).
fn seed_weights(s: &Scenario, cases: &Observed, weeks: &[Period], residents: &[(String, f64)]) -> Vec<(String, f64)> {
    let first: Vec<Option<f64>> = (0..cases.parts.len())
        .map(|k| {
            weeks
                .iter()
                .take(3)
                .map(|p| cases.for_period(&s.calendar, PeriodKind::Week, p, Some(k)))
                .sum::<Option<f64>>()
        })
        .collect();
    let rate: Vec<f64> = cases
        .parts
        .iter()
        .zip(&first)
        .map(|((part, _), c)| {
            let n = residents.iter().find(|(p, _)| p == part).map_or(0.0, |x| x.1);
            if n > 0.0 {
                c.unwrap_or(0.0) / n
            } else {
                0.0
            }
        })
        .collect();
    let mean = rate.iter().sum::<f64>() / rate.len().max(1) as f64;
    cases
        .parts
        .iter()
        .zip(rate)
        .map(|((p, _), r)| (p.clone(), if mean > 0.0 && r > 0.0 { r / mean } else { 1.0 }))
        .collect()
}

/// Residents per borough code (the `borough` column).
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

/// Fit, write `calibration.csv`, `calibration.json`, `fit.png` and `fitted.toml`.
pub fn run(o: &CalibrateOptions, stop: Arc<AtomicBool>) -> Result<()> {
    let wall = Instant::now();
    let scale = o.search_scale.unwrap_or(0.05);
    if !(scale > 0.0 && scale <= 1.0) {
        return Err(InputError(format!("--search-scale must be in (0, 1], got {scale}")).into());
    }
    let full = Overrides {
        set: o.set.clone(),
        seed: o.seed,
    };
    let mut searched = full.clone();
    searched.set.push(format!("population.scale={scale}"));
    let mut s = scenario::load(&o.scenario, &searched)?;
    let (t, obs) = target(&s, o.weeks)?;
    let pool = crate::simulation::pool(o.threads)?;
    let population = pool.install(|| build::population(&s))?;
    let weights = seed_weights(&s, &obs[0], &t.weeks, &residents_by_part(&population));
    for (part, w) in &weights {
        if let Some((_, name)) = SEED_WEIGHTS.iter().find(|(p, _)| p == part) {
            s.params.set(name, ParamValue::Number(*w))?;
        }
    }
    let (layers, reports) = pool.install(|| build::layers(&s, &population))?;
    let info = BuildInfo {
        agents: population.size(),
        layers: reports,
        population_seconds: 0.0,
        layer_seconds: 0.0,
    };
    let n = population.size();
    let metrics = (s.model.metrics)();
    let col = |name: &str| {
        metrics
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| Error::from(InputError(format!("model '{}' has no metric '{name}'", s.model.name))))
    };
    let cols = [col(SERIES[0].0)?, col(SERIES[1].0)?, col(SERIES[2].0)?];
    for p in ["r_week", "report_probability", "initial_infected"] {
        s.params
            .spec(p)
            .map_err(|_| InputError(format!("model '{}' has no parameter '{p}'", s.model.name)))?;
    }
    let out = o.out.create(o.force, "calibrate")?;
    eprintln!(
        "calibrating r_week and report_probability for {} weeks and initial_infected to reported cases, hospitalisations and deaths ({} agents at scale {scale}, seed {})",
        t.weeks.len(),
        n,
        s.seed
    );
    let mut search = Search {
        s: s.clone(),
        population,
        layers,
        pool,
        info,
        cols,
        t: &t,
        evaluations: 0,
        stop,
    };
    let range = o.initial_range.unwrap_or((10.0, (n as f64 / 200.0).max(100.0)));
    let short = (LOOKAHEAD + 2).min(t.weeks.len());
    let mut tried: Vec<(f64, f64)> = Vec::new();
    minimise(range.0.ln(), range.1.ln(), 5, 3, |x| {
        let f = search.fit(x.exp(), short, 5, 2)?;
        eprintln!(
            "  initial_infected = {:.0}: loss over {short} weeks {:.3}",
            x.exp(),
            f.loss
        );
        tried.push((x.exp(), f.loss));
        Ok((f.loss, ()))
    })?;
    tried.sort_by(|a, b| a.1.total_cmp(&b.1));
    let initial = tried[0].0.round();
    let fit = search.fit(initial, t.weeks.len(), 7, 5)?;
    let report = Report {
        s: &s,
        t: &t,
        fit: &fit,
        scale,
        weights: &weights,
        agents: n,
        evaluations: search.evaluations,
        wall: wall.elapsed().as_secs_f64(),
    };
    report.write(&out, o, &full)
}

struct Report<'a> {
    s: &'a Scenario,
    t: &'a Target,
    fit: &'a Fit,
    scale: f64,
    weights: &'a [(String, f64)],
    agents: u32,
    evaluations: u64,
    wall: f64,
}

impl Report<'_> {
    /// Root-mean-square error of ln(1 + weekly count), per series.
    fn rmsle(&self) -> [f64; 3] {
        std::array::from_fn(|k| {
            let n = self.fit.model[k].len().max(1) as f64;
            (self.fit.model[k]
                .iter()
                .zip(&self.t.values[k])
                .map(|(&m, &o)| err(m, o))
                .sum::<f64>()
                / n)
                .sqrt()
        })
    }

    fn write(&self, out: &Path, o: &CalibrateOptions, full: &Overrides) -> Result<()> {
        let (t, fit, cal) = (self.t, self.fit, &self.s.calendar);
        let mut table = String::from(
            "week,week_start,observed_cases,model_reported_cases,observed_hospitalisations,model_hospitalisations,observed_deaths,model_deaths,r_week,report_probability\n",
        );
        for (w, p) in t.weeks.iter().enumerate().take(fit.r.len()) {
            table.push_str(&format!(
                "{w},{},{},{},{},{},{},{},{},{}\n",
                cal.label(p.first),
                t.values[0][w],
                fit.model[0][w],
                t.values[1][w],
                fit.model[1][w],
                t.values[2][w],
                fit.model[2][w],
                fit.r[w],
                fit.q[w]
            ));
        }
        let path = out.join("calibration.csv");
        std::fs::write(&path, table).doing(|| format!("writing {}", path.display()))?;
        self.plot(out)?;
        let fitted = out.join("fitted.toml");
        write_fitted(&o.scenario, full, self, &fitted)?;
        let rmsle = self.rmsle();
        let summary = json!({
            "myriad_version": env!("CARGO_PKG_VERSION"),
            "scenario_file": o.scenario.display().to_string(),
            "search_scale": self.scale,
            "agents_searched": self.agents,
            "weeks": fit.r.len(),
            "first_week": cal.label(t.weeks[0].first),
            "series": ["reported cases vs confirmed cases", "hospital admissions", "deaths"],
            "loss": "per series and week, (ln(1 + model) - ln(1 + observed))^2; weights 1, 1, 1",
            "rmsle": {"cases": rmsle[0], "hospitalisations": rmsle[1], "deaths": rmsle[2]},
            "initial_infected_searched": fit.initial,
            "initial_infected_full_scale": (fit.initial / self.scale).round(),
            "seed_weights": self.weights.iter().map(|(p, w)| (p.clone(), json!(w))).collect::<serde_json::Map<_, _>>(),
            "r_week": fit.r,
            "report_probability": fit.q,
            "evaluations": self.evaluations,
            "wall_seconds": self.wall,
            "fitted_scenario": fitted.display().to_string(),
        });
        let path = out.join("calibration.json");
        std::fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
            .doing(|| format!("writing {}", path.display()))?;
        println!(
            "fitted {} weeks in {:.0} s ({} week-long candidate runs); rmsle of ln(1 + weekly count): cases {:.3}, hospitalisations {:.3}, deaths {:.3}",
            fit.r.len(),
            self.wall,
            self.evaluations,
            rmsle[0],
            rmsle[1],
            rmsle[2]
        );
        println!(
            "initial_infected = {} at scale {} ({} for the full city); fitted scenario: {}",
            fit.initial,
            self.scale,
            (fit.initial / self.scale).round(),
            fitted.display()
        );
        Ok(())
    }

    fn plot(&self, out: &Path) -> Result<()> {
        let Some(start) = self.s.calendar.start() else {
            return Ok(());
        };
        let mid = |p: &Period| f64::from(p.first + p.last) / 2.0;
        let names = ["reported cases", "hospital admissions", "deaths"];
        let panels: Vec<crate::plot::Panel> = (0..3)
            .map(|k| crate::plot::Panel {
                title: format!("{} (x {} scale)", names[k], self.scale),
                ylabel: "per week".into(),
                series: vec![
                    crate::plot::Series::line(
                        "fitted model",
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

/// The scenario with the fitted values, for the full city: `initial_infected`
/// (divided by the searched scale) and the seed weights in `[params]`, and
/// per week two interventions (`r_week`, `report_probability`) by date.
fn write_fitted(file: &Path, full: &Overrides, r: &Report, out: &Path) -> Result<()> {
    let mut doc = scenario::resolved_document(file, full)?;
    if doc.get("params").is_none() {
        doc["params"] = toml_edit::table();
    }
    doc["params"]["initial_infected"] = toml_edit::value((r.fit.initial / r.scale).round() as i64);
    for (part, w) in r.weights {
        if let Some((_, name)) = SEED_WEIGHTS.iter().find(|(p, _)| p == part) {
            doc["params"][*name] = toml_edit::value((w * 1000.0).round() / 1000.0);
        }
    }
    let mut interventions = match doc.remove("interventions") {
        Some(toml_edit::Item::ArrayOfTables(a)) => a,
        _ => toml_edit::ArrayOfTables::new(),
    };
    let cal = &r.s.calendar;
    let weeks = r.fit.r.len();
    for (w, p) in r.t.weeks.iter().enumerate().take(weeks) {
        for (param, v) in [("r_week", r.fit.r[w]), ("report_probability", r.fit.q[w])] {
            let mut t = toml_edit::Table::new();
            t["name"] = toml_edit::value(format!("{param} fitted, week of {}", cal.label(p.first)));
            t["start"] = toml_edit::value(cal.label(p.first));
            if w + 1 < weeks {
                t["end"] = toml_edit::value(cal.label(p.last + 1));
            }
            t["param"] = toml_edit::value(param);
            t["value"] = toml_edit::value((v * 1e6).round() / 1e6);
            interventions.push(t);
        }
    }
    doc.insert("interventions", toml_edit::Item::ArrayOfTables(interventions));
    let rm = r.rmsle();
    let header = format!(
        "# Fitted by `myriad calibrate` from {} on a city at scale {} ({} weeks; rmsle of ln(1 + weekly count): cases {:.3}, hospitalisations {:.3}, deaths {:.3}).\n# The weekly r_week and report_probability values are the last interventions; the last week's hold to the end.\n",
        file.display(),
        r.scale,
        weeks,
        rm[0],
        rm[1],
        rm[2]
    );
    std::fs::write(out, header + &doc.to_string()).doing(|| format!("writing {}", out.display()))
}
