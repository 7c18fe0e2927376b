//! The client against servers that misbehave on purpose: echoing the API
//! key, answering with megabytes, failing one batch of many, refusing a
//! batch. Each test is a regression test for a defect found when myriad was
//! fed hostile input (issue 10).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use myriad_llm::cache::Cache;
use myriad_llm::{Api, LlmClient, LlmConfig, LlmError, Mode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "sk-test-0123456789abcdef";

/// What the server does.
#[derive(Clone, Copy)]
enum Behaviour {
    /// 401 with the Authorization header echoed in the body.
    EchoKeyRefused,
    /// 500 with the Authorization header echoed, every time.
    EchoKeyFailing,
    /// A normal answer whose text repeats the key.
    EchoKeyInAnswer,
    /// An answer of 50 MB.
    Huge,
    /// Batches: the batch holding "FAIL" gets 503 forever, others answer.
    FailOneBatch,
    /// Batches: 413 (payload too large).
    TooLarge,
}

struct Server {
    behaviour: Behaviour,
    hits: AtomicUsize,
}

async fn reply(s: Arc<Server>, headers: HeaderMap, req: Value, chat: bool) -> Response {
    s.hits.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .map(|a| a.to_str().unwrap().to_string())
        .unwrap_or_default();
    let ok = |texts: Vec<String>| {
        let choices: Vec<Value> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if chat {
                    json!({"index": i, "message": {"role": "assistant", "content": t}})
                } else {
                    json!({"index": i, "text": t})
                }
            })
            .collect();
        Json(json!({"choices": choices, "usage": {"prompt_tokens": 5, "completion_tokens": 1}})).into_response()
    };
    let prompts: Vec<String> = match &req["prompt"] {
        Value::Array(a) => a.iter().map(|p| p.as_str().unwrap().to_string()).collect(),
        Value::String(p) => vec![p.clone()],
        _ => vec![req["messages"][0]["content"].as_str().unwrap_or_default().to_string()],
    };
    match s.behaviour {
        Behaviour::EchoKeyRefused => (
            StatusCode::UNAUTHORIZED,
            format!("{{\"error\": \"invalid key in header '{auth}'\"}}"),
        )
            .into_response(),
        Behaviour::EchoKeyFailing => {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("upstream rejected {auth}")).into_response()
        }
        Behaviour::EchoKeyInAnswer => ok(vec![format!("yes, and your key is {auth}")]),
        Behaviour::Huge => ok(vec!["y".repeat(50 * 1024 * 1024)]),
        Behaviour::FailOneBatch => {
            if prompts.iter().any(|p| p.contains("FAIL")) {
                (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response()
            } else {
                ok(prompts.iter().map(|p| format!("answer to {p}")).collect())
            }
        }
        Behaviour::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, format!("too large for {auth}")).into_response(),
    }
}

async fn start(behaviour: Behaviour) -> (String, Arc<Server>) {
    let s = Arc::new(Server {
        behaviour,
        hits: AtomicUsize::new(0),
    });
    let app = Router::new()
        .route(
            "/v1/chat/completions",
            post(|State(s): State<Arc<Server>>, h: HeaderMap, Json(v): Json<Value>| reply(s, h, v, true)),
        )
        .route(
            "/v1/completions",
            post(|State(s): State<Arc<Server>>, h: HeaderMap, Json(v): Json<Value>| reply(s, h, v, false)),
        )
        .with_state(s.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), s)
}

fn config(url: &str, var: &str) -> LlmConfig {
    std::env::set_var(var, KEY);
    let mut c = LlmConfig::new(url, "m");
    c.api_key_env = Some(var.into());
    c.max_retries = 2;
    c.backoff_initial = Duration::from_millis(5);
    c.backoff_max = Duration::from_millis(20);
    c
}

/// Every file under `dir`, read as text.
fn all_text(dir: &std::path::Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.push_str(&all_text(&p));
        } else {
            out.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn an_echoed_key_never_leaves_the_client() {
    let d = tempfile::tempdir().unwrap();
    for (behaviour, var) in [
        (Behaviour::EchoKeyRefused, "MYRIAD_TEST_KEY_A"),
        (Behaviour::EchoKeyFailing, "MYRIAD_TEST_KEY_B"),
        (Behaviour::EchoKeyInAnswer, "MYRIAD_TEST_KEY_C"),
    ] {
        let (url, _) = start(behaviour).await;
        let mut cfg = config(&url, var);
        cfg.cache = Some(d.path().join(format!("{var}.jsonl")));
        cfg.mode = Mode::Record;
        let client = LlmClient::new(cfg).unwrap();
        let text = match client.complete("Stay home?", 0).await {
            Ok(c) => c.text,
            Err(e) => e.to_string(),
        };
        assert!(!text.contains(KEY), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }
    assert!(!all_text(d.path()).contains(KEY), "the key reached the cache");
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_in_an_endpoint_url_are_never_shown() {
    let (url, _) = start(Behaviour::EchoKeyFailing).await;
    let with_creds = url.replace("http://", "http://alice:hunter22@");
    let mut cfg = LlmConfig::new(&with_creds, "m");
    cfg.max_retries = 0;
    let client = LlmClient::new(cfg).unwrap();
    let shown = client.shown_endpoints().join(",");
    assert!(!shown.contains("hunter22") && !shown.contains("alice"), "{shown}");
    let e = client.complete("x", 0).await.unwrap_err().to_string();
    assert!(!e.contains("hunter22") && !e.contains("alice"), "{e}");
    // The server saw the credentials (basic auth from the URL) and echoed them.
    assert!(e.contains("[redacted]") || e.contains("***"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_answer_is_cut_off_not_stored() {
    let d = tempfile::tempdir().unwrap();
    let (url, _) = start(Behaviour::Huge).await;
    let mut cfg = LlmConfig::new(&url, "m");
    cfg.max_retries = 0;
    cfg.cache = Some(d.path().join("c.jsonl"));
    cfg.mode = Mode::Record;
    let client = LlmClient::new(cfg).unwrap();
    let e = client.complete("x", 0).await.unwrap_err().to_string();
    assert!(e.contains("answer larger than"), "{e}");
    drop(client);
    assert!(std::fs::metadata(d.path().join("c.jsonl")).unwrap().len() < 1024);
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_of_good_batches_are_cached_when_another_batch_fails() {
    let d = tempfile::tempdir().unwrap();
    let (url, _) = start(Behaviour::FailOneBatch).await;
    let cache = d.path().join("c.jsonl");
    let mut cfg = LlmConfig::new(&url, "m");
    cfg.api = Api::Completions;
    cfg.max_retries = 1;
    cfg.backoff_initial = Duration::from_millis(5);
    cfg.cache = Some(cache.clone());
    cfg.mode = Mode::Record;
    cfg.max_concurrency = 4;
    let client = LlmClient::new(cfg).unwrap();
    // 2,010 prompts in batches of 10: the last batch fails for good.
    let mut prompts: Vec<(String, u32)> = (0..2000).map(|i| (format!("agent {i}"), 0)).collect();
    prompts.extend((0..10).map(|i| (format!("FAIL {i}"), 0)));
    let e = client.complete_batched(&prompts, 10).await.unwrap_err();
    assert!(matches!(e, LlmError::Unreachable { .. }), "{e}");
    drop(client);
    let stored = Cache::open(&cache).unwrap();
    assert_eq!(stored.len(), 2000, "every answer received is cached");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_batch_fails_at_once_saying_what_the_server_said() {
    let (url, server) = start(Behaviour::TooLarge).await;
    let mut cfg = config(&url, "MYRIAD_TEST_KEY_D");
    cfg.api = Api::Completions;
    cfg.max_retries = 5;
    let client = LlmClient::new(cfg).unwrap();
    let prompts: Vec<(String, u32)> = (0..4).map(|i| (format!("p{i}"), 0)).collect();
    let e = client.complete_batched(&prompts, 4).await.unwrap_err();
    match &e {
        LlmError::Refused { status, body, .. } => {
            assert_eq!(*status, 413);
            assert!(body.contains("too large") && !body.contains(KEY), "{body}");
        }
        other => panic!("expected a refusal, got {other}"),
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), 1, "not retried");
}

#[test]
fn settings_that_cannot_work_are_refused() {
    let base = || LlmConfig::new("http://127.0.0.1:9/v1", "m");
    for (change, expect) in [
        (
            Box::new(|c: &mut LlmConfig| c.timeout = Duration::from_secs(1 << 40)) as Box<dyn Fn(&mut LlmConfig)>,
            "timeout",
        ),
        (
            Box::new(|c: &mut LlmConfig| c.timeout = Duration::from_nanos(1)),
            "timeout",
        ),
        (
            Box::new(|c: &mut LlmConfig| c.requests_per_second = Some(1e-300)),
            "requests_per_second",
        ),
        (
            Box::new(|c: &mut LlmConfig| c.endpoints = vec!["http://".into()]),
            "not a valid URL",
        ),
        (
            Box::new(|c: &mut LlmConfig| c.endpoints = vec!["ftp://x/v1".into()]),
            "must start with http",
        ),
    ] {
        let mut c = base();
        change(&mut c);
        let e = LlmClient::new(c).err().expect("refused").to_string();
        assert!(e.contains(expect), "{e}");
    }
}
