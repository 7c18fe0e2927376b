//! `myriad ensemble`: the same scenario over consecutive seeds, with the
//! median and the 5-95% band of every metric at every step (the
//! prospective analysis).

use crate::run::{self, Outcome, RunOptions};
use crate::scenario::{self, Overrides};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Options of an ensemble.
pub struct EnsembleOptions {
    /// Scenario file.
    pub scenario: PathBuf,
    /// Number of runs.
    pub runs: u32,
    /// Output folder.
    pub out: PathBuf,
    /// Replace the output folder.
    pub force: bool,
    /// `--set` assignments.
    pub set: Vec<String>,
    /// First seed (default: the scenario's).
    pub seed: Option<u64>,
    /// Worker threads.
    pub threads: usize,
}

/// Quantile `q` of sorted values, linear between order statistics
/// (Hyndman & Fan type 7, the default of R and NumPy).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

fn read_csv(path: &Path) -> Result<(Vec<String>, Vec<Vec<f64>>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| {
            l.split(',')
                .map(|x| {
                    x.parse::<f64>()
                        .with_context(|| format!("{}: bad number '{x}'", path.display()))
                })
                .collect()
        })
        .collect::<Result<Vec<Vec<f64>>>>()?;
    Ok((header, rows))
}

/// Run the ensemble and write `ensemble.csv` beside the runs.
pub fn run(o: &EnsembleOptions, stop: Arc<AtomicBool>) -> Result<()> {
    if o.runs == 0 {
        bail!(crate::build::InputError("--runs must be at least 1".into()));
    }
    let first = scenario::load(
        &o.scenario,
        &Overrides {
            set: o.set.clone(),
            seed: o.seed,
        },
    )?;
    run::prepare_out(&o.out, o.force, &["ensemble.csv"])?;
    let base = first.seed;
    let mut header = Vec::new();
    let mut all: Vec<Vec<Vec<f64>>> = Vec::new();
    for k in 0..o.runs as u64 {
        let seed = base + k;
        let s = scenario::load(
            &o.scenario,
            &Overrides {
                set: o.set.clone(),
                seed: Some(seed),
            },
        )?;
        let dir = o.out.join("runs").join(format!("seed-{seed}"));
        eprintln!("run {}/{} (seed {seed})", k + 1, o.runs);
        let outcome = run::run(
            &s,
            &RunOptions {
                out: Some(dir.clone()),
                force: false,
                threads: o.threads,
                quiet: true,
            },
            stop.clone(),
        )?;
        if matches!(outcome, Outcome::Interrupted) {
            eprintln!("interrupted: the ensemble summarises the {k} completed runs");
            break;
        }
        let (h, rows) = read_csv(&dir.join("timeseries.csv"))?;
        header = h;
        all.push(rows);
    }
    if all.is_empty() {
        bail!("no run completed");
    }
    let steps = all.iter().map(|r| r.len()).min().unwrap_or(0);
    let mut out = String::from("step");
    for name in &header[1..] {
        out.push_str(&format!(",{name}_median,{name}_p05,{name}_p95"));
    }
    out.push('\n');
    for t in 0..steps {
        out.push_str(&format!("{}", all[0][t][0]));
        for j in 1..header.len() {
            let mut v: Vec<f64> = all.iter().map(|r| r[t][j]).collect();
            v.sort_by(f64::total_cmp);
            out.push_str(&format!(
                ",{},{},{}",
                quantile(&v, 0.5),
                quantile(&v, 0.05),
                quantile(&v, 0.95)
            ));
        }
        out.push('\n');
    }
    let path = o.out.join("ensemble.csv");
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "{} runs (seeds {base}..={}); median and 5-95% band per step in {}",
        all.len(),
        base + all.len() as u64 - 1,
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 5.0);
        assert!((quantile(&v, 0.05) - 1.2).abs() < 1e-12);
        assert!((quantile(&v, 0.95) - 4.8).abs() < 1e-12);
        assert_eq!(quantile(&[7.0], 0.95), 7.0);
    }
}
