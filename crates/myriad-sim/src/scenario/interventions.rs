//! `[[interventions]]`: changes of a parameter or a layer weight from a
//! start step (to an end step), checked at every step where what is in force
//! changes.

use super::LayerSpec;
use crate::toml_reader::{ScenarioError, StepAt, Table};
use myriad_core::params::{ParamKind, ParamSet};
use myriad_core::schedule::{Change, Intervention, Schedule, Target};
use myriad_core::Calendar;

/// The schedule of every intervention.
pub(super) fn parse(
    root: &mut Table,
    params: &ParamSet,
    layers: &[LayerSpec],
    calendar: &Calendar,
    steps: u32,
) -> Result<Schedule, ScenarioError> {
    let mut items = Vec::new();
    let mut origins = Vec::new();
    for t in root.tables("interventions")? {
        let (item, origin) = parse_one(t, params, layers, calendar, steps)?;
        items.push(item);
        origins.push(origin);
    }
    let schedule = Schedule::new(items);
    let weights: Vec<f64> = layers.iter().map(|l| l.weight).collect();
    for step in schedule.change_points() {
        if let Err(e) = schedule.in_force(step, params, &weights) {
            let culprit = schedule.items().iter().rposition(|i| i.active(step)).unwrap_or(0);
            let mut err = origins.get(culprit).cloned().unwrap_or_else(|| root.error_here(""));
            err.message = format!("at step {step} this leaves {e}");
            return Err(err);
        }
    }
    Ok(schedule)
}

/// One intervention, and where it is (for errors found later).
fn parse_one(
    mut t: Table,
    params: &ParamSet,
    layers: &[LayerSpec],
    calendar: &Calendar,
    steps: u32,
) -> Result<(Intervention, ScenarioError), ScenarioError> {
    let name = t.string("name")?.unwrap_or_else(|| t.path.clone());
    let (start, end) = span(&mut t, calendar, steps)?;
    let target = target(&mut t, params, layers)?;
    let value_ok = |x: f64| x.is_finite() && (matches!(target, Target::Param(_)) || x >= 0.0);
    let what = if matches!(target, Target::Param(_)) {
        "a finite number"
    } else {
        "a layer weight: a finite number >= 0"
    };
    let change = match (
        t.f64_where("scale", |x| x >= 0.0, "a finite number >= 0")?,
        t.f64_where("value", value_ok, what)?,
    ) {
        (Some(s), None) => Change::Scale(s),
        (None, Some(v)) => Change::Set(v),
        (Some(_), Some(_)) => return Err(t.error("value", "give either scale or value, not both")),
        (None, None) => return Err(t.error_here("needs scale = factor or value = new value")),
    };
    let origin = t.error_here("");
    t.finish()?;
    Ok((
        Intervention {
            name,
            start,
            end,
            target,
            change,
        },
        origin,
    ))
}

/// `start` and `end` (exclusive) as steps or dates. A date before the
/// run's first day starts the change at step 1; a change whose dates miss
/// the run altogether (ending by the first day, or starting after the last)
/// is refused, since it would never act.
fn span(t: &mut Table, calendar: &Calendar, steps: u32) -> Result<(u32, Option<u32>), ScenarioError> {
    let start_dated = t
        .raw("start")
        .is_some_and(|i| !matches!(i.as_value(), Some(toml_edit::Value::Integer(_))));
    let start = match t.step_or_date("start", calendar)? {
        None => return Err(t.error_here("missing key 'start' (first step or date of the change)")),
        Some(StepAt::Step(s)) => s,
        Some(StepAt::BeforeStart { .. }) => 1,
    };
    if start_dated && start > steps {
        let last = calendar.date(steps).map_or_else(String::new, |d| d.to_string());
        return Err(t.error(
            "start",
            format!("falls after the run's last day, {last} (steps = {steps}): the change would never act"),
        ));
    }
    let end = match t.step_or_date("end", calendar)? {
        None => None,
        Some(StepAt::Step(e)) => Some(e),
        Some(StepAt::BeforeStart { date, start }) => {
            return Err(t.error(
                "end",
                format!("{date} is before the run's first day, {start}: the change would never act"),
            ))
        }
    };
    if let Some(e) = end {
        if e <= start {
            return Err(t.error("end", format!("must be after start (step {start}), got step {e}")));
        }
    }
    Ok((start, end))
}

/// What an intervention changes: a numeric parameter or a layer's weight.
fn target(t: &mut Table, params: &ParamSet, layers: &[LayerSpec]) -> Result<Target, ScenarioError> {
    match (t.string("param")?, t.string("layer")?) {
        (Some(p), None) => {
            let spec = params.spec(&p).map_err(|e| t.error("param", e.to_string()))?;
            if matches!(spec.kind, ParamKind::Choice(_)) {
                return Err(t.error("param", format!("'{p}' is not numeric; interventions change numbers")));
            }
            Ok(Target::Param(p))
        }
        (None, Some(l)) => Ok(Target::LayerWeight(
            layers.iter().position(|x| x.name == l).ok_or_else(|| {
                let names: Vec<&str> = layers.iter().map(|x| x.name.as_str()).collect();
                t.error("layer", format!("no layer named '{l}' (layers: {})", names.join(", ")))
            })?,
        )),
        (Some(_), Some(_)) => Err(t.error("layer", "give either param or layer, not both")),
        (None, None) => Err(t.error_here("needs param = \"name\" or layer = \"name\"")),
    }
}
