//! The second stage of the dated calibration: the monthly labour
//! parameter (`--labour-param`, default `work_probability`), fitted month by
//! month so that the model's monthly readings (unemployment per borough)
//! follow the observed ones, with the weekly transmission and reporting
//! values of the first stage held.
//!
//! Each calendar month that has observed readings is fitted in order from a
//! copy of the committed simulation: a candidate value runs the month and
//! is scored by the sum over parts of squared errors of the reading at the
//! month's end (percentage points); a grid of 8 over [0.3, 1] then 4
//! golden-section steps. Months before the first observed one keep the
//! scenario's values. The labour parameter also changes who meets at work,
//! so the weekly series of the first stage move a little; the final replay
//! The weekly values are then fitted again with the monthly values in force
//! (one round), and the final replay reports every series as it is with all
//! fitted values in force.

use super::{Fit, Search};
use crate::calibrate::minimise;
use crate::error::Result;
use crate::outputs::observed;
use crate::scenario::Scenario;
use crate::simulation::Simulation;
use myriad_core::calendar::{Period, PeriodKind};
use myriad_core::model::TableKind;
use myriad_core::source::{Observed, Timing};

/// The model's monthly readings (metric prefix) with a dated observed series.
pub(super) fn readings(s: &Scenario) -> Option<(&'static str, Observed)> {
    s.model
        .tables
        .iter()
        .filter(|t| t.every == PeriodKind::Month)
        .find_map(|t| {
            let TableKind::Readings { prefix } = t.kind else {
                return None;
            };
            t.observed.iter().find_map(|&(_, name)| {
                let o = observed(s, name)?;
                matches!(o.timing, Timing::Monthly(_)).then_some((prefix, o))
            })
        })
}

/// The months fitted, their observed readings per part, and the values.
pub(super) struct Labour {
    /// The parameter.
    pub param: String,
    /// Calendar months with observed readings within the fitted weeks.
    pub months: Vec<Period>,
    /// Per month, per part: observed and modelled (after the final replay).
    pub observed: Vec<Vec<f64>>,
    pub model: Vec<Vec<f64>>,
    /// Part names and their metric columns.
    pub parts: Vec<String>,
    pub cols: Vec<usize>,
    /// Fitted value per month.
    pub values: Vec<f64>,
}

impl Labour {
    /// The parameter and its value in force at `step` (none before the first fitted month).
    pub fn value_at(&self, step: u32) -> Option<(&str, f64)> {
        let m = self.months.iter().rposition(|p| p.first <= step)?;
        Some((self.param.as_str(), *self.values.get(m)?))
    }

    /// Root-mean-square error per part over the months, in points.
    pub fn rmse(&self) -> Vec<f64> {
        (0..self.parts.len())
            .map(|k| {
                let n = self.months.len().max(1) as f64;
                let sum: f64 = self
                    .model
                    .iter()
                    .zip(&self.observed)
                    .map(|(m, o)| (m[k] - o[k]).powi(2))
                    .sum();
                (sum / n).sqrt()
            })
            .collect()
    }
}

impl Labour {
    /// What `calibration.json` says of this stage.
    pub fn summary(&self, cal: &myriad_core::Calendar) -> serde_json::Value {
        serde_json::json!({
            "param": self.param,
            "months": self.months.iter().map(|p| cal.label(p.first)).collect::<Vec<_>>(),
            "values": self.values,
            "loss": "per month, sum over parts of (model - observed)^2 at the month's end",
            "rmse": self.parts.iter().cloned().zip(self.rmse().into_iter().map(serde_json::Value::from)).collect::<serde_json::Map<_, _>>(),
        })
    }

    /// `calibration_monthly.csv`: per month, observed and modelled readings per part and the value.
    pub fn write(&self, out: &std::path::Path, cal: &myriad_core::Calendar) -> Result<()> {
        use crate::error::FileContext;
        let mut text = String::from("month_start");
        for p in &self.parts {
            text.push_str(&format!(",observed_{p},model_{p}"));
        }
        text.push_str(&format!(",{}\n", self.param));
        for (m, p) in self.months.iter().enumerate() {
            text.push_str(&cal.label(p.first));
            for k in 0..self.parts.len() {
                text.push_str(&format!(",{},{}", self.observed[m][k], self.model[m][k]));
            }
            text.push_str(&format!(",{}\n", self.values[m]));
        }
        let path = out.join("calibration_monthly.csv");
        std::fs::write(&path, text).doing(|| format!("writing {}", path.display()))
    }
}

/// The months to fit: calendar months within the fitted weeks whose
/// readings every part has.
pub(super) fn setup(search: &Search, param: &str, prefix: &str, o: &Observed, last_step: u32) -> Option<Labour> {
    months_between(&search.s, param, prefix, o, 1, last_step)
}

/// The calendar months ending in steps `from..=to` whose readings every
/// part has, with them (no values, no model readings yet).
pub(super) fn months_between(
    s: &Scenario,
    param: &str,
    prefix: &str,
    o: &Observed,
    from: u32,
    to: u32,
) -> Option<Labour> {
    let metrics = (s.model.metrics)();
    let mut parts = Vec::new();
    let mut cols = Vec::new();
    for (part, _) in &o.parts {
        let name = format!("{prefix}{part}");
        cols.push(metrics.iter().position(|m| m.name == name)?);
        parts.push(part.clone());
    }
    let mut months = Vec::new();
    let mut values = Vec::new();
    for p in s.calendar.periods(PeriodKind::Month, to) {
        if p.last < from {
            continue;
        }
        let v: Option<Vec<f64>> = (0..parts.len())
            .map(|k| o.for_period(&s.calendar, PeriodKind::Month, &p, Some(k)))
            .collect();
        if let Some(v) = v {
            months.push(p);
            values.push(v);
        }
    }
    (!months.is_empty()).then(|| Labour {
        param: param.to_string(),
        months,
        observed: values,
        model: Vec::new(),
        parts,
        cols,
        values: Vec::new(),
    })
}

impl Search<'_> {
    /// Step `sim` to step `last` with the fitted weekly values in force
    /// (and, from `labour`'s months, its values).
    pub(super) fn replay_to(&self, sim: &mut Simulation, fit: &Fit, labour: Option<&Labour>, last: u32) -> Result<()> {
        while sim.step_index() < last {
            let step = sim.step_index() + 1;
            if let Some(w) = self.t.weeks.iter().rposition(|p| p.first <= step) {
                let w = w.min(fit.r.len() - 1);
                sim.set_override(&self.p.transmission, fit.r[w]);
                sim.set_override(&self.p.report, fit.q[w]);
            }
            if let Some((param, v)) = labour.and_then(|l| l.value_at(step)) {
                sim.set_override(param, v);
            }
            super::step_or_fail(sim)?;
        }
        Ok(())
    }

    /// Fit the labour parameter month by month (see the module docs).
    pub(super) fn fit_labour(&mut self, fit: &Fit, mut labour: Labour) -> Result<Labour> {
        let mut sim = self.fresh(fit.initial)?;
        for m in 0..labour.months.len() {
            let month = labour.months[m].clone();
            self.replay_to(&mut sim, fit, Some(&labour), month.first - 1)?;
            let observed = labour.observed[m].clone();
            let (value, _, _) = minimise(0.3, 1.0, 8, 4, |x| {
                self.evaluations += 1;
                let mut trial = sim.fork();
                labour.values.push(x);
                let run = self.replay_to(&mut trial, fit, Some(&labour), month.last);
                labour.values.pop();
                run?;
                let loss: f64 = labour
                    .cols
                    .iter()
                    .zip(&observed)
                    .map(|(&c, &o)| (trial.row()[c] - o).powi(2))
                    .sum();
                Ok((loss, ()))
            })?;
            labour.values.push(value);
        }
        Ok(labour)
    }
}
