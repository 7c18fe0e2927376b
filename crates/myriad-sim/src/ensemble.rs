//! `myriad ensemble`: the same scenario over consecutive seeds, with the
//! median and the 5-95% band of every metric at every step (the
//! prospective analysis).

use crate::error::{Error, FileContext, Result};
use crate::plot;
use crate::run::{self, Outcome, RunOptions};
use crate::scenario::{self, Overrides, Scenario};
use crate::simulation::{SimOptions, Simulation};
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
    pub out: crate::outdir::OutChoice,
    /// Replace the output folder.
    pub force: bool,
    /// `--set` assignments.
    pub set: Vec<String>,
    /// First seed (default: the scenario's).
    pub seed: Option<u64>,
    /// Worker threads.
    pub threads: usize,
}

/// Refuse seeds `base..base + runs` that pass the largest seed a scenario
/// takes, before anything runs.
pub fn check_seeds(base: u64, runs: u32) -> Result<()> {
    let last = base.checked_add(runs.saturating_sub(1) as u64);
    if last.is_none_or(|l| l > i64::MAX as u64) {
        return Err(crate::build::InputError(format!(
            "seeds {base} to {base} + {} pass the largest seed, {}; choose a smaller --seed",
            runs.saturating_sub(1),
            i64::MAX
        ))
        .into());
    }
    Ok(())
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

/// A `timeseries.csv` as numbers: the header and the rows (step first).
pub type Table = (Vec<String>, Vec<Vec<f64>>);

/// Metric rows of completed runs: the CSV header and, per run, its rows.
pub struct Runs {
    /// `step` and the metric names.
    pub header: Vec<String>,
    /// Per run, per step: the row (step first).
    pub rows: Vec<Vec<Vec<f64>>>,
    /// Seeds of the completed runs.
    pub seeds: Vec<u64>,
}

/// A run's rows as a table: `step` and the metric names, and per step the
/// row with the step first (what `timeseries.csv` holds, from memory).
pub fn table(rows: &myriad_core::metrics::Recorder) -> Table {
    let header = std::iter::once("step".to_string())
        .chain(rows.specs().iter().map(|m| m.name.clone()))
        .collect();
    let body = (0..rows.len())
        .map(|i| {
            std::iter::once(rows.steps()[i] as f64)
                .chain(rows.row(i).iter().copied())
                .collect()
        })
        .collect();
    (header, body)
}

/// One run of `scenario` with `set` and `seed` into `dir`, quietly; returns
/// its rows, or None if it was interrupted.
pub fn run_one(
    scenario: &Path,
    set: &[String],
    seed: u64,
    dir: &Path,
    threads: usize,
    stop: &Arc<AtomicBool>,
) -> Result<Option<Table>> {
    let s = scenario::load(
        scenario,
        &Overrides {
            set: set.to_vec(),
            seed: Some(seed),
        },
    )?;
    let report = run::run_to_folder(
        &s,
        &RunOptions {
            comm: None,
            checkpoint_every: None,
            resume: None,
            out: Some(dir.to_path_buf()),
            runs: None,
            force: false,
            threads: Some(threads),
            runtime: None,
        },
        stop,
        &mut [],
    )?;
    if report.outcome == Outcome::Interrupted {
        return Ok(None);
    }
    Ok(Some(table(&report.rows)))
}

/// Per step, the median, 5-95% band and mean of every metric over the
/// runs: header `step, <metric>_median, <metric>_p05, <metric>_p95,
/// <metric>_mean, ...` and one row per step.
pub fn bands(runs: &Runs) -> Table {
    let steps = runs.rows.iter().map(|r| r.len()).min().unwrap_or(0);
    let mut header = vec!["step".to_string()];
    for name in &runs.header[1..] {
        for suffix in ["median", "p05", "p95", "mean"] {
            header.push(format!("{name}_{suffix}"));
        }
    }
    let rows = (0..steps)
        .map(|t| {
            let mut row = vec![runs.rows[0][t][0]];
            for j in 1..runs.header.len() {
                let (median, lo, hi) = band(runs, t, j);
                let mean = runs.rows.iter().map(|r| r[t][j]).sum::<f64>() / runs.rows.len() as f64;
                row.extend([median, lo, hi, mean]);
            }
            row
        })
        .collect();
    (header, rows)
}

/// [`bands`] as CSV text (`ensemble.csv`).
pub fn bands_csv(runs: &Runs) -> String {
    let (header, rows) = bands(runs);
    let mut out = header.join(",") + "\n";
    for row in rows {
        let cells: Vec<String> = row.iter().map(|x| format!("{x}")).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// One whole run of `s` in memory: its table and metrics, or None when
/// `stop` cut it short. A decision provider's failure is an error.
pub fn run_in_memory(
    s: &Scenario,
    opts: SimOptions,
    stop: &AtomicBool,
) -> Result<Option<(Table, Vec<myriad_core::metrics::MetricSpec>)>> {
    let mut sim = Simulation::build(s, opts)?;
    let mut memory = crate::sinks::MemorySink::new(sim.metrics());
    let end = sim.run(s.steps, &mut [&mut memory], stop)?;
    if let Some(f) = end.failure {
        return Err(Error::Run(f));
    }
    if end.done < s.steps {
        return Ok(None);
    }
    Ok(Some((table(&memory.recorder), sim.metrics().to_vec())))
}

/// An ensemble in memory, no files written: the scenario over seeds
/// `s.seed, s.seed + 1, ...`, each run under the scenario's decisions on
/// `threads` workers. Stops early when `stop` is set, keeping the runs
/// completed (an error if none was).
pub fn collect(s: &Scenario, runs: u32, threads: Option<usize>, stop: &AtomicBool) -> Result<Runs> {
    if runs == 0 {
        return Err(crate::build::InputError("runs must be at least 1".into()).into());
    }
    check_seeds(s.seed, runs)?;
    let mut out = Runs {
        header: Vec::new(),
        rows: Vec::new(),
        seeds: Vec::new(),
    };
    for k in 0..runs as u64 {
        let mut s = s.clone();
        s.seed += k;
        let opts = SimOptions {
            threads,
            ..SimOptions::default()
        };
        let Some(((header, rows), _)) = run_in_memory(&s, opts, stop)? else {
            break;
        };
        out.header = header;
        out.rows.push(rows);
        out.seeds.push(s.seed);
    }
    if out.rows.is_empty() {
        return Err(Error::Run("no run completed".into()));
    }
    Ok(out)
}

/// Median, 5% and 95% quantiles of metric column `j` at step index `t`.
pub fn band(runs: &Runs, t: usize, j: usize) -> (f64, f64, f64) {
    let mut v: Vec<f64> = runs.rows.iter().map(|r| r[t][j]).collect();
    v.sort_by(f64::total_cmp);
    (quantile(&v, 0.5), quantile(&v, 0.05), quantile(&v, 0.95))
}

/// The metric an ensemble plot shows: the first per-step event count
/// (`new_...`), else the first metric.
pub fn headline_metric(header: &[String]) -> usize {
    header
        .iter()
        .position(|h| h.starts_with("new_"))
        .unwrap_or(1.min(header.len() - 1))
}

/// A plot series of the median and band of column `j`.
pub fn band_series(runs: &Runs, j: usize, label: String) -> plot::Series {
    let steps = runs.rows.iter().map(|r| r.len()).min().unwrap_or(0);
    let mut points = Vec::with_capacity(steps);
    let mut area = Vec::with_capacity(steps);
    for t in 0..steps {
        let x = runs.rows[0][t][0];
        let (median, lo, hi) = band(runs, t, j);
        points.push((x, median));
        area.push((x, lo, hi));
    }
    plot::Series {
        band: area,
        ..plot::Series::line(label, points)
    }
}

/// Run the ensemble and write `ensemble.csv` and `ensemble.png` beside the runs.
pub fn run(o: &EnsembleOptions, stop: Arc<AtomicBool>) -> Result<()> {
    if o.runs == 0 {
        return Err(crate::build::InputError("--runs must be at least 1".into()).into());
    }
    let first = scenario::load(
        &o.scenario,
        &Overrides {
            set: o.set.clone(),
            seed: o.seed,
        },
    )?;
    let base = first.seed;
    check_seeds(base, o.runs)?;
    let out = o.out.create(o.force, "ensemble")?;
    let mut runs = Runs {
        header: Vec::new(),
        rows: Vec::new(),
        seeds: Vec::new(),
    };
    for k in 0..o.runs as u64 {
        let seed = base + k;
        let dir = out.join("runs").join(format!("seed-{seed}"));
        eprintln!("run {}/{} (seed {seed})", k + 1, o.runs);
        match run_one(&o.scenario, &o.set, seed, &dir, o.threads, &stop)? {
            Some((header, rows)) => {
                runs.header = header;
                runs.rows.push(rows);
                runs.seeds.push(seed);
            }
            None => {
                eprintln!("interrupted: the ensemble summarises the {k} completed runs");
                break;
            }
        }
    }
    if runs.rows.is_empty() {
        return Err(Error::Run("no run completed".into()));
    }
    let path = out.join("ensemble.csv");
    std::fs::write(&path, bands_csv(&runs)).doing(|| format!("writing {}", path.display()))?;
    crate::dated_plots::ensemble_weekly(&out, &first, &runs)?;
    if first.output.plot {
        let j = headline_metric(&runs.header);
        plot::chart_png(
            &out.join("ensemble.png"),
            &format!("{}: {} runs, median and 5-95% band", first.name, runs.rows.len()),
            "step",
            &runs.header[j],
            &[band_series(&runs, j, runs.header[j].clone())],
        )?;
    }
    eprintln!(
        "{} runs (seeds {base}..={}); median and 5-95% band per step in {}",
        runs.rows.len(),
        base + runs.rows.len() as u64 - 1,
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
