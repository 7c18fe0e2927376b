//! The client against a real local HTTP server speaking the OpenAI protocol,
//! with scripted answers and faults: errors, rate limits, slow answers,
//! malformed bodies, dropped connections, refused keys.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use myriad_llm::archetype::{Archetypes, Question};
use myriad_llm::{AnswerKind, Api, LlmClient, LlmConfig, LlmError, Mode, Template};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One scripted reply.
#[derive(Clone)]
enum Reply {
    Text(&'static str),
    Status(u16, Option<&'static str>),
    Slow(u64, &'static str),
    Malformed,
    NoChoices,
    /// Answer from the prompt: "yes" if it contains the needle, else "no".
    YesIf(&'static str),
    Garbled,
}

#[derive(Default)]
struct Server {
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Option<Reply>>,
    hits: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    auth: Mutex<Vec<String>>,
}

fn body(text: &str, chat: bool) -> Value {
    let choice = if chat {
        json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"})
    } else {
        json!({"index": 0, "text": text, "finish_reason": "stop"})
    };
    json!({"id": "x", "object": "chat.completion", "choices": [choice], "usage": {"prompt_tokens": 10, "completion_tokens": 2}})
}

async fn answer(s: Arc<Server>, headers: HeaderMap, req: Value, chat: bool) -> Response {
    s.hits.fetch_add(1, Ordering::SeqCst);
    let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    s.max_in_flight.fetch_max(now, Ordering::SeqCst);
    if let Some(a) = headers.get("authorization") {
        s.auth.lock().unwrap().push(a.to_str().unwrap().to_string());
    }
    let prompt = if chat {
        req["messages"].as_array().unwrap().last().unwrap()["content"]
            .as_str()
            .unwrap()
            .to_string()
    } else {
        req["prompt"].as_str().unwrap_or_default().to_string()
    };
    let reply = s
        .script
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| s.default.lock().unwrap().clone())
        .unwrap_or(Reply::Text("yes"));
    let out = match reply {
        Reply::Text(t) => Json(body(t, chat)).into_response(),
        Reply::Status(code, retry) => {
            let mut r = (StatusCode::from_u16(code).unwrap(), "scripted error").into_response();
            if let Some(after) = retry {
                r.headers_mut().insert("retry-after", after.parse().unwrap());
            }
            r
        }
        Reply::Slow(ms, t) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Json(body(t, chat)).into_response()
        }
        Reply::Malformed => (StatusCode::OK, "{\"choices\": [ {\"mess").into_response(),
        Reply::NoChoices => Json(json!({"object": "error", "detail": "nothing"})).into_response(),
        Reply::YesIf(needle) => Json(body(if prompt.contains(needle) { "Yes." } else { "No." }, chat)).into_response(),
        Reply::Garbled => Json(body("The weather is nice.", chat)).into_response(),
    };
    s.in_flight.fetch_sub(1, Ordering::SeqCst);
    out
}

/// Start a server on 127.0.0.1 with a port of its own; returns its base URL.
async fn start(script: Vec<Reply>, default: Option<Reply>) -> (String, Arc<Server>) {
    let s = Arc::new(Server {
        script: Mutex::new(script.into()),
        default: Mutex::new(default),
        ..Server::default()
    });
    let app = Router::new()
        .route(
            "/v1/chat/completions",
            post(|State(s): State<Arc<Server>>, h: HeaderMap, Json(v): Json<Value>| answer(s, h, v, true)),
        )
        .route(
            "/v1/completions",
            post(|State(s): State<Arc<Server>>, h: HeaderMap, Json(v): Json<Value>| answer(s, h, v, false)),
        )
        .with_state(s.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), s)
}

/// An endpoint that accepts connections and closes them without a word.
fn dropper() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming() {
            drop(c);
        }
    });
    format!("http://{addr}/v1")
}

/// An address nothing listens on.
fn closed() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/v1")
}

fn config(endpoint: &str) -> LlmConfig {
    let mut c = LlmConfig::new(endpoint, "test-model");
    c.timeout = Duration::from_millis(2000);
    c.backoff_initial = Duration::from_millis(10);
    c.backoff_max = Duration::from_millis(50);
    c.max_retries = 3;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_until_an_answer_comes() {
    let (url, s) = start(
        vec![Reply::Status(500, None), Reply::Status(503, None), Reply::Text("Yes")],
        None,
    )
    .await;
    let client = LlmClient::new(config(&url)).unwrap();
    let c = client.complete("Isolate?", 0).await.unwrap();
    assert_eq!(c.text, "Yes");
    assert_eq!((c.tokens_in, c.tokens_out), (10, 2));
    assert_eq!(s.hits.load(Ordering::SeqCst), 3);
    let st = client.stats();
    assert_eq!((st.calls, st.retries, st.failures, st.tokens_in), (1, 2, 0, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_instead_of_the_backoff() {
    let (url, _) = start(vec![Reply::Status(429, Some("1")), Reply::Text("no")], None).await;
    let mut cfg = config(&url);
    // A backoff this long would show; Retry-After (1 s) must be used instead.
    cfg.backoff_initial = Duration::from_secs(20);
    cfg.backoff_max = Duration::from_secs(20);
    let client = LlmClient::new(cfg).unwrap();
    let t = Instant::now();
    assert_eq!(client.complete("q", 0).await.unwrap().text, "no");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(950),
        "did not wait for Retry-After: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(10),
        "waited for the backoff instead: {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answers_time_out_and_the_error_names_the_endpoint() {
    let (url, s) = start(vec![], Some(Reply::Slow(1500, "yes"))).await;
    let mut cfg = config(&url);
    cfg.timeout = Duration::from_millis(200);
    cfg.max_retries = 1;
    let client = LlmClient::new(cfg).unwrap();
    let e = client.complete("q", 0).await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, LlmError::Unreachable { attempts: 2, .. }), "{msg}");
    assert!(msg.contains(&url) && msg.contains("no answer within 0.2 s"), "{msg}");
    assert_eq!(s.hits.load(Ordering::SeqCst), 2);
    assert_eq!(client.stats().failures, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_wrong_bodies_are_retried() {
    let (url, _) = start(vec![Reply::Malformed, Reply::NoChoices, Reply::Text("yes")], None).await;
    let client = LlmClient::new(config(&url)).unwrap();
    assert_eq!(client.complete("q", 0).await.unwrap().text, "yes");
    assert_eq!(client.stats().retries, 2);

    let (url, _) = start(vec![], Some(Reply::NoChoices)).await;
    let client = LlmClient::new(config(&url)).unwrap();
    let msg = client.complete("q", 0).await.unwrap_err().to_string();
    assert!(msg.contains("malformed answer: no choices"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_is_not_retried() {
    let (url, s) = start(vec![Reply::Status(401, None)], None).await;
    let client = LlmClient::new(config(&url)).unwrap();
    let e = client.complete("q", 0).await.unwrap_err();
    assert!(matches!(e, LlmError::Refused { status: 401, .. }), "{e}");
    assert!(e.to_string().contains(&url));
    assert_eq!(s.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_and_dead_endpoints_fall_over_to_a_live_one() {
    let (good, s) = start(vec![], Some(Reply::Text("yes"))).await;
    let mut cfg = config(&dropper());
    cfg.endpoints.push(good.clone());
    let client = LlmClient::new(cfg).unwrap();
    for k in 0..5 {
        assert_eq!(client.complete("q", k).await.unwrap().text, "yes");
    }
    assert_eq!(s.hits.load(Ordering::SeqCst), 5);

    // Nothing listening at all: the error names the endpoint.
    let dead = closed();
    let client = LlmClient::new(config(&dead)).unwrap();
    let msg = client.complete("q", 0).await.unwrap_err().to_string();
    assert!(
        msg.contains(&dead) && msg.contains("unreachable after 4 attempts"),
        "{msg}"
    );
    let dropped = dropper();
    let client = LlmClient::new(config(&dropped)).unwrap();
    let msg = client.complete("q", 0).await.unwrap_err().to_string();
    assert!(msg.contains(&dropped), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_comes_from_the_named_variable() {
    let (url, s) = start(vec![], None).await;
    let mut cfg = config(&url);
    cfg.api_key_env = Some("MYRIAD_TEST_KEY_THAT_IS_NOT_SET".into());
    let msg = LlmClient::new(cfg.clone()).err().unwrap().to_string();
    assert!(msg.contains("MYRIAD_TEST_KEY_THAT_IS_NOT_SET"), "{msg}");
    std::env::set_var("MYRIAD_TEST_KEY", "sk-secret");
    cfg.api_key_env = Some("MYRIAD_TEST_KEY".into());
    let client = LlmClient::new(cfg).unwrap();
    client.complete("q", 0).await.unwrap();
    assert_eq!(s.auth.lock().unwrap().as_slice(), ["Bearer sk-secret"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_completions_work_too() {
    let (url, _) = start(vec![Reply::Text(" 42")], None).await;
    let mut cfg = config(&url);
    cfg.api = Api::Completions;
    let client = LlmClient::new(cfg).unwrap();
    assert_eq!(client.complete("Guess:", 0).await.unwrap().text, " 42");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_requests_are_sent_once_and_concurrency_is_bounded() {
    let (url, s) = start(vec![], Some(Reply::Slow(100, "yes"))).await;
    let mut cfg = config(&url);
    cfg.max_concurrency = 4;
    let client = LlmClient::new(cfg).unwrap();
    let mut requests: Vec<(String, u32)> = (0..100).map(|_| ("same".to_string(), 0)).collect();
    requests.extend((0..20).map(|k| (format!("prompt {k}"), 0)));
    let answers = client.complete_all(&requests).await;
    assert!(answers.iter().all(|a| a.as_ref().unwrap().text == "yes"));
    assert_eq!(s.hits.load(Ordering::SeqCst), 21);
    assert_eq!(s.max_in_flight.load(Ordering::SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_then_replay_without_the_server_gives_the_same_answers() {
    let d = tempfile::tempdir().unwrap();
    let cache = d.path().join("llm-cache.jsonl");
    let (url, s) = start(vec![], Some(Reply::YesIf("old"))).await;
    let mut cfg = config(&url);
    cfg.cache = Some(cache.clone());
    cfg.mode = Mode::Record;
    let requests: Vec<(String, u32)> = ["old man", "young man", "old woman"]
        .iter()
        .flat_map(|p| (0..3).map(move |k| (p.to_string(), k)))
        .collect();
    let client = LlmClient::new(cfg.clone()).unwrap();
    let live: Vec<String> = client
        .complete_all(&requests)
        .await
        .into_iter()
        .map(|a| a.unwrap().text)
        .collect();
    assert_eq!(s.hits.load(Ordering::SeqCst), 9);
    // Recording again asks nothing new.
    let again = LlmClient::new(cfg.clone()).unwrap();
    again.complete_all(&requests).await;
    assert_eq!(s.hits.load(Ordering::SeqCst), 9);
    assert_eq!(again.stats().cache_hits, 9);

    // Replay against a dead endpoint: identical answers, no request.
    let mut replay = cfg.clone();
    replay.endpoints = vec![closed()];
    replay.mode = Mode::Replay;
    let client = LlmClient::new(replay).unwrap();
    let replayed: Vec<String> = client
        .complete_all(&requests)
        .await
        .into_iter()
        .map(|a| a.unwrap().text)
        .collect();
    assert_eq!(replayed, live);
    // A prompt never recorded fails clearly in replay mode.
    let e = client.complete("never asked", 0).await.unwrap_err();
    assert!(matches!(e, LlmError::ReplayMiss { .. }), "{e}");
    assert!(e.to_string().contains("llm-cache.jsonl"), "{e}");
    // Record and replay need a cache file.
    let mut no_cache = cfg.clone();
    no_cache.cache = None;
    assert!(LlmClient::new(no_cache).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archetypes_ask_each_group_k_times_and_fall_back_when_nothing_parses() {
    let (url, s) = start(vec![], Some(Reply::YesIf("65A"))).await;
    let client = LlmClient::new(config(&url)).unwrap();
    let ages: Vec<u32> = (0..6000).map(|i| i % 6).collect();
    let labels: Vec<String> = ["U19", "20t29", "30t39", "40t49", "50t64", "65A"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut a = Archetypes::new(&[("age_group".into(), ages, labels)]);
    assert_eq!(a.len(), 6);
    let q = Question {
        template: Template::parse("You are aged {age_group}. Cases this week: {cases}. Stay home? Answer yes or no.")
            .unwrap(),
        kind: AnswerKind::YesNo,
        samples: 5,
        reasks: 2,
        smoothing: 0.0,
        fallback: None,
        logprob: false,
    };
    let obs: BTreeMap<String, String> = [("cases".to_string(), "120".to_string())].into();
    let round = a.ask(&client, &q, &obs, |_| BTreeMap::new()).await.unwrap();
    assert_eq!(round.probabilities, [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
    // 6 groups x 5 samples: 30 calls for 6,000 agents.
    assert_eq!((round.requests, s.hits.load(Ordering::SeqCst)), (30, 30));

    // Unreadable answers are re-asked (new sample indices), then fall back.
    *s.default.lock().unwrap() = Some(Reply::Garbled);
    let q2 = Question {
        fallback: Some(0.25),
        ..q.clone()
    };
    let obs2: BTreeMap<String, String> = [("cases".to_string(), "130".to_string())].into();
    let round = a.ask(&client, &q2, &obs2, |_| BTreeMap::new()).await.unwrap();
    assert_eq!(round.probabilities, [0.25; 6]);
    assert_eq!((round.unparsed, round.fallbacks, round.requests), (90, 6, 90));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_completions_send_many_prompts_per_request_and_keep_their_order() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = Router::new().route(
        "/v1/completions",
        post(move |Json(req): Json<Value>| {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                let prompts = req["prompt"].as_array().unwrap().clone();
                // Answer in reverse order with explicit indices: the client
                // must place answers by index, not by position.
                let choices: Vec<Value> = prompts
                    .iter()
                    .enumerate()
                    .rev()
                    .map(|(i, p)| json!({"index": i, "text": format!("echo {}", p.as_str().unwrap())}))
                    .collect();
                Json(json!({"choices": choices}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let d = tempfile::tempdir().unwrap();
    let mut cfg = config(&url);
    cfg.api = Api::Completions;
    cfg.cache = Some(d.path().join("c.jsonl"));
    cfg.mode = Mode::Record;
    let client = LlmClient::new(cfg.clone()).unwrap();
    let mut requests: Vec<(String, u32)> = (0..2500).map(|i| (format!("p{i}"), 0)).collect();
    requests.push(("p7".into(), 0)); // a duplicate
    let out = client.complete_batched(&requests, 1000).await.unwrap();
    assert_eq!(out.len(), 2501);
    for (r, c) in requests.iter().zip(&out) {
        assert_eq!(c.text, format!("echo {}", r.0));
    }
    // 2,500 distinct prompts in batches of 1,000: 3 requests.
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    // Recorded: a replay needs no server.
    let mut replay = cfg.clone();
    replay.endpoints = vec![closed()];
    replay.mode = Mode::Replay;
    let again = LlmClient::new(replay)
        .unwrap()
        .complete_batched(&requests, 1000)
        .await
        .unwrap();
    assert_eq!(
        again,
        out.iter()
            .map(|c| myriad_llm::Completion {
                cached: true,
                ..c.clone()
            })
            .collect::<Vec<_>>()
    );
    // Chat cannot batch.
    assert!(LlmClient::new(config(&url))
        .unwrap()
        .complete_batched(&requests, 10)
        .await
        .is_err());
}
