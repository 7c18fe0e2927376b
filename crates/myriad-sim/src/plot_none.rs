//! Plots are off (built without the `plots` feature): every chart is skipped.

use crate::error::Result;
pub use crate::plot_data::{Panel, Series, Shade};
use myriad_core::metrics::Recorder;
pub use myriad_core::model::PlotPanel;
use std::path::Path;

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
