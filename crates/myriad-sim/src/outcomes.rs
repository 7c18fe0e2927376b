//! What the analyses compare between runs: each metric reduced to numbers
//! by its declared kind (the total of a flow, the final and peak values of a
//! stock, the mean and final value of a fraction).

use myriad_core::metrics::MetricKind;

/// An outcome computed from one run.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// `total new_infections`, `peak I`, ...
    pub name: String,
    /// Column in the table (0 is the step).
    pub column: usize,
    /// How rows reduce to it.
    pub kind: Reduce,
}

/// How a run's rows reduce to one number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reduce {
    /// Sum over all steps (event counts like new infections).
    Total,
    /// Value at the last step.
    Final,
    /// Largest value over the steps.
    Peak,
    /// Step of the largest value (the first, on ties): the timing of a wave.
    PeakStep,
    /// Mean over steps 1.. (fractions like the isolating share).
    Mean,
}

/// Outcomes of a model's metrics, by their declared kind: totals of flows,
/// final and peak values (and the peak's step) of stocks, means and final
/// values of fractions and other values.
pub fn outcomes(header: &[String], kinds: &[MetricKind]) -> Vec<Outcome> {
    let mut v = Vec::new();
    for (j, name) in header.iter().enumerate().skip(1) {
        let mut push = |prefix: &str, kind: Reduce| {
            v.push(Outcome {
                name: format!("{prefix} {name}"),
                column: j,
                kind,
            })
        };
        match kinds[j - 1] {
            MetricKind::Flow => push("total", Reduce::Total),
            MetricKind::Stock => {
                push("final", Reduce::Final);
                push("peak", Reduce::Peak);
                push("peak step of", Reduce::PeakStep);
            }
            MetricKind::Fraction | MetricKind::Value => {
                push("mean", Reduce::Mean);
                push("final", Reduce::Final);
            }
        }
    }
    v
}

/// The outcome `o` of one run's rows (step first).
pub fn reduce(rows: &[Vec<f64>], o: &Outcome) -> f64 {
    let col = rows.iter().map(|r| r[o.column]);
    match o.kind {
        Reduce::Total => col.sum(),
        Reduce::Final => rows.last().map_or(f64::NAN, |r| r[o.column]),
        Reduce::Peak => col.fold(f64::NEG_INFINITY, f64::max),
        Reduce::PeakStep => {
            let peak = rows.iter().map(|r| r[o.column]).fold(f64::NEG_INFINITY, f64::max);
            rows.iter().find(|r| r[o.column] == peak).map_or(f64::NAN, |r| r[0])
        }
        Reduce::Mean => {
            let steps: Vec<f64> = rows.iter().skip(1).map(|r| r[o.column]).collect();
            steps.iter().sum::<f64>() / steps.len().max(1) as f64
        }
    }
}
