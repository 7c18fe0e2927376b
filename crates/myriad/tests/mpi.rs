//! Partitioned runs under a real `mpirun` (OpenMPI): byte-identical outputs
//! on 1 to 4 ranks and any thread count, and clear errors on every rank.
//! Built only with the `mpi` feature: `cargo test -p myriad --features mpi --test mpi`.
#![cfg(feature = "mpi")]

mod common;
use common::{bin, stderr, write};

use std::path::Path;
use std::process::{Command, Output};

/// `mpirun -n ranks myriad args...` (more ranks than cores is allowed: CI has 2).
fn mpirun(ranks: usize, args: &[&str]) -> Output {
    Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-n", &ranks.to_string()])
        .arg(bin())
        .args(args)
        .output()
        .expect("mpirun runs (Debian: openmpi-bin)")
}

fn scenario(name: &str) -> String {
    format!("{}/../../scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"))
}

/// Every output file but the summary (which holds timings), byte for byte.
fn outputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "summary.json")
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

/// The layers' reports without their build times.
fn layers(dir: &Path) -> serde_json::Value {
    let mut l = summary(dir)["layers"].clone();
    for layer in l.as_array_mut().unwrap() {
        let o = layer.as_object_mut().unwrap();
        o.remove("seconds");
        o.remove("crossing_share");
    }
    l
}

fn run_ok(ranks: usize, args: &[&str]) {
    let o = mpirun(ranks, args);
    assert!(o.status.success(), "mpirun -n {ranks} {args:?}: {}", stderr(&o));
}

/// Every model that can be split, on network, group, scale-free, small-world,
/// imported (a population file with a stage column and a weighted edge
/// list) and well-mixed layers: 2, 3 and 4 ranks give the single process's
/// files byte for byte, whatever the threads per rank.
#[test]
fn partitioned_runs_equal_one_process_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("seir-city", &["--set", "steps=60"]),
        ("sir-erdos-renyi", &[]),
        ("sir-small-world", &["--set", "steps=80"]),
        (
            "seir-scale-free",
            &["--set", "steps=60", "--set", "population.size=100000"],
        ),
        ("seir-well-mixed", &[]),
        ("sir-imported", &[]),
    ];
    for (name, extra) in cases {
        let file = scenario(name);
        let one = tmp.path().join(format!("{name}-single"));
        let mut args = vec!["run", &file, "-q", "--out", one.to_str().unwrap()];
        args.extend(extra.iter());
        let o = common::myriad(&args);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let expected = outputs(&one);
        assert!(expected.iter().any(|(f, _)| f == "timeseries.csv"));
        for (ranks, threads) in [(1, "2"), (2, "1"), (3, "2"), (4, "1")] {
            let dir = tmp.path().join(format!("{name}-{ranks}"));
            let mut args = vec!["run", &file, "-q", "--threads", threads, "--out", dir.to_str().unwrap()];
            args.extend(extra.iter());
            run_ok(ranks, &args);
            let got = outputs(&dir);
            let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(f, _)| f.clone()).collect::<Vec<_>>();
            assert_eq!(names(&got), names(&expected), "{name} on {ranks} ranks: files");
            for ((f, a), (_, b)) in got.iter().zip(&expected) {
                assert!(a == b, "{name} on {ranks} ranks x {threads} threads: {f} differs");
            }
            assert_eq!(layers(&dir), layers(&one), "{name} on {ranks} ranks: layer reports");
            let s = summary(&dir);
            assert_eq!(s["final_metrics"], summary(&one)["final_metrics"]);
            if ranks > 1 {
                let p = &s["partition"];
                assert_eq!(p["ranks"], ranks);
                let agents: u64 = p["per_rank"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["agents"].as_u64().unwrap())
                    .sum();
                assert_eq!(agents, s["agents"].as_u64().unwrap(), "{name}: every agent on one rank");
            } else {
                assert!(s.get("partition").is_none());
            }
        }
    }
}

/// Households are contiguous groups of agents: almost none of their edges
/// cross ranks, while a random network's cross with probability 1 - 1/R.
#[test]
fn crossing_shares_follow_the_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario("seir-city");
    let dir = tmp.path().join("city");
    run_ok(
        4,
        &["run", &file, "-q", "--set", "steps=1", "--out", dir.to_str().unwrap()],
    );
    let l = summary(&dir)["layers"].clone();
    let share = |i: usize| l[i]["crossing_share"].as_f64().unwrap();
    assert_eq!(l[0]["name"], "household");
    // At most 3 households cut (one per boundary), of at most 6 members.
    assert!(share(0) * l[0]["edges"].as_f64().unwrap() * 2.0 <= 3.0 * 30.0);
    // Configuration-model edges join uniformly chosen stubs: 3/4 cross on 4
    // ranks, within a few standard errors of 4M edges.
    assert!((share(1) - 0.75).abs() < 0.005, "{}", share(1));
}

/// Bad input under mpirun: every rank exits with the same code, and the
/// message is printed once, by rank 0.
#[test]
fn bad_input_fails_every_rank_with_one_message() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let out_s = out.to_str().unwrap();

    // A model that cannot be split.
    let o = mpirun(2, &["run", &scenario("donor-game"), "-q", "--out", out_s]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("cannot be split over 2 processes").count(), 1, "{err}");
    assert!(err.contains("Models that can: sir, seir"), "{err}");
    assert!(!out.exists(), "nothing written");

    // More ranks than agents.
    let tiny = write(
        tmp.path(),
        "tiny.toml",
        "model = \"sir\"\nsteps = 3\n[population]\nsize = 3\n[params]\ninitial_infected = 1\n[[layers]]\nname = \"c\"\ntype = \"erdos_renyi\"\nmean_degree = 2\n",
    );
    let o = mpirun(4, &["run", tiny.to_str().unwrap(), "-q", "--out", out_s]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("4 processes for 3 agents").count(), 1, "{err}");

    // A malformed scenario: the same error on every rank, printed once.
    let bad = write(tmp.path(), "bad.toml", "model = \"sir\"\nsteps = \"many\"\n");
    let o = mpirun(3, &["run", bad.to_str().unwrap(), "-q", "--out", out_s]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("bad.toml").count(), 1, "{err}");

    // An output folder that exists: only rank 0 knows, every rank stops.
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("timeseries.csv"), "keep me").unwrap();
    let o = mpirun(3, &["run", &scenario("sir-small-world"), "-q", "--out", out_s]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(err.matches("error").count(), 1, "{err}");
    assert_eq!(std::fs::read_to_string(out.join("timeseries.csv")).unwrap(), "keep me");

    // Commands other than run refuse more than one rank.
    let o = mpirun(2, &["ensemble", &scenario("sir-small-world"), "--runs", "2"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("only `myriad run` can be split").count(), 1, "{err}");
}
