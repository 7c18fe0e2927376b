//! `myriad llm serve`: a stand-in OpenAI-compatible server for trying LLM
//! scenarios and measuring the client without a model. It answers yes or no
//! (or a number in a range) at random (a hash of the prompt and the
//! request's seed, so answers are repeatable), after an optional latency. Plain completions accept a list
//! of prompts in one request (batching), as vLLM does.

use anyhow::{Context, Result};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::Arc;
use std::time::Duration;

/// Settings of the mock server.
pub struct MockOptions {
    /// Port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// Delay before each answer.
    pub latency: Duration,
    /// Share of "yes" answers.
    pub yes_share: f64,
    /// Answer a whole number drawn uniformly from this range instead of yes/no.
    pub numbers: Option<(u64, u64)>,
}

/// The answer to `prompt` at position `index` of a request with `seed`.
fn answer(prompt: &str, seed: u64, index: usize, o: &MockOptions) -> String {
    let h = BuildHasherDefault::<DefaultHasher>::default().hash_one((prompt, seed, index));
    let u = (h >> 11) as f64 / (1u64 << 53) as f64;
    match o.numbers {
        Some((lo, hi)) => format!("{}", lo + (u * (hi - lo + 1) as f64) as u64),
        None if u < o.yes_share => "Yes.".into(),
        None => "No.".into(),
    }
}

fn tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

async fn chat(State(o): State<Arc<MockOptions>>, Json(req): Json<Value>) -> Json<Value> {
    tokio::time::sleep(o.latency).await;
    let prompt = req["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default();
    let text = answer(prompt, req["seed"].as_u64().unwrap_or(0), 0, &o);
    Json(json!({
        "object": "chat.completion",
        "model": req["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": tokens(prompt), "completion_tokens": 1},
    }))
}

async fn completions(State(o): State<Arc<MockOptions>>, Json(req): Json<Value>) -> Json<Value> {
    tokio::time::sleep(o.latency).await;
    let prompts: Vec<String> = match &req["prompt"] {
        Value::Array(a) => a.iter().map(|p| p.as_str().unwrap_or_default().to_string()).collect(),
        p => vec![p.as_str().unwrap_or_default().to_string()],
    };
    let seed = req["seed"].as_u64().unwrap_or(0);
    let choices: Vec<Value> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| json!({"index": i, "text": answer(p, seed, i, &o), "finish_reason": "stop"}))
        .collect();
    let used: u64 = prompts.iter().map(|p| tokens(p)).sum();
    Json(json!({
        "object": "text_completion",
        "model": req["model"],
        "choices": choices,
        "usage": {"prompt_tokens": used, "completion_tokens": prompts.len()},
    }))
}

/// Serve until the process is stopped.
pub fn serve(o: MockOptions) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", o.port))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{}", o.port))?;
        let addr = listener.local_addr()?;
        let answers = match o.numbers {
            Some((lo, hi)) => format!("numbers {lo} to {hi}"),
            None => format!("{:.0}% yes", o.yes_share * 100.0),
        };
        eprintln!(
            "mock OpenAI-compatible server on http://{addr}/v1 (chat and completions; {answers}, {} ms latency); Ctrl-C stops it",
            o.latency.as_millis()
        );
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/completions", post(completions))
            .with_state(Arc::new(o));
        axum::serve(listener, app).await.context("serving")
    })
}
