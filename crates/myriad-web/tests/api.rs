//! The dashboard's API against a real server on 127.0.0.1: runs started
//! from it write what `myriad run` writes, pause/step/resume hold the run
//! where asked, the agent inspector reads the simulation's own values, the
//! token is enforced, and bad input gets a 4xx with the command line's text
//! while the server keeps serving.

use myriad_sim::scenario::{self, Overrides};
use myriad_sim::{SimOptions, Simulation};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

/// A server on a free port, serving `runs`; returns its base address.
fn server(runs: &Path, token: Option<&str>) -> String {
    let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
    let opts = myriad_web::ServeOptions {
        bind: "127.0.0.1".parse().unwrap(),
        port: 0,
        runs: runs.to_path_buf(),
        scenarios: scenarios(),
        token: token.map(str::to_string),
        threads: Some(2),
    };
    std::thread::spawn(move || {
        myriad_web::serve(opts, move |a| tx.send(a).unwrap()).unwrap();
    });
    let addr = rx.recv_timeout(Duration::from_secs(30)).expect("server started");
    format!("http://{addr}")
}

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Poll the run's line of the runs list until `done` holds.
    async fn wait(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let t = Instant::now();
        loop {
            let (_, d) = self.get(&format!("/api/runs/{id}")).await;
            if done(&d["run"]) {
                return d["run"].clone();
            }
            assert!(t.elapsed() < Duration::from_secs(120), "run {id} stuck: {d}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn client(base: String) -> Client {
    Client {
        base,
        http: reqwest::Client::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_from_the_api_writes_what_the_command_line_writes() {
    let dir = tempfile::tempdir().unwrap();
    let c = client(server(dir.path(), None));
    let (code, r) = c
        .post(
            "/api/runs",
            json!({"scenario": "sir-small-world.toml", "set": ["steps=60"], "out": "web"}),
        )
        .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["id"], "web");
    let run = c.wait("web", |r| r["status"] == "finished").await;
    assert_eq!(run["steps"], 60);

    // The same scenario through the library's run, as `myriad run` does it.
    let s = scenario::load(
        &scenarios().join("sir-small-world.toml"),
        &Overrides {
            set: vec!["steps=60".into()],
            seed: None,
        },
    )
    .unwrap();
    let opts = myriad_sim::run::RunOptions {
        comm: None,
        checkpoint_every: None,
        resume: None,
        out: Some(dir.path().join("cli")),
        runs: None,
        force: false,
        threads: Some(1),
        runtime: None,
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    myriad_sim::run::run_to_folder(&s, &opts, &stop, &mut []).unwrap();
    let web = std::fs::read(dir.path().join("web/timeseries.csv")).unwrap();
    let cli = std::fs::read(dir.path().join("cli/timeseries.csv")).unwrap();
    assert_eq!(
        web, cli,
        "timeseries.csv differs between the page's run and the command line's"
    );

    // The series the page draws is the file's.
    let (code, series) = c.get("/api/runs/web/series").await;
    assert_eq!(code, 200);
    let csv = String::from_utf8(cli).unwrap();
    let last = csv
        .lines()
        .last()
        .unwrap()
        .split(',')
        .map(|x| x.parse::<f64>().unwrap())
        .collect::<Vec<_>>();
    let s_col = series["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .position(|m| m == "S")
        .unwrap();
    assert_eq!(series["values"][s_col][60].as_f64().unwrap(), last[1 + s_col]);

    // Both are listed, with their summaries' facts.
    let (_, list) = c.get("/api/runs").await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"web") && ids.contains(&"cli"), "{ids:?}");
    let cli_line = list.as_array().unwrap().iter().find(|r| r["id"] == "cli").unwrap();
    assert_eq!(cli_line["agents"], 100_000);
    assert_eq!(cli_line["status"], "finished");
    assert_eq!(cli_line["live"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_step_and_the_inspector_read_the_state_at_the_step_shown() {
    let dir = tempfile::tempdir().unwrap();
    let c = client(server(dir.path(), None));
    let (code, r) = c
        .post("/api/runs", json!({"scenario": "sir-small-world.toml", "paused": true}))
        .await;
    assert_eq!(code, 200, "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    c.wait(&id, |r| r["status"] == "paused").await;
    let (code, _) = c.post(&format!("/api/runs/{id}/step?n=5"), json!({})).await;
    assert_eq!(code, 200);
    let run = c.wait(&id, |r| r["status"] == "paused" && r["steps"] == 5).await;
    assert_eq!(run["steps"], 5);
    // Held: no step without being asked.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, d) = c.get(&format!("/api/runs/{id}")).await;
    assert_eq!(d["run"]["steps"], 5);

    // The same simulation stepped 5 times here.
    let s = scenario::load(&scenarios().join("sir-small-world.toml"), &Overrides::default()).unwrap();
    let mut sim = Simulation::build(
        &s,
        SimOptions {
            threads: Some(1),
            ..SimOptions::default()
        },
    )
    .unwrap();
    for _ in 0..5 {
        sim.step().unwrap();
    }
    let (_, infectious) = c
        .get(&format!("/api/runs/{id}/agents?where=stage=infectious&n=1000"))
        .await;
    let stage = match &sim.agent_columns()[0] {
        ("stage", myriad_core::model::ColumnView::U8(v)) => v.to_vec(),
        other => panic!("unexpected first column {}", other.0),
    };
    let expected = stage.iter().filter(|&&x| x == 2).count();
    assert_eq!(infectious["matches"], expected);
    let first = infectious["agents"][0].as_u64().unwrap();
    let (code, a) = c.get(&format!("/api/runs/{id}/agents/{first}")).await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["step"], 5);
    assert_eq!(a["columns"][0]["name"], "stage");
    assert_eq!(a["columns"][0]["label"], "infectious");
    for (k, (name, col)) in sim.agent_columns().iter().enumerate() {
        let v = match col {
            myriad_core::model::ColumnView::U8(v) => v[first as usize] as f64,
            myriad_core::model::ColumnView::U16(v) => v[first as usize] as f64,
            _ => unreachable!(),
        };
        assert_eq!(a["columns"][k]["name"], *name);
        assert_eq!(a["columns"][k]["value"].as_f64().unwrap(), v, "column {name}");
    }

    // Watched from step 5: two more steps give two more history rows.
    c.post(&format!("/api/runs/{id}/step?n=2"), json!({})).await;
    c.wait(&id, |r| r["status"] == "paused" && r["steps"] == 7).await;
    let (_, a) = c.get(&format!("/api/runs/{id}/agents/{first}")).await;
    assert_eq!(a["history"]["steps"], json!([5, 6, 7]));

    // Stepping a running run is refused; stopping ends it with its outputs.
    c.post(&format!("/api/runs/{id}/resume"), json!({})).await;
    let (code, e) = c.post(&format!("/api/runs/{id}/step"), json!({})).await;
    if code != 200 {
        assert_eq!(code, 409);
        assert!(e["error"].as_str().unwrap().contains("pause it before stepping"), "{e}");
    }
    c.post(&format!("/api/runs/{id}/stop"), json!({})).await;
    let run = c
        .wait(&id, |r| r["status"] == "interrupted" || r["status"] == "finished")
        .await;
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(&id).join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["steps_completed"], run["steps"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_command_lines_message_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let c = client(server(dir.path(), None));

    let (code, e) = c.get("/api/runs/no-such-run").await;
    assert_eq!(code, 404);
    assert!(
        e["error"].as_str().unwrap().contains("unknown run 'no-such-run'"),
        "{e}"
    );
    let (code, _) = c.get("/api/runs/..%2F..%2Fetc").await;
    assert!(code == 400 || code == 404, "{code}");

    // An override with an unknown key: the text `myriad run --set` prints.
    let (code, e) = c
        .post(
            "/api/runs",
            json!({"scenario": "sir-small-world.toml", "set": ["params.betta=0.1"]}),
        )
        .await;
    assert_eq!(code, 400);
    let Err(cli) = scenario::load(
        &scenarios().join("sir-small-world.toml"),
        &Overrides {
            set: vec!["params.betta=0.1".into()],
            seed: None,
        },
    ) else {
        panic!("an unknown parameter must be refused");
    };
    assert_eq!(e["error"].as_str().unwrap(), myriad_web::api::message(&cli));
    assert!(e["error"].as_str().unwrap().contains("betta"), "{e}");

    // A malformed upload names the file and line.
    let (code, e) = c
        .post(
            "/api/runs",
            json!({"toml": "name = \"x\"\nmodel = \"sir\"\nsteps = [oops\n", "filename": "mine.toml"}),
        )
        .await;
    assert_eq!(code, 400);
    let text = e["error"].as_str().unwrap();
    assert!(text.contains("mine.toml") && text.contains('3'), "{text}");

    let (code, e) = c.post("/api/runs", json!({"scenario": "nope.toml"})).await;
    assert_eq!(code, 404, "{e}");
    let (code, e) = c.post("/api/runs", json!({"scenario": "../Cargo.toml"})).await;
    assert_eq!(code, 400, "{e}");
    let (code, e) = c.post("/api/runs", json!({"scenarios": "sir-small-world.toml"})).await;
    assert_eq!(code, 400, "{e}");
    let (code, _) = c
        .post("/api/runs", json!({"scenario": "sir-small-world.toml", "threads": 0}))
        .await;
    assert_eq!(code, 400);

    // Two runs asked to write the same folder: the second is refused.
    let first = c
        .post(
            "/api/runs",
            json!({"scenario": "sir-small-world.toml", "out": "same", "paused": true}),
        )
        .await;
    assert_eq!(first.0, 200);
    let (code, e) = c
        .post("/api/runs", json!({"scenario": "sir-small-world.toml", "out": "same"}))
        .await;
    assert_eq!(code, 409);
    assert!(e["error"].as_str().unwrap().contains("same"), "{e}");

    // Questions the run cannot answer.
    let (code, e) = c.get("/api/runs/same/agents/100000").await;
    assert_eq!(code, 400);
    assert!(e["error"].as_str().unwrap().contains("agents 0 to 99999"), "{e}");
    let (code, e) = c.get("/api/runs/same/agents?where=colour=red").await;
    assert_eq!(code, 400);
    assert!(e["error"].as_str().unwrap().contains("stage"), "{e}");
    let (code, _) = c.get("/api/runs/same/points").await;
    assert_eq!(code, 400);
    let (code, _) = c.post("/api/runs/same/step?n=0", json!({})).await;
    assert_eq!(code, 400);
    c.post("/api/runs/same/stop", json!({})).await;
    c.wait("same", |r| r["status"] == "interrupted").await;
    let (code, e) = c.post("/api/runs/same/pause", json!({})).await;
    assert_eq!(code, 409, "{e}");

    // A run whose population cannot be built fails on the page, not the server.
    let (code, r) = c
        .post(
            "/api/runs",
            json!({"toml": "model = \"sir\"\nsteps = 3\n[population]\nfile = \"missing.csv\"\n\
                            [[layers]]\nname = \"ring\"\ntype = \"watts_strogatz\"\nk = 4\nrewire = 0.1\n"}),
        )
        .await;
    if code == 200 {
        let id = r["id"].as_str().unwrap();
        let run = c.wait(id, |r| r["status"] == "failed").await;
        assert!(run["error"].as_str().unwrap().contains("missing.csv"), "{run}");
    } else {
        assert_eq!(code, 400, "{r}");
        assert!(r["error"].as_str().unwrap().contains("missing.csv"), "{r}");
    }

    // Another site's page can send plain text or a form, not JSON: refused.
    let r = c
        .http
        .post(format!("{}/api/runs", c.base))
        .header("content-type", "text/plain")
        .body(r#"{"scenario": "sir-small-world.toml"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    // A name made to point at 127.0.0.1 (DNS rebinding): refused.
    let r = c
        .http
        .get(format!("{}/api/runs", c.base))
        .header("host", "evil.example:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    let (code, list) = c.get("/api/runs").await;
    assert_eq!(code, 200);
    assert!(list.as_array().unwrap().iter().any(|r| r["id"] == "same"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_games_transcript_is_served_whole_and_per_player() {
    let dir = tempfile::tempdir().unwrap();
    let c = client(server(dir.path(), None));
    let (code, r) = c
        .post("/api/runs", json!({"scenario": "donor-game.toml", "out": "donor"}))
        .await;
    assert_eq!(code, 200, "{r}");
    c.wait("donor", |r| r["status"] == "finished").await;
    let file = std::fs::read_to_string(dir.path().join("donor/transcript.jsonl")).unwrap();
    let written: Vec<Value> = file.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!written.is_empty());
    let (_, all) = c.get("/api/runs/donor/transcript").await;
    assert_eq!(
        all.as_array().unwrap(),
        &written,
        "the live transcript differs from transcript.jsonl"
    );
    let (_, mine) = c.get("/api/runs/donor/transcript?agent=0").await;
    let mine = mine.as_array().unwrap();
    let expected = written
        .iter()
        .filter(|e| e["donor"] == 0 || e["recipient"] == 0)
        .count();
    assert!(expected > 0);
    assert_eq!(mine.len(), expected);
    assert!(mine.iter().all(|e| e["donor"] == 0 || e["recipient"] == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_protected_server_refuses_calls_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = "0123456789abcdef0123";
    let base = server(dir.path(), Some(token));
    let http = reqwest::Client::new();
    for path in ["/", "/app.js", "/api/runs", "/api/scenarios"] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{path}");
        let body: Value = r.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("access token"), "{body}");
    }
    let r = http
        .get(format!("{base}/api/runs"))
        .bearer_auth("0123456789abcdef0124")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .get(format!("{base}/api/runs"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // The page opened with ?token= gets a cookie that carries the token after.
    let r = http.get(format!("{base}/?token={token}")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.starts_with("myriad_token=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let r = http
        .get(format!("{base}/api/runs"))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[test]
fn serving_beyond_loopback_needs_a_token() {
    let opts = |bind: &str, token: Option<&str>| myriad_web::ServeOptions {
        bind: bind.parse().unwrap(),
        port: 0,
        runs: std::env::temp_dir().join("myriad-web-never"),
        scenarios: scenarios(),
        token: token.map(str::to_string),
        threads: None,
    };
    let e = myriad_web::serve(opts("0.0.0.0", None), |_| panic!("must not start")).unwrap_err();
    assert!(matches!(e, myriad_web::ServeError::NoToken(_)), "{e}");
    assert!(e.to_string().contains("--token"), "{e}");
    let e = myriad_web::serve(opts("0.0.0.0", Some("short")), |_| panic!("must not start")).unwrap_err();
    assert!(matches!(e, myriad_web::ServeError::WeakToken(5)), "{e}");
    let t = myriad_web::new_token().unwrap();
    assert_eq!(t.len(), 32);
    assert_ne!(t, myriad_web::new_token().unwrap());
}
