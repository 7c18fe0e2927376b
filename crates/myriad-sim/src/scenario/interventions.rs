//! `[[interventions]]`: changes of a parameter or a layer weight from a
//! start step (to an end step), checked at every step where what is in force
//! changes.

use super::LayerSpec;
use crate::toml_reader::{ScenarioError, Table};
use myriad_core::params::{ParamKind, ParamSet};
use myriad_core::schedule::{Change, Intervention, Schedule, Target};

/// The schedule of every intervention.
pub(super) fn parse(root: &mut Table, params: &ParamSet, layers: &[LayerSpec]) -> Result<Schedule, ScenarioError> {
    let mut items = Vec::new();
    let mut origins = Vec::new();
    for t in root.tables("interventions")? {
        let (item, origin) = parse_one(t, params, layers)?;
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
) -> Result<(Intervention, ScenarioError), ScenarioError> {
    let name = t.string("name")?.unwrap_or_else(|| t.path.clone());
    let start = t
        .int("start", 0, u32::MAX as i64)?
        .ok_or_else(|| t.error_here("missing key 'start' (first step of the change)"))? as u32;
    let end = t.int("end", 0, u32::MAX as i64)?.map(|e| e as u32);
    if let Some(e) = end {
        if e <= start {
            return Err(t.error("end", format!("must be after start ({start}), got {e}")));
        }
    }
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
