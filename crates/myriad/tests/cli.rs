//! The `myriad` command end to end: outputs, byte-identical reruns across
//! thread counts, located errors, refusal to overwrite, Ctrl-C.

mod common;
use common::{myriad, stderr, write};

use std::path::Path;
use std::process::Command;

const SCENARIO: &str = r#"
model = "seir"
seed = 9
steps = 60

[population]
size = 20000

[params]
beta = 0.06
latent_distribution = "geometric"
infectious_distribution = "geometric"
initial_infected = 20

[[layers]]
name = "household"
type = "groups"
sizes = [0.3, 0.3, 0.2, 0.2]
weight = 2.0

[[layers]]
name = "community"
type = "erdos_renyi"
mean_degree = 6

[[layers]]
name = "city"
type = "well_mixed"
weight = 0.00001

[[interventions]]
start = 20
end = 40
layer = "community"
scale = 0.3
"#;

fn run_ok(scenario: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let o = myriad(&args);
    assert!(o.status.success(), "run failed: {}", stderr(&o));
    std::fs::read_to_string(out.join("timeseries.csv")).unwrap()
}

#[test]
fn run_writes_every_output_identically_on_1_2_and_7_threads() {
    let d = tempfile::tempdir().unwrap();
    let s = write(d.path(), "mix.toml", SCENARIO);
    let one = run_ok(&s, &d.path().join("t1"), &["--threads", "1"]);
    let two = run_ok(&s, &d.path().join("t2"), &["--threads", "2"]);
    let seven = run_ok(&s, &d.path().join("t7"), &["--threads", "7"]);
    assert_eq!(one, two);
    assert_eq!(one, seven);
    let pq = |t: &str| std::fs::read(d.path().join(t).join("timeseries.parquet")).unwrap();
    assert_eq!(pq("t1"), pq("t7"));

    let lines: Vec<&str> = one.lines().collect();
    assert_eq!(lines[0], "step,S,E,I,R,new_infections");
    assert_eq!(lines.len(), 62, "header + steps 0..=60");
    let last: Vec<i64> = lines[61].split(',').map(|x| x.parse().unwrap()).collect();
    assert_eq!(last[1] + last[2] + last[3] + last[4], 20000);
    assert!(last[4] > 100, "an epidemic happened: {}", lines[61]);

    let png = std::fs::read(d.path().join("t2/timeseries.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("t7/summary.json")).unwrap()).unwrap();
    assert_eq!(summary["seed"], 9);
    assert_eq!(summary["threads"], 7);
    assert_eq!(summary["myriad_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(summary["scenario"]["layers"][1]["mean_degree"], 6);
    assert_eq!(summary["params"]["latent_period"], 3.0, "defaults are resolved");
    assert_eq!(summary["final_metrics"]["R"], last[4]);
    assert!(summary["timing"]["wall_seconds"].as_f64().unwrap() > 0.0);
    assert!(summary["peak_memory_bytes"].as_u64().unwrap() > 0);
    assert_eq!(summary["interrupted"], false);
}

#[test]
fn seed_and_set_change_the_run() {
    let d = tempfile::tempdir().unwrap();
    let s = write(d.path(), "mix.toml", SCENARIO);
    let base = run_ok(&s, &d.path().join("a"), &[]);
    assert_eq!(base, run_ok(&s, &d.path().join("b"), &[]));
    assert_ne!(base, run_ok(&s, &d.path().join("c"), &["--seed", "10"]));
    // With beta = 0 nobody beyond the 20 seeds is ever infected.
    let none = run_ok(&s, &d.path().join("d"), &["--set", "params.beta=0"]);
    let last: Vec<i64> = none
        .lines()
        .last()
        .unwrap()
        .split(',')
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(last[1], 20000 - 20);
    // Layers are addressed by name.
    let sparse = run_ok(&s, &d.path().join("e"), &["--set", "layers.community.mean_degree=1"]);
    assert_ne!(base, sparse);
    let summary = std::fs::read_to_string(d.path().join("e/summary.json")).unwrap();
    assert!(summary.contains("\"mean_degree\": 1"), "{summary}");
}

#[test]
fn bad_scenarios_are_rejected_with_file_key_and_line_and_write_nothing() {
    let d = tempfile::tempdir().unwrap();
    let cases = [
        (
            SCENARIO.replace("mean_degree = 6", "mean_degre = 6"),
            ":24: layers[1].mean_degre: unknown key",
        ),
        (
            SCENARIO.replace("beta = 0.06", "beta = 1.5"),
            ":10: params.beta: parameter 'beta' = 1.5 is out of range: must be [0, 1]",
        ),
        (SCENARIO.replace("beta = 0.06", "betta = 0.06"), "did you mean 'beta'?"),
        (
            SCENARIO.replace("steps = 60", "steps = -3"),
            ":4: steps: must be between 1",
        ),
        (
            SCENARIO.replace("type = \"erdos_renyi\"", "type = \"erdos\""),
            "unknown layer type 'erdos'",
        ),
        (
            SCENARIO.replace("model = \"seir\"", "model = \"zombie\""),
            "unknown model 'zombie'",
        ),
        (
            SCENARIO.replace("layer = \"community\"", "layer = \"school\""),
            "no layer named 'school'",
        ),
        (
            SCENARIO.replace("scale = 0.3", "scale = -1"),
            "interventions[0].scale: must be a finite number >= 0",
        ),
        (
            SCENARIO.replace("size = 20000", "size = 20000\nfile = \"x.csv\""),
            "give either size or file",
        ),
        (
            SCENARIO.replace("initial_infected = 20", "initial_infected = 20\ninitial_fraction = 0.1"),
            "set only one of initial_infected, initial_fraction",
        ),
        (SCENARIO.replace("[params]", "[params"), "invalid TOML"),
        (
            SCENARIO.replace("mean_degree = 6", "mean_degree = 50000"),
            "too large for a population of 20000",
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let s = write(d.path(), &format!("bad{i}.toml"), text);
        let out = d.path().join(format!("out{i}"));
        let o = myriad(&["run", s.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "case {i}: {err}");
        assert!(err.contains(&format!("bad{i}.toml")), "case {i} names the file: {err}");
        assert!(err.contains(expected), "case {i}: expected '{expected}' in: {err}");
        assert!(!out.exists(), "case {i}: a failed validation must write nothing");
        let v = myriad(&["validate", s.to_str().unwrap()]);
        assert_eq!(v.status.code(), Some(2), "validate case {i}");
    }
    let s = write(d.path(), "ok.toml", SCENARIO);
    let o = myriad(&["run", s.to_str().unwrap(), "--set", "params.nope=1"]);
    assert!(
        stderr(&o).contains("params.nope: unknown key") || stderr(&o).contains("unknown parameter 'nope'"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--set"), "{}", stderr(&o));
}

#[test]
fn bad_data_files_are_named_and_write_nothing() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "people.csv", "id,stage\n0,S\n1,I\n2\n");
    let s = write(
        d.path(),
        "byo.toml",
        "model = \"sir\"\nsteps = 5\n[params]\ninitial_infected = 0\n[population]\nfile = \"people.csv\"\n[[layers]]\nname = \"c\"\ntype = \"edge_list\"\nfile = \"edges.csv\"\n",
    );
    let out = d.path().join("out");
    let o = myriad(&["run", s.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("people.csv:4: row has 1 fields but the header has 2"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());

    write(d.path(), "people.csv", "id,stage\n0,S\n1,I\n2,S\n");
    let o = myriad(&["run", s.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(stderr(&o).contains("edges.csv"), "{}", stderr(&o));
    assert!(!out.exists());

    write(d.path(), "edges.csv", "source,target\n0,1\n1,3\n");
    let o = myriad(&["validate", s.to_str().unwrap()]);
    assert!(
        stderr(&o).contains("edges.csv:3: column 'target' has agent id 3, outside 0..3"),
        "{}",
        stderr(&o)
    );

    write(d.path(), "edges.csv", "source,target\n0,1\n1,2\n2,2\n1,0\n");
    write(d.path(), "people.csv", "id,stage\n0,S\n1,I\n2,Q\n");
    let o = myriad(&["run", s.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(stderr(&o).contains("agent 2 has stage \"Q\""), "{}", stderr(&o));
    assert!(!out.exists());

    write(d.path(), "people.csv", "id,stage\n0,S\n1,I\n2,S\n");
    let o = myriad(&["run", s.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("removed 1 self-loops and merged 1 duplicate edges"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_existing_output_folder_is_kept_unless_forced() {
    let d = tempfile::tempdir().unwrap();
    let s = write(d.path(), "mix.toml", &SCENARIO.replace("steps = 60", "steps = 3"));
    let out = d.path().join("out");
    run_ok(&s, &out, &[]);
    let before = std::fs::read(out.join("summary.json")).unwrap();
    let o = myriad(&["run", s.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    // An existing folder is bad input (2), for every command.
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(before, std::fs::read(out.join("summary.json")).unwrap());
    run_ok(&s, &out, &["--force"]);

    // --force never deletes a folder that is not a run.
    let precious = d.path().join("precious");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("thesis.tex"), "x").unwrap();
    let o = myriad(&[
        "run",
        s.to_str().unwrap(),
        "--out",
        precious.to_str().unwrap(),
        "--force",
    ]);
    assert!(!o.status.success());
    assert!(precious.join("thesis.tex").exists());
}

#[test]
fn ctrl_c_keeps_the_finished_steps() {
    let d = tempfile::tempdir().unwrap();
    let s = write(
        d.path(),
        "long.toml",
        &SCENARIO.replace("steps = 60", "steps = 10000000"),
    );
    let out = d.path().join("out");
    let child = Command::new(env!("CARGO_BIN_EXE_myriad"))
        .args(["run", s.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"])
        .spawn()
        .unwrap();
    // Wait until some steps are on disk, then interrupt.
    let csv = out.join("timeseries.csv");
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(&csv).map_or(0, |t| t.lines().count()) < 5 {
        assert!(t0.elapsed().as_secs() < 60, "the run never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130));
    let text = std::fs::read_to_string(&csv).unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["interrupted"], true);
    let done = summary["steps_completed"].as_u64().unwrap();
    assert!(done >= 4);
    assert_eq!(
        text.lines().count() as u64,
        done + 2,
        "header, step 0 and every finished step"
    );
    assert!(out.join("timeseries.parquet").exists());
}

#[test]
fn models_and_describe_document_every_parameter() {
    let o = myriad(&["models"]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("sir") && text.contains("seir"));
    let o = myriad(&["describe", "seir"]);
    let text = String::from_utf8(o.stdout).unwrap();
    for p in [
        "beta",
        "latent_period",
        "latent_distribution",
        "infectious_period",
        "infectious_distribution",
        "initial_infected",
        "initial_fraction",
    ] {
        assert!(text.contains(p), "{p} missing from:\n{text}");
    }
    assert!(text.contains("probability per contact per day"));
    assert!(text.contains("default 0.05"));
    let o = myriad(&["describe", "zombie"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn every_shipped_scenario_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let o = myriad(&["validate", p.to_str().unwrap()]);
            assert!(o.status.success(), "{}: {}", p.display(), stderr(&o));
            n += 1;
        }
    }
    assert!(n >= 5);
}

#[test]
fn the_synthetic_city_runs_on_one_borough_and_rejects_bad_options() {
    let d = tempfile::tempdir().unwrap();
    let s = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/seir-nyc.toml");
    let out = d.path().join("si");
    let text = run_ok(
        &s,
        &out,
        &[
            "--set",
            "population.boroughs=[\"SI\"]",
            "--set",
            "population.scale=0.05",
            "--set",
            "steps=20",
        ],
    );
    let first: Vec<i64> = text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(|x| x.parse().unwrap())
        .collect();
    let total: i64 = first[1..5].iter().sum();
    // Staten Island has 486,586 residents; 5% is about 24,329 (rounded per area).
    assert!((total - 24_329).abs() < 60, "{total}");
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(summary.contains("\"name\": \"school\""), "{summary}");

    let o = myriad(&["validate", s.to_str().unwrap(), "--set", "population.boroughs=[\"XX\"]"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown borough 'XX'"), "{}", stderr(&o));
    let o = myriad(&[
        "validate",
        s.to_str().unwrap(),
        "--set",
        "layers.school.column=classroom",
        "--set",
        "population.scale=0.01",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no column 'classroom'"), "{}", stderr(&o));
}

#[test]
fn weekly_file_sums_the_daily_event_counts() {
    // The dated city year on Staten Island: calendar weeks (Sunday to
    // Saturday) and months, beside the Health Department's series.
    let d = tempfile::tempdir().unwrap();
    let s = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/covid-nyc.toml");
    let out = d.path().join("w");
    let daily = run_ok(
        &s,
        &out,
        &[
            "--set",
            "population.boroughs=[\"SI\"]",
            "--set",
            "population.scale=0.05",
            "--set",
            "params.initial_infected=50",
        ],
    );
    let header: Vec<&str> = daily.lines().next().unwrap().split(',').collect();
    assert_eq!(&header[..2], &["step", "date"]);
    let col = header.iter().position(|h| *h == "new_infections_SI").unwrap();
    let rows: Vec<Vec<f64>> = daily
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .enumerate()
                .map(|(k, x)| if k == 1 { 0.0 } else { x.parse().unwrap() })
                .collect()
        })
        .collect();
    assert!(daily.lines().nth(1).unwrap().starts_with("0,2020-02-29,"));
    let weekly = std::fs::read_to_string(out.join("weekly.csv")).unwrap();
    let lines: Vec<&str> = weekly.lines().collect();
    assert!(
        lines[0].starts_with("week,first_step,last_step,week_start,new_infections"),
        "{}",
        lines[0]
    );
    let head: Vec<&str> = lines[0].split(',').collect();
    let wcol = head.iter().position(|h| *h == "new_infections_SI").unwrap();
    let ocol = head.iter().position(|h| *h == "observed_cases_SI").unwrap();
    // 2020-03-01 is a Sunday: 52 whole weeks to 2021-02-27.
    assert_eq!(lines.len(), 1 + 52);
    assert!(lines[1].starts_with("0,1,7,2020-03-01,"), "{}", lines[1]);
    for (w, line) in lines[1..].iter().enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let got: f64 = cells[wcol].parse().unwrap();
        let expected: f64 = rows[7 * w + 1..=7 * w + 7].iter().map(|r| r[col]).sum();
        assert_eq!(got, expected, "week {w}");
        let observed: f64 = cells[ocol].parse().unwrap();
        assert!(observed >= 0.0, "week {w}: {observed}");
    }
    for png in ["observed.png", "unemployment.png", "overview.png"] {
        assert_eq!(&std::fs::read(out.join(png)).unwrap()[..4], b"\x89PNG", "{png}");
    }
    // Monthly: calendar months March 2020 to February 2021, the observed
    // rates from July 2020 (12.5% and then 11.7% on Staten Island).
    let monthly = std::fs::read_to_string(out.join("monthly.csv")).unwrap();
    let lines: Vec<&str> = monthly.lines().collect();
    assert_eq!(lines.len(), 13, "{monthly}");
    let head: Vec<&str> = lines[0].split(',').collect();
    let model = head.iter().position(|h| *h == "unemployment_SI").unwrap();
    let observed = head.iter().position(|h| *h == "observed_unemployment_SI").unwrap();
    assert_eq!(&head[..4], &["month", "first_step", "last_step", "month_start"]);
    let cells = |l: &str| -> Vec<String> { l.split(',').map(str::to_string).collect() };
    assert!(lines[1].starts_with("0,1,31,2020-03-01,"), "{}", lines[1]);
    assert_eq!(cells(lines[1])[observed], "");
    // July 2020 is month 4 of a run from 2020-03-01.
    let july = cells(lines[5]);
    assert_eq!(&july[..4], &["4", "123", "153", "2020-07-01"]);
    assert_eq!(
        (july[observed].as_str(), cells(lines[6])[observed].as_str()),
        ("12.5", "11.7")
    );
    // The last day of July's row of the daily file carries the same rate.
    assert_eq!(
        rows[153][header.iter().position(|h| *h == "unemployment_SI").unwrap()],
        july[model].parse::<f64>().unwrap()
    );
}

#[test]
fn ensemble_reports_median_and_band_of_its_runs() {
    let d = tempfile::tempdir().unwrap();
    let s = write(d.path(), "mix.toml", &SCENARIO.replace("steps = 60", "steps = 25"));
    let out = d.path().join("ens");
    let o = myriad(&[
        "ensemble",
        s.to_str().unwrap(),
        "--runs",
        "5",
        "--out",
        out.to_str().unwrap(),
        "--seed",
        "100",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ens = std::fs::read_to_string(out.join("ensemble.csv")).unwrap();
    let header: Vec<&str> = ens.lines().next().unwrap().split(',').collect();
    assert_eq!(&header[..5], &["step", "S_median", "S_p05", "S_p95", "S_mean"]);
    let row20: Vec<f64> = ens
        .lines()
        .nth(21)
        .unwrap()
        .split(',')
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(row20[0], 20.0);
    // The median of R on day 20 is the middle of the five runs' values.
    let mut r: Vec<f64> = (100..105)
        .map(|seed| {
            let csv = std::fs::read_to_string(out.join(format!("runs/seed-{seed}/timeseries.csv"))).unwrap();
            csv.lines().nth(21).unwrap().split(',').nth(4).unwrap().parse().unwrap()
        })
        .collect();
    r.sort_by(f64::total_cmp);
    let j = header.iter().position(|h| *h == "R_median").unwrap();
    assert_eq!(row20[j], r[2]);
    assert!(row20[j + 1] <= row20[j] && row20[j] <= row20[j + 2]);
    assert!(row20[j + 1] >= r[0] && row20[j + 2] <= r[4]);
    assert_eq!(row20[j + 3], r.iter().sum::<f64>() / 5.0);
    let again = myriad(&[
        "ensemble",
        s.to_str().unwrap(),
        "--runs",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already exists"));
}
