//! `myriad._myriad.Env`: a controllable scenario as a vectorised
//! environment whose entries are its agents, stepped with numpy buffers
//! the caller owns (observations and rewards are written into them; no
//! allocation per step). `myriad.gym` and `myriad.pettingzoo` wrap it.

use crate::source::{self, Given};
use crate::{actions, errors, interrupt};
use myriad_sim::control::Env;
use numpy::{PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// The environment over a controllable scenario.
#[pyclass(name = "Env", module = "myriad._myriad")]
pub struct PyEnv {
    env: Mutex<Env>,
    names: Vec<&'static str>,
    observation_names: Vec<&'static str>,
    steps: u32,
    seed: u64,
    agents: usize,
    obs_dim: usize,
    last_step: std::sync::atomic::AtomicU64,
}

/// A caller's output buffer: a writeable C-contiguous float32 array of
/// shape `want`, or an error naming it.
fn out_buffer<'py, D: numpy::ndarray::Dimension>(
    obj: &Bound<'py, PyAny>,
    want: &[usize],
    what: &str,
) -> PyResult<numpy::PyReadwriteArray<'py, f32, D>> {
    let bad = |got: String| {
        errors::input(format!(
            "{what}: expected a writeable C-contiguous float32 array of shape {want:?}, got {got}"
        ))
    };
    let describe = |o: &Bound<'py, PyAny>| -> String {
        match (o.getattr("dtype"), o.getattr("shape")) {
            (Ok(d), Ok(s)) => format!(
                "dtype {} and shape {}",
                d.str().map_or("?".into(), |x| x.to_string()),
                s.str().map_or("?".into(), |x| x.to_string())
            ),
            _ => format!("a {}", o.get_type().name().map_or("?".into(), |n| n.to_string())),
        }
    };
    let arr = obj.cast::<numpy::PyArray<f32, D>>().map_err(|_| bad(describe(obj)))?;
    if arr.shape() != want || !arr.is_c_contiguous() {
        return Err(bad(describe(obj)));
    }
    arr.try_readwrite()
        .map_err(|_| bad("an array that is read-only or in use".into()))
}

impl PyEnv {
    fn lock(&self) -> PyResult<MutexGuard<'_, Env>> {
        self.env
            .try_lock()
            .map_err(|_| errors::RunError::new_err("the environment is busy in another thread"))
    }
}

#[pymethods]
impl PyEnv {
    /// An environment over a controllable scenario (`file`, `toml` or
    /// `scenario` dict, as for `Simulation`); episodes last its `steps`.
    #[new]
    #[pyo3(signature = (*, file=None, toml=None, scenario=None, base_dir=None, seed=None, threads=None, set=None))]
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
    ) -> PyResult<PyEnv> {
        let threads = source::threads(threads)?;
        let given = Given::from_args(file, toml, scenario, base_dir)?;
        let s = source::load(&given, seed, set)?;
        let n = myriad_sim::simulation::thread_count(threads);
        let env = interrupt::run(py, |_| {
            let pool = myriad_sim::simulation::pool(n)?;
            Env::new(&s, s.seed, pool)
        })?
        .map_err(errors::to_py)?;
        Ok(PyEnv {
            names: env.action_names(),
            observation_names: env.observation_names().to_vec(),
            agents: env.agents(),
            obs_dim: env.obs_dim(),
            steps: s.steps,
            seed: s.seed,
            env: Mutex::new(env),
            last_step: Default::default(),
        })
    }

    /// Agents: the vector entries.
    #[getter]
    fn agents(&self) -> usize {
        self.agents
    }

    /// Observation width.
    #[getter]
    fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Action width.
    #[getter]
    fn act_dim(&self) -> usize {
        self.names.len()
    }

    /// Names of the observation's components.
    #[getter]
    fn observation_names(&self) -> Vec<&'static str> {
        self.observation_names.clone()
    }

    /// Names of the action's components.
    #[getter]
    fn action_names(&self) -> Vec<&'static str> {
        self.names.clone()
    }

    /// Lower and upper bound of each action component.
    #[getter]
    fn action_bounds(&self) -> PyResult<Vec<(f32, f32)>> {
        Ok(self.lock()?.action_bounds())
    }

    /// Steps per episode.
    #[getter]
    fn steps(&self) -> u32 {
        self.steps
    }

    /// The scenario's seed.
    #[getter]
    fn seed(&self) -> u64 {
        self.seed
    }

    /// Steps taken in this episode.
    #[getter]
    fn step_index(&self) -> PyResult<u32> {
        Ok(self.lock()?.step_index())
    }

    /// The model's description of its observation, actions and reward.
    #[getter]
    fn description(&self) -> PyResult<String> {
        let env = self.lock()?;
        let d = env.doc();
        Ok(format!("reward: {}\ncontroller: {}", d.reward, d.controller_doc))
    }

    /// Start an episode from the initial state drawn with `seed`; its
    /// observations are written into `obs` (`agents x obs_dim` float32).
    fn reset(&self, py: Python<'_>, seed: u64, obs: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut obs = out_buffer::<numpy::Ix2>(obs, &[self.agents, self.obs_dim], "obs")?;
        if seed > i64::MAX as u64 {
            return Err(errors::input(format!("seed {seed} is larger than {}", i64::MAX)));
        }
        let mut guard = self.lock()?;
        let env: &mut Env = &mut guard;
        let out = obs.as_slice_mut()?;
        py.detach(|| -> myriad_sim::Result<()> {
            out.copy_from_slice(env.reset(seed)?);
            Ok(())
        })
        .map_err(errors::to_py)
    }

    /// Apply `actions` (`agents x act_dim`, any real dtype; a 1-D array
    /// when there is one component) and step once, the GIL released;
    /// observations and rewards are written into `obs` and `rewards`.
    /// Returns whether the episode ended by the task (terminated) and by
    /// the time limit (truncated); then call `reset`.
    fn step(
        &self,
        py: Python<'_>,
        actions: &Bound<'_, PyAny>,
        obs: &Bound<'_, PyAny>,
        rewards: &Bound<'_, PyAny>,
    ) -> PyResult<(bool, bool)> {
        let mut obs = out_buffer::<numpy::Ix2>(obs, &[self.agents, self.obs_dim], "obs")?;
        let mut rewards = out_buffer::<numpy::Ix1>(rewards, &[self.agents], "rewards")?;
        let a = actions::read(py, actions, self.agents, &self.names, "action")?;
        let mut guard = self.lock()?;
        let env: &mut Env = &mut guard;
        if env.step_index() >= self.steps {
            return Err(errors::RunError::new_err(format!(
                "the episode ended at step {}: call reset() before stepping again",
                self.steps
            )));
        }
        let (o, r) = (obs.as_slice_mut()?, rewards.as_slice_mut()?);
        let last = &self.last_step;
        py.detach(|| -> myriad_sim::Result<(bool, bool)> {
            let start = std::time::Instant::now();
            let t = env.step(&a)?;
            let done = (t.terminated.first() == Some(&true), t.truncated.first() == Some(&true));
            last.store(start.elapsed().as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
            o.copy_from_slice(t.obs);
            r.copy_from_slice(t.rewards);
            Ok(done)
        })
        .map_err(errors::to_py)
    }

    /// Seconds the last `step` spent inside the engine's step (the rest of
    /// the call is the Python binding: checking and copying the arrays).
    #[getter]
    fn last_step_seconds(&self) -> f64 {
        self.last_step.load(std::sync::atomic::Ordering::Relaxed) as f64 * 1e-9
    }

    /// The current metric row as (name, value) pairs.
    fn metrics(&self) -> PyResult<Vec<(String, f64)>> {
        let env = self.lock()?;
        let (names, row) = env.metrics();
        Ok(names.into_iter().zip(row.iter().copied()).collect())
    }

    /// A stable hash of the whole state.
    fn state_hash(&self) -> PyResult<u64> {
        Ok(self.lock()?.simulation().state_hash())
    }
}
