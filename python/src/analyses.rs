//! The analyses from Python, each returning a table for pandas: the
//! ensemble and the sweep run in memory; the counterfactual and the
//! calibration run as on the command line into an output folder (their
//! plots and summaries are there) and the table is the one they wrote.

use crate::source::{self, Given};
use crate::table::{Col, Table};
use crate::{errors, interrupt};
use myriad_sim::calibrate::CalibrateOptions;
use myriad_sim::counterfactual::CounterfactualOptions;
use myriad_sim::outdir::OutChoice;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Worker threads of an analysis: the argument, or all cores.
fn threads_of(threads: Option<usize>) -> PyResult<usize> {
    Ok(myriad_sim::simulation::thread_count(source::threads(threads)?))
}

/// `{"key": value}` as `--set`-style assignments (values as TOML).
fn assignments(d: Option<&Bound<'_, PyDict>>, what: &str) -> PyResult<Vec<String>> {
    let mut out = Vec::new();
    if let Some(d) = d {
        for (k, v) in d.iter() {
            let k: String = k
                .extract()
                .map_err(|_| errors::input(format!("{what}: keys must be strings such as \"params.beta\"")))?;
            out.push(format!("{k}={}", source::toml_text(&v, &k)?));
        }
    }
    Ok(out)
}

/// An ensemble in memory: every run's rows (`seed`, `step`, metrics), or
/// with `bands=True` the median, 5-95% band and mean per step (the numbers
/// of `myriad ensemble`'s ensemble.csv).
#[pyfunction]
#[pyo3(signature = (*, file=None, toml=None, scenario=None, base_dir=None, runs=10, seed=None, threads=None, set=None, bands=false))]
#[allow(clippy::too_many_arguments)]
pub fn ensemble(
    py: Python<'_>,
    file: Option<PathBuf>,
    toml: Option<&str>,
    scenario: Option<&Bound<'_, PyDict>>,
    base_dir: Option<PathBuf>,
    runs: u32,
    seed: Option<u64>,
    threads: Option<usize>,
    set: Option<&Bound<'_, PyDict>>,
    bands: bool,
) -> PyResult<Table> {
    let threads = threads_of(threads)?;
    let s = source::load(&Given::from_args(file, toml, scenario, base_dir)?, seed, set)?;
    let result = interrupt::run(py, |stop| myriad_sim::ensemble::collect(&s, runs, Some(threads), stop))?
        .map_err(errors::to_py)?;
    let mut t = Table::new();
    if bands {
        let (header, rows) = myriad_sim::ensemble::bands(&result);
        push_rows(&mut t, &header, rows.iter());
        return Ok(t);
    }
    let mut seeds = Vec::new();
    for (seed, rows) in result.seeds.iter().zip(&result.rows) {
        seeds.extend(std::iter::repeat_n(*seed, rows.len()));
    }
    t.push("seed", Col::U64(seeds));
    push_rows(&mut t, &result.header, result.rows.iter().flatten());
    Ok(t)
}

/// Rows whose first value is the step, as columns: `step` whole, the rest real.
fn push_rows<'a>(t: &mut Table, header: &[String], rows: impl Iterator<Item = &'a Vec<f64>> + Clone) {
    for (j, name) in header.iter().enumerate() {
        let values = rows.clone().map(|r| r[j]);
        if j == 0 {
            t.push(name.clone(), Col::U64(values.map(|x| x as u64).collect()));
        } else {
            t.push(name.clone(), Col::F64(values.collect()));
        }
    }
}

/// A parameter sweep in memory (the model's rule deciding): every
/// combination of `grid` (`{"params.beta": [0.2, 0.3]}`) times `seeds`
/// seeds; one row per run with the grid values, the seed and every outcome.
#[pyfunction]
#[pyo3(signature = (file, grid, *, seeds=1, seed=None, threads=None, set=None))]
pub fn sweep(
    py: Python<'_>,
    file: PathBuf,
    grid: &Bound<'_, PyDict>,
    seeds: u32,
    seed: Option<u64>,
    threads: Option<usize>,
    set: Option<&Bound<'_, PyDict>>,
) -> PyResult<Table> {
    let threads = threads_of(threads)?;
    let set = assignments(set, "set")?;
    let mut axes = Vec::new();
    for (k, v) in grid.iter() {
        let k: String = k.extract().map_err(|_| errors::input("grid: keys must be strings"))?;
        let values: Vec<Bound<'_, PyAny>> = match v.try_iter() {
            Ok(it) if !v.is_instance_of::<pyo3::types::PyString>() => it.collect::<PyResult<_>>()?,
            _ => vec![v.clone()],
        };
        let values = values
            .iter()
            .map(|x| source::toml_text(x, &k))
            .collect::<PyResult<Vec<_>>>()?;
        axes.push((k, values));
    }
    let stop_file = file.clone();
    let table = interrupt::run(py, |stop| {
        myriad_sim::sweep::sweep(&stop_file, &set, &axes, seeds, seed, threads, stop)
    })?
    .map_err(errors::to_py)?;
    let mut t = Table::new();
    if table.rows.is_empty() {
        return Ok(t);
    }
    let keys = axes.len();
    t.push("point", Col::U64((0..table.rows.len() as u64).collect()));
    for (i, key) in table.header[1..=keys].iter().enumerate() {
        t.push(
            key.clone(),
            Col::Str(table.rows.iter().map(|r| r.0[i].clone()).collect()),
        );
    }
    t.push("seed", Col::U64(table.rows.iter().map(|r| r.1).collect()));
    for (j, name) in table.header[keys + 2..].iter().enumerate() {
        t.push(name.clone(), Col::F64(table.rows.iter().map(|r| r.2[j]).collect()));
    }
    Ok(t)
}

fn out_choice(out: Option<PathBuf>, file: &std::path::Path, suffix: &str) -> OutChoice {
    let name = file
        .file_stem()
        .map_or("scenario".into(), |s| s.to_string_lossy().to_string());
    OutChoice::new(out, &name, suffix)
}

/// Where an analysis wrote: the folder (its files are the command line's).
fn created(choice: &OutChoice) -> PathBuf {
    match choice {
        OutChoice::Given(p) | OutChoice::Default(p) => p.clone(),
    }
}

/// `myriad counterfactual`: paired runs of the scenario and of the
/// scenario with `change`; returns the output folder (difference.csv,
/// summary.json, per-arm ensemble.csv, comparison.png).
#[pyfunction]
#[pyo3(signature = (file, change, *, runs=10, seed=None, threads=None, set=None, out=None, force=false))]
#[allow(clippy::too_many_arguments)]
pub fn counterfactual(
    py: Python<'_>,
    file: PathBuf,
    change: &Bound<'_, PyDict>,
    runs: u32,
    seed: Option<u64>,
    threads: Option<usize>,
    set: Option<&Bound<'_, PyDict>>,
    out: Option<PathBuf>,
    force: bool,
) -> PyResult<String> {
    let out = out_choice(out, &file, "-counterfactual");
    let dir = created(&out);
    let o = CounterfactualOptions {
        scenario: file,
        set: assignments(set, "set")?,
        change: assignments(Some(change), "change")?,
        seed,
        runs,
        out,
        force,
        threads: threads_of(threads)?,
    };
    run_analysis(py, |stop| myriad_sim::counterfactual::run(&o, stop))?;
    Ok(dir.display().to_string())
}

/// `myriad calibrate`: fit a parameter week by week (and the initial
/// infections) to an observed series; returns the output folder
/// (calibration.csv, calibration.json, fitted.toml, plots).
#[pyfunction]
#[pyo3(signature = (file, *, target=None, observed=None, column=None, metric=None, param="r_week".to_string(), param_max=None, smoothness=0.01, initial=Some("initial_infected".to_string()), weeks=None, seeds=1, seed=None, threads=None, set=None, search_scale=None, refine=false, out=None, force=false))]
#[allow(clippy::too_many_arguments)]
pub fn calibrate(
    py: Python<'_>,
    file: PathBuf,
    target: Option<String>,
    observed: Option<PathBuf>,
    column: Option<String>,
    metric: Option<String>,
    param: String,
    param_max: Option<f64>,
    smoothness: f64,
    initial: Option<String>,
    weeks: Option<u32>,
    seeds: u32,
    seed: Option<u64>,
    threads: Option<usize>,
    set: Option<&Bound<'_, PyDict>>,
    search_scale: Option<f64>,
    refine: bool,
    out: Option<PathBuf>,
    force: bool,
) -> PyResult<String> {
    let out = out_choice(out, &file, "-calibrate");
    let dir = created(&out);
    let o = CalibrateOptions {
        scenario: file,
        set: assignments(set, "set")?,
        seed,
        seeds,
        weeks,
        target,
        observed,
        column,
        metric,
        param,
        param_max,
        report_param: None,
        labour_param: None,
        smoothness,
        initial: initial.filter(|i| i != "none"),
        initial_range: None,
        out,
        force,
        threads: threads_of(threads)?,
        search_scale,
        refine,
    };
    run_analysis(py, |stop| myriad_sim::calibrate::run(&o, stop))?;
    Ok(dir.display().to_string())
}

/// Run an analysis that takes a shared stop flag, GIL released, Ctrl-C
/// honoured.
fn run_analysis(py: Python<'_>, f: impl FnOnce(Arc<AtomicBool>) -> myriad_sim::Result<()> + Send) -> PyResult<()> {
    interrupt::run(py, |stop| f(stop.clone()))?.map_err(errors::to_py)
}
