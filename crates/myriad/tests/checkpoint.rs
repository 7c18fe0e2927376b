//! Checkpoints and `--resume` in one process: a run stopped and resumed
//! writes the files of an uninterrupted run; bad checkpoints are refused
//! with the file named. (Partitioned runs: tests/mpi.rs.)

mod common;
use common::{myriad, output_files as files, shipped as scenario, stderr};

use std::path::Path;
use std::process::Command;

fn assert_same_files(a: &Path, b: &Path) {
    let (fa, fb) = (files(a), files(b));
    assert_eq!(
        fa.iter().map(|f| &f.0).collect::<Vec<_>>(),
        fb.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((name, x), (_, y)) in fa.iter().zip(&fb) {
        assert!(x == y, "{name} differs between {} and {}", a.display(), b.display());
    }
}

fn ok(args: &[&str]) {
    let o = myriad(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
}

/// Stopped at step 70 of 120 with checkpoints every 25 steps: resuming
/// starts from step 50 and ends with the uninterrupted run's files (SEIR,
/// and the covid model with its weekly decisions, monthly economy and
/// pending outcomes).
#[test]
fn a_resumed_run_writes_the_uninterrupted_runs_files() {
    for name in ["seir-city", "covid-staten-island"] {
        resumed_run_writes_the_uninterrupted_runs_files(name);
    }
}

fn resumed_run_writes_the_uninterrupted_runs_files(name: &str) {
    let d = tempfile::tempdir().unwrap();
    let file = scenario(name);
    let full = d.path().join("full");
    let part = d.path().join("part");
    ok(&[
        "run",
        &file,
        "-q",
        "--set",
        "steps=120",
        "--out",
        full.to_str().unwrap(),
    ]);
    ok(&[
        "run",
        &file,
        "-q",
        "--set",
        "steps=70",
        "--checkpoint-every",
        "25",
        "--out",
        part.to_str().unwrap(),
    ]);
    let steps: Vec<String> = std::fs::read_dir(part.join("checkpoint"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(steps.contains(&"step-50".to_string()), "{steps:?}");
    ok(&[
        "run",
        &file,
        "-q",
        "--set",
        "steps=120",
        "--resume",
        part.to_str().unwrap(),
    ]);
    assert_same_files(&full, &part);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(part.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["resumed_from_step"], 50);
    assert_eq!(summary["steps_completed"], 120);
}

/// Ctrl-C, then resume: the interrupted run kept its checkpoints.
#[test]
fn ctrl_c_then_resume_gives_the_uninterrupted_run() {
    let d = tempfile::tempdir().unwrap();
    let file = scenario("sir-erdos-renyi");
    let full = d.path().join("full");
    ok(&["run", &file, "-q", "--out", full.to_str().unwrap()]);
    let out = d.path().join("out");
    let child = Command::new(env!("CARGO_BIN_EXE_myriad"))
        .args(["run", &file, "-q", "--threads", "1", "--checkpoint-every", "3", "--out"])
        .arg(&out)
        .spawn()
        .unwrap();
    let csv = out.join("timeseries.csv");
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(&csv).map_or(0, |t| t.lines().count()) < 8 {
        assert!(t0.elapsed().as_secs() < 60, "the run never started");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    if o.status.code() == Some(0) {
        eprintln!("the run ended before Ctrl-C reached it; resuming from its last checkpoint anyway");
    } else {
        assert_eq!(o.status.code(), Some(130));
    }
    ok(&["run", &file, "-q", "--resume", out.to_str().unwrap()]);
    assert_same_files(&full, &out);
}

#[test]
fn bad_checkpoints_and_resumes_are_refused_with_the_file_named() {
    let d = tempfile::tempdir().unwrap();
    let file = scenario("sir-small-world");
    let run = d.path().join("run");
    let run_s = run.to_str().unwrap();
    ok(&[
        "run",
        &file,
        "-q",
        "--set",
        "steps=20",
        "--checkpoint-every",
        "10",
        "--out",
        run_s,
    ]);

    // Other settings than the run's.
    let o = myriad(&["run", &file, "-q", "--set", "params.beta=0.2", "--resume", run_s]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("rank-0-of-1.bin") && err.contains("other settings"),
        "{err}"
    );
    let o = myriad(&["run", &scenario("sir-erdos-renyi"), "-q", "--resume", run_s]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    // A damaged file, then a cut one.
    let ck = run.join("checkpoint/step-20/rank-0-of-1.bin");
    let good = std::fs::read(&ck).unwrap();
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 1;
    std::fs::write(&ck, &bad).unwrap();
    let o = myriad(&["run", &file, "-q", "--resume", run_s]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("damaged"), "{}", stderr(&o));
    std::fs::write(&ck, &good[..100]).unwrap();
    let o = myriad(&["run", &file, "-q", "--resume", run_s]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("rank-0-of-1.bin"), "{}", stderr(&o));
    std::fs::write(&ck, &good).unwrap();

    // No checkpoints, no folder.
    let plain = d.path().join("plain");
    ok(&["run", &file, "-q", "--set", "steps=5", "--out", plain.to_str().unwrap()]);
    let o = myriad(&["run", &file, "-q", "--resume", plain.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no checkpoints there"), "{}", stderr(&o));
    let o = myriad(&[
        "run",
        &file,
        "-q",
        "--resume",
        d.path().join("nowhere").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no such run folder"), "{}", stderr(&o));

    // A model that cannot checkpoint, and a zero interval: refused before a folder is made.
    let out = d.path().join("game");
    let o = myriad(&[
        "run",
        &scenario("donor-game"),
        "-q",
        "--checkpoint-every",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot write checkpoints"), "{}", stderr(&o));
    assert!(!out.exists());
    let o = myriad(&[
        "run",
        &file,
        "-q",
        "--checkpoint-every",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!out.exists());

    // A run past the scenario's end.
    let o = myriad(&["run", &file, "-q", "--set", "steps=10", "--resume", run_s]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("past the scenario's last step"), "{}", stderr(&o));
}
