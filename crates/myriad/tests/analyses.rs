//! The three analyses of the COVID-19 case study end to end on a small area:
//! retrospective (`calibrate`), counterfactual (`counterfactual`) and
//! prospective (`ensemble`, also in cli.rs).

mod common;
use common::{myriad, stderr, write};

use std::path::{Path, PathBuf};

/// Staten Island at 10%: about 48,700 agents.
const SMALL_CITY: &str = r#"
model = "covid"
seed = 11
steps = 28

[population]
synthetic = "nyc"
boroughs = ["SI"]
scale = 0.1

[params]
initial_infected = 150
isolation_sensitivity = 0

[[layers]]
name = "household"
type = "groups"
column = "household"

[[layers]]
name = "work"
type = "groups"
column = "work_team"
"#;

/// Weekly sums of a column of timeseries.csv (steps 1-7, 8-14, ...).
fn weekly(csv: &str, column: &str) -> Vec<f64> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let j = header.iter().position(|h| *h == column).unwrap();
    let mut weeks = Vec::new();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let step: usize = cells[0].parse().unwrap();
        if step == 0 {
            continue;
        }
        let w = (step - 1) / 7;
        if weeks.len() <= w {
            weeks.push(0.0);
        }
        weeks[w] += cells[j].parse::<f64>().unwrap();
    }
    weeks
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn calibrate_recovers_the_weekly_r_of_a_synthetic_truth() {
    let d = tempfile::tempdir().unwrap();
    // The truth: R = 4 for two weeks, then 1.5.
    let truth = format!(
        "{SMALL_CITY}
[[interventions]]
start = 1
end = 15
param = \"r_week\"
value = 4.0

[[interventions]]
start = 15
param = \"r_week\"
value = 1.5
"
    );
    let truth_file = write(d.path(), "truth.toml", &truth);
    let out = d.path().join("truth");
    let o = myriad(&[
        "run",
        truth_file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let observed = weekly(
        &std::fs::read_to_string(out.join("timeseries.csv")).unwrap(),
        "new_infections",
    );
    let mut text = String::from("week,cases\n");
    for (w, c) in observed.iter().enumerate() {
        text.push_str(&format!("{w},{c}\n"));
    }
    let obs_file = write(d.path(), "observed.csv", &text);

    // Fit the same scenario without its R schedule, with the same seed
    // (the truth is one of the candidates, so a perfect fit exists).
    let plain = write(d.path(), "plain.toml", SMALL_CITY);
    let fit_dir = d.path().join("fit");
    let o = myriad(&[
        "calibrate",
        plain.to_str().unwrap(),
        "--observed",
        obs_file.to_str().unwrap(),
        "--column",
        "cases",
        "--initial-range",
        "20:600",
        "--out",
        fit_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = read_json(&fit_dir.join("calibration.json"));
    let fitted: Vec<f64> = serde_json::from_value(summary["fitted_values"].clone()).unwrap();
    let series: Vec<f64> = serde_json::from_value(summary["fitted_series"].clone()).unwrap();
    assert_eq!(fitted.len(), 4);
    // The search space holds an exact fit; the optimiser must come within 5%
    // (rmsle 0.05) of the observed counts.
    let rmsle = summary["rmsle"].as_f64().unwrap();
    assert!(rmsle < 0.05, "rmsle {rmsle}: {series:?} vs {observed:?}");
    // A week's count c carries relative noise about 1/sqrt(c), so a value
    // fitted to it can differ from the truth by that much; allow 3 sd. (The
    // smoothness prior pulls the fit towards constant R by a few percent.)
    let truth_r = [4.0, 4.0, 1.5, 1.5];
    for w in 0..4 {
        let tolerance = 3.0 / observed[w].sqrt();
        let rel = (fitted[w] - truth_r[w]).abs() / truth_r[w];
        assert!(
            rel < tolerance,
            "week {w}: fitted R {} vs truth {} (relative error {rel:.3} > {tolerance:.3})",
            fitted[w],
            truth_r[w]
        );
    }
    // The initial count is identified only through the smoothness prior
    // (week 0 shows initial count x R), so only its range is checked.
    let initial = summary["fitted_initial"].as_f64().unwrap();
    assert!((20.0..=600.0).contains(&initial));
}

#[test]
fn calibrate_on_the_bundled_cases_writes_a_scenario_that_reproduces_the_fit() {
    let d = tempfile::tempdir().unwrap();
    let scenario = write(d.path(), "si.toml", &SMALL_CITY.replace("scale = 0.1", "scale = 0.05"));
    let fit_dir = d.path().join("fit");
    let o = myriad(&[
        "calibrate",
        scenario.to_str().unwrap(),
        "--target",
        "SI",
        "--weeks",
        "3",
        "--initial-range",
        "1:50",
        "--out",
        fit_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["calibration.csv", "calibration.json", "fitted.toml", "fit.png"] {
        assert!(fit_dir.join(f).exists(), "{f} missing");
    }
    let summary = read_json(&fit_dir.join("calibration.json"));
    assert_eq!(summary["metric"], "new_infections_SI");
    let series: Vec<f64> = serde_json::from_value(summary["fitted_series"].clone()).unwrap();
    let observed: Vec<f64> = serde_json::from_value(summary["observed_values"].clone()).unwrap();
    // Staten Island's first three observed weeks, scaled by 0.05.
    assert_eq!(observed, vec![27.0 * 0.05, 46.0 * 0.05, 87.0 * 0.05]);

    // Common random numbers: running the fitted scenario with the same seed
    // gives exactly the fitted weekly series.
    let run_dir = d.path().join("rerun");
    let fitted = fit_dir.join("fitted.toml");
    let o = myriad(&[
        "run",
        fitted.to_str().unwrap(),
        "--out",
        run_dir.to_str().unwrap(),
        "-q",
        "--set",
        "steps=21",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rerun = weekly(
        &std::fs::read_to_string(run_dir.join("timeseries.csv")).unwrap(),
        "new_infections_SI",
    );
    assert_eq!(rerun, series);
}

/// Weekly column `column` of a run's weekly.csv.
fn weekly_file(dir: &Path, column: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(dir.join("weekly.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let j = header.iter().position(|h| *h == column).unwrap();
    lines.map(|l| l.split(',').nth(j).unwrap().parse().unwrap()).collect()
}

/// The dated fit on Staten Island over 27 weeks (to 2020-09-05, so July
/// and August have observed unemployment): the fitted scenario, run at the
/// searched scale with the searched initial count, gives exactly the fitted
/// weekly series and monthly readings (common random numbers, values
/// written in full), and the fit is closer to the observed series than the
/// scenario it started from.
#[test]
fn dated_calibrate_fits_cases_admissions_and_deaths_and_the_fitted_scenario_reproduces_it() {
    let d = tempfile::tempdir().unwrap();
    let nyc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/covid-nyc.toml");
    let set = ["--set", "population.boroughs=[\"SI\"]", "--set", "population.scale=0.2"];
    let fit_dir = d.path().join("fit");
    let mut args = vec!["calibrate", nyc.to_str().unwrap()];
    args.extend(set);
    args.extend(["--search-scale", "0.25", "--weeks", "27", "--initial-range", "2:200"]);
    args.extend(["--out", fit_dir.to_str().unwrap()]);
    let o = myriad(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = read_json(&fit_dir.join("calibration.json"));
    assert_eq!(summary["weeks"], 27);
    assert_eq!(summary["labour"]["param"], "work_probability");
    assert_eq!(
        summary["labour"]["months"],
        serde_json::json!(["2020-07-01", "2020-08-01"])
    );
    assert_eq!(summary["first_week"], "2020-03-01");
    let initial = summary["initial_searched"].as_f64().unwrap();
    assert_eq!(
        summary["initial_fitted_scenario"].as_f64().unwrap(),
        (initial / 0.25).round()
    );
    let table = std::fs::read_to_string(fit_dir.join("calibration.csv")).unwrap();
    let column = |name: &str| -> Vec<f64> {
        let mut lines = table.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let j = header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("{name} in {header:?}"));
        lines.map(|l| l.split(',').nth(j).unwrap().parse().unwrap()).collect()
    };
    let rerun = d.path().join("rerun");
    let fitted = fit_dir.join("fitted.toml");
    let initial_set = format!("params.initial_infected={initial}");
    let o = myriad(&[
        "run",
        fitted.to_str().unwrap(),
        "-q",
        "--set",
        "population.scale=0.05",
        "--set",
        &initial_set,
        "--out",
        rerun.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut fitted_error = 0.0;
    for metric in ["new_reported_cases", "new_hospitalisations", "new_deaths"] {
        let model = column(&format!("model_{metric}"));
        assert_eq!(weekly_file(&rerun, metric)[..27], model[..], "{metric}");
        let observed: Vec<f64> = weekly_file(
            &rerun,
            &format!(
                "observed_{}_SI",
                match metric {
                    "new_reported_cases" => "cases",
                    "new_hospitalisations" => "hospitalisations",
                    _ => "deaths",
                }
            ),
        )[..27]
            .to_vec();
        fitted_error += model
            .iter()
            .zip(&observed)
            .map(|(m, o)| ((1.0 + m).ln() - (1.0 + o).ln()).powi(2))
            .sum::<f64>();
    }
    // The same scale and seed before fitting (the scenario's own values).
    let before = d.path().join("before");
    let mut args = vec![
        "run",
        nyc.to_str().unwrap(),
        "-q",
        "--set",
        "population.boroughs=[\"SI\"]",
    ];
    args.extend([
        "--set",
        "population.scale=0.05",
        "--set",
        &initial_set,
        "--out",
        before.to_str().unwrap(),
    ]);
    let o = myriad(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut start_error = 0.0;
    for (metric, series) in [
        ("new_reported_cases", "cases"),
        ("new_hospitalisations", "hospitalisations"),
        ("new_deaths", "deaths"),
    ] {
        let model = weekly_file(&before, metric);
        let observed = weekly_file(&before, &format!("observed_{series}_SI"));
        start_error += model[..27]
            .iter()
            .zip(&observed[..27])
            .map(|(m, o)| ((1.0 + m).ln() - (1.0 + o).ln()).powi(2))
            .sum::<f64>();
    }
    assert!(
        fitted_error < start_error,
        "fitted {fitted_error} vs unfitted {start_error}"
    );
    // Monthly readings: July and August of the rerun are the fitted ones.
    let monthly = std::fs::read_to_string(fit_dir.join("calibration_monthly.csv")).unwrap();
    assert_eq!(
        monthly.lines().next().unwrap().split(',').nth(2),
        Some("model_SI"),
        "{monthly}"
    );
    let fitted_months: Vec<f64> = monthly
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    let rerun_monthly = std::fs::read_to_string(rerun.join("monthly.csv")).unwrap();
    let mut lines = rerun_monthly.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let j = head.iter().position(|h| *h == "unemployment_SI").unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let at = |start: &str| -> f64 { rows.iter().find(|r| r[3] == start).unwrap()[j].parse().unwrap() };
    assert_eq!(fitted_months, vec![at("2020-07-01"), at("2020-08-01")]);
}

#[test]
fn dated_calibrate_refuses_options_of_the_single_series_fit() {
    let d = tempfile::tempdir().unwrap();
    let nyc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/covid-nyc.toml");
    let out = d.path().join("out");
    for (extra, expected) in [
        (vec!["--target", "SI"], "--target applies"),
        (vec!["--seeds", "2"], "--seeds applies"),
        (vec!["--report-param", "nope"], "no parameter 'nope'"),
        (vec!["--search-scale", "2"], "--search-scale"),
    ] {
        let mut args = vec!["calibrate", nyc.to_str().unwrap(), "--out", out.to_str().unwrap()];
        args.extend(extra);
        let o = myriad(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(expected), "{args:?}: {}", stderr(&o));
        assert!(!out.exists(), "{args:?} wrote output");
    }
    // A calendar the Health Department's series do not cover.
    let future = write(
        d.path(),
        "future.toml",
        "model = \"covid\"\nstart_date = \"2030-01-06\"\nsteps = 28\n[population]\nsynthetic = \"nyc\"\nboroughs = [\"SI\"]\nscale = 0.01\n[[layers]]\nname = \"household\"\ntype = \"groups\"\ncolumn = \"household\"\n",
    );
    let o = myriad(&["calibrate", future.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("start_date 2030-01-06"), "{}", stderr(&o));
    assert!(stderr(&o).contains("fewer than two whole weeks"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn calibrate_rejects_bad_requests_with_exit_code_2_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let city = write(d.path(), "si.toml", &SMALL_CITY.replace("scale = 0.1", "scale = 0.02"));
    let plain = write(
        d.path(),
        "plain.toml",
        "model = \"sir\"\nsteps = 28\n[population]\nsize = 1000\n[[layers]]\nname = \"c\"\ntype = \"erdos_renyi\"\nmean_degree = 4\n",
    );
    let ragged = write(d.path(), "ragged.csv", "week,cases\n0,5\n1,oops\n");
    let out = d.path().join("out");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![city.to_str().unwrap(), "--target", "XX"], "--target 'XX'"),
        (vec![city.to_str().unwrap(), "--target", "BK"], "does not include"),
        (vec![plain.to_str().unwrap(), "--param", "beta"], "--observed"),
        (
            vec![
                city.to_str().unwrap(),
                "--observed",
                ragged.to_str().unwrap(),
                "--column",
                "cases",
            ],
            "ragged.csv: line 3",
        ),
        (
            vec![city.to_str().unwrap(), "--observed", ragged.to_str().unwrap()],
            "--column",
        ),
        (vec![city.to_str().unwrap(), "--param", "beta"], "no parameter 'beta'"),
        (vec![city.to_str().unwrap(), "--metric", "cases"], "no metric 'cases'"),
        (
            vec![city.to_str().unwrap(), "--initial-range", "50:10"],
            "--initial-range",
        ),
        (
            vec![city.to_str().unwrap(), "--target", "SI", "--refine"],
            "--refine applies to dated fits",
        ),
    ];
    for (args, expected) in cases {
        let mut full = vec!["calibrate"];
        full.extend(args);
        full.extend(["--out", out.to_str().unwrap()]);
        let o = myriad(&full);
        assert_eq!(o.status.code(), Some(2), "{full:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(expected), "{full:?}: {}", stderr(&o));
        assert!(!out.exists(), "{full:?} wrote output");
    }
}

/// A small city with schools, closed from day 30.
fn school_city() -> String {
    SMALL_CITY
        .replace("scale = 0.1", "scale = 0.05")
        .replace("steps = 28", "steps = 42")
        + r#"
[[layers]]
name = "school"
type = "groups"
column = "class"

[[interventions]]
name = "schools closed"
start = 30
layer = "school"
value = 0
"#
}

fn difference_rows(dir: &Path) -> Vec<(String, Vec<f64>)> {
    std::fs::read_to_string(dir.join("difference.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let (name, rest) = l.split_once(',').unwrap();
            (name.to_string(), rest.split(',').map(|x| x.parse().unwrap()).collect())
        })
        .collect()
}

#[test]
fn counterfactual_pairs_seeds_so_a_change_of_nothing_differs_by_exactly_nothing() {
    let d = tempfile::tempdir().unwrap();
    let s = write(d.path(), "city.toml", &school_city());
    let out = d.path().join("cf");
    // The "change" restates the scenario's own value.
    let o = myriad(&[
        "counterfactual",
        s.to_str().unwrap(),
        "--change",
        "interventions.schools closed.start=30",
        "--runs",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = difference_rows(&out);
    assert!(rows.iter().any(|(n, _)| n == "total new_infections"));
    for (name, v) in &rows {
        // baseline mean, counterfactual mean, difference, ci low, ci high, p05, p95
        assert_eq!(v[0], v[1], "{name}");
        assert_eq!(&v[2..], &[0.0; 5], "{name}");
    }
    for f in [
        "summary.json",
        "comparison.png",
        "baseline/ensemble.csv",
        "counterfactual/ensemble.csv",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    assert!(out.join("counterfactual/runs/seed-13/timeseries.csv").exists());
}

#[test]
fn counterfactual_reports_the_paired_difference_of_a_real_change() {
    let d = tempfile::tempdir().unwrap();
    let s = write(d.path(), "city.toml", &school_city());
    let out = d.path().join("cf");
    // No transmission at all in the counterfactual: every pair loses exactly
    // the baseline's infections.
    let o = myriad(&[
        "counterfactual",
        s.to_str().unwrap(),
        "--change",
        "params.r_week=0",
        "--runs",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = difference_rows(&out);
    let (_, v) = rows.iter().find(|(n, _)| n == "total new_infections").unwrap();
    assert!(v[0] > 0.0, "the baseline has infections");
    assert_eq!(v[1], 0.0);
    assert!((v[2] + v[0]).abs() < 1e-9 * v[0], "difference {} vs -{}", v[2], v[0]);
    assert!(v[3] <= v[2] && v[2] <= v[4], "interval contains the mean");
    // The per-run baselines from the runs themselves.
    let mut totals = Vec::new();
    for seed in 11..15 {
        let csv = std::fs::read_to_string(out.join(format!("baseline/runs/seed-{seed}/timeseries.csv"))).unwrap();
        totals.push(weekly(&csv, "new_infections").iter().sum::<f64>());
    }
    let mean = totals.iter().sum::<f64>() / 4.0;
    assert!((mean - v[0]).abs() < 1e-9 * mean, "{mean} vs {}", v[0]);
    // And the interval is the t interval over the four pairs.
    let sd = (totals.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
    let half = 3.182_446 * sd / 2.0; // t(0.975, 3) x sd / sqrt(4)
    assert!(
        (v[4] - v[2] - half).abs() < 1e-3 * half.max(1.0),
        "{} vs {half}",
        v[4] - v[2]
    );
}

#[test]
fn counterfactual_rejects_a_bad_change_before_running() {
    let d = tempfile::tempdir().unwrap();
    let s = write(d.path(), "city.toml", &school_city());
    let out = d.path().join("cf");
    let o = myriad(&[
        "counterfactual",
        s.to_str().unwrap(),
        "--change",
        "interventions.schools shut.start=16",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no entry named 'schools shut'"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn a_cached_city_reloads_from_parquet_and_runs_identically() {
    let d = tempfile::tempdir().unwrap();
    let city = write(d.path(), "city.toml", &school_city());
    let cache = d.path().join("city.parquet");
    let o = myriad(&["population", city.to_str().unwrap(), "--out", cache.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Refuses to overwrite without --force.
    let o = myriad(&["population", city.to_str().unwrap(), "--out", cache.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    let cached = write(
        d.path(),
        "cached.toml",
        &school_city().replace(
            "synthetic = \"nyc\"\nboroughs = [\"SI\"]\nscale = 0.05",
            &format!("file = {:?}", cache.to_str().unwrap()),
        ),
    );
    assert!(std::fs::read_to_string(&cached).unwrap().contains("city.parquet"));
    let run = |s: &Path, name: &str| {
        let out = d.path().join(name);
        let o = myriad(&["run", s.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"]);
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read_to_string(out.join("timeseries.csv")).unwrap()
    };
    assert_eq!(run(&city, "built"), run(&cached, "reloaded"));
}

#[test]
fn covid_runs_on_a_users_own_population_and_contact_list() {
    let d = tempfile::tempdir().unwrap();
    // 3,000 people: age labels, a few initially infected and recovered,
    // households of 3 and a ring of friends as the edge list.
    let n = 3000;
    let ages = ["U19", "20t29", "30t39", "40t49", "50t64", "65A"];
    let mut people = String::from("id,age_group,stage,employment,household\n");
    for i in 0..n {
        let stage = if i % 100 == 0 {
            2
        } else if i % 50 == 0 {
            3
        } else {
            0
        };
        people.push_str(&format!("{i},{},{stage},{},{}\n", ages[i % 6], i % 3 % 2, i / 3));
    }
    write(d.path(), "people.csv", &people);
    let mut edges = String::from("source,target\n");
    for i in 0..n {
        edges.push_str(&format!("{i},{}\n", (i + 1) % n));
        edges.push_str(&format!("{i},{}\n", (i + 7) % n));
    }
    write(d.path(), "friends.csv", &edges);
    let s = write(
        d.path(),
        "own.toml",
        r#"
model = "covid"
seed = 4
steps = 40

[population]
file = "people.csv"

[params]
initial_infected = 0

[[layers]]
name = "household"
type = "groups"
column = "household"

[[layers]]
name = "friends"
type = "edge_list"
file = "friends.csv"
"#,
    );
    let out = d.path().join("own");
    let o = myriad(&["run", s.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let row = |k: usize| -> Vec<f64> {
        csv.lines()
            .nth(k + 1)
            .unwrap()
            .split(',')
            .map(|x| x.parse().unwrap())
            .collect()
    };
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    // Step 0 is the stage column: 30 infected (every 100th), 30 recovered
    // (every 50th that is not a 100th).
    let first = row(0);
    assert_eq!(
        (first[col("S")], first[col("I")], first[col("R")]),
        (2940.0, 30.0, 30.0)
    );
    // It spreads over the user's contacts, and agents are conserved.
    let last = row(40);
    assert!(last[col("S")] < 2940.0, "no transmission on the user's network");
    let total: f64 = ["S", "E", "I", "R", "D"].iter().map(|c| last[col(c)]).sum();
    assert_eq!(total, 3000.0);
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(summary.contains("\"name\": \"friends\""), "{summary}");
}

#[test]
fn a_sweep_runs_every_grid_point_and_seed_like_single_runs() {
    let d = tempfile::tempdir().unwrap();
    let s = write(
        d.path(),
        "sir.toml",
        "model = \"sir\"\nseed = 3\nsteps = 30\n[population]\nsize = 3000\n[params]\ninitial_infected = 10\n[[layers]]\nname = \"c\"\ntype = \"erdos_renyi\"\nmean_degree = 6\n",
    );
    let out = d.path().join("sweep");
    let o = myriad(&[
        "sweep",
        s.to_str().unwrap(),
        "--grid",
        "params.beta=0,0.08",
        "--grid",
        "layers.c.mean_degree=3,6",
        "--seeds",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 8, "2 x 2 points x 2 seeds");
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    for r in &rows {
        let total: f64 = r[col("total new_infections")].parse().unwrap();
        if r[col("params.beta")] == "0" {
            assert_eq!(total, 0.0, "no transmission without beta");
        } else {
            assert!(total > 0.0);
        }
    }
    // Each row is what a single run with those settings gives.
    let r = &rows[7];
    let run_out = d.path().join("one");
    let o = myriad(&[
        "run",
        s.to_str().unwrap(),
        "--set",
        "params.beta=0.08",
        "--set",
        "layers.c.mean_degree=6",
        "--seed",
        r[col("seed")],
        "--out",
        run_out.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(r[col("final S")], summary["final_metrics"]["S"].to_string());
}

/// An ensemble of a dated scenario: per week, the median and 5-95% band
/// over the runs of each metric compared with an observed series, beside
/// the observed values: the median is the middle run's weekly count (3
/// runs), the band lies within the runs' range, and the observed column is
/// the one every run wrote.
#[test]
fn a_dated_ensemble_gives_weekly_bands_beside_the_observed_series() {
    let d = tempfile::tempdir().unwrap();
    let nyc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/covid-nyc.toml");
    let out = d.path().join("ens");
    let o = myriad(&[
        "ensemble",
        nyc.to_str().unwrap(),
        "--set",
        "population.boroughs=[\"SI\"]",
        "--set",
        "population.scale=0.05",
        "--set",
        "params.initial_infected=20",
        "--runs",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("ensemble_week.png").is_file());
    let text = std::fs::read_to_string(out.join("ensemble_week.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 52);
    assert_eq!(rows[0][0], "2020-03-01");
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    let runs: Vec<PathBuf> = ["2020", "2021", "2022"]
        .iter()
        .map(|s| out.join("runs").join(format!("seed-{s}")))
        .collect();
    for (metric, observed, observed_run) in [
        ("new_reported_cases", "observed_confirmed_cases", "observed_cases_SI"),
        ("new_deaths", "observed_confirmed_deaths", "observed_deaths_SI"),
    ] {
        let per_run: Vec<Vec<f64>> = runs.iter().map(|r| weekly_file(r, metric)).collect();
        let observed_run = weekly_file(&runs[0], observed_run);
        for (w, row) in rows.iter().enumerate() {
            let mut v: Vec<f64> = per_run.iter().map(|r| r[w]).collect();
            v.sort_by(f64::total_cmp);
            let get = |c: &str| -> f64 { row[col(c)].parse().unwrap() };
            assert_eq!(get(&format!("{metric}_median")), v[1], "{metric} week {w}");
            let (lo, hi) = (get(&format!("{metric}_p05")), get(&format!("{metric}_p95")));
            assert!(
                v[0] <= lo && lo <= v[1] && v[1] <= hi && hi <= v[2],
                "{metric} week {w}: {lo} {hi} {v:?}"
            );
            assert!((get(observed) - observed_run[w]).abs() < 1e-9, "{observed} week {w}");
        }
    }
}

/// Sum over the three series of squared errors of ln(1 + weekly count)
/// over the first `weeks` weeks of a Staten Island run's weekly.csv.
fn si_loss(run: &Path, weeks: usize) -> f64 {
    [
        ("new_reported_cases", "observed_cases_SI"),
        ("new_hospitalisations", "observed_hospitalisations_SI"),
        ("new_deaths", "observed_deaths_SI"),
    ]
    .iter()
    .map(|(m, o)| {
        let (m, o) = (weekly_file(run, m), weekly_file(run, o));
        m[..weeks]
            .iter()
            .zip(&o[..weeks])
            .map(|(m, o)| ((1.0 + m).ln() - (1.0 + o).ln()).powi(2))
            .sum::<f64>()
    })
    .sum()
}

/// `calibrate --refine`: the weeks fitted again on the scenario's own city
/// around the scaled search's values. The fitted scenario, run as it is,
/// reproduces the refined series exactly and is closer to the observed
/// series on its own city than the fit without refining.
#[test]
fn refining_on_the_own_city_reproduces_and_beats_the_scaled_fit_there() {
    let d = tempfile::tempdir().unwrap();
    let nyc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/covid-nyc.toml");
    let fit = |dir: &Path, refine: bool| {
        let mut args = vec!["calibrate", nyc.to_str().unwrap()];
        args.extend(["--set", "population.boroughs=[\"SI\"]", "--set", "population.scale=0.2"]);
        args.extend(["--search-scale", "0.25", "--weeks", "27", "--initial-range", "2:200"]);
        args.extend(["--out", dir.to_str().unwrap()]);
        if refine {
            args.push("--refine");
        }
        let o = myriad(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let rerun = dir.with_extension("run");
        let fitted = dir.join("fitted.toml");
        let o = myriad(&["run", fitted.to_str().unwrap(), "-q", "--out", rerun.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        rerun
    };
    let plain = fit(&d.path().join("plain"), false);
    let refined_dir = d.path().join("refined");
    let refined = fit(&refined_dir, true);
    let summary = read_json(&refined_dir.join("calibration.json"));
    assert_eq!(summary["search_scale"], 1.0);
    assert_eq!(summary["refined_on_own_city"]["searched_scale"], 0.25);
    let table = std::fs::read_to_string(refined_dir.join("calibration.csv")).unwrap();
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    for metric in ["new_reported_cases", "new_hospitalisations", "new_deaths"] {
        let j = header.iter().position(|h| *h == format!("model_{metric}")).unwrap();
        let fitted: Vec<f64> = rows.iter().map(|r| r[j].parse().unwrap()).collect();
        assert_eq!(weekly_file(&refined, metric)[..27], fitted[..], "{metric}");
    }
    let (before, after) = (si_loss(&plain, 27), si_loss(&refined, 27));
    assert!(after < before, "refined {after} vs scaled fit at full scale {before}");
}
