//! Golden outputs: every shipped scenario (shrunk with `--set` so the whole
//! set runs in under a minute), the LLM scenarios replayed from committed
//! caches, and the three analyses, each output file hashed and compared with
//! the hashes recorded in `tests/golden/hashes.txt`.
//!
//! The hashes pin what the engine computes while its code is reshaped: a
//! change to any output byte fails this test. When an output changes on
//! purpose (a bug fixed), re-record with `MYRIAD_GOLDEN_WRITE=1 cargo test
//! --test golden` and say in the commit which file changed and why.
//!
//! Hashed: `timeseries.csv`, `weekly.csv`, `monthly.csv`, `transcript.jsonl`,
//! `ensemble.csv`, `difference.csv`, `calibration.csv` and `summary.json`
//! without the fields that depend on the machine or the path (timing, memory,
//! the scenario's path, waits).

mod common;
use common::stderr;

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The cases: a name, the command and its arguments (scenario paths are
/// relative to the repository; `{cache}` is the golden cache folder).
fn cases() -> Vec<(&'static str, Vec<String>)> {
    let small = |s: &str, extra: &[&str]| {
        let mut v = vec!["run".to_string(), format!("scenarios/{s}.toml")];
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let replay = |s: &str, cache: &str, extra: &[&str]| {
        let mut v = small(s, extra);
        v.extend([
            "--set".to_string(),
            "llm.mode=replay".to_string(),
            "--set".to_string(),
            // Relative to the scenario's folder, so the summary names the
            // same path on every machine.
            format!("llm.cache=../crates/myriad/tests/golden/llm-cache/{cache}"),
            "--set".to_string(),
            "llm.endpoint=http://127.0.0.1:9/v1".to_string(),
        ]);
        v
    };
    // The caches were recorded from a Llama server; the scenarios now
    // default to the embedded model, so these cases name the server again.
    let on_server = [
        "--set",
        "llm.backend=http",
        "--set",
        "llm.model=meta-llama/Llama-3.1-8B-Instruct",
    ];
    let with = |a: &[&'static str], b: &[&'static str]| -> Vec<&'static str> { [a, b].concat() };
    let city = ["--set", "population.scale=0.03", "--set", "steps=60"];
    vec![
        (
            "seir-city",
            small("seir-city", &["--set", "population.size=20000", "--set", "steps=60"]),
        ),
        (
            "sir-erdos-renyi",
            small(
                "sir-erdos-renyi",
                &["--set", "population.size=20000", "--set", "steps=60"],
            ),
        ),
        (
            "seir-well-mixed",
            small(
                "seir-well-mixed",
                &["--set", "population.size=20000", "--set", "steps=100"],
            ),
        ),
        (
            "sir-small-world",
            small(
                "sir-small-world",
                &["--set", "population.size=20000", "--set", "steps=60"],
            ),
        ),
        (
            "seir-scale-free",
            small(
                "seir-scale-free",
                &["--set", "population.size=20000", "--set", "steps=60"],
            ),
        ),
        ("sir-imported", small("sir-imported", &[])),
        (
            "seir-nyc",
            small(
                "seir-nyc",
                &[
                    "--set",
                    "population.boroughs=[\"SI\"]",
                    "--set",
                    "population.scale=0.05",
                    "--set",
                    "steps=60",
                ],
            ),
        ),
        (
            "covid-nyc",
            small(
                "covid-nyc",
                &[
                    "--set",
                    "population.boroughs=[\"SI\"]",
                    "--set",
                    "population.scale=0.05",
                    "--set",
                    // The whole dated year: its interventions fall within it.
                    "params.initial_infected=20",
                ],
            ),
        ),
        (
            "covid-nyc-fitted",
            small(
                "covid-nyc-fitted",
                &[
                    "--set",
                    "population.boroughs=[\"SI\"]",
                    "--set",
                    "population.scale=0.05",
                ],
            ),
        ),
        ("covid-staten-island", small("covid-staten-island", &city)),
        ("commons-fishery", small("commons-fishery", &[])),
        ("vicsek", small("vicsek", &["--set", "steps=300"])),
        (
            "kuramoto",
            small("kuramoto", &["--set", "population.size=2000", "--set", "steps=300"]),
        ),
        ("vicsek-task", small("vicsek-task", &[])),
        ("kuramoto-task", small("kuramoto-task", &[])),
        ("aggregation-task", small("aggregation-task", &[])),
        ("vicsek-policy", small("vicsek-policy", &[])),
        ("kuramoto-policy", small("kuramoto-policy", &[])),
        ("aggregation-policy", small("aggregation-policy", &[])),
        ("donor-game", small("donor-game", &[])),
        (
            "guess-million",
            small("guess-million", &["--set", "population.size=10000"]),
        ),
        (
            "covid-llm-staten-island",
            replay(
                "covid-llm-staten-island",
                "covid-llm.jsonl",
                &with(&on_server, &["--set", "population.scale=0.02", "--set", "steps=21"]),
            ),
        ),
        ("commons-llm", replay("commons-llm", "commons-llm.jsonl", &on_server)),
        ("donor-llm", replay("donor-llm", "donor-llm.jsonl", &on_server)),
        (
            "guess-llm",
            replay("guess-llm", "guess-llm.jsonl", &["--set", "population.size=300"]),
        ),
        (
            "ensemble",
            vec![
                "ensemble".into(),
                "scenarios/sir-erdos-renyi.toml".into(),
                "--runs".into(),
                "3".into(),
                "--set".into(),
                "population.size=5000".into(),
                "--set".into(),
                "steps=40".into(),
            ],
        ),
        (
            "counterfactual",
            vec![
                "counterfactual".into(),
                "scenarios/covid-staten-island.toml".into(),
                "--runs".into(),
                "2".into(),
                "--change".into(),
                "interventions.schools closed.start=10".into(),
                "--set".into(),
                "population.scale=0.02".into(),
                "--set".into(),
                "steps=35".into(),
            ],
        ),
        (
            "calibrate",
            vec![
                "calibrate".into(),
                "scenarios/covid-staten-island.toml".into(),
                "--target".into(),
                "SI".into(),
                "--weeks".into(),
                "3".into(),
                "--set".into(),
                "population.scale=0.02".into(),
                "--set".into(),
                "steps=21".into(),
            ],
        ),
    ]
}

/// Files hashed, wherever they are in a case's output folder.
const HASHED: &[&str] = &[
    "timeseries.csv",
    "weekly.csv",
    "monthly.csv",
    "transcript.jsonl",
    "ensemble.csv",
    "difference.csv",
    "calibration.csv",
    "summary.json",
];

/// `summary.json` without what depends on the machine, the clock or the path.
fn stable_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|k, _| {
                !(k == "timing"
                    || k == "peak_memory_bytes"
                    || k == "scenario_file"
                    || k == "seconds"
                    || k.ends_with("_seconds"))
            });
            for x in m.values_mut() {
                stable_json(x);
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(stable_json),
        _ => {}
    }
}

fn hash_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let bytes = if path.file_name().is_some_and(|n| n == "summary.json") {
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        stable_json(&mut v);
        serde_json::to_vec(&v).unwrap()
    } else {
        bytes
    };
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `relative path -> hash` of every hashed file under `dir`.
fn hash_tree(dir: &Path, base: &Path, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            hash_tree(&p, base, out);
        } else if HASHED.iter().any(|h| p.file_name().is_some_and(|n| n == *h)) {
            out.insert(p.strip_prefix(base).unwrap().display().to_string(), hash_file(&p));
        }
    }
}

#[test]
fn every_shipped_scenario_gives_the_recorded_outputs() {
    let work = tempfile::tempdir().unwrap();
    let mut got = BTreeMap::new();
    for (name, args) in cases() {
        let out = work.path().join(name);
        let mut full = args.clone();
        full.extend([
            "--out".into(),
            out.display().to_string(),
            "--threads".into(),
            "2".into(),
        ]);
        if full[0] == "run" {
            full.push("-q".into());
        }
        let o = Command::new(common::bin())
            .current_dir(root())
            .args(&full)
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let mut files = BTreeMap::new();
        hash_tree(&out, &out, &mut files);
        assert!(!files.is_empty(), "{name}: no output hashed");
        for (f, h) in files {
            got.insert(format!("{name}/{f}"), h);
        }
    }
    let text: String = got.iter().map(|(k, v)| format!("{v}  {k}\n")).collect();
    let path = golden_dir().join("hashes.txt");
    if std::env::var_os("MYRIAD_GOLDEN_WRITE").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap();
    let want: BTreeMap<&str, &str> = want
        .lines()
        .filter_map(|l| l.split_once("  ").map(|(h, f)| (f, h)))
        .collect();
    let mut diffs = Vec::new();
    for (f, h) in &got {
        match want.get(f.as_str()) {
            Some(w) if w == h => {}
            Some(_) => diffs.push(format!("changed: {f}")),
            None => diffs.push(format!("new: {f}")),
        }
    }
    for f in want.keys() {
        if !got.contains_key(*f) {
            diffs.push(format!("missing: {f}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "outputs differ from the recorded ones:\n{}",
        diffs.join("\n")
    );
}
