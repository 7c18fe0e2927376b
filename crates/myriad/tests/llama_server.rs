//! The HTTP path against a real OpenAI-compatible server: llama.cpp's, from
//! the Python package `llama-cpp-python[server]` (installed by the README's
//! test command into a virtual environment named by `MYRIAD_LLAMA_PYTHON`),
//! serving the same GGUF file as the embedded backend, on 127.0.0.1. Both
//! APIs (chat and completions) and a whole archetype run go through it.

mod common;
use common::{myriad, run_quietly, stderr};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server, stopped when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// Start llama.cpp's server on a free port and wait until it serves.
fn start() -> Server {
    let python = std::env::var("MYRIAD_LLAMA_PYTHON").expect(
        "MYRIAD_LLAMA_PYTHON is not set: run the tests with scripts/test, which installs llama-cpp-python[server] and sets it",
    );
    let model = myriad_llm::local::default_model_path();
    assert!(model.is_file(), "{} is missing: run `myriad llm pull`", model.display());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::env::temp_dir().join(format!("llama-server-{port}.log"));
    let child = Command::new(&python)
        .args(["-m", "llama_cpp.server", "--model"])
        .arg(&model)
        .args([
            "--model_alias",
            "smollm2",
            "--host",
            "127.0.0.1",
            "--n_ctx",
            "2048",
            "--n_threads",
            "2",
        ])
        .args(["--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {python} -m llama_cpp.server: {e}"));
    let server = Server {
        child,
        url: format!("http://127.0.0.1:{port}/v1"),
    };
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(120) {
        if get(port, "/v1/models").is_some_and(|r| r.starts_with("HTTP/1.1 200") || r.starts_with("HTTP/1.0 200")) {
            return server;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!(
        "llama.cpp's server did not answer within 120 s: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/covid-llm-staten-island.toml")
}

#[test]
fn the_http_path_works_against_llama_cpps_server_with_chat_and_completions() {
    let server = start();
    let on_server = |api: &str| {
        vec![
            "--set".to_string(),
            "llm.backend=http".to_string(),
            "--set".to_string(),
            format!("llm.endpoint={}", server.url),
            "--set".to_string(),
            "llm.model=smollm2".to_string(),
            "--set".to_string(),
            format!("llm.api={api}"),
        ]
    };
    for api in ["chat", "completions"] {
        let mut args = vec!["llm".to_string(), "check".to_string(), scenario().display().to_string()];
        args.extend(on_server(api));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = myriad(&refs);
        assert!(o.status.success(), "{api}: {}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("answer: \""), "{api}: {out}");
        // The server counted the tokens of a real prompt of ~70 words.
        let tokens_in: u64 = out
            .split("tokens: ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{api}: no token count in {out}"));
        assert!(tokens_in > 50, "{api}: {out}");
    }

    // A week of archetype decisions over HTTP: every request answered.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut args = on_server("chat");
    let cache = format!("llm.cache={}", dir.path().join("answers.jsonl").display());
    args.extend(
        ["population.scale=0.02", "steps=7", "llm.max_concurrency=4", &cache]
            .iter()
            .flat_map(|s| ["--set".to_string(), s.to_string()]),
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run_quietly(&scenario(), &out, &refs);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let b = &s["behaviour"];
    assert_eq!(b["backend"], "http");
    // 2 decisions x 6 age groups x 5 samples, plus re-asks.
    assert!(b["client"]["calls"].as_u64().unwrap() >= 60, "{b}");
    assert_eq!(b["client"]["failures"], 0, "{b}");
    assert!(b["client"]["tokens_out"].as_u64().unwrap() >= 60, "{b}");
}
