//! The metric recorder: each step, a row of named aggregate values.

/// What a metric measures, which decides how tables, plots and analyses
/// treat it (weekly sums add flows; a counterfactual compares the total of
/// a flow but the final and peak values of a stock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// A count of agents in a state at the end of the step.
    Stock,
    /// A count of events during the step.
    Flow,
    /// A share of a named count (a fraction or a rate).
    Fraction,
    /// Any other aggregate (a mean, an extreme, a statistic of the step).
    Value,
}

/// How values computed on parts of the population combine into the value
/// of the whole (partitioned runs reduce by it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Combine {
    /// Add the parts.
    Sum,
    /// Mean of the parts weighted by a named count (a metric, or `agents`).
    Mean {
        /// What each part's value is weighted by.
        weight: String,
    },
    /// The largest part.
    Max,
    /// The smallest part.
    Min,
    /// A statistic of the whole that parts cannot combine (a median, a Gini
    /// coefficient): computed once over all agents.
    Whole,
}

/// A metric's name, kind, combination and meaning.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSpec {
    /// Column name in the time series.
    pub name: String,
    /// What it measures.
    pub kind: MetricKind,
    /// Written as a whole number (counts) rather than a real value.
    pub integer: bool,
    /// How parts of the population combine.
    pub combine: Combine,
    /// What it measures, in words.
    pub doc: String,
}

impl MetricSpec {
    fn new(name: &str, kind: MetricKind, integer: bool, combine: Combine, doc: &str) -> MetricSpec {
        MetricSpec {
            name: name.into(),
            kind,
            integer,
            combine,
            doc: doc.into(),
        }
    }

    /// Agents in a state at the end of the step (a whole number; parts add).
    pub fn stock(name: &str, doc: &str) -> MetricSpec {
        MetricSpec::new(name, MetricKind::Stock, true, Combine::Sum, doc)
    }

    /// Events during the step (a whole number; parts add).
    pub fn flow(name: &str, doc: &str) -> MetricSpec {
        MetricSpec::new(name, MetricKind::Flow, true, Combine::Sum, doc)
    }

    /// A share of the count named `weight` (parts combine as a mean weighted by it).
    pub fn fraction(name: &str, weight: &str, doc: &str) -> MetricSpec {
        MetricSpec::new(
            name,
            MetricKind::Fraction,
            false,
            Combine::Mean { weight: weight.into() },
            doc,
        )
    }

    /// Any other real-valued aggregate, combined as `combine` says.
    pub fn value(name: &str, combine: Combine, doc: &str) -> MetricSpec {
        MetricSpec::new(name, MetricKind::Value, false, combine, doc)
    }

    /// The same metric written as a real value (a stock of divisible units).
    pub fn real(mut self) -> MetricSpec {
        self.integer = false;
        self
    }

    /// The same metric written as a whole number.
    pub fn whole(mut self) -> MetricSpec {
        self.integer = true;
        self
    }

    /// The value as written in tables: whole numbers for integer metrics,
    /// otherwise the shortest text that reads back to the same float.
    pub fn format(&self, x: f64) -> String {
        if self.integer {
            format!("{}", x as i64)
        } else {
            format!("{x}")
        }
    }
}

/// Column positions of named metrics, found once: models write their rows
/// by name through it instead of by index arithmetic.
#[derive(Clone, Debug, Default)]
pub struct RowLayout {
    names: Vec<String>,
}

impl RowLayout {
    /// The layout of `specs`.
    pub fn new(specs: &[MetricSpec]) -> RowLayout {
        RowLayout {
            names: specs.iter().map(|s| s.name.clone()).collect(),
        }
    }

    /// The column of `name`. Panics on a name the model did not declare:
    /// that is a bug in the model, caught by its first test.
    pub fn at(&self, name: &str) -> usize {
        self.names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("metric '{name}' is not declared"))
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when there are no columns.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Rows of metric values, one per recorded step.
#[derive(Clone, Debug)]
pub struct Recorder {
    specs: Vec<MetricSpec>,
    steps: Vec<u32>,
    values: Vec<f64>,
}

impl Recorder {
    /// An empty recorder for these metrics.
    pub fn new(specs: Vec<MetricSpec>) -> Recorder {
        Recorder {
            specs,
            steps: Vec::new(),
            values: Vec::new(),
        }
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
