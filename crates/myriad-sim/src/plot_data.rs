//! What a chart shows (its series, panels and shaded spans), shared by
//! the drawing code (`plot.rs`, feature `plots`) and its stand-in without
//! plotting (`plot_none.rs`), so callers build charts the same way either way.

/// A series of a chart: a line and an optional band `(x, low, high)`.
#[derive(Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// The line.
    pub points: Vec<(f64, f64)>,
    /// Shaded range around it (empty for none).
    pub band: Vec<(f64, f64, f64)>,
    /// Mark each point (for observations).
    pub markers: bool,
    /// Colour index [default: the series' position].
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

/// A panel of a dated chart.
#[derive(Clone)]
pub struct Panel {
    /// Title above it.
    pub title: String,
    /// Axis label.
    pub ylabel: String,
    /// Lines (the model) and point series (`markers`: observations, drawn as points only).
    pub series: Vec<Series>,
}

/// A shaded span of days with a label (an intervention in force).
pub struct Shade {
    /// First day (step).
    pub from: f64,
    /// Last day (step).
    pub to: f64,
    /// Its name.
    pub label: String,
}
