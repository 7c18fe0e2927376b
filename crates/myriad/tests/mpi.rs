//! Partitioned runs under a real `mpirun` (OpenMPI): byte-identical outputs
//! on 1 to 4 ranks and any thread count, and clear errors on every rank.
//! Built only with the `mpi` feature: `cargo test -p myriad --features mpi --test mpi`.
#![cfg(feature = "mpi")]

mod common;
use common::{bin, output_files as outputs, shipped as scenario, stderr, write};

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
/// list) and well-mixed layers, and the covid model on the synthetic city
/// (Staten Island; the five boroughs at 1% over the dated year, with its
/// fitted interventions, weekly decisions and monthly economy): 2, 3 and 4
/// ranks give the single process's files byte for byte (tables and plots),
/// whatever the threads per rank.
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
        ("covid-staten-island", &["--set", "steps=90"]),
        ("covid-nyc-fitted", &["--set", "population.scale=0.01"]),
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

    // Models that cannot be split: a game, a swarm.
    for name in ["donor-game", "vicsek"] {
        let o = mpirun(2, &["run", &scenario(name), "-q", "--out", out_s]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert_eq!(
            err.matches("cannot be split over 2 processes").count(),
            1,
            "{name}: {err}"
        );
        assert!(err.contains("Models that can: sir, seir, covid"), "{err}");
        assert!(!out.exists(), "nothing written");
    }

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
    assert_eq!(err.matches("error (rank ").count(), 1, "{err}");
    assert_eq!(std::fs::read_to_string(out.join("timeseries.csv")).unwrap(), "keep me");

    // Commands other than run refuse more than one rank.
    let o = mpirun(2, &["ensemble", &scenario("sir-small-world"), "--runs", "2"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("only `myriad run` can be split").count(), 1, "{err}");
}

/// Checkpoints of a 3-rank run, one file per rank; resuming on 3 ranks
/// gives the uninterrupted run's files, on 2 ranks is refused.
#[test]
fn checkpoints_per_rank_resume_to_the_uninterrupted_run() {
    for name in ["seir-city", "covid-staten-island"] {
        checkpoints_per_rank_resume(name);
    }
}

fn checkpoints_per_rank_resume(name: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(name);
    let full = tmp.path().join("full");
    let o = common::myriad(&["run", &file, "-q", "--set", "steps=90", "--out", full.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = tmp.path().join("ck");
    let dir_s = dir.to_str().unwrap();
    run_ok(
        3,
        &[
            "run",
            &file,
            "-q",
            "--set",
            "steps=50",
            "--checkpoint-every",
            "20",
            "--out",
            dir_s,
        ],
    );
    for r in 0..3 {
        assert!(dir.join(format!("checkpoint/step-40/rank-{r}-of-3.bin")).is_file());
    }
    let o = mpirun(2, &["run", &file, "-q", "--set", "steps=90", "--resume", dir_s]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("no checkpoint written by 2 ranks").count(), 1, "{err}");
    run_ok(3, &["run", &file, "-q", "--set", "steps=90", "--resume", dir_s]);
    assert_eq!(outputs(&dir), outputs(&full));
    assert_eq!(summary(&dir)["resumed_from_step"], 40);
}

/// A rank killed mid-run (as the kernel kills a rank out of memory) stops
/// the whole run; mpirun names the rank, the finished steps and the last
/// checkpoint are kept, and resuming gives the uninterrupted run's files.
#[test]
fn a_dead_rank_stops_the_run_and_the_checkpoint_survives() {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario("sir-erdos-renyi");
    let set = ["--set", "steps=400", "--set", "params.infectious_period=60"];
    let full = tmp.path().join("full");
    let mut args = vec!["run", &file, "-q", "--out", full.to_str().unwrap()];
    args.extend(set);
    let o = common::myriad(&args);
    assert!(o.status.success(), "{}", stderr(&o));

    let dir = tmp.path().join("dies");
    let dir_s = dir.to_str().unwrap().to_string();
    let exe = bin();
    let mut args = vec![
        "--allow-run-as-root",
        "--oversubscribe",
        "-n",
        "2",
        &exe,
        "run",
        &file,
        "-q",
        "--threads",
        "1",
        "--checkpoint-every",
        "5",
        "--out",
        &dir_s,
    ];
    args.extend(set);
    let child = Command::new("mpirun")
        .args(&args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let first = dir.join("checkpoint/step-10/rank-1-of-2.bin");
    let t0 = std::time::Instant::now();
    while !first.is_file() {
        assert!(t0.elapsed().as_secs() < 120, "no checkpoint appeared");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Rank 1 is the process started with OMPI_COMM_WORLD_RANK=1.
    let rank1 = rank_pid(child.id(), 1).expect("rank 1 is running");
    Command::new("kill")
        .args(["-KILL", &rank1.to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("rank 1"), "mpirun names the rank: {err}");
    // Rank 0 names the step it was in when mpirun stopped it.
    let step: u32 = err
        .split("interrupted during step ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|k| k.parse().ok())
        .unwrap_or_else(|| panic!("rank 0 names the step: {err}"));
    let rows = std::fs::read_to_string(dir.join("timeseries.csv"))
        .unwrap()
        .lines()
        .count();
    assert!(rows >= 12, "the finished steps are kept: {rows} lines");
    // The header, step 0 and every step before the one named.
    assert!(rows as u32 > step, "{rows} lines, stopped in step {step}");
    run_ok(
        2,
        &["run", &file, "-q", "--resume", &dir_s, set[0], set[1], set[2], set[3]],
    );
    assert_eq!(outputs(&dir), outputs(&full));
}

/// The pid of the descendant of `mpirun` (pid `root`) that is rank `rank`.
fn rank_pid(root: u32, rank: usize) -> Option<u32> {
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        let children = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        for c in children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()) {
            let env = std::fs::read(format!("/proc/{c}/environ")).unwrap_or_default();
            let wanted = format!("OMPI_COMM_WORLD_RANK={rank}");
            if env.split(|&b| b == 0).any(|v| v == wanted.as_bytes()) {
                return Some(c);
            }
            frontier.push(c);
        }
    }
    None
}

/// Every row of every part of a Parquet dataset folder, as text, sorted.
fn dataset_rows(dir: &Path) -> Vec<String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let mut rows = Vec::new();
    for part in std::fs::read_dir(dir).unwrap() {
        let f = std::fs::File::open(part.unwrap().path()).unwrap();
        let reader = SerializedFileReader::new(f).unwrap();
        for row in reader.get_row_iter(None).unwrap() {
            rows.push(row.unwrap().to_string());
        }
    }
    rows.sort();
    rows
}

/// Per-agent snapshots: one Parquet part per rank, which together hold
/// the single process's rows exactly (SIR, and the covid model's eight
/// columns).
#[test]
fn agent_snapshots_are_one_dataset_with_a_part_per_rank() {
    for (name, agents) in [("sir-small-world", 100_000), ("covid-staten-island", 48_660)] {
        agent_snapshots(name, agents);
    }
}

fn agent_snapshots(name: &str, agents: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(name);
    let set = ["--set", "steps=30", "--set", "output.agents_every=15"];
    let one = tmp.path().join("one");
    let mut args = vec!["run", &file, "-q", "--out", one.to_str().unwrap()];
    args.extend(set);
    let o = common::myriad(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let three = tmp.path().join("three");
    let mut args = vec!["run", &file, "-q", "--out", three.to_str().unwrap()];
    args.extend(set);
    run_ok(3, &args);
    for step in ["step-0", "step-15", "step-30"] {
        let parts = std::fs::read_dir(three.join("agents").join(step)).unwrap().count();
        assert_eq!(parts, 3, "{step}");
        let expected = dataset_rows(&one.join("agents").join(step));
        assert_eq!(expected.len(), agents);
        assert!(
            dataset_rows(&three.join("agents").join(step)) == expected,
            "{name}: {step} differs"
        );
    }
}

/// The covid model's weekly questions to the embedded LLM (SmolLM2, one
/// scored pass per archetype) on 3 ranks: rank 0 asks them once for the
/// whole population and sends each rank its agents' answers, so the run
/// makes one process's calls, and one process replaying the answers it
/// recorded gives its files byte for byte. A provider that fails on rank 0
/// stops every rank at the same step, with one process's rows kept.
#[test]
fn llm_questions_are_asked_once_across_ranks() {
    let model = myriad_llm::local::default_model_path();
    assert!(
        model.is_file(),
        "{} is missing: run `myriad llm pull` (scripts/test does)",
        model.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario("covid-llm-staten-island");
    let small = [
        "--set",
        "population.scale=0.02",
        "--set",
        "steps=14",
        "--set",
        "behaviour.answer=logprob",
    ];
    // The model's file name is part of each answer's key.
    let gone = tmp.path().join("gone").join(model.file_name().unwrap());
    let gone_set = format!("llm.model={}", gone.display());

    // Archetypes by age group (work) and by borough and health (isolation:
    // each agent's health gathered from every rank onto rank 0): every
    // question asked once, and one process replays exactly them.
    let health = "behaviour.isolate.prompt=\"You live in {borough} and feel {health}. Last week there were {cases} new cases. Will you stay at home this week? Answer yes or no.\"";
    let cache = tmp.path().join("answers.jsonl");
    let cache_set = format!("llm.cache={}", cache.display());
    let with_health = [&small[..], &["--set", &cache_set, "--set", health]].concat();
    let three = tmp.path().join("three");
    let mut args = vec!["run", &file, "-q", "--threads", "1", "--out", three.to_str().unwrap()];
    args.extend(&with_health);
    run_ok(3, &args);
    let calls = summary(&three)["behaviour"]["client"]["calls"].as_u64().unwrap();
    let text = std::fs::read_to_string(&cache).unwrap();
    assert!(
        text.contains("feel unwell") && text.contains("feel well"),
        "both health states asked"
    );
    // Work: 2 weeks x 6 age groups.
    assert_eq!(text.matches("go to your workplace").count(), 12);
    // Each recorded answer is a distinct question.
    let keys: std::collections::BTreeSet<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["key"].to_string())
        .collect();
    assert_eq!(keys.len() as u64, calls);
    let one = tmp.path().join("one");
    let mut args = vec!["run", &file, "-q", "--out", one.to_str().unwrap()];
    args.extend(&with_health);
    args.extend(["--set", "llm.mode=replay", "--set", &gone_set]);
    let o = common::myriad(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let c = &summary(&one)["behaviour"]["client"];
    assert_eq!(
        (c["calls"].as_u64(), c["cache_hits"].as_u64()),
        (Some(0), Some(calls)),
        "{c}"
    );
    for ((f, a), (_, b)) in outputs(&one).iter().zip(&outputs(&three)) {
        assert!(
            a == b,
            "{f} differs between 1 process replaying and 3 ranks recording (health)"
        );
    }

    // Replaying from an empty cache fails in the first week's question.
    let empty = write(tmp.path(), "empty.jsonl", "");
    let empty_set = format!("llm.cache={}", empty.display());
    let replay = ["--set", "llm.mode=replay", "--set", &empty_set, "--set", &gone_set];
    let single = tmp.path().join("fail-1");
    let mut args = vec!["run", &file, "-q", "--out", single.to_str().unwrap()];
    args.extend(small);
    args.extend(replay);
    let o1 = common::myriad(&args);
    let split = tmp.path().join("fail-3");
    let mut args = vec!["run", &file, "-q", "--out", split.to_str().unwrap()];
    args.extend(small);
    args.extend(replay);
    let o3 = mpirun(3, &args);
    assert_eq!(o1.status.code(), Some(1), "{}", stderr(&o1));
    assert_eq!(o3.status.code(), Some(1), "{}", stderr(&o3));
    let err = stderr(&o3);
    assert_eq!(err.matches("no cached answer").count(), 1, "{err}");
    let rows = |d: &Path| std::fs::read_to_string(d.join("timeseries.csv")).unwrap();
    assert_eq!(rows(&split), rows(&single));
    assert!(summary(&split)["error"].as_str().unwrap().contains("no cached answer"));
}
