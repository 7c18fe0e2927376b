//! Plots of a dated run against the observed series: weekly counts of the
//! city (`observed.png`: one panel per compared metric) and per part of the
//! population (`<series>_by_borough.png`), observed values as points, the
//! model as lines, the scenario's interventions shaded and labelled.

use crate::error::Result;
use crate::outputs::FlowSums;
use crate::plot::{self, Panel, Series, Shade};
use crate::scenario::Scenario;
use myriad_core::calendar::{Period, PeriodKind};
use myriad_core::source::Observed;
use std::path::Path;

/// The scenario's interventions as shaded spans (to the run's end when
/// open), except the weekly values a calibration wrote (named "... fitted ...").
pub fn shades(s: &Scenario) -> Vec<Shade> {
    s.schedule
        .items()
        .iter()
        .filter(|i| i.start <= s.steps && !i.name.contains("fitted"))
        .map(|i| Shade {
            from: f64::from(i.start),
            to: f64::from(i.end.unwrap_or(s.steps + 1).min(s.steps + 1)),
            label: i.name.clone(),
        })
        .collect()
}

/// The middle day of a period, where its weekly value is drawn.
fn middle(p: &Period) -> f64 {
    f64::from(p.first + p.last) / 2.0
}

/// `observed.png` and one `<series>_by_part.png` per compared series; the
/// city panels, for the overview.
pub fn weekly(
    out: &Path,
    s: &Scenario,
    f: &FlowSums,
    obs: &[(&str, &str, Observed)],
    kind: PeriodKind,
) -> Result<Vec<Panel>> {
    let Some(start) = s.calendar.start() else {
        return Ok(Vec::new());
    };
    let shades = shades(s);
    let pair = |model: Vec<f64>, o: &Observed, part: Option<usize>, label: &str| -> Vec<Series> {
        let observed: Vec<(f64, f64)> = f
            .periods
            .iter()
            .filter_map(|p| Some((middle(p), o.for_period(&s.calendar, kind, p, part)?)))
            .collect();
        vec![
            Series::line(
                format!("model: {label}"),
                f.periods.iter().zip(&model).map(|(p, &v)| (middle(p), v)).collect(),
            ),
            Series {
                markers: true,
                colour: Some(2),
                ..Series::line(format!("observed: {}", o.label), observed)
            },
        ]
    };
    let scaled = |o: &Observed| {
        if o.scale < 1.0 {
            format!(" (observed x {})", o.scale)
        } else {
            String::new()
        }
    };
    let mut city = Vec::new();
    for (metric, _, o) in obs {
        let Some(model) = f.column(metric) else { continue };
        city.push(Panel {
            title: format!("{}{}", o.label, scaled(o)),
            ylabel: "per week".into(),
            series: pair(model, o, None, metric),
        });
    }
    let place = obs
        .first()
        .map(|(_, _, o)| o.parts.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>().join("+"))
        .unwrap_or_default();
    plot::dated_png(
        &out.join("observed.png"),
        &format!("{}: weekly counts, model vs observed ({place})", s.name),
        start,
        &city,
        &shades,
    )?;
    for (metric, name, o) in obs {
        let panels: Vec<Panel> = o
            .parts
            .iter()
            .enumerate()
            .filter_map(|(k, (part, _))| {
                let model = f.column(&format!("{metric}_{part}"))?;
                Some(Panel {
                    title: part.clone(),
                    ylabel: "per week".into(),
                    series: pair(model, o, Some(k), &format!("{metric}_{part}")),
                })
            })
            .collect();
        if panels.len() > 1 {
            plot::dated_png(
                &out.join(format!("{name}_by_part.png")),
                &format!("{}: weekly {}{} by part", s.name, o.label, scaled(o)),
                start,
                &panels,
                &[],
            )?;
        }
    }
    Ok(city)
}

/// `overview.png`: every table's city panels of a dated run in one figure
/// (for covid: reported cases, admissions, deaths, unemployment), with the
/// interventions shaded. Written when two or more tables drew panels.
pub fn overview(out: &Path, s: &Scenario, panels: &[Vec<Panel>]) -> Result<()> {
    let Some(start) = s.calendar.start() else { return Ok(()) };
    if panels.iter().filter(|p| !p.is_empty()).count() < 2 {
        return Ok(());
    }
    let all: Vec<Panel> = panels.iter().flatten().cloned().collect();
    plot::dated_png(
        &out.join("overview.png"),
        &format!("{}: model (lines) vs observed (points)", s.name),
        start,
        &all,
        &shades(s),
    )
}

/// On a dated run whose model compares period flows with observed series:
/// per period, the median and 5-95% band over an ensemble's runs of each
/// compared metric, with the observed values (`ensemble_<period>.csv`,
/// and `ensemble_<period>.png` with the interventions shaded).
pub fn ensemble_weekly(out: &Path, s: &Scenario, runs: &crate::ensemble::Runs) -> Result<()> {
    use crate::error::FileContext;
    let Some(start) = s.calendar.start() else { return Ok(()) };
    let steps = runs.rows.iter().map(|r| r.len()).min().unwrap_or(0);
    if steps < 2 {
        return Ok(());
    }
    for t in s
        .model
        .tables
        .iter()
        .filter(|t| t.kind == myriad_core::model::TableKind::FlowSums)
    {
        let periods = s.calendar.periods(t.every, (steps - 1) as u32);
        let obs = crate::outputs::placed(s, t, &periods);
        let cols: Vec<(usize, &Observed, &str)> = obs
            .iter()
            .filter_map(|(metric, _, o)| Some((runs.header.iter().position(|h| h == metric)?, o, *metric)))
            .collect();
        if periods.is_empty() || cols.is_empty() {
            continue;
        }
        let mut text = format!("{}_start", t.period);
        for (_, o, metric) in &cols {
            text.push_str(&format!(
                ",{metric}_median,{metric}_p05,{metric}_p95,observed_{}",
                o.label.replace(' ', "_")
            ));
        }
        text.push('\n');
        let mut panels: Vec<Panel> = cols
            .iter()
            .map(|(_, o, metric)| Panel {
                title: format!("{metric} ({} runs, median and 5-95%)", runs.rows.len()),
                ylabel: format!("per {}", t.period),
                series: vec![
                    Series::line(format!("model: {metric}"), Vec::new()),
                    Series {
                        markers: true,
                        colour: Some(2),
                        ..Series::line(format!("observed: {}", o.label), Vec::new())
                    },
                ],
            })
            .collect();
        for p in &periods {
            text.push_str(&s.calendar.label(p.first));
            for (k, (j, o, _)) in cols.iter().enumerate() {
                let mut sums: Vec<f64> = runs
                    .rows
                    .iter()
                    .map(|r| r[p.first as usize..=p.last as usize].iter().map(|row| row[*j]).sum())
                    .collect();
                sums.sort_by(f64::total_cmp);
                let (median, lo, hi) = (
                    crate::ensemble::quantile(&sums, 0.5),
                    crate::ensemble::quantile(&sums, 0.05),
                    crate::ensemble::quantile(&sums, 0.95),
                );
                let observed = o.for_period(&s.calendar, t.every, p, None);
                text.push_str(&format!(
                    ",{median},{lo},{hi},{}",
                    observed.map(|x| x.to_string()).unwrap_or_default()
                ));
                let x = middle(p);
                let model = &mut panels[k].series[0];
                model.points.push((x, median));
                model.band.push((x, lo, hi));
                if let Some(v) = observed {
                    panels[k].series[1].points.push((x, v));
                }
            }
            text.push('\n');
        }
        let path = out.join(format!("ensemble_{}.csv", t.period));
        std::fs::write(&path, text).doing(|| format!("writing {}", path.display()))?;
        if s.output.plot {
            plot::dated_png(
                &out.join(format!("ensemble_{}.png", t.period)),
                &format!(
                    "{}: {} runs by {}, model vs observed",
                    s.name,
                    runs.rows.len(),
                    t.period
                ),
                start,
                &panels,
                &shades(s),
            )?;
        }
    }
    Ok(())
}
