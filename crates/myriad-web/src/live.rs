//! Runs started from the page. Each runs on a thread of its own through
//! `myriad_sim::run::run_to_folder` (the same code, files and summary as
//! `myriad run`), with one more sink, [`WebSink`], which
//! - keeps every row and streams it to the pages watching;
//! - between steps, where the state is whole, answers the queries pages
//!   made (an agent's columns, a sample of agents by attribute, the swarm's
//!   positions) and records the history of the agents being watched;
//! - holds the run there while it is paused.
//!
//! Nothing here changes what the run computes: the sink reads the state
//! between steps and never writes it.

use myriad_core::behaviour::CallLog;
use myriad_core::model::ColumnView;
use myriad_sim::simulation::Simulation;
use myriad_sim::sinks::{RunStart, Sink, SinkError};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, oneshot};

/// Events (what agents said and did) kept per run; older ones stay in the
/// run's `transcript.jsonl`.
const EVENTS_KEPT: usize = 100_000;
/// Agents whose history is recorded at once.
const WATCHED_MAX: usize = 100;
/// Steps of history kept per watched agent.
const HISTORY_MAX: usize = 20_000;

/// Where a live run is.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// Building the population and layers.
    Building,
    /// Stepping.
    Running,
    /// Held between steps.
    Paused,
    /// All steps done.
    Finished,
    /// Stopped from the page (or by the server's Ctrl-C); outputs hold the
    /// steps done.
    Interrupted,
    /// Stopped by an error (in words).
    Failed(String),
}

impl Status {
    /// The status in one word.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Building => "building",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Finished => "finished",
            Status::Interrupted => "interrupted",
            Status::Failed(_) => "failed",
        }
    }

    /// Still stepping or able to step.
    pub fn active(&self) -> bool {
        matches!(self, Status::Building | Status::Running | Status::Paused)
    }
}

/// A question about the state, answered between steps on the run's thread.
pub enum Query {
    /// One agent's columns now (and start recording its history).
    Agent {
        /// Its index.
        id: u64,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<Value, String>>,
    },
    /// Agents matching `column=value` filters (codes or their labels).
    Sample {
        /// The filters.
        filter: Vec<(String, String)>,
        /// Most ids returned.
        n: usize,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<Value, String>>,
    },
    /// Positions (and headings) of up to `max` agents, as little-endian
    /// `f32`: total agents, agents shown, x min, x max, y min, y max, then
    /// `x, y, heading` per agent shown.
    Points {
        /// Most agents returned.
        max: usize,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<Vec<u8>, String>>,
    },
    /// The decision provider's counters now.
    Report {
        /// Where the answer goes.
        reply: oneshot::Sender<Result<Value, String>>,
    },
}

struct Control {
    status: Status,
    paused: bool,
    /// Steps allowed while paused ("step" from the page).
    budget: u32,
    queries: Vec<Query>,
}

/// What a live run has produced so far.
#[derive(Default)]
pub struct Data {
    /// Metric names, in row order.
    pub metrics: Vec<String>,
    /// Each metric's kind (stock, flow, fraction, value).
    pub kinds: Vec<String>,
    /// Step of each row.
    pub steps: Vec<u32>,
    /// Date of each row, on a dated run.
    pub dates: Option<Vec<String>>,
    /// Per metric, its values.
    pub values: Vec<Vec<f64>>,
    /// Agents.
    pub agents: u32,
    /// The last events (what agents said and did).
    pub events: VecDeque<Value>,
    /// Watched agents: per agent, rows of (step, column values).
    pub watched: BTreeMap<u64, Vec<(u32, Vec<f64>)>>,
    /// Agent column names and, for coded columns, their labels.
    pub columns: Vec<(String, Option<Vec<String>>)>,
    calendar: myriad_core::Calendar,
}

/// A run started from the page.
pub struct LiveRun {
    /// Its id: the output folder's name.
    pub id: String,
    /// The output folder.
    pub dir: PathBuf,
    /// The scenario's name.
    pub scenario: String,
    /// The model.
    pub model: String,
    /// The seed.
    pub seed: u64,
    /// Steps asked for.
    pub steps_requested: u32,
    /// The model's declared chart panels and observed series (JSON for the page).
    pub layout: Value,
    started: Instant,
    ended: Mutex<Option<f64>>,
    stop: Arc<AtomicBool>,
    control: Mutex<Control>,
    wake: Condvar,
    /// Rows, events and watched agents so far.
    pub data: RwLock<Data>,
    tx: broadcast::Sender<Arc<str>>,
    call_log: OnceLock<Arc<CallLog>>,
}

impl LiveRun {
    /// A run about to be built (held at step 0 when `paused`).
    pub fn new(id: String, dir: PathBuf, s: &myriad_sim::Scenario, layout: Value, paused: bool) -> LiveRun {
        let (tx, _) = broadcast::channel(1024);
        LiveRun {
            id,
            dir,
            scenario: s.name.clone(),
            model: s.model.name.to_string(),
            seed: s.seed,
            steps_requested: s.steps,
            layout,
            started: Instant::now(),
            ended: Mutex::new(None),
            stop: Arc::new(AtomicBool::new(false)),
            control: Mutex::new(Control {
                status: Status::Building,
                paused,
                budget: 0,
                queries: Vec::new(),
            }),
            wake: Condvar::new(),
            data: RwLock::new(Data::default()),
            tx,
            call_log: OnceLock::new(),
        }
    }

    fn control(&self) -> std::sync::MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Data> {
        self.data.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Data> {
        self.data.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The stop flag the run loop checks.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Where the run is.
    pub fn status(&self) -> Status {
        self.control().status.clone()
    }

    /// Messages for pages watching (JSON text, one per row or status change).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.tx.subscribe()
    }

    fn send(&self, msg: Value) {
        // No receiver is fine: nobody is watching.
        let _ = self.tx.send(Arc::from(msg.to_string()));
    }

    fn set_status(&self, status: Status) {
        let changed = {
            let mut c = self.control();
            let changed = c.status != status;
            c.status = status.clone();
            changed
        };
        if changed {
            self.send(self.status_message(&status));
        }
    }

    fn status_message(&self, status: &Status) -> Value {
        let error = match status {
            Status::Failed(e) => Some(e.clone()),
            _ => None,
        };
        json!({ "type": "status", "status": status.word(), "error": error, "step": self.read().steps.last() })
    }

    /// The control state of a run still able to step, or why it is not.
    fn active_control(&self, verb: &str) -> Result<std::sync::MutexGuard<'_, Control>, String> {
        let c = self.control();
        if c.status.active() {
            Ok(c)
        } else {
            Err(format!(
                "run {} has ended ({}); it cannot {verb}",
                self.id,
                c.status.word()
            ))
        }
    }

    /// Hold the run at the next step boundary.
    pub fn pause(&self) -> Result<(), String> {
        self.active_control("be paused")?.paused = true;
        Ok(())
    }

    /// Let a paused run go on.
    pub fn resume(&self) -> Result<(), String> {
        let mut c = self.active_control("be resumed")?;
        c.paused = false;
        c.budget = 0;
        self.wake.notify_all();
        Ok(())
    }

    /// Compute `n` more steps of a paused run, then hold again.
    pub fn step(&self, n: u32) -> Result<(), String> {
        let mut c = self.active_control("step")?;
        if !c.paused {
            return Err(format!("run {} is running; pause it before stepping", self.id));
        }
        c.budget = c.budget.saturating_add(n);
        self.wake.notify_all();
        Ok(())
    }

    /// End the run after the current step; its outputs hold the steps done.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _c = self.control();
        self.wake.notify_all();
    }

    /// Ask a question of the state; answered at the next step boundary.
    pub fn ask(&self, q: Query) -> Result<(), String> {
        let mut c = self.control();
        if !c.status.active() {
            return Err(format!(
                "run {} has ended ({}): its agents are no longer held in memory; the agents watched \
                 while it ran keep their history",
                self.id,
                c.status.word()
            ));
        }
        c.queries.push(q);
        self.wake.notify_all();
        Ok(())
    }

    /// The run's line in the runs list.
    pub fn info(&self) -> crate::past::RunInfo {
        let status = self.status();
        let d = self.read();
        crate::past::RunInfo {
            id: self.id.clone(),
            scenario: self.scenario.clone(),
            model: self.model.clone(),
            agents: d.agents as u64,
            steps: d.steps.last().copied().unwrap_or(0) as u64,
            steps_requested: self.steps_requested as u64,
            status: status.word().into(),
            wall_seconds: self
                .ended
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_else(|| self.started.elapsed().as_secs_f64()),
            seed: self.seed,
            live: true,
            error: match status {
                Status::Failed(e) => Some(e),
                _ => None,
            },
        }
    }

    /// The rows so far.
    pub fn series(&self) -> crate::past::Series {
        let d = self.read();
        crate::past::Series {
            metrics: d.metrics.clone(),
            steps: d.steps.clone(),
            dates: d.dates.clone(),
            values: d.values.clone(),
        }
    }

    /// The first message a page gets: the run, its layout and every row so far.
    pub fn hello(&self) -> Value {
        json!({
            "type": "hello",
            "run": self.info(),
            "layout": self.layout,
            "kinds": self.read().kinds,
            "series": self.series(),
        })
    }

    /// Events concerning `agent` (all for `None`), at most `limit`.
    pub fn events(&self, agent: Option<u64>, limit: usize) -> Vec<Value> {
        self.read()
            .events
            .iter()
            .filter(|e| crate::past::concerns(e, agent))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Model calls after `seq` (LLM runs), and the number of the last.
    pub fn calls(&self, seq: u64) -> Option<(u64, Vec<Value>)> {
        self.call_log.get().map(|log| log.since(seq))
    }

    /// The history recorded for a watched agent: column names and rows.
    pub fn history(&self, agent: u64) -> Option<Value> {
        let d = self.read();
        let rows = d.watched.get(&agent)?;
        Some(json!({
            "columns": d.columns.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            "steps": rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "values": rows.iter().map(|r| &r.1).collect::<Vec<_>>(),
        }))
    }

    /// The run thread is done: record how it ended.
    pub fn ended(&self, outcome: Result<myriad_sim::run::Outcome, String>) {
        *self.ended.lock().unwrap_or_else(|e| e.into_inner()) = Some(self.started.elapsed().as_secs_f64());
        let status = match outcome {
            Ok(myriad_sim::run::Outcome::Completed) => Status::Finished,
            Ok(myriad_sim::run::Outcome::Interrupted) => Status::Interrupted,
            Err(e) => Status::Failed(e),
        };
        let queries = {
            let mut c = self.control();
            std::mem::take(&mut c.queries)
        };
        for q in queries {
            refuse(q, "the run ended before the question could be answered");
        }
        self.set_status(status);
    }
}

fn refuse(q: Query, why: &str) {
    let e = why.to_string();
    match q {
        Query::Agent { reply, .. } | Query::Sample { reply, .. } | Query::Report { reply } => {
            let _ = reply.send(Err(e));
        }
        Query::Points { reply, .. } => {
            let _ = reply.send(Err(e));
        }
    }
}

/// The dashboard's sink of a live run.
pub struct WebSink {
    run: Arc<LiveRun>,
    first: bool,
}

impl WebSink {
    /// A sink feeding `run`.
    pub fn new(run: Arc<LiveRun>) -> WebSink {
        WebSink { run, first: true }
    }
}

fn value_at(col: &ColumnView, i: usize) -> f64 {
    match col {
        ColumnView::U8(v) => v[i] as f64,
        ColumnView::U16(v) => v[i] as f64,
        ColumnView::U32(v) => v[i] as f64,
        ColumnView::F64(v) => v[i],
        ColumnView::Bool(v) => v[i] as u8 as f64,
    }
}

/// One agent's columns now, with labels for coded ones.
fn agent(sim: &Simulation, run: &LiveRun, id: u64) -> Result<Value, String> {
    let n = sim.agents() as u64;
    if id >= n {
        return Err(format!(
            "no agent {id}: this run has agents 0 to {}",
            n.saturating_sub(1)
        ));
    }
    let i = id as usize;
    let columns: Vec<Value> = sim
        .agent_columns()
        .iter()
        .map(|(name, col)| {
            let v = value_at(col, i);
            let label = sim
                .column_labels(name)
                .and_then(|l| l.get(v as usize))
                .map(|s| s.to_string());
            json!({ "name": name, "value": v, "label": label })
        })
        .collect();
    {
        let mut d = run.write();
        if !d.watched.contains_key(&id) && d.watched.len() < WATCHED_MAX {
            let row: Vec<f64> = sim.agent_columns().iter().map(|(_, c)| value_at(c, i)).collect();
            d.watched.insert(id, vec![(sim.step_index(), row)]);
        }
    }
    Ok(json!({
        "agent": id,
        "step": sim.step_index(),
        "columns": columns,
        "provider": sim.inspect_agent(id as u32),
        "history": run.history(id),
        "events": run.events(Some(id), 500),
    }))
}

/// Agents matching every `column=value` filter: how many, and up to `n`
/// of them spread evenly over the matches (the same ones each time).
fn sample(sim: &Simulation, filter: &[(String, String)], n: usize) -> Result<Value, String> {
    let cols = sim.agent_columns();
    let mut wanted: Vec<(&ColumnView, f64)> = Vec::new();
    for (name, value) in filter {
        let Some((_, col)) = cols.iter().find(|(c, _)| c == name) else {
            let known: Vec<&str> = cols.iter().map(|(c, _)| *c).collect();
            return Err(format!(
                "unknown agent column '{name}' (this model has: {})",
                known.join(", ")
            ));
        };
        let code = match value.parse::<f64>() {
            Ok(x) => x,
            Err(_) => {
                let labels = sim.column_labels(name).unwrap_or(&[]);
                let found = labels.iter().position(|l| {
                    l.eq_ignore_ascii_case(value)
                        || l.trim_start_matches("the ")
                            .eq_ignore_ascii_case(value.trim_start_matches("the "))
                });
                match (found, value.to_ascii_lowercase().as_str()) {
                    (Some(k), _) => k as f64,
                    (None, "true" | "yes") if matches!(col, ColumnView::Bool(_)) => 1.0,
                    (None, "false" | "no") if matches!(col, ColumnView::Bool(_)) => 0.0,
                    _ if labels.is_empty() => {
                        return Err(format!("column '{name}' holds numbers; '{value}' is not one"))
                    }
                    _ => {
                        return Err(format!(
                            "column '{name}' has no value '{value}' (its values: {})",
                            labels.join(", ")
                        ))
                    }
                }
            }
        };
        wanted.push((col, code));
    }
    let total = sim.agents() as usize;
    let matches: Vec<u32> = (0..total)
        .filter(|&i| wanted.iter().all(|(c, v)| value_at(c, i) == *v))
        .map(|i| i as u32)
        .collect();
    let shown: Vec<u32> = if matches.len() <= n {
        matches.clone()
    } else {
        (0..n).map(|k| matches[k * matches.len() / n]).collect()
    };
    Ok(json!({ "matches": matches.len(), "agents": shown, "step": sim.step_index() }))
}

/// Positions of up to `max` agents (every k-th agent), packed as `f32`.
fn points(sim: &Simulation, max: usize) -> Result<Vec<u8>, String> {
    let cols = sim.agent_columns();
    let get = |name: &str| {
        cols.iter().find_map(|(c, v)| match v {
            ColumnView::F64(x) if *c == name => Some(*x),
            _ => None,
        })
    };
    let n = sim.agents() as usize;
    let stride = n.div_ceil(max.max(1)).max(1);
    let idx = (0..n).step_by(stride);
    let mut xy: Vec<[f32; 3]> = Vec::with_capacity(n / stride + 1);
    match (get("x"), get("y"), get("phase")) {
        (Some(x), Some(y), _) => {
            let h = get("heading");
            xy.extend(idx.map(|i| [x[i] as f32, y[i] as f32, h.map_or(f32::NAN, |h| h[i] as f32)]));
        }
        (_, _, Some(p)) => {
            // Oscillators on the unit circle; their phase is the heading.
            xy.extend(idx.map(|i| [p[i].cos() as f32, p[i].sin() as f32, p[i] as f32]));
        }
        _ => {
            return Err(format!(
                "model '{}' has no positions (agent columns x and y, or phase) to draw",
                sim.scenario().model.name
            ))
        }
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f32::INFINITY, f32::NEG_INFINITY, f32::INFINITY, f32::NEG_INFINITY);
    for p in &xy {
        x0 = x0.min(p[0]);
        x1 = x1.max(p[0]);
        y0 = y0.min(p[1]);
        y1 = y1.max(p[1]);
    }
    let mut out = Vec::with_capacity(24 + xy.len() * 12);
    for v in [n as f32, xy.len() as f32, x0, x1, y0, y1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for p in &xy {
        for v in p {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    Ok(out)
}

impl WebSink {
    fn answer(&self, sim: &Simulation, q: Query) {
        match q {
            Query::Agent { id, reply } => {
                let _ = reply.send(agent(sim, &self.run, id));
            }
            Query::Sample { filter, n, reply } => {
                let _ = reply.send(sample(sim, &filter, n));
            }
            Query::Points { max, reply } => {
                let _ = reply.send(points(sim, max));
            }
            Query::Report { reply } => {
                let _ = reply.send(Ok(sim.provider_report().unwrap_or(Value::Null)));
            }
        }
    }

    fn record_watched(&self, sim: &Simulation) {
        let mut d = self.run.write();
        if d.watched.is_empty() {
            return;
        }
        let cols = sim.agent_columns();
        let step = sim.step_index();
        for (&id, rows) in d.watched.iter_mut() {
            if rows.last().is_some_and(|r| r.0 == step) || rows.len() >= HISTORY_MAX {
                continue;
            }
            rows.push((step, cols.iter().map(|(_, c)| value_at(c, id as usize)).collect()));
        }
    }
}

impl Sink for WebSink {
    fn start(&mut self, run: &RunStart) -> Result<(), SinkError> {
        {
            let mut d = self.run.write();
            d.metrics = run.metrics.iter().map(|m| m.name.clone()).collect();
            d.kinds = run
                .metrics
                .iter()
                .map(|m| format!("{:?}", m.kind).to_ascii_lowercase())
                .collect();
            d.values = vec![Vec::new(); run.metrics.len()];
            d.agents = run.agents;
            d.calendar = *run.calendar;
            d.dates = run.calendar.start().map(|_| Vec::new());
        }
        self.run.set_status(Status::Running);
        self.run.send(self.run.hello());
        Ok(())
    }

    fn row(&mut self, step: u32, row: &[f64]) -> Result<(), SinkError> {
        let date = {
            let mut d = self.run.write();
            d.steps.push(step);
            for (v, &x) in d.values.iter_mut().zip(row) {
                v.push(x);
            }
            let date = d.calendar.date(step).map(|t| t.to_string());
            if let (Some(dates), Some(t)) = (&mut d.dates, &date) {
                dates.push(t.clone());
            }
            date
        };
        self.run
            .send(json!({ "type": "row", "step": step, "date": date, "row": row }));
        Ok(())
    }

    fn events(&mut self, step: u32, events: &[Value]) -> Result<(), SinkError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut d = self.run.write();
        for e in events {
            let mut e = e.clone();
            if let Some(o) = e.as_object_mut() {
                o.insert("step".into(), json!(step));
            }
            if d.events.len() == EVENTS_KEPT {
                d.events.pop_front();
            }
            d.events.push_back(e);
        }
        drop(d);
        self.run
            .send(json!({ "type": "events", "step": step, "count": events.len() }));
        Ok(())
    }

    fn between_steps(&mut self, sim: &Simulation) -> Result<(), SinkError> {
        if self.first {
            self.first = false;
            if let Some(log) = sim.call_log() {
                let _ = self.run.call_log.set(log);
            }
            let cols: Vec<(String, Option<Vec<String>>)> = sim
                .agent_columns()
                .iter()
                .map(|(n, _)| {
                    let labels = sim.column_labels(n).map(|l| l.iter().map(|s| s.to_string()).collect());
                    (n.to_string(), labels)
                })
                .collect();
            self.run.write().columns = cols;
        }
        self.record_watched(sim);
        let run = self.run.clone();
        let mut c = run.control();
        loop {
            let queries = std::mem::take(&mut c.queries);
            if !queries.is_empty() {
                drop(c);
                for q in queries {
                    self.answer(sim, q);
                }
                c = run.control();
                continue;
            }
            if run.stop.load(Ordering::Relaxed) || !c.paused {
                break;
            }
            if c.budget > 0 {
                c.budget -= 1;
                break;
            }
            if c.status != Status::Paused {
                c.status = Status::Paused;
                drop(c);
                run.send(run.status_message(&Status::Paused));
                c = run.control();
                continue;
            }
            c = run
                .wake
                .wait_timeout(c, Duration::from_millis(250))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let resumed = c.status == Status::Paused;
        if resumed {
            c.status = Status::Running;
        }
        drop(c);
        if resumed {
            run.send(run.status_message(&Status::Running));
        }
        Ok(())
    }
}
