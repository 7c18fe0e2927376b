//! The [`Simulation`] value: a model, the run's decision provider, the
//! scenario's schedule and a thread pool of its own, stepped by any front
//! end (the command line, Python, a web server, a training loop).

use crate::build::{self, LayerReport};
use crate::error::{Error, FileContext, Result};
use crate::scenario::Scenario;
use crate::sinks::{RunStart, Sink};
use myriad_core::behaviour::{Behaviour, ExternalController};
use myriad_core::comm::{Comm, Local, Part, Split};
use myriad_core::hash::StateHasher;
use myriad_core::metrics::MetricSpec;
use myriad_core::model::{ColumnView, Decide, Layer, Model, ModelInput, Step};
use myriad_core::params::ParamValue;
use myriad_core::population::Population;
use myriad_core::schedule::InForce;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Where a simulation's decisions come from.
pub enum Decisions {
    /// The model's own rule.
    Rule,
    /// A provider built from the scenario's `[behaviour]` (LLM archetypes
    /// or agents), or the rule when the scenario has none.
    Scenario,
    /// Values the caller sets between steps (see [`Simulation::controller`]).
    External,
    /// Any other provider (a learned policy, a test double).
    Provider(Box<dyn Behaviour>),
}

/// How to build a simulation.
pub struct SimOptions {
    /// Worker threads of the simulation's own pool [default: all cores].
    pub threads: Option<usize>,
    /// The async runtime LLM providers use. `None`: the simulation makes
    /// one of its own when it needs one.
    pub runtime: Option<tokio::runtime::Handle>,
    /// Where decisions come from.
    pub decisions: Decisions,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            threads: None,
            runtime: None,
            decisions: Decisions::Scenario,
        }
    }
}

/// The provider attached to a simulation.
enum Provider {
    Rule,
    External(ExternalController),
    Other(Box<dyn Behaviour>),
}

impl Provider {
    fn get(&mut self) -> Option<&mut dyn Behaviour> {
        match self {
            Provider::Rule => None,
            Provider::External(c) => Some(c),
            Provider::Other(b) => Some(b.as_mut()),
        }
    }

    fn snapshot(&self) -> Provider {
        match self {
            Provider::Rule => Provider::Rule,
            Provider::External(c) => Provider::External(c.clone()),
            Provider::Other(b) => Provider::Other(b.snapshot()),
        }
    }

    fn report(&self) -> Option<serde_json::Value> {
        match self {
            Provider::Rule => None,
            Provider::External(c) => Some(c.report()),
            Provider::Other(b) => Some(b.report()),
        }
    }
}

/// How [`Simulation::run`] ended.
#[derive(Clone, Debug)]
pub struct RunEnd {
    /// The last step computed.
    pub done: u32,
    /// The provider's failure that stopped the run, if one did.
    pub failure: Option<String>,
    /// Seconds spent stepping.
    pub run_seconds: f64,
}

/// A copy of a simulation's state (model, provider, step, current row) to
/// restore later.
pub struct Snapshot {
    model: Box<dyn Model>,
    provider: Provider,
    step: u32,
    row: Vec<f64>,
}

/// What building took: the agents, each layer, the time.
#[derive(Clone, Debug)]
pub struct BuildInfo {
    /// Agents.
    pub agents: u32,
    /// Per layer: edges, degree, seconds.
    pub layers: Vec<LayerReport>,
    /// Seconds spent building the population.
    pub population_seconds: f64,
    /// Seconds spent building the layers.
    pub layer_seconds: f64,
}

/// A running simulation.
pub struct Simulation {
    scenario: Arc<Scenario>,
    model: Box<dyn Model>,
    provider: Provider,
    pool: Arc<rayon::ThreadPool>,
    threads: usize,
    step: u32,
    row: Vec<f64>,
    specs: Vec<MetricSpec>,
    base_weights: Vec<f64>,
    overrides: Vec<(String, f64)>,
    in_force: Option<(u32, InForce)>,
    events: Vec<serde_json::Value>,
    error: Option<String>,
    info: BuildInfo,
    // The agents this process owns, and the other ranks of a partitioned
    // run (the whole population and a local communicator for one process).
    part: Part,
    comm: Arc<dyn Comm>,
    // Kept alive for the provider when the simulation made its own runtime.
    _runtime: Option<Arc<tokio::runtime::Runtime>>,
}

/// The number of worker threads: the option, or all cores.
pub fn thread_count(threads: Option<usize>) -> usize {
    threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A thread pool of `threads` workers for one simulation.
pub fn pool(threads: usize) -> Result<Arc<rayon::ThreadPool>> {
    Ok(Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| Error::Run(format!("starting worker threads: {e}")))?,
    ))
}

impl Simulation {
    /// Build everything the scenario names (population, layers, decision
    /// provider, model) on a pool of its own, ready for step 1.
    pub fn build(s: &Scenario, opts: SimOptions) -> Result<Simulation> {
        Simulation::build_on(s, opts, Arc::new(Local))
    }

    /// [`Self::build`] as one rank of a partitioned run: this process
    /// builds and steps only its part of the agents, and `comm` reaches
    /// the other ranks (every rank must call this with the same scenario).
    /// With one rank, the same as [`Self::build`].
    pub fn build_on(s: &Scenario, opts: SimOptions, comm: Arc<dyn Comm>) -> Result<Simulation> {
        let ranks = comm.ranks();
        if ranks > 1 && !s.model.splits {
            return Err(Error::Input(crate::InputError(format!(
                "{}: model '{}' cannot be split over {ranks} processes; run it with one (without mpirun, or mpirun -n 1). Models that can: {}",
                s.file.display(),
                s.model.name,
                myriad_models::registry::models().iter().filter(|m| m.splits).map(|m| m.name).collect::<Vec<_>>().join(", ")
            ))));
        }
        let threads = thread_count(opts.threads);
        let pool = pool(threads)?;
        let t = std::time::Instant::now();
        let population = pool.install(|| build::population(s))?;
        let population_seconds = t.elapsed().as_secs_f64();
        let n = population.size();
        if ranks as u64 > n as u64 {
            return Err(Error::Input(crate::InputError(format!(
                "{}: {ranks} processes for {n} agents; use at most one process per agent",
                s.file.display()
            ))));
        }
        let split = Split {
            part: (ranks > 1).then(|| Part::even(n, comm.rank(), ranks)),
            comm: comm.clone(),
        };
        let t = std::time::Instant::now();
        let (layers, reports) = pool.install(|| build::layers_split(s, &population, &split))?;
        let layer_seconds = t.elapsed().as_secs_f64();
        let info = BuildInfo {
            agents: population.size(),
            layers: reports,
            population_seconds,
            layer_seconds,
        };
        Simulation::from_split(
            s,
            population,
            layers,
            s.seed,
            opts.decisions,
            opts.runtime,
            pool,
            info,
            split,
        )
    }

    /// A simulation from a population and layers already built (copies of
    /// them start several runs of one scenario, e.g. with other seeds).
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        s: &Scenario,
        population: Population,
        layers: Vec<Layer>,
        seed: u64,
        decisions: Decisions,
        runtime: Option<tokio::runtime::Handle>,
        pool: Arc<rayon::ThreadPool>,
        info: BuildInfo,
    ) -> Result<Simulation> {
        Simulation::from_split(
            s,
            population,
            layers,
            seed,
            decisions,
            runtime,
            pool,
            info,
            Split::single(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn from_split(
        s: &Scenario,
        population: Population,
        layers: Vec<Layer>,
        seed: u64,
        decisions: Decisions,
        runtime: Option<tokio::runtime::Handle>,
        pool: Arc<rayon::ThreadPool>,
        info: BuildInfo,
        split: Split,
    ) -> Result<Simulation> {
        let mut owned_runtime = None;
        // In a partitioned run the model asks its questions on rank 0 and
        // sends the answers to the others, so only rank 0 holds a provider
        // (an LLM's calls are made once, as by one process).
        let asks_here = split.comm.rank() == 0;
        let built = match decisions {
            Decisions::Rule => Ok(Provider::Rule),
            Decisions::Scenario if !asks_here => Ok(Provider::Rule),
            Decisions::External => Ok(Provider::External(ExternalController::new())),
            Decisions::Provider(b) => Ok(Provider::Other(b)),
            Decisions::Scenario if s.control.is_some() => Ok(Provider::Other(crate::control::provider(s, seed))),
            Decisions::Scenario if s.behaviour.is_none() => Ok(Provider::Rule),
            Decisions::Scenario => {
                let handle = match runtime {
                    Some(h) => Ok(h),
                    None => tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .doing(|| "starting the async runtime".into())
                        .map(|rt| {
                            let rt = Arc::new(rt);
                            let h = rt.handle().clone();
                            owned_runtime = Some(rt);
                            h
                        }),
                };
                handle
                    .and_then(|h| crate::behaviour::provider(s, &population, h))
                    .map(|b| b.map_or(Provider::Rule, Provider::Other))
            }
        };
        // Rank 0 alone builds a provider: its failure is every rank's.
        let provider = crate::error::agree(&*split.comm, built)?;
        let base_weights: Vec<f64> = layers.iter().map(|l| l.weight).collect();
        let part = split.part_of(population.size());
        let comm = split.comm.clone();
        let input = ModelInput {
            population,
            layers,
            params: s.params.clone(),
            seed,
            split,
        };
        let model = pool.install(|| (s.model.build)(input)).map_err(|e| {
            crate::build::InputError(format!(
                "{}: cannot set up model '{}': {e}",
                s.file.display(),
                s.model.name
            ))
        })?;
        let specs = model.metrics();
        let mut row = vec![0.0; specs.len()];
        model.observe(&mut row);
        let mut scenario = s.clone();
        scenario.seed = seed;
        Ok(Simulation {
            scenario: Arc::new(scenario),
            model,
            provider,
            threads: pool.current_num_threads(),
            pool,
            step: 0,
            row,
            specs,
            base_weights,
            overrides: Vec::new(),
            in_force: None,
            events: Vec::new(),
            error: None,
            info,
            part,
            comm,
            _runtime: owned_runtime,
        })
    }

    /// The scenario it runs.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// What building took.
    pub fn info(&self) -> &BuildInfo {
        &self.info
    }

    /// Worker threads of its pool.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The last step computed (0 before the first).
    pub fn step_index(&self) -> u32 {
        self.step
    }

    /// Agents.
    pub fn agents(&self) -> u32 {
        self.model.agent_count()
    }

    /// The metrics, in row order.
    pub fn metrics(&self) -> &[MetricSpec] {
        &self.specs
    }

    /// The current metric row (of [`Self::step_index`]).
    pub fn row(&self) -> &[f64] {
        &self.row
    }

    /// Transcript events of the last step.
    pub fn events(&self) -> &[serde_json::Value] {
        &self.events
    }

    /// The provider's first error in the last step, if any: the step
    /// finished on the model's rule, and the run should stop.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The provider's counters, if a provider is attached.
    pub fn provider_report(&self) -> Option<serde_json::Value> {
        self.provider.report()
    }

    /// The external controller, when decisions are [`Decisions::External`]:
    /// set each agent's value for a decision before a step.
    pub fn controller(&mut self) -> Option<&mut ExternalController> {
        match &mut self.provider {
            Provider::External(c) => Some(c),
            _ => None,
        }
    }

    /// Hold parameter `name` at `value` from the next step on, after the
    /// scenario's interventions (as one appended last would); calibration
    /// fits a weekly value this way.
    pub fn set_override(&mut self, name: &str, value: f64) {
        self.overrides.retain(|(n, _)| n != name);
        self.overrides.push((name.to_string(), value));
        self.in_force = None;
    }

    /// For a controllable model: every agent's observation of the current
    /// state (`agents x obs_dim`, agent order; valid until the next step).
    pub fn observations(&self) -> Option<&[f32]> {
        self.model.agent_observations()
    }

    /// For a controllable model: every agent's reward for the last step.
    pub fn rewards(&self) -> Option<&[f32]> {
        self.model.agent_rewards()
    }

    /// For a controllable model: the bounds of each action component under
    /// the parameters in force now.
    pub fn action_bounds(&self) -> Vec<(f32, f32)> {
        self.model.action_bounds(&self.scenario.params)
    }

    /// Per-agent state of the model, read-only (valid until the next step).
    pub fn agent_columns(&self) -> Vec<(&'static str, ColumnView<'_>)> {
        self.model.agent_columns()
    }

    /// Names of the codes of a small-code agent column, if the model names them.
    pub fn column_labels(&self, column: &str) -> Option<&'static [&'static str]> {
        self.model.column_labels(column)
    }

    /// What the decision provider holds about one agent (an LLM agent's
    /// memory, the archetype it belongs to and its answers), if anything.
    pub fn inspect_agent(&self, agent: u32) -> Option<serde_json::Value> {
        match &self.provider {
            Provider::Rule => None,
            Provider::External(_) => None,
            Provider::Other(b) => b.inspect_agent(agent),
        }
    }

    /// The provider's log of model calls (LLM runs), shared and readable
    /// while a step waits on the model.
    pub fn call_log(&self) -> Option<Arc<myriad_core::behaviour::CallLog>> {
        match &self.provider {
            Provider::Other(b) => b.call_log(),
            _ => None,
        }
    }

    /// Parameters and layer weights in force at `step`, cached between steps.
    fn in_force(&mut self, step: u32) -> Result<InForce> {
        if let Some((s, f)) = &self.in_force {
            if *s == step {
                return Ok(f.clone());
            }
        }
        let mut f = self
            .scenario
            .schedule
            .in_force(step, &self.scenario.params, &self.base_weights)
            .map_err(|e| Error::Input(crate::InputError(format!("intervention schedule: {e}"))))?;
        for (name, value) in &self.overrides {
            f.params.set(name, ParamValue::Number(*value))?;
        }
        self.in_force = Some((step, f.clone()));
        Ok(f)
    }

    /// Compute the next step. A provider failure does not fail the step
    /// (it finishes on the model's rule): see [`Self::error`].
    pub fn step(&mut self) -> Result<()> {
        let step = self.step + 1;
        let f = self.in_force(step)?;
        self.events.clear();
        self.error = None;
        let Simulation {
            scenario,
            model,
            provider,
            pool,
            row,
            events,
            error,
            ..
        } = self;
        let mut cx = Step {
            step,
            params: &f.params,
            layer_weights: &f.layer_weights,
            calendar: &scenario.calendar,
            decide: Decide::new(provider.get(), error),
            events,
        };
        pool.install(|| model.step(&mut cx, row));
        self.step = step;
        Ok(())
    }

    /// Step until step `until` (the scenario's last, for a whole run),
    /// handing every sink the current row first and then each step's row
    /// and events; stops early when `stop` is set or when the provider
    /// fails (the failing step is kept, and reported in [`RunEnd::failure`]).
    pub fn run(&mut self, until: u32, sinks: &mut [&mut dyn Sink], stop: &AtomicBool) -> Result<RunEnd> {
        self.run_after(&[], until, sinks, stop)
    }

    /// [`Self::run`] for a simulation resumed at a later step: the sinks
    /// get `history` (the rows of steps 0 to the one before the current)
    /// first, so that their files are those of an uninterrupted run.
    pub fn run_after(
        &mut self,
        history: &[Vec<f64>],
        until: u32,
        sinks: &mut [&mut dyn Sink],
        stop: &AtomicBool,
    ) -> Result<RunEnd> {
        let start = RunStart {
            built: &self.info,
            metrics: &self.specs,
            steps: until,
            agents: self.model.agent_count(),
            calendar: &self.scenario.calendar,
        };
        // In a partitioned run a sink's failure on one rank must reach the
        // others at the next agreement, not leave them waiting: it is kept
        // in `sink_error` until then (one process returns it at once).
        let split = self.comm.ranks() > 1;
        let mut sink_error = None;
        let started = sinks.iter_mut().try_for_each(|s| s.start(&start)).and_then(|()| {
            sinks.iter_mut().try_for_each(|s| {
                for (k, row) in history.iter().enumerate() {
                    s.row(k as u32, row)?;
                }
                s.row(self.step, &self.row)?;
                s.between_steps(self)
            })
        });
        match started {
            Err(e) if !split => return Err(e.into()),
            Err(e) => sink_error = Some(Error::from(e)),
            Ok(()) => {}
        }
        let t = std::time::Instant::now();
        let mut failure = None;
        while self.step < until && !self.agreed_stop(stop, &mut sink_error, &mut failure)? {
            self.step()?;
            let fed = sinks.iter_mut().try_for_each(|s| {
                s.row(self.step, &self.row)?;
                s.events(self.step, &self.events)?;
                s.between_steps(self)
            });
            if let Err(e) = fed {
                if !split {
                    return Err(e.into());
                }
                sink_error = Some(Error::from(e));
                continue;
            }
            if let Some(e) = &self.error {
                // The step finished on fallbacks; stop here and keep what is
                // done (every rank of a partitioned run at the next agreement).
                failure = Some(format!("step {}: {e}", self.step));
                if !split {
                    break;
                }
            }
        }
        let finished = sinks.iter_mut().try_for_each(|s| s.finish());
        match finished {
            Err(e) if !split => return Err(e.into()),
            Err(e) => {
                sink_error.get_or_insert(Error::from(e));
            }
            Ok(()) => {}
        }
        if split {
            // A sink that failed at the last step or in finishing.
            self.agreed_stop(stop, &mut sink_error, &mut failure)?;
        }
        Ok(RunEnd {
            done: self.step,
            failure,
            run_seconds: t.elapsed().as_secs_f64(),
        })
    }

    /// Is the run to stop? In a partitioned run every rank stops at the
    /// same step when any of them was asked to (Ctrl-C reaches the ranks
    /// at different moments), a sink that failed on one rank fails every
    /// rank here, and so does the provider's failure (rank 0 holds it).
    fn agreed_stop(
        &self,
        stop: &AtomicBool,
        sink_error: &mut Option<Error>,
        failure: &mut Option<String>,
    ) -> Result<bool> {
        let mut flags = [
            stop.load(Ordering::Relaxed) as u64,
            sink_error.is_some() as u64,
            failure.is_some() as u64,
        ];
        self.comm.max_u64(&mut flags);
        if flags[1] > 0 {
            let local = sink_error.take();
            return crate::error::agree(&*self.comm, local.map_or(Ok(()), Err)).map(|_| true);
        }
        if flags[2] > 0 {
            failure.get_or_insert_with(|| format!("step {}: the decision provider failed on rank 0", self.step));
            return Ok(true);
        }
        Ok(flags[0] > 0)
    }

    /// Is a decision provider attached (not the model's own rule)?
    pub fn has_provider(&self) -> bool {
        !matches!(self.provider, Provider::Rule)
    }

    /// Can the model's state be saved (for checkpoints)?
    pub fn saves_state(&self) -> bool {
        self.model.saves_state()
    }

    /// Append the model's state of this process's agents to `out` (see
    /// [`Model::save_state`]).
    pub fn save_state(&self, out: &mut Vec<u8>) {
        self.model.save_state(out)
    }

    /// Continue from a saved state: the model's state at `step`, whose
    /// metric row was `row`.
    pub fn restore_state(&mut self, step: u32, row: &[f64], state: &[u8]) -> Result<()> {
        if row.len() != self.row.len() {
            return Err(Error::Input(crate::InputError(format!(
                "the saved row has {} metrics, the model {}",
                row.len(),
                self.row.len()
            ))));
        }
        self.model
            .load_state(state)
            .map_err(|e| Error::Input(crate::InputError(e)))?;
        self.step = step;
        self.row.copy_from_slice(row);
        self.events.clear();
        self.error = None;
        Ok(())
    }

    /// The agents this process owns: all of them in one process; in a
    /// partitioned run, the global ids of [`Self::agent_columns`]' first row on.
    pub fn part(&self) -> &Part {
        &self.part
    }

    /// The communicator to the other ranks (local for one process).
    pub fn comm(&self) -> &Arc<dyn Comm> {
        &self.comm
    }

    /// A copy of the whole state, provider included.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            model: self.model.snapshot(),
            provider: self.provider.snapshot(),
            step: self.step,
            row: self.row.clone(),
        }
    }

    /// Go back to a snapshot of this simulation.
    pub fn restore(&mut self, snap: &Snapshot) {
        self.model = snap.model.snapshot();
        self.provider = snap.provider.snapshot();
        self.step = snap.step;
        self.row = snap.row.clone();
        self.events.clear();
        self.error = None;
    }

    /// Draw from `seed` from the next step on (the state is kept): the
    /// members of a forecast ensemble from one state. An error when the
    /// model cannot.
    pub fn reseed(&mut self, seed: u64) -> Result<()> {
        if self.model.reseed(seed) {
            Arc::make_mut(&mut self.scenario).seed = seed;
            Ok(())
        } else {
            Err(Error::Run(format!(
                "model '{}' cannot change its seed during a run",
                self.scenario.model.name
            )))
        }
    }

    /// An independent simulation continuing from this state, on the same pool.
    pub fn fork(&self) -> Simulation {
        Simulation {
            scenario: self.scenario.clone(),
            model: self.model.snapshot(),
            provider: self.provider.snapshot(),
            pool: self.pool.clone(),
            threads: self.threads,
            step: self.step,
            row: self.row.clone(),
            specs: self.specs.clone(),
            base_weights: self.base_weights.clone(),
            overrides: self.overrides.clone(),
            in_force: self.in_force.clone(),
            events: Vec::new(),
            error: None,
            info: self.info.clone(),
            part: self.part.clone(),
            comm: self.comm.clone(),
            _runtime: self._runtime.clone(),
        }
    }

    /// A stable hash of the whole state (step, row, every agent column and
    /// the model's other state): equal hashes mean equal states, on any
    /// machine and thread count.
    pub fn state_hash(&self) -> u64 {
        let mut h = StateHasher::new();
        h.u64(self.step as u64);
        self.row.iter().for_each(|&x| h.f64(x));
        for (name, col) in self.model.agent_columns() {
            h.str(name);
            col.hash_into(&mut h);
        }
        self.model.hash_extra(&mut h);
        h.finish()
    }
}
