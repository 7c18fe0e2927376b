//! `myriad counterfactual`: the same scenario with and without a change (for
//! example schools closing two weeks earlier), run side by side on the same
//! seeds, with the difference of each outcome and its interval.
//!
//! Pairing: run k of both arms uses seed `seed + k`, and all randomness is
//! keyed by seed, step and agent, so the two runs of a pair share every
//! random draw that the change does not touch. Per-pair differences then
//! carry far less noise than differences of independent runs. The interval
//! reported for the mean difference is the Student t interval over pairs;
//! the 5-95% range of the per-pair differences is reported too.

use crate::build::InputError;
use crate::ensemble::{self, Runs};
use crate::error::{Error, FileContext, Result};
use crate::outcomes::{outcomes, reduce, Outcome, Reduce};
use crate::plot;
use crate::scenario::{self, Overrides, Scenario};
use myriad_core::metrics::MetricKind;
use serde_json::json;
use statrs::distribution::{ContinuousCDF, StudentsT};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Options of `myriad counterfactual`.
pub struct CounterfactualOptions {
    /// Scenario file.
    pub scenario: PathBuf,
    /// `--set` assignments for both arms.
    pub set: Vec<String>,
    /// `--change` assignments for the counterfactual arm only.
    pub change: Vec<String>,
    /// First seed.
    pub seed: Option<u64>,
    /// Number of seed pairs.
    pub runs: u32,
    /// Output folder.
    pub out: crate::outdir::OutChoice,
    /// Replace the output folder.
    pub force: bool,
    /// Worker threads.
    pub threads: usize,
}

/// Mean, and the 95% Student t interval of the mean, of paired differences.
pub fn mean_interval(d: &[f64]) -> (f64, f64, f64) {
    let n = d.len() as f64;
    let mean = d.iter().sum::<f64>() / n;
    if d.len() < 2 {
        return (mean, f64::NAN, f64::NAN);
    }
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let t = StudentsT::new(0.0, 1.0, n - 1.0)
        .expect("n - 1 >= 1 degrees of freedom")
        .inverse_cdf(0.975);
    let half = t * (var / n).sqrt();
    (mean, mean - half, mean + half)
}

/// Check both arms' scenarios before anything runs; returns the baseline
/// and the counterfactual's `--set` list.
fn load_arms(o: &CounterfactualOptions) -> Result<(Scenario, Vec<String>)> {
    if o.runs == 0 {
        return Err(InputError("--runs must be at least 1".into()).into());
    }
    if o.change.is_empty() {
        return Err(InputError(
            "give at least one --change KEY.PATH=VALUE (what differs in the counterfactual)".into(),
        )
        .into());
    }
    let base = scenario::load(
        &o.scenario,
        &Overrides {
            set: o.set.clone(),
            seed: o.seed,
        },
    )?;
    let changed_set: Vec<String> = o.set.iter().chain(&o.change).cloned().collect();
    scenario::load(
        &o.scenario,
        &Overrides {
            set: changed_set.clone(),
            seed: o.seed,
        },
    )?;
    crate::ensemble::check_seeds(base.seed, o.runs)?;
    Ok((base, changed_set))
}

/// Run the pairs (both arms on seed `base + k`) until done or stopped.
fn run_pairs(
    o: &CounterfactualOptions,
    base_seed: u64,
    out: &Path,
    arms: [(&str, &[String]); 2],
    stop: &Arc<AtomicBool>,
) -> Result<[Runs; 2]> {
    let mut results: [Runs; 2] = std::array::from_fn(|_| Runs {
        header: Vec::new(),
        rows: Vec::new(),
        seeds: Vec::new(),
    });
    for k in 0..o.runs as u64 {
        let seed = base_seed + k;
        eprintln!("pair {}/{} (seed {seed})", k + 1, o.runs);
        let mut pair = Vec::with_capacity(2);
        for (arm, set) in arms {
            let dir = out.join(arm).join("runs").join(format!("seed-{seed}"));
            match ensemble::run_one(&o.scenario, set, seed, &dir, o.threads, stop)? {
                Some(r) => pair.push(r),
                None => {
                    eprintln!("interrupted: comparing the {k} completed pairs");
                    return Ok(results);
                }
            }
        }
        for (runs, (header, rows)) in results.iter_mut().zip(pair) {
            runs.header = header;
            runs.rows.push(rows);
            runs.seeds.push(seed);
        }
    }
    Ok(results)
}

/// Per outcome: the arms' means, the paired difference's mean and 95%
/// interval and its 5-95% range; as `difference.csv` text and as JSON.
fn compare(list: &[Outcome], baseline: &Runs, counterfactual: &Runs) -> (String, Vec<serde_json::Value>) {
    let mut table =
        String::from("outcome,baseline_mean,counterfactual_mean,difference_mean,difference_ci95_low,difference_ci95_high,difference_p05,difference_p95\n");
    let mut report = Vec::new();
    for out in list {
        let b: Vec<f64> = baseline.rows.iter().map(|r| reduce(r, out)).collect();
        let c: Vec<f64> = counterfactual.rows.iter().map(|r| reduce(r, out)).collect();
        let mut d: Vec<f64> = b.iter().zip(&c).map(|(x, y)| y - x).collect();
        let (mean, lo, hi) = mean_interval(&d);
        d.sort_by(f64::total_cmp);
        let (p05, p95) = (ensemble::quantile(&d, 0.05), ensemble::quantile(&d, 0.95));
        let bm = b.iter().sum::<f64>() / b.len() as f64;
        let cm = c.iter().sum::<f64>() / c.len() as f64;
        table.push_str(&format!("{},{bm},{cm},{mean},{lo},{hi},{p05},{p95}\n", out.name));
        report.push(json!({
            "outcome": out.name,
            "baseline_mean": bm,
            "counterfactual_mean": cm,
            "difference_mean": mean,
            "difference_ci95": [lo, hi],
            "difference_p05_p95": [p05, p95],
        }));
    }
    (table, report)
}

/// Run both arms and write the comparison.
pub fn run(o: &CounterfactualOptions, stop: Arc<AtomicBool>) -> Result<()> {
    let (base, changed_set) = load_arms(o)?;
    let kinds: Vec<MetricKind> = (base.model.metrics)().iter().map(|m| m.kind).collect();
    let out = o.out.create(o.force, "counterfactual")?;
    let arms: [(&str, &[String]); 2] = [("baseline", &o.set), ("counterfactual", &changed_set)];
    for (arm, _) in arms {
        let dir = out.join(arm);
        std::fs::create_dir_all(&dir).doing(|| format!("creating {}", dir.display()))?;
        crate::outdir::mark(&dir, "counterfactual-arm")?;
    }
    let results = run_pairs(o, base.seed, &out, arms, &stop)?;
    let [baseline, counterfactual] = &results;
    if baseline.rows.is_empty() {
        return Err(Error::Run("no pair of runs completed".into()));
    }
    for (arm, runs) in ["baseline", "counterfactual"].iter().zip(&results) {
        let path = out.join(arm).join("ensemble.csv");
        std::fs::write(&path, ensemble::bands_csv(runs)).doing(|| format!("writing {}", path.display()))?;
    }
    let list = outcomes(&baseline.header, &kinds);
    let (table, report) = compare(&list, baseline, counterfactual);
    let path = out.join("difference.csv");
    std::fs::write(&path, table).doing(|| format!("writing {}", path.display()))?;
    let summary = json!({
        "myriad_version": env!("CARGO_PKG_VERSION"),
        "scenario_file": o.scenario.display().to_string(),
        "set": o.set,
        "change": o.change,
        "seeds": baseline.seeds,
        "pairs": baseline.rows.len(),
        "interval": "95% Student t interval of the mean paired difference (counterfactual - baseline)",
        "outcomes": report,
    });
    let path = out.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
        .doing(|| format!("writing {}", path.display()))?;
    if base.output.plot {
        let j = ensemble::headline_metric(&baseline.header);
        plot::chart_png(
            &out.join("comparison.png"),
            &format!(
                "{}: baseline vs {} ({} paired runs)",
                base.name,
                o.change.join(", "),
                baseline.rows.len()
            ),
            "step",
            &baseline.header[j],
            &[
                ensemble::band_series(baseline, j, "baseline: median, 5-95%".into()),
                ensemble::band_series(counterfactual, j, "counterfactual: median, 5-95%".into()),
            ],
        )?;
    }
    print_headline(&list, &kinds, &report);
    println!(
        "{} paired runs; every outcome in {}",
        baseline.rows.len(),
        out.join("difference.csv").display()
    );
    Ok(())
}

/// The outcomes of the model's first metrics, on standard output.
fn print_headline(list: &[Outcome], kinds: &[MetricKind], report: &[serde_json::Value]) {
    let headline = list.iter().filter(|x| {
        x.column <= 8
            && !(x.kind == Reduce::Final && matches!(kinds[x.column - 1], MetricKind::Value | MetricKind::Fraction))
    });
    println!(
        "{:<28} {:>14} {:>14} {:>14}  95% interval",
        "outcome", "baseline", "counterfactual", "difference"
    );
    for out in headline {
        let row = report
            .iter()
            .find(|r| r["outcome"] == out.name.as_str())
            .expect("reported");
        let f = |k: &str| row[k].as_f64().unwrap_or(f64::NAN);
        let ci = &row["difference_ci95"];
        println!(
            "{:<28} {:>14} {:>14} {:>14}  [{}, {}]",
            out.name,
            fmt(f("baseline_mean")),
            fmt(f("counterfactual_mean")),
            fmt(f("difference_mean")),
            fmt(ci[0].as_f64().unwrap_or(f64::NAN)),
            fmt(ci[1].as_f64().unwrap_or(f64::NAN)),
        );
    }
}

fn fmt(x: f64) -> String {
    if x.is_nan() {
        "n/a".into()
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_interval_matches_the_textbook_value() {
        // n = 5, mean 3, sd sqrt(2.5): t(0.975, 4) = 2.7764.
        let (m, lo, hi) = mean_interval(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(m, 3.0);
        let half = 2.776_445 * (2.5f64 / 5.0).sqrt();
        assert!((hi - m - half).abs() < 1e-4, "{hi}");
        assert!((m - lo - half).abs() < 1e-4, "{lo}");
    }

    #[test]
    fn outcomes_total_events_and_track_peaks_and_means() {
        let header: Vec<String> = ["step", "I", "new_infections", "isolating_fraction"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let kinds = [MetricKind::Stock, MetricKind::Flow, MetricKind::Fraction];
        let list = outcomes(&header, &kinds);
        let names: Vec<&str> = list.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "final I",
                "peak I",
                "peak step of I",
                "total new_infections",
                "mean isolating_fraction",
                "final isolating_fraction"
            ]
        );
        let rows = vec![
            vec![0.0, 5.0, 0.0, 0.0],
            vec![1.0, 9.0, 4.0, 0.2],
            vec![2.0, 7.0, 3.0, 0.4],
        ];
        let v: Vec<f64> = list.iter().map(|o| reduce(&rows, o)).collect();
        assert_eq!(v, [7.0, 9.0, 1.0, 7.0, (0.2 + 0.4) / 2.0, 0.4]);
    }
}
