//! Plots are off (built without the `plots` feature): every chart is skipped.

use crate::error::Result;
use myriad_core::metrics::Recorder;
pub use myriad_core::model::PlotPanel;
use std::path::Path;

/// A series of [`chart_png`] (kept so callers compile either way).
pub struct Series {
    /// Legend text.
    pub label: String,
    /// The line.
    pub points: Vec<(f64, f64)>,
    /// Shaded range around it.
    pub band: Vec<(f64, f64, f64)>,
    /// Mark each point.
    pub markers: bool,
    /// Colour index.
    pub colour: Option<usize>,
}

impl Series {
    /// A plain line.
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            label: label.into(),
            points,
            band: Vec::new(),
            markers: false,
            colour: None,
        }
    }
}

/// Skipped.
pub fn timeseries_png(_path: &Path, _title: &str, _rec: &Recorder, _panels: &[PlotPanel]) -> Result<()> {
    Ok(())
}

/// Skipped.
pub fn chart_png(_path: &Path, _title: &str, _x: &str, _y: &str, _series: &[Series]) -> Result<()> {
    Ok(())
}

/// Skipped.
pub fn weekly_vs_observed(_path: &Path, _weeks: &[Vec<f64>], _obs: &[f64], _label: &str, _scale: f64) -> Result<()> {
    Ok(())
}

/// A panel of [`dated_png`].
pub struct Panel {
    /// Title above it.
    pub title: String,
    /// Axis label.
    pub ylabel: String,
    /// Lines and point series.
    pub series: Vec<Series>,
}

/// A shaded span of days with a label.
pub struct Shade {
    /// First day (step).
    pub from: f64,
    /// Last day (step).
    pub to: f64,
    /// Its name.
    pub label: String,
}

/// Skipped.
pub fn dated_png(
    _path: &Path,
    _title: &str,
    _start: myriad_core::calendar::NaiveDate,
    _panels: &[Panel],
    _shades: &[Shade],
) -> Result<()> {
    Ok(())
}
