//! `myriad forecast` with the heuristic behaviour on Staten Island: the fit
//! of each cut-off is the dated calibration of the weeks before it, the
//! forecasts start after it, the scores are the stated error of the
//! written forecasts, persistence holds the last observed week, and bad
//! requests are refused before anything runs. (The LLM arm on the embedded
//! model: local_llm.rs.)

mod common;
use common::{myriad, stderr, write};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn nyc() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/covid-nyc.toml")
}

/// Rows of a CSV file as maps from column to cell.
fn rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    lines
        .map(|l| header.iter().cloned().zip(l.split(',').map(String::from)).collect())
        .collect()
}

fn num(r: &BTreeMap<String, String>, k: &str) -> f64 {
    let v = r.get(k).unwrap_or_else(|| panic!("no {k} in {r:?}"));
    v.parse().unwrap_or_else(|e| panic!("{k} = {v}: {e}"))
}

const SI: [&str; 4] = ["--set", "population.boroughs=[\"SI\"]", "--set", "population.scale=0.2"];

/// Cut-off 2020-11-21 (the Saturday ending week 38), in the second wave:
/// July to October are fitted to unemployment, November ends within 4
/// weeks after it.
#[test]
fn forecast_fits_up_to_the_cutoff_and_scores_what_it_wrote() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("forecast");
    let nyc = nyc();
    let mut args = vec!["forecast", nyc.to_str().unwrap()];
    args.extend(SI);
    args.extend([
        "--search-scale",
        "0.25",
        "--initial-range",
        "2:200",
        "--cutoff",
        "2020-11-21",
    ]);
    args.extend(["--horizon", "1,4", "--seeds", "3", "--out", out.to_str().unwrap()]);
    let o = myriad(&args);
    assert!(o.status.success(), "{}", stderr(&o));

    // The fit is the dated calibration of the 21 weeks to the cut-off.
    let cal = d.path().join("calibrate");
    let mut args = vec!["calibrate", nyc.to_str().unwrap()];
    args.extend(SI);
    args.extend(["--search-scale", "0.25", "--initial-range", "2:200", "--weeks", "38"]);
    args.extend(["--out", cal.to_str().unwrap()]);
    let o = myriad(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let calibrated = rows(&cal.join("calibration.csv"));
    let fits: Vec<_> = rows(&out.join("fits.csv"))
        .into_iter()
        .filter(|r| r["arm"] == "heuristic")
        .collect();
    assert_eq!(fits.len(), 38);
    for (f, c) in fits.iter().zip(&calibrated) {
        assert_eq!(f["week_start"], c["week_start"]);
        for p in ["r_week", "report_probability"] {
            assert_eq!(num(f, p), num(c, p), "{p} in the week of {}", c["week_start"]);
        }
    }
    assert_eq!(fits.last().unwrap()["week_start"], "2020-11-15");

    // Forecasts: weeks 1..4 after the cut-off, each member's own.
    let forecast = rows(&out.join("forecast.csv"));
    let series = ["new_reported_cases", "new_hospitalisations", "new_deaths"];
    let of = |arm: &str, member: &str, s: &str| -> Vec<BTreeMap<String, String>> {
        forecast
            .iter()
            .filter(|r| r["arm"] == arm && r["member"] == member && r["series"] == s)
            .cloned()
            .collect()
    };
    for s in series {
        let m0 = of("heuristic", "0", s);
        let weeks: Vec<&str> = m0.iter().map(|r| r["week_start"].as_str()).collect();
        assert_eq!(weeks, ["2020-11-22", "2020-11-29", "2020-12-06", "2020-12-13"], "{s}");
        // Persistence holds the last fitted week's observed count.
        let last = num(fits.last().unwrap(), &format!("observed_{s}"));
        for r in of("persistence", "0", s) {
            assert_eq!(num(&r, "forecast"), last, "{s}");
        }
    }
    // The members are reseeded copies of one state: they differ.
    let cases = |m: &str| {
        of("heuristic", m, "new_reported_cases")
            .iter()
            .map(|r| num(r, "forecast"))
            .collect::<Vec<_>>()
    };
    assert!(cases("0") != cases("1") || cases("1") != cases("2"), "{:?}", cases("0"));

    // Each score is the mean over members of the mean absolute error of
    // the weekly counts written, over the horizon.
    let scores = rows(&out.join("scores.csv"));
    let mut checked = 0;
    for sc in &scores {
        let h: usize = sc["horizon_weeks"].parse().unwrap();
        let Some(metric) = series.iter().find(|m| sc["series"].starts_with(*m)) else {
            continue;
        };
        let members: Vec<String> = (0..num(sc, "members") as usize).map(|m| m.to_string()).collect();
        let errors: Vec<f64> = members
            .iter()
            .map(|m| {
                let r = of(&sc["arm"], m, metric);
                r[..h]
                    .iter()
                    .map(|r| (num(r, "forecast") - num(r, "observed")).abs())
                    .sum::<f64>()
                    / h as f64
            })
            .collect();
        let mean = errors.iter().sum::<f64>() / errors.len() as f64;
        assert!(
            (num(sc, "mae_mean") - mean).abs() <= 1e-9 * mean.max(1.0),
            "{sc:?}: {mean}"
        );
        let min = errors.iter().copied().fold(f64::INFINITY, f64::min);
        assert!((num(sc, "mae_min") - min).abs() <= 1e-9 * min.max(1.0), "{sc:?}");
        checked += 1;
    }
    // 2 arms x 2 horizons x 3 series.
    assert_eq!(checked, 12);
    // November's unemployment is scored at 4 weeks (November 30 is within),
    // not at 1; persistence holds October's observed rate.
    let unemployment: Vec<_> = scores
        .iter()
        .filter(|r| r["series"].starts_with("unemployment"))
        .collect();
    let arms: Vec<(&str, &str)> = unemployment
        .iter()
        .map(|r| (r["arm"].as_str(), r["horizon_weeks"].as_str()))
        .collect();
    assert_eq!(arms, [("heuristic", "4"), ("persistence", "4")]);
    let monthly = rows(&out.join("forecast_monthly.csv"));
    let of_arm = |arm: &str| -> Vec<&BTreeMap<String, String>> { monthly.iter().filter(|r| r["arm"] == arm).collect() };
    let heuristic = of_arm("heuristic");
    assert_eq!(heuristic.len(), 3, "one month, one borough, 3 members");
    assert_eq!(heuristic[0]["month_start"], "2020-11-01");
    assert_eq!(heuristic[0]["part"], "SI");
    let err: f64 = heuristic
        .iter()
        .map(|r| (num(r, "forecast") - num(r, "observed")).abs())
        .sum::<f64>()
        / 3.0;
    assert!((num(unemployment[0], "mae_mean") - err).abs() < 1e-9, "{err}");
    let persistence = of_arm("persistence");
    assert_eq!(persistence.len(), 1);
    let october = observed_unemployment_si(3);
    assert!((num(persistence[0], "forecast") - october).abs() < 1e-9, "{october}");
    assert!(out.join("forecast.png").is_file());
}

#[test]
fn forecast_refuses_bad_requests_before_running() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let undated = write(
        d.path(),
        "undated.toml",
        "model = \"covid\"\nsteps = 28\n[population]\nsynthetic = \"nyc\"\nboroughs = [\"SI\"]\nscale = 0.01\n[[layers]]\nname = \"household\"\ntype = \"groups\"\ncolumn = \"household\"\n",
    );
    let nyc = nyc();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![nyc.to_str().unwrap(), "--cutoff", "2020-03-21"],
            "fewer than 5 whole observed weeks",
        ),
        (
            vec![nyc.to_str().unwrap(), "--cutoff", "2021-02-20"],
            "fewer than the horizon of 8",
        ),
        (vec![nyc.to_str().unwrap(), "--cutoff", "2019-12-31"], "outside the run"),
        (
            vec![nyc.to_str().unwrap(), "--cutoff", "2020-13-01"],
            "--cutoff 2020-13-01",
        ),
        (
            vec![nyc.to_str().unwrap(), "--cutoff", "2020-06-27", "--arm", "llm"],
            "has no [behaviour]",
        ),
        (
            vec![nyc.to_str().unwrap(), "--cutoff", "2020-06-27", "--arm", "oracle"],
            "use heuristic or llm",
        ),
        (
            vec![nyc.to_str().unwrap(), "--cutoff", "2020-06-27", "--horizon", "0"],
            "--horizon",
        ),
        (
            vec![nyc.to_str().unwrap(), "--cutoff", "2020-06-27", "--seeds", "0"],
            "--seeds",
        ),
        (
            vec![undated.to_str().unwrap(), "--cutoff", "2020-06-27"],
            "needs start_date",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["forecast"];
        args.extend(&extra);
        args.extend(["--out", out.to_str().unwrap()]);
        let o = myriad(&args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(expected), "{extra:?}: {}", stderr(&o));
        assert!(!out.exists(), "{extra:?} wrote output");
    }
}

/// Staten Island's observed unemployment rate `months_after` July 2020 (the
/// bundled table's rows are consecutive months from July 2020).
fn observed_unemployment_si(months_after: usize) -> f64 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/nyc/borough_unemployment.csv");
    let table = rows(&path);
    let si: Vec<_> = table.iter().filter(|r| r["borough"] == "staten_island").collect();
    num(si[months_after], "unemployment_rate")
}

/// `forecast --refine`: each fit is refined on the scenario's own city
/// exactly as `calibrate --refine` does over the same weeks, and the
/// members run there.
#[test]
fn a_refined_forecast_fits_like_calibrate_refine_and_runs_on_the_own_city() {
    let d = tempfile::tempdir().unwrap();
    let nyc = nyc();
    let common = ["--search-scale", "0.25", "--initial-range", "2:200", "--refine"];
    let out = d.path().join("forecast");
    let mut args = vec!["forecast", nyc.to_str().unwrap()];
    args.extend(SI);
    args.extend(common);
    args.extend(["--cutoff", "2020-05-30", "--horizon", "2", "--seeds", "2"]);
    args.extend(["--out", out.to_str().unwrap()]);
    let o = myriad(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let cal = d.path().join("calibrate");
    let mut args = vec!["calibrate", nyc.to_str().unwrap()];
    args.extend(SI);
    args.extend(common);
    args.extend(["--weeks", "13", "--out", cal.to_str().unwrap()]);
    let o = myriad(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let fits = rows(&out.join("fits.csv"));
    let calibrated = rows(&cal.join("calibration.csv"));
    assert_eq!(fits.len(), 13);
    for (f, c) in fits.iter().zip(&calibrated) {
        for p in ["week_start", "r_week", "report_probability"] {
            assert_eq!(f[p], c[p], "{p}");
        }
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("forecast.json")).unwrap()).unwrap();
    assert_eq!(summary["refined_on_own_city"], true);
    let calibration: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cal.join("calibration.json")).unwrap()).unwrap();
    assert_eq!(summary["agents"], calibration["agents_searched"]);
}

/// Ctrl-C during the second cut-off keeps the first: every file is written
/// after each cut-off, and the interrupted run says what it holds.
#[test]
fn ctrl_c_keeps_the_cutoffs_already_compared() {
    let d = tempfile::tempdir().unwrap();
    let nyc = nyc();
    let out = d.path().join("forecast");
    let mut args = vec!["forecast", nyc.to_str().unwrap()];
    args.extend(SI);
    args.extend(["--search-scale", "0.25", "--initial-range", "2:200"]);
    args.extend(["--cutoff", "2020-05-30,2020-11-21", "--horizon", "2", "--seeds", "1"]);
    args.extend(["--out", out.to_str().unwrap()]);
    let child = std::process::Command::new(common::bin())
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let scores = out.join("scores.csv");
    let t0 = std::time::Instant::now();
    while !scores.exists() {
        assert!(t0.elapsed().as_secs() < 120, "the first cut-off never finished");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("holds the 1 of 2 cut-offs completed"),
        "{}",
        stderr(&o)
    );
    let cutoffs: std::collections::BTreeSet<String> = rows(&scores).iter().map(|r| r["cutoff"].clone()).collect();
    assert_eq!(cutoffs.into_iter().collect::<Vec<_>>(), ["2020-05-30"]);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("forecast.json")).unwrap()).unwrap();
    assert_eq!(summary["interrupted"], true);
    assert_eq!(summary["cutoffs"], serde_json::json!(["2020-05-30"]));
}

/// An LLM arm whose endpoint cannot be reached stops with an error naming
/// the endpoint; it does not finish its fit on the heuristic's rule (which
/// would score the heuristic under the LLM's name).
#[test]
fn an_unreachable_llm_endpoint_stops_the_llm_arm_with_its_name() {
    let d = tempfile::tempdir().unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/covid-nyc-llm.toml");
    let cache = format!("llm.cache={}", d.path().join("answers.jsonl").display());
    let out = d.path().join("forecast");
    let mut args = vec!["forecast", scenario.to_str().unwrap()];
    args.extend(SI);
    for set in [
        "llm.backend=http",
        "llm.endpoint=http://127.0.0.1:9/v1",
        "llm.model=m",
        "behaviour.answer=text",
        cache.as_str(),
    ] {
        args.extend(["--set", set]);
    }
    args.extend([
        "--search-scale",
        "0.25",
        "--initial-range",
        "20:20",
        "--cutoff",
        "2020-04-04",
    ]);
    args.extend([
        "--horizon",
        "1",
        "--seeds",
        "1",
        "--arm",
        "llm",
        "--out",
        out.to_str().unwrap(),
    ]);
    let o = myriad(&args);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("behaviour provider failed") && e.contains("http://127.0.0.1:9/v1"),
        "{e}"
    );
    assert!(!out.join("scores.csv").exists());
}
