//! The routes: the page, and the JSON API under `/api`. Errors are HTTP
//! 4xx (or 5xx) with `{"error": "..."}` holding the text the command line
//! would print for the same input.

use crate::live::{LiveRun, Query, WebSink};
use crate::past::{self, RunInfo};
use axum::body::Bytes;
use axum::extract::{Path, Query as Params, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use myriad_core::model::TableKind;
use myriad_sim::scenario::{self, Overrides};
use myriad_sim::Scenario;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// How long a request waits for a run to reach a step boundary.
const QUERY_WAIT: Duration = Duration::from_secs(60);
/// Most agents a sample returns.
const SAMPLE_MAX: usize = 1000;
/// Most positions a frame of the swarm view holds.
const POINTS_MAX: usize = 200_000;

/// What every handler shares.
pub struct AppState {
    runs: PathBuf,
    scenarios: PathBuf,
    threads: Option<usize>,
    token: Arc<Option<String>>,
    runtime: tokio::runtime::Handle,
    live: Mutex<BTreeMap<String, Arc<LiveRun>>>,
    threads_running: Mutex<Vec<std::thread::JoinHandle<()>>>,
    closing: watch::Sender<bool>,
}

impl AppState {
    /// The state of a server with these options.
    pub fn new(opts: &crate::ServeOptions, runtime: tokio::runtime::Handle) -> AppState {
        AppState {
            runs: opts.runs.clone(),
            scenarios: opts.scenarios.clone(),
            threads: opts.threads,
            token: Arc::new(opts.token.clone()),
            runtime,
            live: Mutex::new(BTreeMap::new()),
            threads_running: Mutex::new(Vec::new()),
            closing: watch::channel(false).0,
        }
    }

    fn live_runs(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<LiveRun>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn live(&self, id: &str) -> Option<Arc<LiveRun>> {
        self.live_runs().get(id).cloned()
    }

    /// The server is stopping: end every live run after its current step
    /// (their outputs keep the steps done) and close the event streams.
    pub fn stop_all(&self) {
        for run in self.live_runs().values() {
            run.request_stop();
        }
        let _ = self.closing.send(true);
    }

    /// Wait for the live runs' threads to write their outputs.
    pub fn join_runs(&self) {
        let handles = std::mem::take(&mut *self.threads_running.lock().unwrap_or_else(|e| e.into_inner()));
        for h in handles {
            let _ = h.join();
        }
    }
}

/// An API error: a status and the message.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn bad(msg: impl Into<String>) -> ApiError {
        ApiError(StatusCode::BAD_REQUEST, msg.into())
    }
    fn not_found(msg: impl Into<String>) -> ApiError {
        ApiError(StatusCode::NOT_FOUND, msg.into())
    }
    fn conflict(msg: impl Into<String>) -> ApiError {
        ApiError(StatusCode::CONFLICT, msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// An error and its causes in one line, as the command line prints them.
pub fn message(e: &(dyn std::error::Error + 'static)) -> String {
    myriad_sim::error::one_line(std::iter::successors(Some(e), |c| c.source()))
}

/// The router of a server with this state.
pub fn router(state: Arc<AppState>) -> Router {
    let token = state.token.clone();
    Router::new()
        .route("/", get(|| async { crate::assets::get("/") }))
        .route(
            "/{file}",
            get(|Path(f): Path<String>| async move { crate::assets::get(&format!("/{f}")) }),
        )
        .route("/api/scenarios", get(scenarios))
        .route("/api/runs", get(list_runs).post(start_run))
        .route("/api/runs/{id}", get(run_detail))
        .route("/api/runs/{id}/series", get(series))
        .route("/api/runs/{id}/stream", get(stream))
        .route("/api/runs/{id}/pause", post(pause))
        .route("/api/runs/{id}/resume", post(resume))
        .route("/api/runs/{id}/step", post(step))
        .route("/api/runs/{id}/stop", post(stop))
        .route("/api/runs/{id}/agents", get(sample_agents))
        .route("/api/runs/{id}/agents/{agent}", get(agent))
        .route("/api/runs/{id}/transcript", get(transcript))
        .route("/api/runs/{id}/calls", get(calls))
        .route("/api/runs/{id}/points", get(points))
        .fallback(|| async { ApiError::not_found("no such address; the API is under /api (see docs/dashboard.md)") })
        .layer(axum::middleware::from_fn_with_state(token, crate::access::check))
        .layer(axum::extract::DefaultBodyLimit::max(4 * 1024 * 1024))
        .with_state(state)
}

/// The whole-number query parameter `name`: `default` when absent, an
/// error naming the parameter and the range when out of `range`.
fn number<T>(q: &HashMap<String, String>, name: &str, default: T, range: std::ops::RangeInclusive<T>) -> ApiResult<T>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match q.get(name) {
        None => Ok(default),
        Some(t) => t.parse::<T>().ok().filter(|v| range.contains(v)).ok_or_else(|| {
            ApiError::bad(format!(
                "{name} must be a whole number from {} to {} (got '{t}')",
                range.start(),
                range.end()
            ))
        }),
    }
}

fn checked_id(id: &str) -> ApiResult<()> {
    if past::valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad(format!(
            "'{id}' is not a run id (a folder name in the runs folder)"
        )))
    }
}

/// A run folder that exists, or 404.
fn run_dir(st: &AppState, id: &str) -> ApiResult<PathBuf> {
    checked_id(id)?;
    let dir = st.runs.join(id);
    if dir.join("summary.json").is_file() || st.live(id).is_some() {
        Ok(dir)
    } else {
        Err(ApiError::not_found(format!(
            "unknown run '{id}': no such run in {}",
            st.runs.display()
        )))
    }
}

/// A run started from this server, or an error saying why not.
fn live_run(st: &AppState, id: &str) -> ApiResult<Arc<LiveRun>> {
    run_dir(st, id)?;
    st.live(id).ok_or_else(|| {
        ApiError::conflict(format!(
            "run '{id}' is not live: it ran before this server started (or the server restarted since); \
             its results are in its folder, its agents are no longer held in memory"
        ))
    })
}

async fn scenarios(State(st): State<Arc<AppState>>) -> ApiResult<Json<Value>> {
    let entries = std::fs::read_dir(&st.scenarios)
        .map_err(|e| ApiError::not_found(format!("scenarios folder {}: {e}", st.scenarios.display())))?;
    let mut out: Vec<Value> = entries
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().to_str()?.to_string();
            if !file.ends_with(".toml") {
                return None;
            }
            let text = std::fs::read_to_string(e.path()).ok()?;
            let doc: toml::Table = text.parse().ok()?;
            let about = doc.get("description").and_then(|v| v.as_str()).unwrap_or("");
            Some(json!({
                "file": file,
                "name": doc.get("name").and_then(|v| v.as_str()),
                "model": doc.get("model").and_then(|v| v.as_str()),
                "steps": doc.get("steps").and_then(|v| v.as_integer()),
                "about": about,
            }))
        })
        .collect();
    out.sort_by(|a, b| a["file"].as_str().cmp(&b["file"].as_str()));
    Ok(Json(Value::Array(out)))
}

async fn list_runs(State(st): State<Arc<AppState>>) -> Json<Vec<RunInfo>> {
    let live: Vec<Arc<LiveRun>> = st.live_runs().values().cloned().collect();
    let mut runs: Vec<RunInfo> = live.iter().rev().map(|r| r.info()).collect();
    let st2 = st.clone();
    let past = tokio::task::spawn_blocking(move || past::list(&st2.runs))
        .await
        .unwrap_or_default();
    runs.extend(past.into_iter().filter(|p| !live.iter().any(|l| l.id == p.id)));
    Json(runs)
}

/// The model's chart panels and the observed series the population
/// offers for its periodic tables, placed on the run's periods.
pub fn layout(s: &Scenario) -> Value {
    let panels: Vec<Value> = s
        .model
        .plots
        .iter()
        .map(|p| json!({ "ylabel": p.ylabel, "metrics": p.metrics, "bars": p.bars }))
        .collect();
    let mut observed = Vec::new();
    for t in s.model.tables {
        if t.kind != TableKind::FlowSums {
            continue;
        }
        let periods = s.calendar.periods(t.every, s.steps);
        for &(metric, name) in t.observed {
            let Some(o) = myriad_sim::outputs::observed(s, name) else {
                continue;
            };
            let points: Vec<Value> = periods
                .iter()
                .filter_map(|p| {
                    let v = o.for_period(&s.calendar, t.every, p, None)?;
                    Some(json!({ "first": p.first, "last": p.last, "value": v }))
                })
                .collect();
            if !points.is_empty() {
                observed.push(json!({ "metric": metric, "label": o.label, "period": t.period, "points": points }));
            }
        }
    }
    json!({ "panels": panels, "observed": observed, "dated": s.calendar.start().is_some() })
}

/// A past run's scenario, rebuilt from its `summary.json` (for the layout).
fn past_scenario(summary: &Value) -> Option<Scenario> {
    let file = PathBuf::from(summary.get("scenario_file")?.as_str()?);
    let text = toml::to_string(summary.get("scenario")?).ok()?;
    scenario::parse(&file, &text, &Overrides::default()).ok()
}

async fn run_detail(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let dir = run_dir(&st, &id)?;
    let summary = past::summary(&dir).ok();
    let (info, layout) = match st.live(&id) {
        Some(run) => (run.info(), run.layout.clone()),
        None => {
            let s = summary.as_ref().expect("run_dir checked that summary.json exists");
            let layout = tokio::task::spawn_blocking({
                let s = s.clone();
                move || past_scenario(&s).map(|sc| layout(&sc))
            })
            .await
            .ok()
            .flatten()
            .unwrap_or(json!({ "panels": [], "observed": [] }));
            (past::info_from_summary(&id, s), layout)
        }
    };
    Ok(Json(json!({ "run": info, "layout": layout, "summary": summary })))
}

async fn series(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<Json<past::Series>> {
    let dir = run_dir(&st, &id)?;
    if let Some(run) = st.live(&id) {
        return Ok(Json(run.series()));
    }
    tokio::task::spawn_blocking(move || past::series(&dir))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map(Json)
        .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))
}

async fn stream(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>>> {
    let run = live_run(&st, &id)?;
    let rx = run.subscribe();
    let first = run.hello().to_string();
    let closing = st.closing.subscribe();
    struct S {
        run: Arc<LiveRun>,
        rx: tokio::sync::broadcast::Receiver<Arc<str>>,
        first: Option<String>,
        closing: watch::Receiver<bool>,
    }
    let init = S {
        run,
        rx,
        first: Some(first),
        closing,
    };
    let events = futures_util::stream::unfold(init, |mut s| async move {
        if let Some(text) = s.first.take() {
            return Some((Ok(Event::default().data(text)), s));
        }
        if *s.closing.borrow() {
            return None;
        }
        use tokio::sync::broadcast::error::RecvError;
        let text = tokio::select! {
            m = s.rx.recv() => match m {
                Ok(m) => m.to_string(),
                // Too slow a reader: start it again from everything so far.
                Err(RecvError::Lagged(_)) => s.run.hello().to_string(),
                Err(RecvError::Closed) => return None,
            },
            _ = s.closing.changed() => return None,
        };
        Some((Ok(Event::default().data(text)), s))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

async fn pause(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let run = live_run(&st, &id)?;
    run.pause().map_err(ApiError::conflict)?;
    Ok(Json(json!({ "ok": true })))
}

async fn resume(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let run = live_run(&st, &id)?;
    run.resume().map_err(ApiError::conflict)?;
    Ok(Json(json!({ "ok": true })))
}

async fn step(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Params(q): Params<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let run = live_run(&st, &id)?;
    let n: u32 = number(&q, "n", 1, 1..=u32::MAX)?;
    run.step(n).map_err(ApiError::conflict)?;
    Ok(Json(json!({ "ok": true })))
}

async fn stop(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let run = live_run(&st, &id)?;
    if !run.status().active() {
        return Err(ApiError::conflict(format!(
            "run '{id}' has already ended ({})",
            run.status().word()
        )));
    }
    run.request_stop();
    Ok(Json(json!({ "ok": true })))
}

/// Ask a live run a question and wait for the answer at its next step boundary.
async fn ask<T>(run: &LiveRun, make: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Query) -> ApiResult<T> {
    let (tx, rx) = oneshot::channel();
    run.ask(make(tx)).map_err(ApiError::conflict)?;
    match tokio::time::timeout(QUERY_WAIT, rx).await {
        Ok(Ok(answer)) => answer.map_err(ApiError::bad),
        Ok(Err(_)) => Err(ApiError::conflict("the run ended before answering")),
        Err(_) => Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "run '{}' has not finished its current step within {} s; ask again (or pause it)",
                run.id,
                QUERY_WAIT.as_secs()
            ),
        )),
    }
}

async fn agent(State(st): State<Arc<AppState>>, Path((id, agent)): Path<(String, String)>) -> ApiResult<Json<Value>> {
    let run = live_run(&st, &id)?;
    let a: u64 = agent
        .parse()
        .map_err(|_| ApiError::bad(format!("'{agent}' is not an agent id (a whole number from 0)")))?;
    if !run.status().active() {
        return match run.history(a) {
            Some(h) => Ok(Json(
                json!({ "agent": a, "history": h, "events": run.events(Some(a), 500), "ended": true }),
            )),
            None => Err(ApiError::conflict(format!(
                "run '{id}' has ended: its agents are no longer held in memory (agent {a} was not watched while it ran)"
            ))),
        };
    }
    ask(&run, |reply| Query::Agent { id: a, reply }).await.map(Json)
}

async fn sample_agents(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Params(q): Params<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let run = live_run(&st, &id)?;
    let mut filter = Vec::new();
    for part in q.get("where").map(String::as_str).unwrap_or("").split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| ApiError::bad(format!("filter '{part}' is not column=value (e.g. borough=BX)")))?;
        filter.push((k.trim().to_string(), v.trim().to_string()));
    }
    let n: usize = number(&q, "n", 20, 1..=SAMPLE_MAX)?;
    ask(&run, |reply| Query::Sample { filter, n, reply }).await.map(Json)
}

async fn transcript(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Params(q): Params<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let dir = run_dir(&st, &id)?;
    let agent = match q.get("agent") {
        None => None,
        Some(t) => Some(
            t.parse::<u64>()
                .map_err(|_| ApiError::bad(format!("'{t}' is not an agent id")))?,
        ),
    };
    let events = match st.live(&id) {
        Some(run) => run.events(agent, 2000),
        None => tokio::task::spawn_blocking(move || past::transcript(&dir, agent, 2000))
            .await
            .unwrap_or_default(),
    };
    Ok(Json(Value::Array(events)))
}

async fn calls(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Params(q): Params<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let dir = run_dir(&st, &id)?;
    let after: u64 = number(&q, "after", 0, 0..=u64::MAX)?;
    match st.live(&id) {
        Some(run) => {
            let (last, list) = run.calls(after).unwrap_or((0, Vec::new()));
            let totals = if run.status().active() {
                ask(&run, |reply| Query::Report { reply }).await.ok()
            } else {
                past::summary(&dir).ok().and_then(|s| s.get("behaviour").cloned())
            };
            Ok(Json(json!({ "last": last, "calls": list, "totals": totals })))
        }
        None => {
            let totals = past::summary(&dir).ok().and_then(|s| s.get("behaviour").cloned());
            Ok(Json(
                json!({ "last": 0, "calls": [], "totals": totals, "note": "per-call records are kept only for runs started from this server" }),
            ))
        }
    }
}

async fn points(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Params(q): Params<HashMap<String, String>>,
) -> ApiResult<Response> {
    let run = live_run(&st, &id)?;
    let max: usize = number(&q, "max", 100_000, 1..=POINTS_MAX)?;
    let bytes = ask(&run, |reply| Query::Points { max, reply }).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], Bytes::from(bytes)).into_response())
}

/// What the page sends to start a run.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// A scenario file of the scenarios folder, e.g. `seir-city.toml`.
    pub scenario: Option<String>,
    /// Or the text of an uploaded scenario.
    pub toml: Option<String>,
    /// The uploaded file's name (relative paths in it resolve against the
    /// scenarios folder).
    pub filename: Option<String>,
    /// `--set`-style overrides, `key.path=value`.
    #[serde(default)]
    pub set: Vec<String>,
    /// The seed.
    pub seed: Option<u64>,
    /// Worker threads.
    pub threads: Option<usize>,
    /// A name for the output folder (inside the runs folder).
    pub out: Option<String>,
    /// Hold the run at step 0.
    #[serde(default)]
    pub paused: bool,
}

fn scenario_name(st: &AppState, file: &str) -> ApiResult<PathBuf> {
    if !past::valid_id(file) || !file.ends_with(".toml") {
        return Err(ApiError::bad(format!(
            "'{file}' is not a scenario file name of the scenarios folder (e.g. seir-city.toml)"
        )));
    }
    let path = st.scenarios.join(file);
    if !path.is_file() {
        return Err(ApiError::not_found(format!(
            "no scenario '{file}' in {}",
            st.scenarios.display()
        )));
    }
    Ok(path)
}

/// The output folder of a new run, created and marked now so that two runs
/// can never get the same one.
fn claim_folder(st: &AppState, s: &Scenario, out: Option<&str>) -> ApiResult<PathBuf> {
    use myriad_sim::outdir;
    let io = |e: myriad_sim::Error| ApiError(StatusCode::INTERNAL_SERVER_ERROR, message(&e));
    match out {
        None => outdir::OutChoice::Default(outdir::default_out_in(&st.runs, &s.name, ""))
            .create(false, "run")
            .map_err(io),
        Some(name) => {
            checked_id(name)?;
            if let Some(r) = st.live(name).filter(|r| r.status().active()) {
                return Err(ApiError::conflict(format!(
                    "folder '{name}' is being written by live run '{}'; choose another name",
                    r.id
                )));
            }
            let dir = st.runs.join(name);
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(ApiError::conflict(format!(
                        "output folder {} already exists (another run wrote it); choose another name",
                        dir.display()
                    )))
                }
                Err(e) => {
                    return Err(ApiError(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("creating output folder {}: {e}", dir.display()),
                    ))
                }
            }
            outdir::mark(&dir, "run").map_err(io)?;
            Ok(dir)
        }
    }
}

async fn start_run(State(st): State<Arc<AppState>>, body: Bytes) -> ApiResult<Json<Value>> {
    let req: StartRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad(format!("the request is not a run to start: {e}")))?;
    let threads = match req.threads.or(st.threads) {
        Some(0) => return Err(ApiError::bad("threads must be at least 1")),
        Some(t) if t > 1024 => return Err(ApiError::bad(format!("threads must be at most 1024 (got {t})"))),
        t => t,
    };
    let overrides = Overrides {
        set: req.set.clone(),
        seed: req.seed,
    };
    let st2 = st.clone();
    let s = tokio::task::spawn_blocking(move || -> ApiResult<Scenario> {
        let bad = |e: myriad_sim::ScenarioError| ApiError::bad(message(&e));
        match (&req.scenario, &req.toml) {
            (Some(file), None) => scenario::load(&scenario_name(&st2, file)?, &overrides).map_err(bad),
            (None, Some(text)) => {
                let name = req.filename.as_deref().unwrap_or("uploaded.toml");
                let name = std::path::Path::new(name)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "uploaded.toml".into());
                scenario::parse(&st2.scenarios.join(name), text, &overrides).map_err(bad)
            }
            _ => Err(ApiError::bad(
                "give either \"scenario\" (a file of the scenarios folder) or \"toml\" (a scenario's text)",
            )),
        }
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let dir = claim_folder(&st, &s, req.out.as_deref())?;
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let run = Arc::new(LiveRun::new(id.clone(), dir.clone(), &s, layout(&s), req.paused));
    st.live_runs().insert(id.clone(), run.clone());
    let runtime = st.runtime.clone();
    let handle = std::thread::Builder::new()
        .name(format!("run {id}"))
        .spawn(move || run_thread(run, s, dir, threads, runtime))
        .map_err(|e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot start the run's thread: {e}"),
            )
        })?;
    st.threads_running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(handle);
    Ok(Json(json!({ "id": id })))
}

/// A live run's thread: the command line's run, with the dashboard's sink.
fn run_thread(run: Arc<LiveRun>, s: Scenario, dir: PathBuf, threads: Option<usize>, runtime: tokio::runtime::Handle) {
    let opts = myriad_sim::run::RunOptions {
        comm: None,
        checkpoint_every: None,
        resume: None,
        out: Some(dir.clone()),
        runs: None,
        // The folder was made (empty, marked) when the run was accepted.
        force: true,
        threads,
        runtime: Some(runtime),
    };
    let stop = run.stop_flag();
    let mut sink = WebSink::new(run.clone());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        myriad_sim::run::run_to_folder(&s, &opts, &stop, &mut [&mut sink])
    }));
    let outcome = match result {
        Ok(Ok(report)) => Ok(report.outcome),
        Ok(Err(e)) => {
            // Nothing written but the marker (the build failed): no empty run folder left behind.
            let only_marker = std::fs::read_dir(&dir)
                .map(|d| d.flatten().all(|e| e.file_name() == myriad_sim::outdir::MARKER))
                .unwrap_or(false);
            if only_marker {
                let _ = std::fs::remove_dir_all(&dir);
            }
            Err(message(&e))
        }
        Err(_) => Err("internal error: the run stopped unexpectedly (a bug in myriad; please report it)".into()),
    };
    run.ended(outcome);
}
