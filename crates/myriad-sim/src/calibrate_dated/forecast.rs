//! `myriad forecast`: the research's comparison of behaviour models on
//! real, dated series ("On the limits of agency in agent-based models"):
//! fit on the weeks up to a cut-off date, forecast the weeks after it, and
//! score the forecasts against what was observed, for the model's own
//! heuristic behaviour and for the scenario's LLM archetypes.
//!
//! Per cut-off date and behaviour (an *arm*):
//!
//! 1. **Fit.** The dated calibration (this module's parent) on the whole
//!    weeks ending on or before the cut-off, with the arm deciding
//!    throughout: the initial infections, the weekly transmission and
//!    reporting values, and the labour parameter for the months with
//!    observed readings before the cut-off. Nothing observed after the
//!    cut-off is read (the look-ahead of the last weeks is cut short). Each
//!    arm gets its own fit, so that each forecast starts from a state that
//!    arm explains; under an LLM the candidates of a week hold the week's
//!    answers through their look-ahead (see `held.rs`), where the
//!    heuristic reacts day by day.
//!    With `--refine` each fit is then refined on the scenario's own city
//!    as `calibrate --refine` does (tested to give the same values), and
//!    the members below run there: full scale, at a cost of minutes per
//!    cut-off and behaviour.
//! 2. **Forecast.** From the fitted state at the cut-off, `--seeds` members
//!    (the state reseeded: seeds `seed + 1, seed + 2, ...`), each run
//!    `max(--horizon)` weeks with the recent fitted values held (the naive
//!    assumption: transmission and reporting stay at their mean over the
//!    last 4 fitted weeks, geometric for transmission; work at its last
//!    fitted month) and the arm deciding every week; the scenario's
//!    interventions dated after the cut-off on layers and other parameters
//!    take effect (they were announced).
//! 3. **Score.** For each horizon `h`: the mean absolute error of the weekly
//!    counts of each compared series (reported cases against confirmed
//!    cases, admissions, deaths; whole-city counts) over the `h` weeks after
//!    the cut-off; for the monthly readings (unemployment per borough) the
//!    mean absolute error in percentage points over the parts and the
//!    months ending within the horizon. Per arm, the mean over members and
//!    the smallest and largest member. A *persistence* arm (the last
//!    observed week, and the last observed month, held) is scored too: a
//!    forecast that does not beat it has no skill.
//!
//! Writes `forecast.csv` (every member's weekly forecast with the observed
//! value), `forecast_monthly.csv`, `scores.csv`, `forecast.json` and
//! `forecast.png`, and prints the score table.

use super::{held::HeldInForks, labour, prepare, refuse_other_options, rmsle, Fit, Search, Target};
use crate::build::InputError;
use crate::calibrate::CalibrateOptions;
use crate::error::{FileContext, Result};
use crate::scenario::Overrides;
use crate::simulation::Simulation;
use myriad_core::calendar::{parse_date, Period};
use serde_json::json;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A behaviour forecast with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arm {
    /// The model's own rule.
    Heuristic,
    /// The scenario's `[behaviour]` (LLM archetypes).
    Llm,
}

impl Arm {
    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Arm::Heuristic => "heuristic",
            Arm::Llm => "llm",
        }
    }

    /// Read a name.
    pub fn parse(text: &str) -> std::result::Result<Arm, String> {
        match text {
            "heuristic" => Ok(Arm::Heuristic),
            "llm" => Ok(Arm::Llm),
            other => Err(format!("'{other}': use heuristic or llm")),
        }
    }
}

/// Options of `myriad forecast`.
pub struct ForecastOptions {
    /// The fit's options (scenario, overrides, seed, search scale, fitted
    /// parameters, output folder, threads).
    pub fit: CalibrateOptions,
    /// Cut-off dates (`YYYY-MM-DD`): the last day fitted.
    pub cutoffs: Vec<String>,
    /// Horizons scored, in weeks.
    pub horizons: Vec<u32>,
    /// Forecast members per cut-off and arm.
    pub members: u32,
    /// Behaviours compared [default: heuristic, and llm when the scenario has `[behaviour]`].
    pub arms: Vec<Arm>,
}

/// Fitted weeks whose mean transmission and reporting a forecast holds.
const HELD_WEEKS: usize = 4;

/// Weeks the search for the initial infections reads (5 fitted, 3 ahead).
const INITIAL_WEEKS: usize = super::LOOKAHEAD + 2 + super::LOOKAHEAD;

/// One member's forecast: per series, per week ahead; per month, per part.
struct Member {
    weekly: Vec<Vec<f64>>,
    monthly: Vec<Vec<f64>>,
}

/// One cut-off and arm: the fit's error and its members.
struct ArmRun {
    cutoff: usize,
    arm: &'static str,
    fit_rmsle: Vec<f64>,
    /// The fit (none for persistence).
    fit: Option<Fit>,
    /// The transmission and reporting values held through the forecast.
    held: (f64, f64),
    members: Vec<Member>,
    seconds: f64,
}

/// Mean absolute error of `model` against `observed` over the first `h` values.
fn mae(model: &[f64], observed: &[f64], h: usize) -> f64 {
    let n = h.min(model.len()).min(observed.len()).max(1);
    model
        .iter()
        .zip(observed)
        .take(n)
        .map(|(m, o)| (m - o).abs())
        .sum::<f64>()
        / n as f64
}

/// Run the comparison.
pub fn run(o: &ForecastOptions, stop: Arc<AtomicBool>) -> Result<()> {
    let wall = Instant::now();
    let f = &o.fit;
    refuse_other_options(f)?;
    if o.members == 0 || o.members > 1000 {
        return Err(InputError(format!("--seeds must be 1 to 1000, got {}", o.members)).into());
    }
    if o.horizons.is_empty() || o.horizons.iter().any(|&h| h == 0 || h > 52) {
        return Err(InputError("--horizon: weeks from 1 to 52, e.g. --horizon 4,8".into()).into());
    }
    if o.cutoffs.is_empty() {
        return Err(InputError("--cutoff: give at least one date, e.g. --cutoff 2020-06-27".into()).into());
    }
    let full = Overrides {
        set: f.set.clone(),
        seed: f.seed,
    };
    let pre = prepare(f, &full, f.search_scale.unwrap_or(0.05))?;
    let s = &pre.s;
    let arms: Vec<Arm> = if o.arms.is_empty() {
        let mut a = vec![Arm::Heuristic];
        if s.behaviour.is_some() {
            a.push(Arm::Llm);
        }
        a
    } else {
        o.arms.clone()
    };
    if arms.contains(&Arm::Llm) && s.behaviour.is_none() {
        return Err(InputError(format!(
            "--arm llm: {} has no [behaviour] with provider = \"llm\" (see scenarios/covid-nyc-llm.toml)",
            f.scenario.display()
        ))
        .into());
    }
    let all = super::target(s, &pre.obs, None)?;
    // With --refine each fit is refined, and the members run, on the
    // scenario's own city.
    let own = match f.refine && pre.scale < 1.0 {
        true => Some(prepare(f, &full, 1.0)?),
        false => None,
    };
    let own_all = own.as_ref().map(|p| super::target(&p.s, &p.obs, None)).transpose()?;
    let (rp, ra) = match (&own, &own_all) {
        (Some(p), Some(a)) => (p, a),
        _ => (&pre, &all),
    };
    let horizon = *o.horizons.iter().max().expect("checked") as usize;
    // The fitted weeks of each cut-off.
    let mut fitted_weeks = Vec::new();
    for text in &o.cutoffs {
        let bad = |m: String| -> crate::error::Error { InputError(format!("--cutoff {text}: {m}")).into() };
        let date = parse_date(text).map_err(|e| bad(e.to_string()))?;
        let step = s
            .calendar
            .step_of(date)
            .filter(|&k| k >= 1 && k <= s.steps)
            .ok_or_else(|| {
                bad(format!(
                    "outside the run ({} to {})",
                    s.calendar.label(1),
                    s.calendar.label(s.steps)
                ))
            })?;
        let k = all.weeks.iter().take_while(|p| p.last <= step).count();
        if k < 5 {
            return Err(bad(
                "fewer than 5 whole observed weeks end by then; nothing to fit".into()
            ));
        }
        if k + horizon > all.weeks.len() {
            return Err(bad(format!(
                "the run and the observed series have {} whole weeks after it, fewer than the horizon of {horizon}",
                all.weeks.len() - k
            )));
        }
        if all.weeks[k - 1].last != step {
            eprintln!(
                "note: --cutoff {text} is not the last day (Saturday) of a week; fitting the weeks to {}",
                s.calendar.label(all.weeks[k - 1].last)
            );
        }
        fitted_weeks.push(k);
    }
    let readings = labour::readings(s);
    let labour_param = f.labour_param.clone().unwrap_or_else(|| "work_probability".into());
    let out = f.out.create(f.force, "forecast")?;
    let runtime = if arms.contains(&Arm::Llm) {
        Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .doing(|| "starting the async runtime".into())?,
        )
    } else {
        None
    };
    let hold = Arc::new(AtomicBool::new(false));
    let mut runs: Vec<ArmRun> = Vec::new();
    let mut month_obs: Vec<Option<labour::Labour>> = Vec::new();
    let mut llm_report = None;
    let mut initials: Vec<((Arm, bool), f64)> = Vec::new();
    let mut interrupted = false;
    'cutoffs: for (c, &k) in fitted_weeks.iter().enumerate() {
        let fit_t = Target {
            weeks: all.weeks[..k].to_vec(),
            values: all.values.iter().map(|v| v[..k].to_vec()).collect(),
        };
        let ahead: Vec<Period> = all.weeks[k..k + horizon].to_vec();
        let months = readings.as_ref().and_then(|(prefix, r)| {
            labour::months_between(
                s,
                &labour_param,
                prefix,
                r,
                fit_t.weeks[k - 1].last + 1,
                ahead[horizon - 1].last,
            )
        });
        for &arm in &arms {
            if stop.load(Ordering::Relaxed) {
                interrupted = true;
                break 'cutoffs;
            }
            let t0 = Instant::now();
            eprintln!(
                "cut-off {} ({} weeks fitted), {}: fitting",
                s.calendar.label(fit_t.weeks[k - 1].last),
                k,
                arm.name()
            );
            let provider = arm_provider(arm, &pre, runtime.as_ref(), &hold)?;
            let mut search = Search::new(&pre, &fit_t, &pre.params, provider, stop.clone());
            // The initial infections are searched on the first weeks and
            // their look-ahead only: the same for every later cut-off.
            let key = (arm, k >= INITIAL_WEEKS);
            search.initial_known = initials.iter().find(|(a, _)| *a == key).map(|x| x.1);
            hold.store(true, Ordering::Relaxed);
            let fitted = search.calibrate(f);
            hold.store(false, Ordering::Relaxed);
            let (fit, labour, sim) = match fitted {
                Ok(x) => x,
                Err(_) if stop.load(Ordering::Relaxed) => {
                    interrupted = true;
                    break 'cutoffs;
                }
                Err(e) => return Err(e),
            };
            if key.1 && search.initial_known.is_none() {
                initials.push((key, fit.initial));
            }
            let (fit, sim, fit_rmsle) = match &own {
                None => {
                    let e = rmsle(&fit, &fit_t);
                    (fit, sim, e)
                }
                Some(own) => {
                    let own_t = Target {
                        weeks: ra.weeks[..k].to_vec(),
                        values: ra.values.iter().map(|v| v[..k].to_vec()).collect(),
                    };
                    eprintln!(
                        "  refining on the scenario's own city ({} agents)",
                        own.population.size()
                    );
                    let provider = arm_provider(arm, own, runtime.as_ref(), &hold)?;
                    let mut refine = Search::new(own, &own_t, &pre.params, provider, stop.clone());
                    hold.store(true, Ordering::Relaxed);
                    let refined = refine.refine(&fit, labour, pre.scale);
                    hold.store(false, Ordering::Relaxed);
                    let (refined, _, sim) = match refined {
                        Ok(x) => x,
                        Err(_) if stop.load(Ordering::Relaxed) => {
                            interrupted = true;
                            break 'cutoffs;
                        }
                        Err(e) => return Err(e),
                    };
                    let e = rmsle(&refined, &own_t);
                    (refined, sim, e)
                }
            };
            eprintln!("  fit rmsle {:?}; forecasting {} members", fit_rmsle, o.members);
            let (r_held, q_held) = held_values(&fit);
            let mut members = Vec::new();
            for m in 0..o.members {
                let mut run = sim.fork();
                run.reseed(s.seed + 1 + u64::from(m))?;
                run.set_override(&pre.params.transmission, r_held);
                run.set_override(&pre.params.report, q_held);
                members.push(forecast(&mut run, &rp.cols, &ahead, months.as_ref())?);
                if arm == Arm::Llm {
                    llm_report = run.provider_report();
                }
            }
            runs.push(ArmRun {
                cutoff: c,
                arm: arm.name(),
                fit_rmsle,
                fit: Some(fit),
                held: (r_held, q_held),
                members,
                seconds: t0.elapsed().as_secs_f64(),
            });
        }
        // Persistence: the last fitted week's and the last observed month's values held.
        let last = |j: usize| ra.values[j][k - 1];
        let weekly = (0..rp.obs.len()).map(|j| vec![last(j); horizon]).collect();
        let monthly = match (&months, &readings) {
            (Some(ms), Some((_, r))) => {
                let before = s
                    .calendar
                    .periods(myriad_core::calendar::PeriodKind::Month, fit_t.weeks[k - 1].last)
                    .into_iter()
                    .rev()
                    .find_map(|p| {
                        (0..ms.parts.len())
                            .map(|q| r.for_period(&s.calendar, myriad_core::calendar::PeriodKind::Month, &p, Some(q)))
                            .collect::<Option<Vec<f64>>>()
                    });
                match before {
                    Some(v) => vec![v; ms.months.len()],
                    None => Vec::new(),
                }
            }
            _ => Vec::new(),
        };
        runs.push(ArmRun {
            cutoff: c,
            arm: "persistence",
            fit_rmsle: Vec::new(),
            fit: None,
            held: (f64::NAN, f64::NAN),
            members: vec![Member { weekly, monthly }],
            seconds: 0.0,
        });
        month_obs.push(months);
        // Written after every cut-off, so that an interrupted comparison
        // keeps the cut-offs it completed.
        let last = c + 1 == fitted_weeks.len();
        Report {
            o,
            pre: rp,
            all: ra,
            searched_scale: pre.scale,
            fitted_weeks: &fitted_weeks[..c + 1],
            month_obs: &month_obs,
            runs: &runs,
            horizon,
            interrupted: false,
        }
        .write(&out, llm_report.clone(), wall.elapsed().as_secs_f64(), last)?;
    }
    if !interrupted {
        return Ok(());
    }
    let done = month_obs.len();
    runs.retain(|r| r.cutoff < done);
    if done == 0 {
        return Err(crate::error::Error::Run(
            "interrupted before the first cut-off was complete; nothing written".into(),
        ));
    }
    Report {
        o,
        pre: rp,
        all: ra,
        searched_scale: pre.scale,
        fitted_weeks: &fitted_weeks[..done],
        month_obs: &month_obs,
        runs: &runs,
        horizon,
        interrupted: true,
    }
    .write(&out, llm_report, wall.elapsed().as_secs_f64(), true)?;
    Err(crate::error::Error::Run(format!(
        "interrupted: {} holds the {done} of {} cut-offs completed",
        out.display(),
        fitted_weeks.len()
    )))
}

/// The transmission and reporting values held through a forecast: the
/// geometric mean of the last [`HELD_WEEKS`] fitted transmission values and
/// the mean of the reporting ones. One value per week is fitted, so each
/// carries its week's noise, and the last weeks are the least determined
/// (few or no later weeks score them); the recent mean is the persistence
/// of transmission, not of one week's noise.
fn held_values(fit: &Fit) -> (f64, f64) {
    let n = fit.r.len().clamp(1, HELD_WEEKS);
    let recent = |v: &[f64]| v[v.len().saturating_sub(n)..].to_vec();
    let r = recent(&fit.r);
    let q = recent(&fit.q);
    (
        (r.iter().map(|x| x.ln()).sum::<f64>() / r.len() as f64).exp(),
        q.iter().sum::<f64>() / q.len() as f64,
    )
}

/// The arm's decision provider on `pre`'s population: none for the
/// heuristic (the model's rule), the scenario's LLM archetypes, holding
/// their answers in a search's trial runs, for the LLM arm.
fn arm_provider(
    arm: Arm,
    pre: &super::Prepared,
    runtime: Option<&tokio::runtime::Runtime>,
    hold: &Arc<AtomicBool>,
) -> Result<Option<HeldInForks>> {
    let (Arm::Llm, Some(rt)) = (arm, runtime) else {
        return Ok(None);
    };
    match crate::behaviour::provider(&pre.s, &pre.population, rt.handle().clone())? {
        Some(b) => Ok(Some(HeldInForks::new(b, hold.clone()))),
        None => Err(InputError(format!(
            "--arm llm: {} asks no LLM ([behaviour] provider = \"llm\")",
            pre.s.file.display()
        ))
        .into()),
    }
}

/// Step `sim` through `weeks`: each series' weekly totals and the readings
/// at the end of each of `months`.
fn forecast(sim: &mut Simulation, cols: &[usize], weeks: &[Period], months: Option<&labour::Labour>) -> Result<Member> {
    let mut weekly = vec![Vec::new(); cols.len()];
    let mut monthly = Vec::new();
    for p in weeks {
        let mut sums = vec![0.0; cols.len()];
        while sim.step_index() < p.last {
            super::step_or_fail(sim)?;
            for (sum, &c) in sums.iter_mut().zip(cols) {
                *sum += sim.row()[c];
            }
            if let Some(l) = months {
                if l.months.iter().any(|m| m.last == sim.step_index()) {
                    monthly.push(l.cols.iter().map(|&c| sim.row()[c]).collect());
                }
            }
        }
        for (series, x) in weekly.iter_mut().zip(sums) {
            series.push(x);
        }
    }
    Ok(Member { weekly, monthly })
}

struct Report<'a> {
    o: &'a ForecastOptions,
    /// What the members ran on (the searched city, or the own city with --refine).
    pre: &'a super::Prepared,
    searched_scale: f64,
    all: &'a Target,
    fitted_weeks: &'a [usize],
    month_obs: &'a [Option<labour::Labour>],
    runs: &'a [ArmRun],
    horizon: usize,
    /// Stopped before every cut-off was done.
    interrupted: bool,
}

/// One row of the score table.
struct Score {
    cutoff: usize,
    arm: &'static str,
    horizon: u32,
    series: String,
    mean: f64,
    min: f64,
    max: f64,
    members: usize,
}

impl Report<'_> {
    /// Whole-city count from a count at the searched scale, for series `j`.
    fn city(&self, j: usize, x: f64) -> f64 {
        x / self.pre.obs[j].1.scale
    }

    fn scores(&self) -> Vec<Score> {
        let mut rows = Vec::new();
        for r in self.runs {
            let k = self.fitted_weeks[r.cutoff];
            for &h in &self.o.horizons {
                let h_us = h as usize;
                for (j, (metric, ob)) in self.pre.obs.iter().enumerate() {
                    let observed: Vec<f64> = self.all.values[j][k..k + h_us]
                        .iter()
                        .map(|&x| self.city(j, x))
                        .collect();
                    let errors: Vec<f64> = r
                        .members
                        .iter()
                        .map(|m| {
                            let model: Vec<f64> = m.weekly[j].iter().map(|&x| self.city(j, x)).collect();
                            mae(&model, &observed, h_us)
                        })
                        .collect();
                    rows.push(score(r, h, format!("{metric} vs {}", ob.label), &errors));
                }
                // Months ending within h weeks of the cut-off.
                if let Some(l) = &self.month_obs[r.cutoff] {
                    let end = self.all.weeks[k + h_us - 1].last;
                    let n = l.months.iter().filter(|m| m.last <= end).count();
                    if n == 0 || r.members.iter().any(|m| m.monthly.len() < n) {
                        continue;
                    }
                    let errors: Vec<f64> = r
                        .members
                        .iter()
                        .map(|m| {
                            let model: Vec<f64> = m.monthly[..n].iter().flatten().copied().collect();
                            let obs: Vec<f64> = l.observed[..n].iter().flatten().copied().collect();
                            mae(&model, &obs, model.len())
                        })
                        .collect();
                    rows.push(score(r, h, "unemployment per borough (points)".into(), &errors));
                }
            }
        }
        rows
    }

    /// Write every file; with `print`, the score table on stdout too.
    fn write(
        &self,
        out: &std::path::Path,
        llm_report: Option<serde_json::Value>,
        wall: f64,
        print: bool,
    ) -> Result<()> {
        let cal = &self.pre.s.calendar;
        let cutoff_label = |c: usize| cal.label(self.all.weeks[self.fitted_weeks[c] - 1].last);
        // Every member's weekly forecast.
        let mut text = String::from("cutoff,arm,member,week_ahead,week_start,series,observed,forecast\n");
        for r in self.runs {
            let k = self.fitted_weeks[r.cutoff];
            for (m, member) in r.members.iter().enumerate() {
                for (j, (metric, _)) in self.pre.obs.iter().enumerate() {
                    for (w, &x) in member.weekly[j].iter().enumerate() {
                        let _ = writeln!(
                            text,
                            "{},{},{},{},{},{metric},{},{}",
                            cutoff_label(r.cutoff),
                            r.arm,
                            m,
                            w + 1,
                            cal.label(self.all.weeks[k + w].first),
                            self.city(j, self.all.values[j][k + w]),
                            self.city(j, x)
                        );
                    }
                }
            }
        }
        let path = out.join("forecast.csv");
        std::fs::write(&path, text).doing(|| format!("writing {}", path.display()))?;
        let mut text = String::from("cutoff,arm,member,month_start,part,observed,forecast\n");
        for r in self.runs {
            let Some(l) = &self.month_obs[r.cutoff] else { continue };
            for (m, member) in r.members.iter().enumerate() {
                for (i, readings) in member.monthly.iter().enumerate() {
                    for (q, part) in l.parts.iter().enumerate() {
                        let _ = writeln!(
                            text,
                            "{},{},{},{},{part},{},{}",
                            cutoff_label(r.cutoff),
                            r.arm,
                            m,
                            cal.label(l.months[i].first),
                            l.observed[i][q],
                            readings[q]
                        );
                    }
                }
            }
        }
        let path = out.join("forecast_monthly.csv");
        std::fs::write(&path, text).doing(|| format!("writing {}", path.display()))?;
        // Every arm's fit, week by week.
        let p = &self.pre.params;
        let mut text = format!("cutoff,arm,week_start,{},{}", p.transmission, p.report);
        for (metric, _) in &self.pre.obs {
            text.push_str(&format!(",observed_{metric},model_{metric}"));
        }
        text.push('\n');
        for r in self.runs {
            let Some(fit) = &r.fit else { continue };
            for w in 0..fit.r.len() {
                let _ = write!(
                    text,
                    "{},{},{},{},{}",
                    cutoff_label(r.cutoff),
                    r.arm,
                    cal.label(self.all.weeks[w].first),
                    fit.r[w],
                    fit.q[w]
                );
                for j in 0..self.pre.obs.len() {
                    let _ = write!(
                        text,
                        ",{},{}",
                        self.city(j, self.all.values[j][w]),
                        self.city(j, fit.model[j][w])
                    );
                }
                text.push('\n');
            }
        }
        let path = out.join("fits.csv");
        std::fs::write(&path, text).doing(|| format!("writing {}", path.display()))?;
        let scores = self.scores();
        let mut text = String::from("cutoff,arm,horizon_weeks,series,mae_mean,mae_min,mae_max,members\n");
        for sc in &scores {
            let _ = writeln!(
                text,
                "{},{},{},{},{},{},{},{}",
                cutoff_label(sc.cutoff),
                sc.arm,
                sc.horizon,
                sc.series,
                sc.mean,
                sc.min,
                sc.max,
                sc.members
            );
        }
        let path = out.join("scores.csv");
        std::fs::write(&path, text).doing(|| format!("writing {}", path.display()))?;
        let summary = json!({
            "myriad_version": env!("CARGO_PKG_VERSION"),
            "scenario_file": self.o.fit.scenario.display().to_string(),
            "search_scale": self.searched_scale,
            "refined_on_own_city": self.o.fit.refine && self.searched_scale < 1.0,
            "agents": self.pre.population.size(),
            "cutoffs": (0..self.fitted_weeks.len()).map(cutoff_label).collect::<Vec<_>>(),
            "weeks_fitted": self.fitted_weeks,
            "horizons_weeks": self.o.horizons,
            "members": self.o.members,
            "member_seeds": (1..=u64::from(self.o.members)).map(|m| self.pre.s.seed + m).collect::<Vec<_>>(),
            "error_measure": "mean absolute error of whole-city weekly counts over the weeks after the cut-off; unemployment: mean absolute error in percentage points over boroughs and the months ending within the horizon",
            "arms": self.runs.iter().filter(|r| r.arm != "persistence").map(|r| json!({
                "cutoff": cutoff_label(r.cutoff),
                "arm": r.arm,
                "held": { p.transmission.clone(): r.held.0, p.report.clone(): r.held.1 },
                "fit_rmsle": self.pre.obs.iter().zip(&r.fit_rmsle).map(|((m, _), e)| (m.to_string(), json!(e))).collect::<serde_json::Map<_, _>>(),
                "seconds": r.seconds,
            })).collect::<Vec<_>>(),
            "llm": llm_report,
            "wall_seconds": wall,
            "interrupted": self.interrupted,
        });
        let path = out.join("forecast.json");
        std::fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
            .doing(|| format!("writing {}", path.display()))?;
        self.plot(out)?;
        if !print {
            return Ok(());
        }
        // The table, and its mean over cut-offs.
        println!(
            "cutoff      arm          h  series                                   MAE mean (min-max over members)"
        );
        for sc in &scores {
            println!(
                "{}  {:<11} {:>2}  {:<40} {:>10.1} ({:.1}-{:.1})",
                cutoff_label(sc.cutoff),
                sc.arm,
                sc.horizon,
                sc.series,
                sc.mean,
                sc.min,
                sc.max
            );
        }
        println!("mean over cut-offs:");
        let mut seen: Vec<(&str, u32, &str)> = Vec::new();
        for sc in &scores {
            let key = (sc.arm, sc.horizon, sc.series.as_str());
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let same: Vec<f64> = scores
                .iter()
                .filter(|x| x.arm == sc.arm && x.horizon == sc.horizon && x.series == sc.series)
                .map(|x| x.mean)
                .collect();
            println!(
                "  {:<11} {:>2}  {:<40} {:>10.1} over {} cut-offs",
                sc.arm,
                sc.horizon,
                sc.series,
                same.iter().sum::<f64>() / same.len() as f64,
                same.len()
            );
        }
        println!("written to {}", out.display());
        Ok(())
    }

    /// `forecast.png`: per series, the observed weeks as points and each
    /// cut-off's member-mean forecast per arm.
    fn plot(&self, out: &std::path::Path) -> Result<()> {
        let Some(start) = self.pre.s.calendar.start() else {
            return Ok(());
        };
        let mid = |p: &Period| f64::from(p.first + p.last) / 2.0;
        let last_week = self.fitted_weeks.iter().max().copied().unwrap_or(0) + self.horizon;
        let arms: Vec<&str> = {
            let mut a: Vec<&str> = self.runs.iter().map(|r| r.arm).collect();
            a.dedup();
            a.sort();
            a.dedup();
            a
        };
        let panels = self
            .pre
            .obs
            .iter()
            .enumerate()
            .map(|(j, (metric, ob))| {
                let mut series = vec![crate::plot::Series {
                    markers: true,
                    colour: Some(arms.len()),
                    ..crate::plot::Series::line(
                        format!("observed {}", ob.label),
                        self.all.weeks[..last_week]
                            .iter()
                            .zip(&self.all.values[j])
                            .map(|(p, &v)| (mid(p), self.city(j, v)))
                            .collect(),
                    )
                }];
                for r in self.runs {
                    let k = self.fitted_weeks[r.cutoff];
                    let colour = arms.iter().position(|a| *a == r.arm);
                    let n = r.members.len() as f64;
                    let points = (0..self.horizon)
                        .map(|w| {
                            let mean = r.members.iter().map(|m| m.weekly[j][w]).sum::<f64>() / n;
                            (mid(&self.all.weeks[k + w]), self.city(j, mean))
                        })
                        .collect();
                    let label = if r.cutoff == 0 {
                        r.arm.to_string()
                    } else {
                        String::new()
                    };
                    series.push(crate::plot::Series {
                        colour,
                        ..crate::plot::Series::line(label, points)
                    });
                }
                crate::plot::Panel {
                    title: format!("{metric}: forecasts from each cut-off"),
                    ylabel: "per week (whole city)".into(),
                    series,
                }
            })
            .collect::<Vec<_>>();
        crate::plot::dated_png(
            &out.join("forecast.png"),
            &format!(
                "{}: forecasts after {} cut-offs",
                self.pre.s.name,
                self.fitted_weeks.len()
            ),
            start,
            &panels,
            &[],
        )
    }
}

fn score(r: &ArmRun, horizon: u32, series: String, errors: &[f64]) -> Score {
    Score {
        cutoff: r.cutoff,
        arm: r.arm,
        horizon,
        series,
        mean: errors.iter().sum::<f64>() / errors.len().max(1) as f64,
        min: errors.iter().copied().fold(f64::INFINITY, f64::min),
        max: errors.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        members: errors.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::{held_values, mae, Fit};

    fn fit(r: Vec<f64>, q: Vec<f64>) -> Fit {
        Fit {
            initial: 0.0,
            r,
            q,
            model: Vec::new(),
            loss: 0.0,
        }
    }

    #[test]
    fn a_forecast_holds_the_recent_mean_of_the_fitted_values() {
        let (r, q) = held_values(&fit(vec![1.0, 2.0, 4.0, 8.0, 16.0], vec![0.9, 0.1, 0.2, 0.3, 0.4]));
        assert!((r - (2.0f64 * 4.0 * 8.0 * 16.0).powf(0.25)).abs() < 1e-12, "{r}");
        assert!((q - 0.25).abs() < 1e-12, "{q}");
        // Fewer weeks than the window: all of them.
        let (r, q) = held_values(&fit(vec![2.0, 8.0], vec![0.2, 0.4]));
        assert!((r - 4.0).abs() < 1e-12 && (q - 0.3).abs() < 1e-12);
    }

    #[test]
    fn mae_averages_absolute_errors_over_the_horizon() {
        assert_eq!(mae(&[1.0, 5.0, 100.0], &[2.0, 2.0, 0.0], 2), 2.0);
        assert_eq!(mae(&[3.0], &[3.0], 1), 0.0);
    }
}
