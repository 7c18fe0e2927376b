//! The metric recorder: each step, a row of named aggregate values.

/// How a metric is stored and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// A whole count of agents or events (written as an integer).
    Count,
    /// A real-valued aggregate (a mean, a fraction).
    Value,
}

/// A metric's name, kind and meaning.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSpec {
    /// Column name in the time series.
    pub name: String,
    /// Integer count or real value.
    pub kind: MetricKind,
    /// What it measures.
    pub doc: String,
}

impl MetricSpec {
    /// A count metric.
    pub fn count(name: &str, doc: &str) -> MetricSpec {
        MetricSpec {
            name: name.into(),
            kind: MetricKind::Count,
            doc: doc.into(),
        }
    }

    /// A real-valued metric.
    pub fn value(name: &str, doc: &str) -> MetricSpec {
        MetricSpec {
            name: name.into(),
            kind: MetricKind::Value,
            doc: doc.into(),
        }
    }
}

/// A subscriber to recorded rows: called with the step and its values.
pub type Listener = Box<dyn FnMut(u32, &[f64]) + Send>;

/// Rows of metric values, one per recorded step. Listeners (a progress bar, a
/// file writer, later a dashboard) receive each row as it is recorded.
pub struct Recorder {
    specs: Vec<MetricSpec>,
    steps: Vec<u32>,
    values: Vec<f64>,
    listeners: Vec<Listener>,
}

impl Recorder {
    /// An empty recorder for these metrics.
    pub fn new(specs: Vec<MetricSpec>) -> Recorder {
        Recorder {
            specs,
            steps: Vec::new(),
            values: Vec::new(),
            listeners: Vec::new(),
        }
    }

    /// Call `f(step, row)` for every row recorded from now on.
    pub fn subscribe(&mut self, f: impl FnMut(u32, &[f64]) + Send + 'static) {
        self.listeners.push(Box::new(f));
    }

    /// The metric definitions.
    pub fn specs(&self) -> &[MetricSpec] {
        &self.specs
    }

    /// Record the row of `step`; `row` has one value per metric.
    pub fn record(&mut self, step: u32, row: &[f64]) {
        assert_eq!(row.len(), self.specs.len(), "metric row has the wrong width");
        self.steps.push(step);
        self.values.extend_from_slice(row);
        for l in &mut self.listeners {
            l(step, row);
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The recorded steps.
    pub fn steps(&self) -> &[u32] {
        &self.steps
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        let w = self.specs.len();
        &self.values[i * w..(i + 1) * w]
    }

    /// The last row, if any.
    pub fn last(&self) -> Option<&[f64]> {
        (!self.is_empty()).then(|| self.row(self.len() - 1))
    }

    /// All values of the metric named `name`.
    pub fn series(&self, name: &str) -> Option<Vec<f64>> {
        let j = self.specs.iter().position(|s| s.name == name)?;
        Some((0..self.len()).map(|i| self.row(i)[j]).collect())
    }
}
