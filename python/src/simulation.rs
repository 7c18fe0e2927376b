//! `myriad.Simulation`: a scenario built and stepped from Python. Steps run
//! without the GIL (another Python thread keeps running) and stop cleanly
//! on Ctrl-C; the time series, agent columns, observations and rewards come
//! out as numpy arrays over the engine's memory or as Arrow.

use crate::source::{self, Given};
use crate::table::Table;
use crate::views::Generation;
use crate::{actions, errors, interrupt};
use myriad_core::model::ColumnView;
use myriad_sim::simulation::{Decisions, SimOptions, Simulation, Snapshot};
use myriad_sim::Scenario;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// Rows computed so far: step and metric values, in step order.
#[derive(Clone, Default)]
pub struct History {
    pub steps: Vec<u32>,
    pub values: Vec<f64>,
}

impl History {
    fn push(&mut self, step: u32, row: &[f64]) {
        self.steps.push(step);
        self.values.extend_from_slice(row);
    }
}

/// The live part of a simulation object.
struct Live {
    sim: Simulation,
    history: History,
    views: Generation,
}

impl Live {
    fn replace(&mut self, sim: Simulation, history: History) {
        let old = std::mem::replace(&mut self.sim, sim);
        self.views.retire(Box::new(old));
        self.history = history;
    }
}

/// A simulation of one scenario. Build it with `Simulation.from_file`,
/// `from_toml` or `from_dict`.
#[pyclass(name = "Simulation", module = "myriad._myriad", subclass)]
pub struct PySimulation {
    live: Mutex<Option<Live>>,
    scenario: Mutex<Scenario>,
    key: u64,
    threads: Option<usize>,
    policy: Option<Py<PyAny>>,
    rule: bool,
}

/// A copy of a simulation's whole state (and its time series so far), for
/// `Simulation.restore`.
#[pyclass(name = "Snapshot", module = "myriad._myriad", frozen)]
pub struct PySnapshot {
    snap: Mutex<Snapshot>,
    history: History,
    key: u64,
    scenario: String,
    /// The step the snapshot was taken at.
    #[pyo3(get)]
    step: u32,
}

fn build(s: &Scenario, threads: Option<usize>, policy: bool, rule: bool) -> PyResult<Simulation> {
    let decisions = if policy {
        Decisions::External
    } else if rule {
        Decisions::Rule
    } else {
        Decisions::Scenario
    };
    let mut sim = Simulation::build(
        s,
        SimOptions {
            threads,
            runtime: None,
            decisions,
        },
    )
    .map_err(errors::to_py)?;
    if policy {
        let n = sim.agents() as usize;
        let d = s.model.control.map_or(0, |c| c.act_dim());
        if let Some(c) = sim.controller() {
            c.set_actions(vec![0.0; n * d]);
        }
    }
    Ok(sim)
}

impl PySimulation {
    fn lock(&self) -> PyResult<MutexGuard<'_, Option<Live>>> {
        self.live
            .try_lock()
            .map_err(|_| errors::RunError::new_err("the simulation is busy in another thread (one call at a time)"))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Live) -> T) -> PyResult<T> {
        let mut guard = self.lock()?;
        Ok(f(open(&mut guard)?))
    }

    fn scenario(&self) -> Scenario {
        self.scenario.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn open(live: &mut Option<Live>) -> PyResult<&mut Live> {
    live.as_mut()
        .ok_or_else(|| errors::RunError::new_err("the simulation is closed"))
}

/// One step, recorded; a provider failure is an error naming the step
/// (the step itself finished on the model's rule and is kept).
fn advance(live: &mut Live) -> myriad_sim::Result<()> {
    live.sim.step()?;
    live.history.push(live.sim.step_index(), live.sim.row());
    match live.sim.error() {
        Some(e) => Err(myriad_sim::Error::Run(format!("step {}: {e}", live.sim.step_index()))),
        None => Ok(()),
    }
}

#[pymethods]
impl PySimulation {
    /// Build a simulation. Give exactly one of `file` (a scenario file),
    /// `toml` (its text) or `scenario` (a dict); `base_dir` anchors relative
    /// paths of the last two. `set` holds `--set` overrides
    /// (`{"params.beta": 0.3}`), `seed` replaces the scenario's,
    /// `threads` sizes the simulation's own worker pool (default: all
    /// cores). `policy`, a callable mapping a `(agents, obs_dim)` float32
    /// array of observations to `(agents, act_dim)` actions, decides for a
    /// controllable model, called once per step for all agents.
    /// `rule=True` ignores the scenario's `[behaviour]`.
    #[new]
    #[pyo3(signature = (*, file=None, toml=None, scenario=None, base_dir=None, seed=None, threads=None, set=None, policy=None, rule=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        file: Option<PathBuf>,
        toml: Option<&str>,
        scenario: Option<&Bound<'_, PyDict>>,
        base_dir: Option<PathBuf>,
        seed: Option<u64>,
        threads: Option<usize>,
        set: Option<&Bound<'_, PyDict>>,
        policy: Option<Py<PyAny>>,
        rule: bool,
    ) -> PyResult<PySimulation> {
        let threads = source::threads(threads)?;
        let given = Given::from_args(file, toml, scenario, base_dir)?;
        let s = source::load(&given, seed, set)?;
        if let Some(p) = &policy {
            if !p.bind(py).is_callable() {
                return Err(errors::input("policy must be callable: observations -> actions"));
            }
            if s.model.control.is_none() {
                return Err(errors::input(format!(
                    "{}: model '{}' declares no observations or actions, so a policy cannot drive it",
                    s.file.display(),
                    s.model.name
                )));
            }
        }
        let has_policy = policy.is_some();
        let sim = interrupt::run(py, |_| build(&s, threads, has_policy, rule))??;
        let mut history = History::default();
        history.push(0, sim.row());
        Ok(PySimulation {
            key: source::identity(&s),
            live: Mutex::new(Some(Live {
                sim,
                history,
                views: Generation::default(),
            })),
            scenario: Mutex::new(s),
            threads,
            policy,
            rule,
        })
    }

    /// The scenario's name.
    #[getter]
    fn name(&self) -> String {
        self.scenario.lock().unwrap_or_else(|e| e.into_inner()).name.clone()
    }

    /// The model's name.
    #[getter]
    fn model(&self) -> &'static str {
        self.scenario.lock().unwrap_or_else(|e| e.into_inner()).model.name
    }

    /// The seed of the current run.
    #[getter]
    fn seed(&self) -> u64 {
        self.scenario.lock().unwrap_or_else(|e| e.into_inner()).seed
    }

    /// Steps of a whole run (the scenario's `steps`).
    #[getter]
    fn steps(&self) -> u32 {
        self.scenario.lock().unwrap_or_else(|e| e.into_inner()).steps
    }

    /// The last step computed (0 before the first).
    #[getter]
    fn step_index(&self) -> PyResult<u32> {
        self.with(|l| l.sim.step_index())
    }

    /// Number of agents.
    #[getter]
    fn agents(&self) -> PyResult<u32> {
        self.with(|l| l.sim.agents())
    }

    /// Worker threads of the simulation's pool.
    #[getter]
    fn threads(&self) -> PyResult<usize> {
        self.with(|l| l.sim.threads())
    }

    /// Metric names, in row order.
    #[getter]
    fn metrics(&self) -> PyResult<Vec<String>> {
        self.with(|l| l.sim.metrics().iter().map(|m| m.name.clone()).collect())
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> PyResult<bool> {
        Ok(self.lock()?.is_none())
    }

    /// Compute `n` more steps; returns the last step computed. The GIL is
    /// released while Rust computes; Ctrl-C stops after the step under way
    /// (steps done are kept) and raises KeyboardInterrupt.
    #[pyo3(signature = (n=1))]
    fn step(&self, py: Python<'_>, n: u32) -> PyResult<u32> {
        let mut guard = self.lock()?;
        let live = open(&mut guard)?;
        for _ in 0..n {
            if let Some(policy) = &self.policy {
                self.apply_policy(py, live, policy)?;
            }
            let l: &mut Live = live;
            py.detach(|| advance(l)).map_err(errors::to_py)?;
            // Ctrl-C lands here, between steps: the steps done are kept.
            py.check_signals()?;
        }
        Ok(live.sim.step_index())
    }

    /// Step to the end of the run (step `until`, default the scenario's
    /// `steps`); returns the last step computed.
    #[pyo3(signature = (until=None))]
    fn run(&self, py: Python<'_>, until: Option<u32>) -> PyResult<u32> {
        let until = until.unwrap_or_else(|| self.steps());
        let now = self.step_index()?;
        self.step(py, until.saturating_sub(now))
    }

    /// Start again from step 0, with `seed` (default: the current seed).
    /// Arrays handed out before keep showing the old state.
    #[pyo3(signature = (seed=None))]
    fn reset(&self, py: Python<'_>, seed: Option<u64>) -> PyResult<()> {
        let mut guard = self.lock()?;
        let live = open(&mut guard)?;
        let mut s = self.scenario();
        if let Some(seed) = seed {
            if seed > i64::MAX as u64 {
                return Err(errors::input(format!("seed {seed} is larger than {}", i64::MAX)));
            }
            s.seed = seed;
        }
        let has_policy = self.policy.is_some();
        let sim = interrupt::run(py, |_| build(&s, self.threads, has_policy, self.rule))??;
        let mut history = History::default();
        history.push(0, sim.row());
        live.replace(sim, history);
        *self.scenario.lock().unwrap_or_else(|e| e.into_inner()) = s;
        Ok(())
    }

    /// A copy of the whole state (model, decision provider, step, time
    /// series so far).
    fn snapshot(&self) -> PyResult<PySnapshot> {
        let mut guard = self.lock()?;
        let live = open(&mut guard)?;
        Ok(PySnapshot {
            snap: Mutex::new(live.sim.snapshot()),
            history: live.history.clone(),
            key: self.key,
            scenario: self.name(),
            step: live.sim.step_index(),
        })
    }

    /// Go back to a snapshot of this scenario (taken from this simulation
    /// or another of the same scenario).
    fn restore(&self, snapshot: &PySnapshot) -> PyResult<()> {
        if snapshot.key != self.key {
            return Err(errors::input(format!(
                "the snapshot is of scenario '{}' (another scenario or other settings), not of '{}'",
                snapshot.scenario,
                self.name()
            )));
        }
        let mut guard = self.lock()?;
        let live = open(&mut guard)?;
        let snap = snapshot.snap.lock().unwrap_or_else(|e| e.into_inner());
        if live.views.in_use() {
            let mut fresh = live.sim.fork();
            fresh.restore(&snap);
            live.replace(fresh, snapshot.history.clone());
        } else {
            live.sim.restore(&snap);
            live.history = snapshot.history.clone();
        }
        Ok(())
    }

    /// A stable hash of the whole state: equal hashes, equal states (on
    /// any machine and thread count).
    fn state_hash(&self) -> PyResult<u64> {
        self.with(|l| l.sim.state_hash())
    }

    /// The current metric row as a dict.
    fn row(&self) -> PyResult<Vec<(String, f64)>> {
        let mut guard = self.lock()?;
        let live = open(&mut guard)?;
        Ok(live
            .sim
            .metrics()
            .iter()
            .zip(live.sim.row())
            .map(|(m, &v)| (m.name.clone(), v))
            .collect())
    }

    /// The time series so far (step 0 first) as a table, which hands its
    /// columns to pyarrow, polars or pandas through the Arrow PyCapsule
    /// interface (`pyarrow.table(t)`, `polars.DataFrame(t)`).
    fn table(&self) -> PyResult<Table> {
        let mut guard = self.lock()?;
        let live = open(&mut guard)?;
        let names: Vec<String> = live.sim.metrics().iter().map(|m| m.name.clone()).collect();
        let dates = {
            let s = self.scenario.lock().unwrap_or_else(|e| e.into_inner());
            s.calendar.start().map(|_| {
                live.history
                    .steps
                    .iter()
                    .map(|&k| s.calendar.date(k).map(|d| d.to_string()).unwrap_or_default())
                    .collect()
            })
        };
        Ok(Table::from_history(&live.history, names, dates))
    }

    /// Names of the per-agent columns.
    fn column_names(&self) -> PyResult<Vec<&'static str>> {
        self.with(|l| l.sim.agent_columns().into_iter().map(|(n, _)| n).collect())
    }

    /// One per-agent column as a read-only numpy array sharing memory with
    /// the engine: no copy, whatever the size. It shows the current state
    /// and is valid until the next step; after a step its values are
    /// unspecified (copy it with `.copy()` to keep it). After `reset`,
    /// `restore` or `close` it keeps the old values.
    fn column<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let mut guard = self.lock()?;
        let live = open(&mut guard)?;
        let cols = live.sim.agent_columns();
        let Some((_, col)) = cols.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = cols.iter().map(|(n, _)| *n).collect();
            return Err(errors::input(format!(
                "model '{}' has no agent column '{name}' (it has: {})",
                self.model(),
                names.join(", ")
            )));
        };
        // SAFETY: the column is memory of the current state, which the
        // generation keeps allocated while this array lives.
        unsafe {
            Ok(match col {
                ColumnView::U8(v) => live.views.view1(py, v)?.into_any(),
                ColumnView::U16(v) => live.views.view1(py, v)?.into_any(),
                ColumnView::U32(v) => live.views.view1(py, v)?.into_any(),
                ColumnView::F64(v) => live.views.view1(py, v)?.into_any(),
                ColumnView::Bool(v) => live.views.view1(py, v)?.into_any(),
            })
        }
    }

    /// For a controllable model: every agent's observation of the current
    /// state, `(agents, obs_dim)` float32, read-only, sharing memory (valid
    /// until the next step).
    fn observations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut guard = self.lock()?;
        let live = open(&mut guard)?;
        let d = self.obs_dim()?;
        let obs = live.sim.observations().ok_or_else(|| self.not_controllable())?;
        // SAFETY: memory of the current state, kept by the generation.
        Ok(unsafe { live.views.view2(py, obs, d)? }.into_any())
    }

    /// For a controllable model: every agent's reward for the last step,
    /// float32, read-only, sharing memory (valid until the next step).
    fn rewards<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut guard = self.lock()?;
        let live = open(&mut guard)?;
        let r = live.sim.rewards().ok_or_else(|| self.not_controllable())?;
        // SAFETY: memory of the current state, kept by the generation.
        Ok(unsafe { live.views.view1(py, r)? }.into_any())
    }

    /// The decision provider's counters (LLM calls, cache hits, policy
    /// steps) as JSON text, or None for the model's rule.
    fn provider_report(&self) -> PyResult<Option<String>> {
        self.with(|l| l.sim.provider_report().map(|v| v.to_string()))
    }

    /// The last step's transcript events (games, LLM runs) as JSON texts.
    fn events(&self) -> PyResult<Vec<String>> {
        self.with(|l| l.sim.events().iter().map(|e| e.to_string()).collect())
    }

    /// Free the simulation's memory now; later calls raise RunError.
    fn close(&self) -> PyResult<()> {
        let mut guard = self.lock()?;
        if let Some(mut live) = guard.take() {
            if live.views.in_use() {
                live.views.retire(Box::new(live.sim));
            }
        }
        Ok(())
    }

    /// The policy callable may refer back to the simulation (a closure over
    /// it): the garbage collector sees that reference.
    fn __traverse__(&self, visit: pyo3::pyclass::PyVisit<'_>) -> Result<(), pyo3::pyclass::PyTraverseError> {
        if let Some(p) = &self.policy {
            visit.call(p)?;
        }
        Ok(())
    }

    fn __repr__(&self) -> String {
        let s = self.scenario.lock().unwrap_or_else(|e| e.into_inner());
        match self.live.try_lock() {
            Ok(g) => match g.as_ref() {
                Some(l) => format!(
                    "Simulation(scenario='{}', model='{}', agents={}, step={}/{}, seed={})",
                    s.name,
                    s.model.name,
                    l.sim.agents(),
                    l.sim.step_index(),
                    s.steps,
                    s.seed
                ),
                None => format!("Simulation(scenario='{}', closed)", s.name),
            },
            Err(_) => format!("Simulation(scenario='{}', busy)", s.name),
        }
    }
}

impl PySimulation {
    fn obs_dim(&self) -> PyResult<usize> {
        let s = self.scenario.lock().unwrap_or_else(|e| e.into_inner());
        s.model
            .control
            .map(|c| c.obs_dim())
            .ok_or_else(|| self.not_controllable())
    }

    fn not_controllable(&self) -> PyErr {
        errors::input(format!(
            "model '{}' declares no observations, actions or rewards",
            self.model()
        ))
    }

    /// Ask the Python policy for every agent's action and hand them to the
    /// simulation's controller.
    fn apply_policy(&self, py: Python<'_>, live: &mut Live, policy: &Py<PyAny>) -> PyResult<()> {
        let (names, d) = {
            let s = self.scenario.lock().unwrap_or_else(|e| e.into_inner());
            let c = s.model.control.ok_or_else(|| self.not_controllable())?;
            (c.actions.iter().map(|a| a.name).collect::<Vec<_>>(), c.obs_dim())
        };
        let n = live.sim.agents() as usize;
        let obs = live.sim.observations().ok_or_else(|| self.not_controllable())?;
        // SAFETY: memory of the current state, kept by the generation.
        let view = unsafe { live.views.view2(py, obs, d)? };
        let out = policy.bind(py).call1((view,))?;
        let a = actions::read(py, &out, n, &names, "policy's action")?;
        let c = live.sim.controller().expect("a policy run has an external controller");
        match c.actions_mut() {
            Some(buf) => buf.copy_from_slice(&a),
            None => c.set_actions(a),
        }
        Ok(())
    }
}
