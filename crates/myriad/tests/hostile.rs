//! Regression tests for the defects found when myriad was fed hostile but
//! fair input (issue 10): each test failed before its fix. Grouped as the
//! issue groups them: data loss and secrets, no panics or aborts, validate
//! means runnable, exit codes, error text.

mod common;
use common::{myriad, run_quietly, serve_v1, stderr, write};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

const SIR: &str = "model = \"sir\"\nseed = 1\nsteps = 20\n[population]\nsize = 2000\n[params]\ninitial_infected = 5\n[[layers]]\nname = \"c\"\ntype = \"erdos_renyi\"\nmean_degree = 4\n";

fn exit_code(o: &Output) -> Option<i32> {
    o.status.code()
}

/// `myriad args...` run in `dir`.
fn myriad_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(common::bin())
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

/// `myriad args...` under a file-size limit of `kib` KiB (`ulimit -f`), as
/// a full disk would stop it: with `ignore_signal` the write fails with an
/// error, else the process is killed by SIGXFSZ in the middle of a write.
fn myriad_limited(kib: u32, ignore_signal: bool, args: &[&str]) -> Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let script = format!(
        "{}ulimit -f {kib}; exec '{}' {}",
        if ignore_signal { "trap '' XFSZ; " } else { "" },
        common::bin(),
        quoted.join(" ")
    );
    Command::new("bash").args(["-c", &script]).output().unwrap()
}

// ---------------------------------------------------------------- 1: --force

#[test]
fn force_never_deletes_a_folder_myriad_did_not_make_nor_the_working_directory() {
    let d = tempfile::tempdir().unwrap();
    let project = d.path().join("project");
    std::fs::create_dir(&project).unwrap();
    write(&project, "s.toml", SIR);
    write(&project, "timeseries.csv", "my own data\n");
    std::fs::create_dir(project.join("data")).unwrap();
    write(&project.join("data"), "notes.txt", "precious");
    for out in [".", "..", "./", "../project", project.to_str().unwrap()] {
        let o = myriad_in(&project, &["run", "s.toml", "--out", out, "--force", "-q"]);
        assert_eq!(exit_code(&o), Some(2), "--out {out}: {}", stderr(&o));
        assert!(stderr(&o).contains("refuses"), "{}", stderr(&o));
    }
    assert!(project.join("s.toml").exists() && project.join("data/notes.txt").exists());
    assert_eq!(
        std::fs::read_to_string(project.join("timeseries.csv")).unwrap(),
        "my own data\n"
    );

    // A folder myriad made is replaced, keeping what the user added to it.
    let out = project.join("out");
    assert!(myriad_in(&project, &["run", "s.toml", "--out", "out", "-q"])
        .status
        .success());
    write(&out, "my-notes.md", "keep me");
    let o = myriad_in(&project, &["run", "s.toml", "--out", "out", "--force", "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(out.join("my-notes.md")).unwrap(), "keep me");
    assert!(out.join(".myriad-output.json").exists() && out.join("timeseries.csv").exists());

    // An ensemble folder is replaced only by an ensemble.
    let ens = project.join("ens");
    let o = myriad_in(&project, &["ensemble", "s.toml", "--runs", "2", "--out", "ens"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = myriad_in(
        &project,
        &["ensemble", "s.toml", "--runs", "2", "--out", "ens", "--force"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(ens.join("runs/seed-1/timeseries.csv").exists());
}

#[test]
fn runs_started_in_the_same_second_get_folders_of_their_own() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "s.toml", SIR);
    let children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(common::bin())
                .current_dir(d.path())
                .args(["run", "s.toml", "-q"])
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        assert!(c.wait_with_output().unwrap().status.success());
    }
    let folders = std::fs::read_dir(d.path().join("runs")).unwrap().count();
    assert_eq!(folders, 3);
}

// ------------------------------------------------------ 2: torn cache line

/// A chat server answering yes or no by the agent number's parity, echoing
/// the bearer token it was sent when the prompt says "ECHO".
fn serve_llm(status: StatusCode) -> (String, Arc<Mutex<Vec<String>>>) {
    let prompts = Arc::new(Mutex::new(Vec::new()));
    let seen = prompts.clone();
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move |headers: HeaderMap, Json(req): Json<Value>| {
            let seen = seen.clone();
            async move {
                let prompt = req["messages"][0]["content"].as_str().unwrap_or_default().to_string();
                seen.lock().unwrap().push(prompt.clone());
                let auth = headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                if status != StatusCode::OK {
                    return (status, format!("rejected credentials: {auth}")).into_response();
                }
                let text = if prompt.contains("ECHO") {
                    format!("yes ({auth})")
                } else if prompt.len() % 2 == 0 {
                    "yes".to_string()
                } else {
                    "no".to_string()
                };
                Json(
                    json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                            "usage": {"prompt_tokens": 9, "completion_tokens": 1}}),
                )
                .into_response()
            }
        }),
    );
    (serve_v1(app), prompts)
}

/// A guess game of `n` LLM players asked per agent, each prompt naming the player.
fn guess_llm(dir: &Path, name: &str, endpoint: &str, llm_extra: &str, n: u32) -> PathBuf {
    write(
        dir,
        name,
        &format!(
            "model = \"guess\"\nseed = 2\nsteps = 3\n[population]\nsize = {n}\n[llm]\nendpoint = \"{endpoint}\"\nmodel = \"m\"\nmax_retries = 0\n{llm_extra}\n[behaviour]\nprovider = \"llm\"\nask = \"agents\"\n[behaviour.guess]\nprompt = \"Player {{agent}}: guess a number from 0 to 100 (round {{round}}). Answer with a number.\"\n"
        ),
    )
}

#[test]
fn a_cache_torn_by_a_full_disk_is_repaired_and_replays() {
    let d = tempfile::tempdir().unwrap();
    let (url, _) = serve_llm(StatusCode::OK);
    let cache = d.path().join("cache.jsonl");
    let record = guess_llm(
        d.path(),
        "rec.toml",
        &url,
        "cache = \"cache.jsonl\"\nmode = \"record\"",
        300,
    );
    // The disk fills in the middle of writing an answer: the process dies
    // with half a line in the cache.
    let o = myriad_limited(
        24,
        false,
        &[
            "run",
            record.to_str().unwrap(),
            "--out",
            d.path().join("a").to_str().unwrap(),
            "-q",
        ],
    );
    assert!(!o.status.success());
    let torn = std::fs::read(&cache).unwrap();
    assert!(
        !torn.is_empty() && *torn.last().unwrap() != b'\n',
        "the test needs a torn last line"
    );

    // Recording again repairs the file, saying so, and completes.
    let o = run_quietly(&record, &d.path().join("b"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("removed a torn last line"), "{}", stderr(&o));

    // Replay reads every answer back: the same outputs, no server needed.
    let replay = guess_llm(
        d.path(),
        "rep.toml",
        "http://127.0.0.1:9/v1",
        "cache = \"cache.jsonl\"\nmode = \"replay\"",
        300,
    );
    let o = run_quietly(&replay, &d.path().join("c"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(d.path().join("b/timeseries.csv")).unwrap(),
        std::fs::read(d.path().join("c/timeseries.csv")).unwrap()
    );
}

// ------------------------------------------------------------ 3: CSV quote

#[test]
fn a_stray_quote_in_a_population_file_is_refused_not_truncated() {
    let d = tempfile::tempdir().unwrap();
    let mut csv = String::from("age,note\n");
    for i in 0..2000 {
        csv.push_str(&format!(
            "{},{}\n",
            i % 80,
            if i == 100 { "\"unterminated" } else { "ok" }
        ));
    }
    write(d.path(), "people.csv", &csv);
    let s = write(
        d.path(),
        "s.toml",
        "model = \"sir\"\nsteps = 3\n[population]\nfile = \"people.csv\"\n[[layers]]\nname = \"m\"\ntype = \"well_mixed\"\n",
    );
    let o = myriad(&["validate", s.to_str().unwrap()]);
    assert_eq!(exit_code(&o), Some(2));
    assert!(
        stderr(&o).contains("people.csv:102:") && stderr(&o).contains("not closed"),
        "{}",
        stderr(&o)
    );
}

// ---------------------------------------------------------------- 4: secrets

/// Every byte under `dir`.
fn all_bytes(dir: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.push_str(&all_bytes(&p));
        } else {
            out.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
        }
    }
    out
}

#[test]
fn the_api_key_never_reaches_a_file_or_the_terminal() {
    const KEY: &str = "sk-live-abcdefghijklmnop1234";
    let d = tempfile::tempdir().unwrap();
    for (status, name) in [(StatusCode::OK, "ok"), (StatusCode::UNAUTHORIZED, "refused")] {
        let (url, _) = serve_llm(status);
        let s = write(
            d.path(),
            &format!("{name}.toml"),
            &format!(
                "model = \"guess\"\nsteps = 2\n[population]\nsize = 20\n[llm]\nendpoint = \"{url}\"\nmodel = \"m\"\napi_key_env = \"MYRIAD_HOSTILE_KEY\"\ncache = \"{name}-cache.jsonl\"\nmax_retries = 0\n[behaviour]\nprovider = \"llm\"\nask = \"agents\"\n[behaviour.guess]\nprompt = \"ECHO player {{agent}}: a number from 0 to 100?\"\n"
            ),
        );
        let out = d.path().join(format!("out-{name}"));
        let o = Command::new(common::bin())
            .env("MYRIAD_HOSTILE_KEY", KEY)
            .args(["run", s.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"])
            .output()
            .unwrap();
        let printed = format!("{}{}", stderr(&o), String::from_utf8_lossy(&o.stdout));
        assert!(!printed.contains(KEY), "{printed}");
        if status == StatusCode::OK {
            assert!(o.status.success(), "{printed}");
            let transcript = std::fs::read_to_string(out.join("transcript.jsonl")).unwrap_or_default();
            assert!(!transcript.contains(KEY));
        } else {
            assert!(printed.contains("[redacted]"), "{printed}");
        }
    }
    assert!(!all_bytes(d.path()).contains(KEY), "the key reached a file");
}

#[test]
fn credentials_in_an_endpoint_url_stay_out_of_the_summary() {
    let d = tempfile::tempdir().unwrap();
    let (url, _) = serve_llm(StatusCode::OK);
    let url = url.replace("http://", "http://alice:s3cretpass@");
    let s = guess_llm(d.path(), "s.toml", &url, "", 10);
    let out = d.path().join("out");
    let o = run_quietly(&s, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let all = all_bytes(&out);
    assert!(
        !all.contains("s3cretpass") && !all.contains("alice"),
        "credentials in the run folder"
    );
    let o = myriad(&["llm", "check", s.to_str().unwrap()]);
    let printed = format!("{}{}", stderr(&o), String::from_utf8_lossy(&o.stdout));
    assert!(!printed.contains("s3cretpass"), "{printed}");
}

// ------------------------------------------------- 6-8: no panics, no aborts

#[test]
fn extreme_numbers_are_refused_not_panicked_on() {
    let d = tempfile::tempdir().unwrap();
    let cases = [
        ("timeout_seconds = 1e308", "llm.timeout_seconds"),
        ("timeout_seconds = 0.001", "llm.timeout_seconds"),
        ("requests_per_second = 1e-300", "llm.requests_per_second"),
    ];
    for (extra, key) in cases {
        let s = guess_llm(d.path(), "s.toml", "http://127.0.0.1:9/v1", extra, 10);
        for cmd in ["validate", "run"] {
            let o = myriad(&[cmd, s.to_str().unwrap()]);
            assert_eq!(exit_code(&o), Some(2), "{extra} ({cmd}): {}", stderr(&o));
            assert!(stderr(&o).contains(key), "{}", stderr(&o));
        }
    }
    for args in [
        &["bench", "--agents", "0"][..],
        &["bench", "--degree", "1e308"],
        &["bench", "--degree", "NaN"],
        &["bench", "--agents", "4000000000", "--degree", "10"],
    ] {
        let o = myriad(args);
        assert_eq!(exit_code(&o), Some(2), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn scenarios_too_large_for_the_machine_are_refused_before_building() {
    let d = tempfile::tempdir().unwrap();
    let s = write(d.path(), "s.toml", SIR);
    let cases = [
        vec!["--set", "population.size=4294967295"],
        vec![
            "--set",
            "layers.c.type=configuration",
            "--set",
            "layers.c.distribution=poisson",
            "--set",
            "layers.c.mean=1e6",
            "--set",
            "population.size=20000",
        ],
        vec![
            "--set",
            "layers.c.type=configuration",
            "--set",
            "layers.c.distribution=poisson",
            "--set",
            "layers.c.mean=1e20",
        ],
        vec!["--set", "layers.c.mean_degree=1999", "--set", "limits.memory_gb=0.0001"],
    ];
    for extra in cases {
        for cmd in ["validate", "run"] {
            let mut args = vec![cmd, s.to_str().unwrap()];
            args.extend(extra.iter().copied());
            let o = myriad(&args);
            assert_eq!(exit_code(&o), Some(2), "{args:?}: {}", stderr(&o));
        }
    }
    // A column putting 200,000 agents in one group asks for 2e10 edges.
    let mut csv = String::from("g\n");
    for _ in 0..200_000 {
        csv.push_str("1\n");
    }
    write(d.path(), "one-group.csv", &csv);
    let s = write(
        d.path(),
        "g.toml",
        "model = \"sir\"\nsteps = 2\n[population]\nfile = \"one-group.csv\"\n[[layers]]\nname = \"g\"\ntype = \"groups\"\ncolumn = \"g\"\n",
    );
    for cmd in ["validate", "run"] {
        let o = myriad(&[cmd, s.to_str().unwrap()]);
        assert_eq!(exit_code(&o), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("limits.memory_gb"), "{}", stderr(&o));
    }
}

#[test]
fn threads_and_file_sizes_are_bounded() {
    let d = tempfile::tempdir().unwrap();
    let s = write(d.path(), "s.toml", SIR);
    let o = myriad(&["run", s.to_str().unwrap(), "--threads", "10000", "-q"]);
    assert_eq!(exit_code(&o), Some(2), "{}", stderr(&o));
    let o = myriad(&["validate", "/dev/zero"]);
    assert_eq!(exit_code(&o), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a scenario file"), "{}", stderr(&o));
}

// ------------------------------------------------ 9: validate means runnable

#[test]
fn validate_catches_what_run_would_refuse() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "stages.csv", "stage\n0\n2\n0\n3\n");
    let s = write(
        d.path(),
        "codes.toml",
        "model = \"sir\"\nsteps = 3\n[population]\nfile = \"stages.csv\"\ncolumns = { stage = \"text\" }\n[params]\ninitial_infected = 0\n[[layers]]\nname = \"m\"\ntype = \"well_mixed\"\n",
    );
    // Documented numeric codes in a column declared as text are accepted.
    let o = myriad(&["validate", s.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(run_quietly(&s, &d.path().join("codes"), &[]).status.success());

    let sir = write(d.path(), "sir.toml", SIR);
    let guess = guess_llm(d.path(), "g.toml", "http://127.0.0.1:9/v1", "", 10);
    let donor = write(
        d.path(),
        "donor.toml",
        "model = \"donor\"\nsteps = 2\n[population]\nsize = 13\n",
    );
    let cases: Vec<(&Path, Vec<&str>, &str)> = vec![
        (
            &sir,
            vec!["--set", "params.initial_infected=5000"],
            "only 2000 agents are susceptible",
        ),
        (&donor, vec![], "even number of agents"),
        (
            &guess,
            vec!["--set", "llm.api_key_env=MYRIAD_SURELY_UNSET_VARIABLE"],
            "MYRIAD_SURELY_UNSET_VARIABLE is not set",
        ),
        (
            &guess,
            vec!["--set", "llm.cache=.", "--set", "llm.mode=record"],
            "is a folder",
        ),
        (
            &guess,
            vec!["--set", "llm.cache=missing.jsonl", "--set", "llm.mode=replay"],
            "does not exist",
        ),
        (&guess, vec!["--set", "llm.endpoint=http://"], "not a valid URL"),
        (
            &guess,
            vec!["--set", "llm.timeout_seconds=0.000001"],
            "llm.timeout_seconds",
        ),
    ];
    for (file, extra, expect) in &cases {
        let mut args = vec!["validate", file.to_str().unwrap()];
        args.extend(extra.iter().copied());
        let o = myriad(&args);
        assert_eq!(exit_code(&o), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(expect), "{args:?}: {}", stderr(&o));
    }
    // Intervention values on layers are checked like layer weights.
    for value in ["nan", "-1.0", "-inf", "inf"] {
        let text = format!("{SIR}[[interventions]]\nstart = 2\nlayer = \"c\"\nvalue = {value}\n");
        let s = write(d.path(), "iv.toml", &text);
        let o = myriad(&["validate", s.to_str().unwrap()]);
        assert_eq!(exit_code(&o), Some(2), "value = {value}: {}", stderr(&o));
        assert!(stderr(&o).contains("interventions[0].value"), "{}", stderr(&o));
    }
}

// ------------------------------------------------------------ 10: exit codes

#[test]
fn a_full_disk_while_writing_outputs_exits_1_leaving_whole_lines() {
    let d = tempfile::tempdir().unwrap();
    let s = write(d.path(), "s.toml", &SIR.replace("steps = 20", "steps = 5000"));
    let out = d.path().join("out");
    let o = myriad_limited(
        8,
        true,
        &["run", s.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"],
    );
    assert_eq!(exit_code(&o), Some(1), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    assert!(csv.ends_with('\n'), "a partial line was left");
    let width = csv.lines().next().unwrap().split(',').count();
    assert!(csv.lines().all(|l| l.split(',').count() == width));
    assert!(csv.lines().count() > 10);
}

#[test]
fn bad_input_is_exit_2_for_every_command() {
    let d = tempfile::tempdir().unwrap();
    let s = write(d.path(), "s.toml", SIR);
    let out = d.path().join("out");
    assert!(run_quietly(&s, &out, &[]).status.success());
    let file = write(d.path(), "pop.parquet", "x");
    for args in [
        vec!["run", s.to_str().unwrap(), "--out", out.to_str().unwrap()],
        vec!["population", s.to_str().unwrap(), "--out", file.to_str().unwrap()],
        vec!["population", s.to_str().unwrap(), "--out", "x.csv"],
        vec!["ensemble", s.to_str().unwrap(), "--out", out.to_str().unwrap()],
    ] {
        let o = myriad(&args);
        assert_eq!(exit_code(&o), Some(2), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn sigterm_stops_a_run_like_ctrl_c() {
    let d = tempfile::tempdir().unwrap();
    let s = write(d.path(), "s.toml", &SIR.replace("steps = 20", "steps = 100000000"));
    let out = d.path().join("out");
    let child = Command::new(common::bin())
        .args(["run", s.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"])
        .spawn()
        .unwrap();
    let csv = out.join("timeseries.csv");
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(&csv).map_or(0, |t| t.lines().count()) < 5 {
        assert!(t0.elapsed().as_secs() < 60, "the run never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(exit_code(&o), Some(130));
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["interrupted"], true);
}

// ------------------------------------------------------------ 11: error text

#[test]
fn error_messages_are_bounded_located_and_say_things_once() {
    let d = tempfile::tempdir().unwrap();
    let huge = "x".repeat(100_000);
    let s = write(d.path(), "s.toml", &format!("{SIR}name = \"{huge}\"\n"));
    let o = myriad(&["validate", s.to_str().unwrap()]);
    assert_eq!(exit_code(&o), Some(2));
    assert!(stderr(&o).len() < 1000, "{} bytes of error", stderr(&o).len());

    std::fs::write(d.path().join("bad.toml"), b"model = \"sir\"\n# caf\xe9\nsteps = 3\n").unwrap();
    let o = myriad(&["validate", d.path().join("bad.toml").to_str().unwrap()]);
    assert!(stderr(&o).contains("bad.toml:2: column 6: not UTF-8"), "{}", stderr(&o));

    let s = write(
        d.path(),
        "edges.toml",
        "model = \"sir\"\nsteps = 3\n[population]\nsize = 10\n[[layers]]\nname = \"e\"\ntype = \"edge_list\"\nfile = \"nope.csv\"\n",
    );
    let o = myriad(&["validate", s.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(err.contains("layers[0].file") && err.contains("nope.csv"), "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "{err}");

    let s = write(d.path(), "seeds.toml", SIR);
    let out = d.path().join("ens");
    let o = myriad(&[
        "ensemble",
        s.to_str().unwrap(),
        "--seed",
        "9223372036854775800",
        "--runs",
        "20",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(exit_code(&o), Some(2), "{}", stderr(&o));
    assert!(!out.exists(), "nothing runs before the seeds are checked");
}

#[test]
fn prompts_show_labels_and_whole_sentences() {
    let d = tempfile::tempdir().unwrap();
    let (url, prompts) = serve_llm(StatusCode::OK);
    // Integer age-group codes, as the synthetic city stores them.
    let mut csv = String::from("age_group\n");
    for i in 0..60 {
        csv.push_str(&format!("{}\n", i % 6));
    }
    write(d.path(), "people.csv", &csv);
    let s = write(
        d.path(),
        "s.toml",
        &format!(
            "model = \"covid\"\nsteps = 8\n[population]\nfile = \"people.csv\"\n[params]\ninitial_infected = 2\n[[layers]]\nname = \"m\"\ntype = \"well_mixed\"\n[llm]\nendpoint = \"{url}\"\nmodel = \"m\"\n[behaviour]\nprovider = \"llm\"\nsamples = 1\n[behaviour.isolate]\nprompt = \"You are in the age group {{age_group}}. Last week there were {{cases}} new infections (change on the week before: {{cases_change}}). Stay home?\"\n"
        ),
    );
    let o = run_quietly(&s, &d.path().join("out"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let seen = prompts.lock().unwrap().join("\n");
    assert!(
        seen.contains("age group U19") && seen.contains("age group 65A"),
        "{seen}"
    );
    assert!(!seen.contains("age group 0"), "{seen}");
    assert!(
        seen.contains("there were an unknown number of new infections"),
        "{seen}"
    );
    assert!(!seen.contains("not known yet new"), "{seen}");
}
