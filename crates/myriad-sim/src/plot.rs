//! `timeseries.png`: compartments over time, and per-step event counts.

use crate::error::{Error, Result};
pub use crate::plot_data::{Panel, Series, Shade};
use myriad_core::calendar::NaiveDate;
use myriad_core::metrics::{MetricKind, Recorder};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();

/// Register the bundled font once (no system font lookup, so plots work on
/// any machine).
fn register_font() {
    FONT.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            include_bytes!("../../../assets/DejaVuSans.ttf"),
        );
    });
}

const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// The model's declared panels, or: stocks above, flows (events per step) below.
pub fn timeseries_png(path: &Path, title: &str, rec: &Recorder, panels: &[PlotPanel]) -> Result<()> {
    register_font();
    let root = BitMapBackend::new(path, (1100, 800)).into_drawing_area();
    let e = |x: &dyn std::fmt::Display| Error::Run(format!("{}: cannot draw plot: {x}", path.display()));
    root.fill(&WHITE).map_err(|x| e(&x))?;
    if !panels.is_empty() {
        // The model's own panels, stacked.
        let areas = root.split_evenly((panels.len(), 1));
        for (k, (area, p)) in areas.iter().zip(panels).enumerate() {
            let caption = if k == 0 { title } else { "" };
            if p.bars {
                last_row_bars(area, caption, p, rec).map_err(|x| e(&x))?;
            } else {
                panel(area, caption, p.ylabel, p.metrics, rec).map_err(|x| e(&x))?;
            }
        }
        root.present().map_err(|x| e(&x))?;
        return Ok(());
    }
    let (top, bottom) = root.split_vertically(480);
    let of_kind = |k: MetricKind| -> Vec<&str> {
        rec.specs()
            .iter()
            .filter(|s| s.kind == k)
            .map(|s| s.name.as_str())
            .collect()
    };
    let (upper, lower) = (of_kind(MetricKind::Stock), of_kind(MetricKind::Flow));
    panel(&top, title, "agents", &upper, rec).map_err(|x| e(&x))?;
    if !lower.is_empty() {
        panel(&bottom, "", "per step", &lower, rec).map_err(|x| e(&x))?;
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

fn panel(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    title: &str,
    ylabel: &str,
    series: &[&str],
    rec: &Recorder,
) -> Result<(), Box<dyn std::error::Error>> {
    let steps = rec.steps();
    let x_max = steps.last().copied().unwrap_or(1).max(1) as f64;
    let data: Vec<(String, Vec<f64>)> = series
        .iter()
        .filter_map(|s| rec.series(s).map(|v| (s.to_string(), v)))
        .collect();
    let lines: Vec<Line> = data
        .iter()
        .enumerate()
        .map(|(k, (name, values))| Line {
            label: name.clone(),
            colour: COLOURS[k % COLOURS.len()],
            // Undefined values (a mean before any report) are left out.
            points: steps
                .iter()
                .zip(values)
                .filter(|(_, v)| v.is_finite())
                .map(|(&s, &v)| (s as f64, v))
                .collect(),
            band: Vec::new(),
            markers: false,
        })
        .collect();
    line_chart(area, title, "step", ylabel, x_max, &lines)
}

/// A bar per metric of `p`, with its value at the last recorded step (a
/// histogram when the metrics are bins); labels drop the common prefix.
fn last_row_bars(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    title: &str,
    p: &PlotPanel,
    rec: &Recorder,
) -> Result<(), Box<dyn std::error::Error>> {
    let values: Vec<f64> = p
        .metrics
        .iter()
        .map(|m| rec.series(m).and_then(|v| v.last().copied()).unwrap_or(0.0))
        .collect();
    let prefix = common_prefix(p.metrics);
    let labels: Vec<String> = p.metrics.iter().map(|m| m[prefix.len()..].replace('_', "-")).collect();
    let y_max = values.iter().copied().filter(|v| v.is_finite()).fold(1.0, f64::max) * 1.05;
    let step = rec.steps().last().copied().unwrap_or(0);
    let n = values.len();
    // Bar i spans [i, i + 1); its label sits at the centre.
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..n as f64, 0.0..y_max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(format!("{} at step {step}", p.ylabel))
        .y_desc("count")
        .label_style(("sans-serif", 15))
        .x_labels(2 * n + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 1e-9 {
                labels.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format_si(*y))
        .draw()?;
    chart.draw_series(
        values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &v)| Rectangle::new([(i as f64 + 0.08, 0.0), (i as f64 + 0.92, v)], COLOURS[0].filled())),
    )?;
    Ok(())
}

/// The longest prefix ending in '_' that all names share.
fn common_prefix<'a>(names: &[&'a str]) -> &'a str {
    let Some(first) = names.first() else { return "" };
    let mut end = 0;
    for (i, c) in first.char_indices() {
        if c == '_' && names.iter().all(|n| n.len() > i && n[..=i] == first[..=i]) {
            end = i + 1;
        }
    }
    &first[..end]
}

/// One labelled line of a chart.
struct Line {
    label: String,
    colour: RGBColor,
    points: Vec<(f64, f64)>,
    /// A shaded band (x, low, high) around the line, e.g. a 5-95% range.
    band: Vec<(f64, f64, f64)>,
    /// Mark each point (observations) rather than only joining them.
    markers: bool,
}

/// A panel of `timeseries.png` as a model declares it.
pub use myriad_core::model::PlotPanel;

/// A single-panel line chart with bands, colours in series order.
pub fn chart_png(path: &Path, title: &str, xlabel: &str, ylabel: &str, series: &[Series]) -> Result<()> {
    register_font();
    let e = |x: &dyn std::fmt::Display| Error::Run(format!("{}: cannot draw plot: {x}", path.display()));
    let root = BitMapBackend::new(path, (1100, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let lines: Vec<Line> = series
        .iter()
        .enumerate()
        .map(|(k, s)| Line {
            label: s.label.clone(),
            colour: COLOURS[s.colour.unwrap_or(k) % COLOURS.len()],
            points: s.points.clone(),
            band: s.band.clone(),
            markers: s.markers,
        })
        .collect();
    let x_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    line_chart(&root, title, xlabel, ylabel, x_max, &lines).map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

/// A line chart from x = 0 to `x_max` and y = 0 to just above the largest
/// value, with a legend: the one chart style every plot here uses.
fn line_chart(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    title: &str,
    xlabel: &str,
    ylabel: &str,
    x_max: f64,
    lines: &[Line],
) -> Result<(), Box<dyn std::error::Error>> {
    let y_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1).chain(l.band.iter().map(|b| b.2)))
        .filter(|y| y.is_finite())
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.05;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max.max(1.0), 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc(xlabel)
        .y_desc(ylabel)
        // Whole-number x axes (steps, weeks, months): never more labels than values.
        .x_labels((x_max.ceil() as usize + 1).clamp(2, 12))
        .label_style(("sans-serif", 15))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format_si(*y))
        .draw()?;
    for l in lines.iter().filter(|l| !l.band.is_empty()) {
        let outline: Vec<(f64, f64)> = l
            .band
            .iter()
            .map(|b| (b.0, b.2))
            .chain(l.band.iter().rev().map(|b| (b.0, b.1)))
            .collect();
        chart.draw_series(std::iter::once(Polygon::new(outline, l.colour.mix(0.2).filled())))?;
    }
    for l in lines.iter().filter(|l| l.markers) {
        chart.draw_series(l.points.iter().map(|&p| Circle::new(p, 4, l.colour.filled())))?;
    }
    for l in lines {
        let colour = l.colour;
        chart
            .draw_series(LineSeries::new(l.points.iter().copied(), colour.stroke_width(2)))?
            .label(l.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    Ok(())
}

fn format_si(y: f64) -> String {
    let a = y.abs();
    if a >= 1e6 {
        format!("{:.1}M", y / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", y / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", y / 1e3)
    } else if a >= 10.0 {
        format!("{y:.0}")
    } else {
        // Fractions and small counts: 0.25, 1.5, 3.
        let s = format!("{y:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// `weekly_cases.png`: modelled weekly new infections against the observed
/// weekly confirmed cases of the same boroughs, scaled like the population (week k of the run against week k of the
/// data; the data's start date is not recorded). Separate y axes would hide
/// the scale difference, so both share one axis.
pub fn weekly_vs_observed(path: &Path, weeks: &[Vec<f64>], observed: &[f64], label: &str, scale: f64) -> Result<()> {
    register_font();
    let e = |x: &dyn std::fmt::Display| Error::Run(format!("{}: cannot draw plot: {x}", path.display()));
    let root = BitMapBackend::new(path, (1100, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let modelled: Vec<f64> = weeks.iter().map(|w| w[0]).collect();
    let observed_label = if scale < 1.0 {
        format!("observed: confirmed cases ({label}) x {scale}")
    } else {
        format!("observed: confirmed cases ({label})")
    };
    let n = modelled.len().max(observed.len()).max(1);
    let lines = [
        Line {
            label: "model: new infections".into(),
            colour: COLOURS[0],
            points: modelled.iter().enumerate().map(|(w, &v)| (w as f64, v)).collect(),
            band: Vec::new(),
            markers: false,
        },
        Line {
            label: observed_label,
            colour: COLOURS[2],
            points: observed.iter().enumerate().map(|(w, &o)| (w as f64, o)).collect(),
            band: Vec::new(),
            markers: false,
        },
    ];
    let draw = || {
        line_chart(
            &root,
            "Weekly cases: model (new infections) vs observed (confirmed)",
            "week",
            "cases per week",
            n as f64,
            &lines,
        )
    };
    draw().map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

/// Panels over dated x axes (x is the step; step 1 is `start`), in a grid of
/// up to three columns, with shaded, labelled spans.
pub fn dated_png(path: &Path, title: &str, start: NaiveDate, panels: &[Panel], shades: &[Shade]) -> Result<()> {
    register_font();
    let e = |x: &dyn std::fmt::Display| Error::Run(format!("{}: cannot draw plot: {x}", path.display()));
    let cols = panels.len().clamp(1, 3);
    let rows = panels.len().div_ceil(cols).max(1);
    let size = (if cols == 1 { 1200 } else { 620 * cols as u32 }, 60 + 470 * rows as u32);
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let root = root.titled(title, ("sans-serif", 24)).map_err(|x| e(&x))?;
    let areas = root.split_evenly((rows, cols));
    for (panel, area) in panels.iter().zip(areas.iter()) {
        dated_panel(area, panel, start, shades).map_err(|x| e(&x))?;
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

fn dated_panel(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    panel: &Panel,
    start: NaiveDate,
    shades: &[Shade],
) -> Result<(), Box<dyn std::error::Error>> {
    let points = || panel.series.iter().flat_map(|s| s.points.iter().copied());
    let x_max = points().map(|p| p.0).fold(1.0f64, f64::max) + 3.0;
    let y_max = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1).chain(s.band.iter().map(|b| b.2)))
        .filter(|y| y.is_finite())
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.08;
    let top = y_max * (1.0 + 0.04 * shades.len() as f64);
    let date = move |x: f64| start + chrono::Days::new((x.max(1.0) - 1.0) as u64);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .y_desc(panel.ylabel.as_str())
        .x_labels(8)
        .label_style(("sans-serif", 13))
        .x_label_formatter(&|x| date(*x).format("%b %Y").to_string())
        .y_label_formatter(&|y| format_si(*y))
        .draw()?;
    // Interventions as a strip of labelled bars above the data (a Gantt
    // chart of what is in force), with a faint shade down to the axis.
    let lane = top / (1.0 + 0.04 * shades.len() as f64) * 0.04;
    for (k, sh) in shades.iter().enumerate() {
        let y1 = top - lane * k as f64;
        let y0 = y1 - lane * 0.8;
        let (from, to) = (sh.from, sh.to.min(x_max));
        chart.draw_series(std::iter::once(Rectangle::new(
            [(from, 0.0), (to, y0)],
            RGBColor(120, 120, 120).mix(0.04).filled(),
        )))?;
        chart.draw_series(std::iter::once(Rectangle::new(
            [(from, y0), (to, y1)],
            RGBColor(150, 150, 190).mix(0.5).filled(),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            sh.label.clone(),
            (from + 1.0, y1 - lane * 0.1),
            ("sans-serif", 10).into_font().color(&RGBColor(40, 40, 40)),
        )))?;
    }
    for (k, s) in panel.series.iter().enumerate() {
        let colour = COLOURS[s.colour.unwrap_or(k) % COLOURS.len()];
        if !s.band.is_empty() {
            let outline: Vec<(f64, f64)> = s
                .band
                .iter()
                .map(|b| (b.0, b.2))
                .chain(s.band.iter().rev().map(|b| (b.0, b.1)))
                .collect();
            chart.draw_series(std::iter::once(Polygon::new(outline, colour.mix(0.2).filled())))?;
        }
        // A series without a label (a repeat of one already named) has no legend entry.
        if s.markers {
            let drawn = chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
            if !s.label.is_empty() {
                drawn
                    .label(s.label.as_str())
                    .legend(move |(x, y)| Circle::new((x + 10, y), 4, colour.filled()));
            }
        } else {
            let drawn = chart.draw_series(LineSeries::new(s.points.iter().copied(), colour.stroke_width(2)))?;
            if !s.label.is_empty() {
                drawn
                    .label(s.label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3)));
            }
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    Ok(())
}
