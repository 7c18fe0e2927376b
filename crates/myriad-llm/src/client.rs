//! The OpenAI-compatible HTTP client: chat completions or plain completions,
//! against one or more endpoints (vLLM, llama.cpp's server, Ollama, SGLang,
//! hosted APIs).
//!
//! Every request goes through, in order: the answer cache (per [`Mode`]),
//! a concurrency limit, a requests-per-second limit, the least-loaded
//! endpoint, and retries with exponential backoff and full jitter on
//! timeouts, connection errors, 429 and 5xx (a `Retry-After` header in
//! seconds is honoured instead of the backoff). Other 4xx answers (a wrong
//! key, a wrong URL) are not retried: they will not get better.

use crate::cache::{Cache, CacheError, Entry, Key, Mode};
use futures::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::{json, Value};
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which OpenAI endpoint to call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// `POST {base}/chat/completions` with a user message.
    Chat,
    /// `POST {base}/completions` with a prompt.
    Completions,
}

impl Api {
    fn name(self) -> &'static str {
        match self {
            Api::Chat => "chat",
            Api::Completions => "completions",
        }
    }
}

/// Client settings (the scenario's `[llm]` table).
#[derive(Clone, Debug)]
pub struct LlmConfig {
    /// Base URLs, e.g. `http://127.0.0.1:8000/v1`.
    pub endpoints: Vec<String>,
    /// Model name sent with each request.
    pub model: String,
    /// Chat or plain completions.
    pub api: Api,
    /// Environment variable holding the API key (never written anywhere).
    pub api_key_env: Option<String>,
    /// Optional system message for chat requests.
    pub system: Option<String>,
    /// Sampling temperature.
    pub temperature: f64,
    /// Completion token limit.
    pub max_tokens: u32,
    /// Time limit per request.
    pub timeout: Duration,
    /// Requests in flight at most.
    pub max_concurrency: usize,
    /// Requests started per second at most (`None`: no limit).
    pub requests_per_second: Option<f64>,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff delay (doubled each retry, up to `backoff_max`).
    pub backoff_initial: Duration,
    /// Largest backoff delay.
    pub backoff_max: Duration,
    /// Answer cache file (needed for `record` and `replay`).
    pub cache: Option<PathBuf>,
    /// Cache mode.
    pub mode: Mode,
    /// Prompts per HTTP request (1: one each; more needs the completions
    /// API, which takes a list of prompts).
    pub batch: usize,
    /// The embedded backend instead of HTTP endpoints (`None`: HTTP).
    pub local: Option<crate::local::LocalSettings>,
}

impl LlmConfig {
    /// Defaults for an endpoint and model: chat, temperature 0.7, 16 tokens,
    /// 30 s timeout, 64 concurrent requests, 5 retries from 0.5 s to 30 s.
    pub fn new(endpoint: &str, model: &str) -> LlmConfig {
        LlmConfig {
            endpoints: vec![endpoint.to_string()],
            model: model.to_string(),
            api: Api::Chat,
            api_key_env: None,
            system: None,
            temperature: 0.7,
            max_tokens: 16,
            timeout: Duration::from_secs(30),
            max_concurrency: 64,
            requests_per_second: None,
            max_retries: 5,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            cache: None,
            mode: Mode::Live,
            batch: 1,
            local: None,
        }
    }

    /// Defaults for the embedded backend running `settings.path`: chat,
    /// temperature 0.7, 16 tokens; the model's name in the cache is its
    /// file name ([`crate::local::model_id`]).
    pub fn local(settings: crate::local::LocalSettings) -> LlmConfig {
        let mut c = LlmConfig::new("http://local", &crate::local::model_id(&settings.path));
        c.endpoints.clear();
        c.batch = settings.batch;
        c.local = Some(settings);
        c
    }
}

/// One answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// The text.
    pub text: String,
    /// Prompt tokens (as reported; 0 if the endpoint does not say).
    pub tokens_in: u64,
    /// Completion tokens.
    pub tokens_out: u64,
    /// Came from the cache.
    pub cached: bool,
}

/// Why a request failed for good.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// Every attempt failed with a retryable error.
    #[error("LLM endpoint {endpoint} unreachable after {attempts} attempts: {last}")]
    Unreachable {
        /// The endpoint(s) tried.
        endpoint: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: String,
    },
    /// The endpoint refused the request (a 4xx other than 429).
    #[error("LLM endpoint {endpoint} answered HTTP {status}: {body}")]
    Refused {
        /// The endpoint.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// Start of the response body.
        body: String,
    },
    /// Replay mode and the prompt is not in the cache.
    #[error("replay: no cached answer in {cache} for sample {sample} of prompt \"{prompt}\" (record it first with mode = \"record\")")]
    ReplayMiss {
        /// The cache file.
        cache: String,
        /// Start of the prompt.
        prompt: String,
        /// Sample index.
        sample: u32,
    },
    /// The configuration cannot work.
    #[error("LLM configuration: {0}")]
    Config(String),
    /// The cache file.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The embedded model.
    #[error(transparent)]
    Local(#[from] crate::local::LocalError),
}

/// Counters for `summary.json`.
#[derive(Debug, Default)]
pub struct Stats {
    calls: AtomicU64,
    cache_hits: AtomicU64,
    tokens_in: AtomicU64,
    tokens_out: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
    wait_micros: AtomicU64,
}

/// A snapshot of [`Stats`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StatsSnapshot {
    /// HTTP requests that returned an answer.
    pub calls: u64,
    /// Answers served from the cache.
    pub cache_hits: u64,
    /// Prompt tokens of the calls.
    pub tokens_in: u64,
    /// Completion tokens of the calls.
    pub tokens_out: u64,
    /// Retried attempts.
    pub retries: u64,
    /// Requests that failed for good.
    pub failures: u64,
    /// Wall time spent waiting on the LLM (seconds, summed over waits made
    /// by the caller, not over concurrent requests).
    pub wait_seconds: f64,
}

struct Endpoint {
    /// The base URL requests go to (credentials included).
    url: String,
    /// The same without credentials: what messages show.
    shown: String,
    in_flight: AtomicUsize,
}

/// Largest answer body read, beyond the per-prompt allowance: a server that
/// ignores `max_tokens` and streams megabytes is cut off, not stored.
const BODY_BASE_BYTES: usize = 64 * 1024;

/// Bytes allowed per completion token in a stored answer (a token is a few
/// characters; 32 bytes leaves room for any script).
const BYTES_PER_TOKEN: usize = 32;

/// The client. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct LlmClient {
    cfg: LlmConfig,
    http: reqwest::Client,
    endpoints: Vec<Endpoint>,
    api_key: Option<String>,
    permits: tokio::sync::Semaphore,
    next_start: Mutex<Instant>,
    cache: Option<Cache>,
    stats: Stats,
    redactor: crate::redact::Redactor,
    /// The embedded model, loaded when first needed (never in replay).
    local: Option<local_answers::LocalSlot>,
    /// The most recent calls, for a live view (the dashboard).
    log: Arc<myriad_core::behaviour::CallLog>,
}

/// Calls kept in a client's [`LlmClient::call_log`].
const CALLS_KEPT: usize = 2000;

enum Attempt {
    Done(Completion),
    Retry { reason: String, after: Option<Duration> },
    Fatal(LlmError),
}

fn shorten(s: &str, n: usize) -> String {
    let t: String = s.chars().take(n).collect();
    if s.chars().count() > n {
        format!("{t}...")
    } else {
        t
    }
}

impl LlmClient {
    /// Check the configuration, read the API key, open the cache.
    pub fn new(cfg: LlmConfig) -> Result<LlmClient, LlmError> {
        let local = match &cfg.local {
            Some(settings) => Some(local_answers::LocalSlot::check(settings, cfg.mode)?),
            None => None,
        };
        if cfg.endpoints.is_empty() && local.is_none() {
            return Err(LlmError::Config("no endpoint given".into()));
        }
        for e in &cfg.endpoints {
            check_endpoint(e).map_err(LlmError::Config)?;
        }
        if cfg.max_concurrency == 0 {
            return Err(LlmError::Config("max_concurrency must be at least 1".into()));
        }
        if cfg
            .requests_per_second
            .is_some_and(|r| !(MIN_REQUESTS_PER_SECOND..=MAX_REQUESTS_PER_SECOND).contains(&r))
        {
            return Err(LlmError::Config(format!(
                "requests_per_second must be between {MIN_REQUESTS_PER_SECOND} and {MAX_REQUESTS_PER_SECOND}"
            )));
        }
        if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&cfg.timeout) {
            return Err(LlmError::Config(format!(
                "timeout must be between {} and {} seconds",
                MIN_TIMEOUT.as_secs_f64(),
                MAX_TIMEOUT.as_secs_f64()
            )));
        }
        let api_key =
            match &cfg.api_key_env {
                None => None,
                Some(var) => Some(std::env::var(var).map_err(|_| {
                    LlmError::Config(format!("the API key variable {var} is not set in the environment"))
                })?),
            };
        let cache = match (&cfg.cache, cfg.mode) {
            (Some(path), _) => Some(Cache::open(path)?),
            (None, Mode::Live) => None,
            (None, m) => {
                return Err(LlmError::Config(format!(
                    "mode {m:?} needs a cache file (cache = \"llm-cache.jsonl\")"
                )))
            }
        };
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .pool_max_idle_per_host(cfg.max_concurrency)
            .build()
            .map_err(|e| LlmError::Config(format!("cannot start the HTTP client: {e}")))?;
        let redactor = crate::redact::Redactor::new(&cfg.endpoints, api_key.as_deref());
        Ok(LlmClient {
            endpoints: cfg
                .endpoints
                .iter()
                .map(|u| Endpoint {
                    url: u.trim_end_matches('/').to_string(),
                    shown: crate::redact::display_url(u.trim_end_matches('/')),
                    in_flight: AtomicUsize::new(0),
                })
                .collect(),
            redactor,
            permits: tokio::sync::Semaphore::new(cfg.max_concurrency),
            next_start: Mutex::new(Instant::now()),
            http,
            api_key,
            cache,
            stats: Stats::default(),
            local,
            cfg,
            log: Arc::new(myriad_core::behaviour::CallLog::new(CALLS_KEPT)),
        })
    }

    /// The settings.
    pub fn config(&self) -> &LlmConfig {
        &self.cfg
    }

    /// The error of a prompt the replayed cache does not hold.
    fn replay_miss(&self, prompt: &str, sample: u32) -> LlmError {
        LlmError::ReplayMiss {
            cache: self
                .cache
                .as_ref()
                .map(|c| c.path().display().to_string())
                .unwrap_or_default(),
            prompt: shorten(&self.redactor.clean(prompt), 80),
            sample,
        }
    }

    /// The endpoints as they may be shown (credentials masked).
    pub fn shown_endpoints(&self) -> Vec<String> {
        if let Some(s) = &self.cfg.local {
            return vec![format!("embedded model {}", s.path.display())];
        }
        self.endpoints.iter().map(|e| e.shown.clone()).collect()
    }

    /// What opening the cache repaired (a torn last line cut off), if anything.
    pub fn cache_repair(&self) -> Option<&str> {
        self.cache.as_ref().and_then(|c| c.repaired())
    }

    /// A completion as it may leave the client: secrets removed, and cut to
    /// what `max_tokens` tokens can hold.
    fn sanitised(&self, mut c: Completion) -> Completion {
        if self.redactor.finds(&c.text) {
            c.text = self.redactor.clean(&c.text);
        }
        let cap = self.cfg.max_tokens as usize * BYTES_PER_TOKEN + 64;
        if c.text.len() > cap {
            let mut end = cap;
            while !c.text.is_char_boundary(end) {
                end -= 1;
            }
            c.text.truncate(end);
        }
        c
    }

    /// Store answers in the cache (record mode), prompt by prompt.
    fn store(&self, answered: &[(&str, u32, &Completion)]) -> Result<(), LlmError> {
        let (Some(cache), Mode::Record) = (&self.cache, self.cfg.mode) else {
            return Ok(());
        };
        for &(p, s, c) in answered {
            cache.put(Entry {
                key: self.key(p, s).hash(),
                model: self.cfg.model.clone(),
                sample: s,
                prompt: self.redactor.clean(p),
                text: c.text.clone(),
                tokens_in: c.tokens_in,
                tokens_out: c.tokens_out,
            })?;
        }
        Ok(())
    }

    /// The largest answer body accepted for `prompts` prompts.
    fn body_limit(&self, prompts: usize) -> usize {
        BODY_BASE_BYTES + prompts * (self.cfg.max_tokens as usize * BYTES_PER_TOKEN + 1024)
    }

    /// All endpoints, as shown in messages.
    fn all_shown(&self) -> String {
        self.endpoints
            .iter()
            .map(|e| e.shown.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The most recent calls (shared: readable while a call is in flight).
    pub fn call_log(&self) -> Arc<myriad_core::behaviour::CallLog> {
        self.log.clone()
    }

    /// Record one call in the log (`backend`: an endpoint as shown, `local`
    /// or `cache`; `prompts`: more than one for a batched request).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn log_call(
        &self,
        backend: &str,
        started: Instant,
        prompt: &str,
        prompts: usize,
        answer: Result<&Completion, &str>,
        retries: u32,
    ) {
        let (tokens_in, tokens_out, cached, text, error) = match answer {
            Ok(c) => (c.tokens_in, c.tokens_out, c.cached, Some(shorten(&c.text, 160)), None),
            Err(e) => (0, 0, false, None, Some(shorten(e, 300))),
        };
        self.log.push(json!({
            "backend": backend,
            "latency_ms": started.elapsed().as_secs_f64() * 1e3,
            "prompts": prompts,
            "prompt": shorten(&self.redactor.clean(prompt), 160),
            "answer": text,
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "cache_hit": cached,
            "retries": retries,
            "error": error,
        }));
    }

    /// Counters so far.
    pub fn stats(&self) -> StatsSnapshot {
        let s = &self.stats;
        StatsSnapshot {
            calls: s.calls.load(Ordering::Relaxed),
            cache_hits: s.cache_hits.load(Ordering::Relaxed),
            tokens_in: s.tokens_in.load(Ordering::Relaxed),
            tokens_out: s.tokens_out.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            failures: s.failures.load(Ordering::Relaxed),
            wait_seconds: s.wait_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }

    fn key<'a>(&'a self, prompt: &'a str, sample: u32) -> Key<'a> {
        Key {
            model: &self.cfg.model,
            api: self.cfg.api.name(),
            prompt,
            temperature: self.cfg.temperature,
            max_tokens: self.cfg.max_tokens,
            sample,
        }
    }

    /// Answer `prompt` (sample `sample`: several samples of one prompt are
    /// independent answers, cached separately).
    pub async fn complete(&self, prompt: &str, sample: u32) -> Result<Completion, LlmError> {
        let key = self.key(prompt, sample).hash();
        let started = Instant::now();
        if let (Some(cache), true) = (&self.cache, self.cfg.mode != Mode::Live) {
            if let Some(e) = cache.get(&key) {
                self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                let c = Completion {
                    text: e.text,
                    tokens_in: e.tokens_in,
                    tokens_out: e.tokens_out,
                    cached: true,
                };
                self.log_call("cache", started, prompt, 1, Ok(&c), 0);
                return Ok(c);
            }
            if self.cfg.mode == Mode::Replay {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                let e = self.replay_miss(prompt, sample);
                self.log_call("cache", started, prompt, 1, Err(&e.to_string()), 0);
                return Err(e);
            }
        }
        let result = match &self.local {
            Some(slot) => {
                let r = self.local_one(slot, prompt, sample);
                if let Err(e) = &r {
                    self.log_call("local", started, prompt, 1, Err(&e.to_string()), 0);
                }
                r
            }
            None => self.ask(prompt, sample).await,
        };
        match &result {
            Ok(c) => self.store(&[(prompt, sample, c)])?,
            Err(_) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }

    /// Answer many `(prompt, sample)` requests, at most `max_concurrency`
    /// at a time; identical requests are sent once and share the answer (or
    /// the error). Results are in request order.
    pub async fn complete_all(&self, requests: &[(String, u32)]) -> Vec<Result<Completion, Arc<LlmError>>> {
        let t0 = Instant::now();
        let (unique, slots) = dedup(requests);
        let answers: Vec<Result<Completion, Arc<LlmError>>> = stream::iter(unique.iter())
            .map(|&(p, s)| async move { self.complete(p, s).await.map_err(Arc::new) })
            .buffered(self.cfg.max_concurrency)
            .collect()
            .await;
        self.stats
            .wait_micros
            .fetch_add(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
        slots.into_iter().map(|k| answers[k].clone()).collect()
    }

    /// Answer many `(prompt, sample)` requests the configured way: batched
    /// when `batch` > 1 (a failed batch fails all its requests), else one
    /// request each. Results are in request order.
    pub async fn answer_all(&self, requests: &[(String, u32)]) -> Vec<Result<Completion, Arc<LlmError>>> {
        if let Some(slot) = &self.local {
            return self.local_answer_all(slot, requests);
        }
        if self.cfg.batch <= 1 {
            return self.complete_all(requests).await;
        }
        match self.complete_batched(requests, self.cfg.batch).await {
            Ok(v) => v.into_iter().map(Ok).collect(),
            Err(e) => {
                let e = Arc::new(e);
                requests.iter().map(|_| Err(e.clone())).collect()
            }
        }
    }

    /// Answer many prompts with several prompts per HTTP request (the
    /// completions API accepts a list of prompts; vLLM and llama.cpp's
    /// server answer them together), `batch` at a time, at most
    /// `max_concurrency` requests in flight. Identical requests are sent
    /// once; cached answers are used per the mode; each failed batch is
    /// retried like a single request. Results are in request order.
    pub async fn complete_batched(
        &self,
        requests: &[(String, u32)],
        batch: usize,
    ) -> Result<Vec<Completion>, LlmError> {
        if self.cfg.api != Api::Completions {
            return Err(LlmError::Config(
                "batching needs api = \"completions\" (chat requests carry one conversation)".into(),
            ));
        }
        let t0 = Instant::now();
        let (unique, slots) = dedup(requests);
        let (mut answers, to_ask) = self.cached_answers(&unique)?;
        let chunks: Vec<Vec<usize>> = to_ask.chunks(batch.max(1)).map(|c| c.to_vec()).collect();
        let unique_ref = &unique;
        // Each batch's answers are cached as soon as they arrive, so that a
        // batch failing later loses none that were paid for.
        let results: Vec<Result<Answered, LlmError>> = stream::iter(chunks)
            .map(|chunk| async move {
                let prompts: Vec<&str> = chunk.iter().map(|&k| unique_ref[k].0).collect();
                let completions = self.ask_many(&prompts).await?;
                let answered: Vec<(&str, u32, &Completion)> = chunk
                    .iter()
                    .zip(&completions)
                    .map(|(&k, c)| (unique_ref[k].0, unique_ref[k].1, c))
                    .collect();
                self.store(&answered)?;
                Ok((chunk, completions))
            })
            .buffer_unordered(self.cfg.max_concurrency)
            .collect()
            .await;
        let mut first_error = None;
        for r in results {
            match r {
                Ok((chunk, completions)) => {
                    for (k, c) in chunk.into_iter().zip(completions) {
                        answers[k] = Some(c);
                    }
                }
                Err(e) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            self.stats
                .wait_micros
                .fetch_add(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
            return Err(e);
        }
        self.stats
            .wait_micros
            .fetch_add(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
        Ok(slots
            .into_iter()
            .map(|k| answers[k].clone().expect("every unique request was answered"))
            .collect())
    }

    /// The answers the cache holds (record and replay modes), and the
    /// indices of the requests still to ask; a miss in replay is an error.
    #[allow(clippy::type_complexity)]
    fn cached_answers(&self, unique: &[(&str, u32)]) -> Result<(Vec<Option<Completion>>, Vec<usize>), LlmError> {
        let mut answers: Vec<Option<Completion>> = vec![None; unique.len()];
        let mut to_ask = Vec::new();
        for (k, &(p, s)) in unique.iter().enumerate() {
            let cached = match (&self.cache, self.cfg.mode) {
                (Some(c), Mode::Record | Mode::Replay) => c.get(&self.key(p, s).hash()),
                _ => None,
            };
            match cached {
                Some(e) => {
                    self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                    let c = Completion {
                        text: e.text,
                        tokens_in: e.tokens_in,
                        tokens_out: e.tokens_out,
                        cached: true,
                    };
                    self.log_call("cache", Instant::now(), p, 1, Ok(&c), 0);
                    answers[k] = Some(c);
                }
                None if self.cfg.mode == Mode::Replay => return Err(self.replay_miss(p, s)),
                None => to_ask.push(k),
            }
        }
        Ok((answers, to_ask))
    }

    /// One batched request with retries (like [`Self::ask`]).
    async fn ask_many(&self, prompts: &[&str]) -> Result<Vec<Completion>, LlmError> {
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        let attempts = self.cfg.max_retries + 1;
        let mut last = String::new();
        let started = Instant::now();
        let first = prompts.first().copied().unwrap_or("");
        for attempt in 0..attempts {
            let e = self.pick(attempt);
            let endpoint = &self.endpoints[e];
            endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
            // No seed: a server applies one request seed to every prompt of
            // the batch, so identical prompts (agents asked the same
            // question) would all get the same answer. Reruns are
            // reproduced from the cache instead.
            let body = json!({
                "model": self.cfg.model,
                "prompt": prompts,
                "temperature": self.cfg.temperature,
                "max_tokens": self.cfg.max_tokens,
            });
            let mut req = self.http.post(format!("{}/completions", endpoint.url)).json(&body);
            if let Some(key) = &self.api_key {
                req = req.bearer_auth(key);
            }
            let limit = self.body_limit(prompts.len());
            let outcome = async {
                let resp = req.send().await.map_err(|e| Err(self.describe(&e)))?;
                let status = resp.status();
                let text = read_limited(resp, limit).await.map_err(Err)?;
                if status.as_u16() == 429 || status.is_server_error() {
                    return Err(Err(http_reason(status.as_u16(), &text)));
                }
                if !status.is_success() {
                    // A refusal (wrong key, bad request, too large) will not
                    // get better by asking again.
                    return Err(Ok(LlmError::Refused {
                        endpoint: endpoint.shown.clone(),
                        status: status.as_u16(),
                        body: shorten(&self.redactor.clean(&text), 200),
                    }));
                }
                read_batch(&text, prompts.len()).map_err(Err)
            }
            .await;
            endpoint.in_flight.fetch_sub(1, Ordering::Relaxed);
            match outcome {
                Ok((c, (tokens_in, tokens_out))) => {
                    self.stats.calls.fetch_add(1, Ordering::Relaxed);
                    self.stats.tokens_in.fetch_add(tokens_in, Ordering::Relaxed);
                    self.stats.tokens_out.fetch_add(tokens_out, Ordering::Relaxed);
                    let done: Vec<Completion> = c.into_iter().map(|c| self.sanitised(c)).collect();
                    let whole = Completion {
                        text: done.first().map(|c| c.text.clone()).unwrap_or_default(),
                        tokens_in,
                        tokens_out,
                        cached: false,
                    };
                    self.log_call(&endpoint.shown, started, first, prompts.len(), Ok(&whole), attempt);
                    return Ok(done);
                }
                Err(Ok(fatal)) => {
                    self.log_call(
                        &endpoint.shown,
                        started,
                        first,
                        prompts.len(),
                        Err(&fatal.to_string()),
                        attempt,
                    );
                    return Err(fatal);
                }
                Err(Err(reason)) => {
                    last = format!("{} ({})", self.redactor.clean(&reason), endpoint.shown);
                    if attempt + 1 < attempts {
                        self.stats.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(self.backoff(attempt)).await;
                    }
                }
            }
        }
        let e = LlmError::Unreachable {
            endpoint: self.all_shown(),
            attempts,
            last,
        };
        self.log_call(
            &self.all_shown(),
            started,
            first,
            prompts.len(),
            Err(&e.to_string()),
            attempts - 1,
        );
        Err(e)
    }

    /// Wait for a concurrency permit and the rate limit, then try the
    /// endpoints with retries.
    async fn ask(&self, prompt: &str, sample: u32) -> Result<Completion, LlmError> {
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        let mut last = String::new();
        let attempts = self.cfg.max_retries + 1;
        let mut tried = Vec::new();
        let started = Instant::now();
        for attempt in 0..attempts {
            if let Some(rps) = self.cfg.requests_per_second {
                let start = {
                    let mut next = self.next_start.lock().expect("rate lock");
                    let now = Instant::now();
                    let start = (*next).max(now);
                    *next = start + Duration::from_secs_f64(1.0 / rps);
                    start
                };
                tokio::time::sleep_until(start.into()).await;
            }
            let e = self.pick(attempt);
            if !tried.contains(&e) {
                tried.push(e);
            }
            let endpoint = &self.endpoints[e];
            endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
            let outcome = self.attempt(endpoint, prompt, sample).await;
            endpoint.in_flight.fetch_sub(1, Ordering::Relaxed);
            match outcome {
                Attempt::Done(c) => {
                    self.stats.calls.fetch_add(1, Ordering::Relaxed);
                    self.stats.tokens_in.fetch_add(c.tokens_in, Ordering::Relaxed);
                    self.stats.tokens_out.fetch_add(c.tokens_out, Ordering::Relaxed);
                    let c = self.sanitised(c);
                    self.log_call(&endpoint.shown, started, prompt, 1, Ok(&c), attempt);
                    return Ok(c);
                }
                Attempt::Fatal(err) => {
                    self.log_call(&endpoint.shown, started, prompt, 1, Err(&err.to_string()), attempt);
                    return Err(err);
                }
                Attempt::Retry { reason, after } => {
                    last = format!("{} ({})", self.redactor.clean(&reason), endpoint.shown);
                    if attempt + 1 < attempts {
                        self.stats.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(after.unwrap_or_else(|| self.backoff(attempt))).await;
                    }
                }
            }
        }
        let endpoint = tried
            .iter()
            .map(|&e| self.endpoints[e].shown.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let e = LlmError::Unreachable {
            endpoint: endpoint.clone(),
            attempts,
            last,
        };
        self.log_call(&endpoint, started, prompt, 1, Err(&e.to_string()), attempts - 1);
        Err(e)
    }

    /// The least-loaded endpoint; among equals, a different one on each
    /// retry so that a dead endpoint is not hit every time.
    fn pick(&self, attempt: u32) -> usize {
        let n = self.endpoints.len();
        (0..n)
            .map(|k| (k + attempt as usize) % n)
            .min_by_key(|&k| self.endpoints[k].in_flight.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// Exponential backoff with full jitter: uniform in [0, min(max, initial x 2^attempt)].
    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .cfg
            .backoff_initial
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cfg.backoff_max);
        // Jitter only spreads retries out; it never affects results.
        let r = std::collections::hash_map::RandomState::new().hash_one(attempt);
        cap.mul_f64((r >> 11) as f64 / (1u64 << 53) as f64)
    }

    /// A transport error as a short reason, with secrets removed.
    fn describe(&self, e: &reqwest::Error) -> String {
        let reason = if e.is_timeout() {
            format!("no answer within {:.1} s", self.cfg.timeout.as_secs_f64())
        } else if e.is_connect() {
            "connection failed".to_string()
        } else {
            format!("request failed: {}", root_cause(e))
        };
        self.redactor.clean(&reason)
    }

    /// The URL and JSON body of one request for `prompt` (sample `sample`).
    fn request(&self, base: &str, prompt: &str, sample: u32) -> (String, Value) {
        match self.cfg.api {
            Api::Chat => {
                let mut messages = Vec::new();
                if let Some(system) = &self.cfg.system {
                    messages.push(json!({"role": "system", "content": system}));
                }
                messages.push(json!({"role": "user", "content": prompt}));
                (
                    format!("{base}/chat/completions"),
                    json!({
                        "model": self.cfg.model,
                        "messages": messages,
                        "temperature": self.cfg.temperature,
                        "max_tokens": self.cfg.max_tokens,
                        "seed": sample,
                    }),
                )
            }
            Api::Completions => (
                format!("{base}/completions"),
                json!({
                    "model": self.cfg.model,
                    "prompt": prompt,
                    "temperature": self.cfg.temperature,
                    "max_tokens": self.cfg.max_tokens,
                    "seed": sample,
                }),
            ),
        }
    }

    async fn attempt(&self, endpoint: &Endpoint, prompt: &str, sample: u32) -> Attempt {
        let (url, body) = self.request(&endpoint.url, prompt, sample);
        let mut req = self.http.post(&url).json(&body);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry {
                    reason: self.describe(&e),
                    after: None,
                }
            }
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(self.cfg.backoff_max.as_secs_f64())));
        let text = match read_limited(resp, self.body_limit(1)).await {
            Ok(t) => t,
            Err(reason) => {
                return Attempt::Retry {
                    reason: self.redactor.clean(&reason),
                    after: None,
                }
            }
        };
        if status.as_u16() == 429 || status.is_server_error() {
            return Attempt::Retry {
                reason: http_reason(status.as_u16(), &self.redactor.clean(&text)),
                after: retry_after,
            };
        }
        if !status.is_success() {
            return Attempt::Fatal(LlmError::Refused {
                endpoint: endpoint.shown.clone(),
                status: status.as_u16(),
                body: shorten(&self.redactor.clean(&text), 200),
            });
        }
        match read_answer(&text, self.cfg.api) {
            Ok(c) => Attempt::Done(c),
            Err(reason) => Attempt::Retry {
                reason: format!("malformed answer: {reason}"),
                after: None,
            },
        }
    }
}

#[path = "client_local.rs"]
mod local_answers;

/// Shortest time limit per request: below it, every real request fails.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
/// Longest time limit per request (a day).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);
/// Slowest request rate accepted (one request every 1,000 s).
pub const MIN_REQUESTS_PER_SECOND: f64 = 0.001;
/// Fastest request rate accepted.
pub const MAX_REQUESTS_PER_SECOND: f64 = 1e6;

/// Check that an endpoint is an `http(s)://host[:port][/path]` URL with a host.
pub fn check_endpoint(url: &str) -> Result<(), String> {
    let shown = crate::redact::display_url(url);
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("endpoint '{shown}' must start with http:// or https://"));
    }
    match reqwest::Url::parse(url) {
        Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => {
            if u.query().is_some() || u.fragment().is_some() {
                return Err(format!(
                    "endpoint '{shown}' must be a base URL such as http://127.0.0.1:8000/v1, without ?query or #fragment"
                ));
            }
            Ok(())
        }
        Ok(_) => Err(format!("endpoint '{shown}' has no host name")),
        Err(e) => Err(format!("endpoint '{shown}' is not a valid URL ({e})")),
    }
}

/// "HTTP 503: <start of the body>" (the body as the server wrote it; the
/// caller removes secrets).
fn http_reason(status: u16, body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {}", shorten(body, 120))
    }
}

/// Read a response body of at most `limit` bytes.
async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Result<String, String> {
    let mut body: Vec<u8> = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(format!(
                        "answer larger than {limit} bytes (does the server ignore max_tokens?)"
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) if e.is_timeout() => return Err("no complete answer within the time limit".into()),
            Err(e) => return Err(format!("reading the answer failed: {}", root_cause(&e))),
        }
    }
    String::from_utf8(body).map_err(|_| "answer is not UTF-8 text".to_string())
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// The distinct requests, and for each request the index of its distinct one.
fn dedup(requests: &[(String, u32)]) -> (Vec<(&str, u32)>, Vec<usize>) {
    let mut unique: Vec<(&str, u32)> = Vec::new();
    // Fx hashing: the keys are our own prompts (no adversary), and SipHash
    // over a million long prompts was the largest cost of a per-agent round.
    let mut index: rustc_hash::FxHashMap<(&str, u32), usize> = rustc_hash::FxHashMap::default();
    let slots = requests
        .iter()
        .map(|(p, s)| {
            *index.entry((p.as_str(), *s)).or_insert_with(|| {
                unique.push((p.as_str(), *s));
                unique.len() - 1
            })
        })
        .collect();
    (unique, slots)
}

/// Indices of a batch's prompts and their answers.
type Answered = (Vec<usize>, Vec<Completion>);

/// The completions of a batched answer, by prompt, and the request's
/// (prompt, completion) token totals. Each completion carries an equal share
/// of the totals (the API reports usage per request only).
fn read_batch(body: &str, n: usize) -> Result<(Vec<Completion>, (u64, u64)), String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("malformed answer: not JSON ({e})"))?;
    let choices = v
        .get("choices")
        .and_then(Value::as_array)
        .ok_or_else(|| "malformed answer: no choices".to_string())?;
    let mut out: Vec<Option<Completion>> = vec![None; n];
    for (k, c) in choices.iter().enumerate() {
        let i = c.get("index").and_then(Value::as_u64).map_or(k, |i| i as usize);
        let text = c
            .get("text")
            .and_then(Value::as_str)
            .ok_or_else(|| "malformed answer: a choice without text".to_string())?;
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(Completion {
                text: text.to_string(),
                tokens_in: 0,
                tokens_out: 1,
                cached: false,
            });
        }
    }
    let usage = |k: &str| v.get("usage").and_then(|u| u.get(k)).and_then(Value::as_u64);
    let tokens_in = usage("prompt_tokens").unwrap_or(0);
    let tokens_out = usage("completion_tokens").unwrap_or(n as u64);
    let share = |total: u64| total / n.max(1) as u64;
    let out: Vec<Completion> = out
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            c.map(|c| Completion {
                tokens_in: share(tokens_in),
                tokens_out: share(tokens_out),
                ..c
            })
            .ok_or_else(|| format!("malformed answer: no choice for prompt {i}"))
        })
        .collect::<Result<_, _>>()?;
    Ok((out, (tokens_in, tokens_out)))
}

/// The text and token counts of an OpenAI-style response body.
fn read_answer(body: &str, api: Api) -> Result<Completion, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON ({e})"))?;
    let choice = v
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or_else(|| "no choices".to_string())?;
    let text = match api {
        Api::Chat => choice.get("message").and_then(|m| m.get("content")),
        Api::Completions => choice.get("text"),
    }
    .and_then(Value::as_str)
    .ok_or_else(|| "no text in the first choice".to_string())?;
    let usage = |k: &str| {
        v.get("usage")
            .and_then(|u| u.get(k))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Ok(Completion {
        text: text.to_string(),
        tokens_in: usage("prompt_tokens"),
        tokens_out: usage("completion_tokens"),
        cached: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_chat_and_completion_bodies() {
        let chat = r#"{"choices":[{"message":{"role":"assistant","content":"Yes"}}],"usage":{"prompt_tokens":12,"completion_tokens":1}}"#;
        let c = read_answer(chat, Api::Chat).unwrap();
        assert_eq!((c.text.as_str(), c.tokens_in, c.tokens_out), ("Yes", 12, 1));
        let comp = r#"{"choices":[{"text":" no"}]}"#;
        assert_eq!(read_answer(comp, Api::Completions).unwrap().text, " no");
        assert!(read_answer("{", Api::Chat).is_err());
        assert!(read_answer(r#"{"choices":[]}"#, Api::Chat).is_err());
        assert!(read_answer(r#"{"choices":[{"text":"x"}]}"#, Api::Chat).is_err());
    }
}
