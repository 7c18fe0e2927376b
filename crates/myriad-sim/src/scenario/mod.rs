//! Scenario files: what to run, read from TOML and checked completely before
//! anything runs or is written.

mod behaviour;
mod interventions;
mod layers;
mod overrides;
mod population;
mod train;

use crate::toml_reader::{ScenarioError, Source, Table};
use myriad_core::generators::DegreeDistribution;
use myriad_core::model::ModelSpec;
use myriad_core::params::{ParamSet, ParamValue};
use myriad_core::population::ColumnType;
use myriad_core::schedule::Schedule;
use myriad_core::source::{SourceOptions, SourceSpec};
use std::path::{Path, PathBuf};
use toml_edit::Value;

/// Where the agents come from.
#[derive(Clone)]
pub enum PopulationSource {
    /// `size` agents with no attributes.
    Synthetic(u32),
    /// A registered population source (`synthetic = "nyc"`) and its options.
    Source {
        /// The source.
        spec: &'static SourceSpec,
        /// Its options, as the scenario gives them.
        options: SourceOptions,
    },
    /// A CSV or Parquet file, with columns that must be present.
    File {
        /// Path (resolved against the scenario's folder).
        path: PathBuf,
        /// Required columns and their types.
        columns: Vec<(String, ColumnType)>,
    },
}

/// How a contact layer is made.
#[derive(Clone, Debug, PartialEq)]
pub enum LayerKind {
    /// Erdős–Rényi with a mean degree.
    ErdosRenyi {
        /// Mean degree.
        mean_degree: f64,
    },
    /// Configuration model from a distribution.
    Configuration(DegreeDistribution),
    /// Configuration model from an explicit degree sequence.
    DegreeSequence(Vec<u32>),
    /// Random regular graph.
    RandomRegular {
        /// Degree of every node.
        degree: u32,
    },
    /// Watts–Strogatz small world.
    WattsStrogatz {
        /// Ring neighbours (even).
        k: u32,
        /// Rewiring probability.
        rewire: f64,
    },
    /// Barabási–Albert preferential attachment.
    BarabasiAlbert {
        /// Edges per new node.
        m: u32,
    },
    /// Fully connected groups with a size distribution.
    Groups {
        /// Relative weight of size 1, 2, ...
        size_weights: Vec<f64>,
    },
    /// Fully connected groups given by an integer population column.
    GroupsByColumn {
        /// Column name (negative values: in no group).
        column: String,
    },
    /// An edge list file.
    EdgeList {
        /// Path (resolved against the scenario's folder).
        path: PathBuf,
    },
    /// Homogeneous mixing.
    WellMixed,
}

/// A layer as declared.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSpec {
    /// Unique name.
    pub name: String,
    /// Base weight.
    pub weight: f64,
    /// Generator.
    pub kind: LayerKind,
    /// Key path and line, for errors found while building it.
    pub origin: (String, Option<usize>),
}

/// Output switches.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputSpec {
    /// Write `timeseries.parquet`.
    pub parquet: bool,
    /// Write `timeseries.png`.
    pub plot: bool,
    /// Write every agent's state every this many steps (and at step 0) to
    /// `agents/step-<k>/part-<rank>.parquet` (`None`: never).
    pub agents_every: Option<u32>,
}

/// Decisions asked of an LLM per archetype (`[behaviour] provider = "llm"`
/// with an `[llm]` table).
#[derive(Clone, Debug)]
pub struct BehaviourSpec {
    /// The client settings.
    pub llm: myriad_llm::LlmConfig,
    /// Samples per group and decision period.
    pub samples: u32,
    /// Rounds of re-asking unreadable answers.
    pub reasks: u32,
    /// Weight of the previous period's probability.
    pub smoothing: f64,
    /// Probability for a group with no readable answer (`None`: the model's rule).
    pub fallback: Option<f64>,
    /// Per agent instead of per archetype: `Some(memory turns)`.
    pub per_agent: Option<usize>,
    /// Largest population per-agent mode accepts.
    pub max_agents: u32,
    /// The decisions asked.
    pub decisions: Vec<DecisionSpec>,
}

/// PPO settings of `myriad train` (`[train]`).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSpec {
    /// Iterations (one episode of every environment copy, then updates).
    pub iterations: u32,
    /// Environment copies stepped in parallel.
    pub envs: u32,
    /// Agents per copy (default: the scenario's population size).
    pub agents: Option<u32>,
    /// Units per hidden layer.
    pub hidden: usize,
    /// Hidden layers.
    pub layers: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Discount per step.
    pub gamma: f64,
    /// GAE's lambda.
    pub lambda: f64,
    /// PPO's clipping range of the probability ratio.
    pub clip: f64,
    /// Passes over each iteration's samples.
    pub epochs: u32,
    /// Samples per gradient step.
    pub minibatch: usize,
    /// Weight of the entropy bonus.
    pub entropy: f64,
    /// Weight of the value loss.
    pub value_coef: f64,
    /// Initial log standard deviation of the actions.
    pub init_log_std: f64,
    /// The critic also sees the swarm's mean observation (centralised
    /// training, decentralised execution).
    pub central_critic: bool,
    /// Held-out seeds of the final evaluation.
    pub eval_seeds: u32,
    /// Iterations between checkpoints.
    pub checkpoint_every: u32,
}

impl Default for TrainSpec {
    fn default() -> TrainSpec {
        TrainSpec {
            iterations: 50,
            envs: 8,
            agents: None,
            hidden: 64,
            layers: 2,
            learning_rate: 3e-4,
            gamma: 0.99,
            lambda: 0.95,
            clip: 0.2,
            epochs: 4,
            minibatch: 4096,
            entropy: 0.0,
            value_coef: 0.5,
            init_log_std: -0.5,
            central_critic: true,
            eval_seeds: 8,
            checkpoint_every: 10,
        }
    }
}

/// Where a controllable model's actions come from.
#[derive(Clone, Debug)]
pub enum ControlChoice {
    /// The model's hand-written controller.
    Controller,
    /// A learned policy.
    Policy {
        /// The policy file.
        path: PathBuf,
        /// The policy, read and checked against the model.
        policy: std::sync::Arc<myriad_policy::Policy>,
        /// Sample actions from the policy's distribution (else its mean).
        sample: bool,
    },
}

/// Personas written by the LLM (`[personas]`).
#[derive(Clone, Debug)]
pub struct PersonaSpec {
    /// The client settings (`[llm]`, with the personas' temperature and
    /// answer length).
    pub llm: myriad_llm::LlmConfig,
    /// The prompt, with placeholders for population columns.
    pub template: myriad_llm::Template,
    /// One persona per agent (else per group of agents sharing the
    /// prompt's attributes).
    pub per_agent: bool,
    /// Rounds of re-asking personas that repeat another's text.
    pub attempts: u32,
    /// Largest population given one persona per agent.
    pub max_agents: u32,
}

/// One decision asked of the LLM.
#[derive(Clone, Debug)]
pub struct DecisionSpec {
    /// Decision name (as the model asks).
    pub name: String,
    /// The prompt.
    pub template: myriad_llm::Template,
    /// Memory entry written after each answer (per-agent mode).
    pub remember: Option<myriad_llm::Template>,
    /// The answer the model expects.
    pub answer: myriad_llm::AnswerKind,
    /// Read the probability of "yes" instead of sampling text.
    pub logprob: bool,
}

/// A fully checked scenario.
#[derive(Clone)]
pub struct Scenario {
    /// The file it was read from.
    pub file: PathBuf,
    /// Name (defaults to the file stem), used for the output folder.
    pub name: String,
    /// The model.
    pub model: &'static ModelSpec,
    /// Run seed.
    pub seed: u64,
    /// Number of steps.
    pub steps: u32,
    /// Dates of the steps (`start_date`), or an abstract calendar.
    pub calendar: myriad_core::Calendar,
    /// Population source.
    pub population: PopulationSource,
    /// Parameters with defaults filled in.
    pub params: ParamSet,
    /// Contact layers.
    pub layers: Vec<LayerSpec>,
    /// Interventions.
    pub schedule: Schedule,
    /// Outputs.
    pub output: OutputSpec,
    /// Decisions from an LLM instead of the model's rule (`None`: the rule).
    pub behaviour: Option<BehaviourSpec>,
    /// Actions from a hand-written controller or a learned policy
    /// (`[behaviour] provider = "controller"` or `"policy"`).
    pub control: Option<ControlChoice>,
    /// How `myriad train` trains a policy for it (`[train]`).
    pub train: TrainSpec,
    /// Persona texts generated by the LLM from agents' attributes
    /// (`[personas]`), for `myriad personas` and `{persona}` in prompts.
    pub personas: Option<PersonaSpec>,
    /// The scenario as resolved (after `--set`), as JSON for `summary.json`
    /// (credentials in endpoint URLs masked).
    pub resolved: serde_json::Value,
    /// Memory the run may use, in GB (`[limits] memory_gb`; default 90% of
    /// the machine's).
    pub memory_gb: f64,
}

/// Command-line changes to a scenario.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `key.path=value` assignments.
    pub set: Vec<String>,
    /// Replaces `seed`.
    pub seed: Option<u64>,
}

/// Read and check a scenario file.
pub fn load(file: &Path, overrides: &Overrides) -> Result<Scenario, ScenarioError> {
    RawScenario::read(file, overrides)?.validate()
}

/// Largest scenario file read: scenarios are a few kilobytes; anything near
/// this is not one (and `/dev/zero` would otherwise be read forever).
pub const MAX_SCENARIO_BYTES: u64 = 4 * 1024 * 1024;

fn read(file: &Path) -> Result<String, ScenarioError> {
    use std::io::Read;
    let err = |line: Option<usize>, message: String| ScenarioError {
        file: file.to_path_buf(),
        line,
        key: String::new(),
        message,
    };
    let f = std::fs::File::open(file).map_err(|e| err(None, format!("cannot read the scenario file: {e}")))?;
    if f.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(err(None, "is a folder, not a scenario file".into()));
    }
    let mut bytes = Vec::new();
    f.take(MAX_SCENARIO_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(None, format!("cannot read the scenario file: {e}")))?;
    if bytes.len() as u64 > MAX_SCENARIO_BYTES {
        return Err(err(
            None,
            format!(
                "larger than {} MB: not a scenario file",
                MAX_SCENARIO_BYTES / 1024 / 1024
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = good.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
        err(
            Some(line),
            format!("column {column}: not UTF-8 text (save the scenario as UTF-8)"),
        )
    })
}

/// The scenario file after `--set` and `--seed`, as an editable document:
/// for commands that write a changed scenario (`calibrate`).
pub fn resolved_document(file: &Path, overrides: &Overrides) -> Result<toml_edit::DocumentMut, ScenarioError> {
    overrides::apply_overrides(file, &read(file)?, overrides).map(|(doc, _)| doc)
}

/// The head of a scenario: its model, name, seed, steps and calendar.
struct Head {
    model: &'static ModelSpec,
    name: String,
    seed: u64,
    steps: u32,
    calendar: myriad_core::Calendar,
}

fn parse_head(root: &mut Table, file: &Path) -> Result<Head, ScenarioError> {
    let model_name = root
        .string("model")?
        .ok_or_else(|| root.error_here("missing key 'model' (see `myriad models`)"))?;
    let model = myriad_models::find(&model_name).ok_or_else(|| {
        let names: Vec<&str> = myriad_models::MODELS.iter().map(|m| m.name).collect();
        root.error(
            "model",
            format!("unknown model '{model_name}' (known models: {})", names.join(", ")),
        )
    })?;
    let name = match root.string("name")? {
        Some(n) if !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) => n,
        Some(_) => {
            return Err(root.error(
                "name",
                "must be non-empty and use only letters, digits, '-', '_' and '.'",
            ))
        }
        None => file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("scenario")
            .to_string(),
    };
    root.string("description")?;
    let seed = root.int("seed", 0, i64::MAX)?.unwrap_or(0) as u64;
    let (steps, calendar) = parse_steps(root)?;
    Ok(Head {
        model,
        name,
        seed,
        steps,
        calendar,
    })
}

/// `steps`, or `start_date` with `steps` or `end_date` (the last day, included).
fn parse_steps(root: &mut Table) -> Result<(u32, myriad_core::Calendar), ScenarioError> {
    let steps = root.int("steps", 1, u32::MAX as i64)?.map(|s| s as u32);
    let start = root.date("start_date")?;
    let end = root.date("end_date")?;
    let calendar = start.map_or_else(myriad_core::Calendar::undated, myriad_core::Calendar::starting);
    let steps = match (start, end, steps) {
        (_, None, Some(s)) => s,
        (None, None, None) => return Err(root.error_here("missing key 'steps' (number of steps to simulate)")),
        (Some(_), None, None) => return Err(root.error_here("missing key 'steps' or 'end_date' (the run's last day)")),
        (None, Some(_), _) => return Err(root.error("end_date", "needs start_date (the run's first day)")),
        (Some(_), Some(_), Some(_)) => return Err(root.error("end_date", "give steps or end_date, not both")),
        (Some(s), Some(e), None) => match calendar.step_of(e) {
            Some(n) if n >= 1 => n,
            _ => return Err(root.error("end_date", format!("{e} is before start_date {s}"))),
        },
    };
    if let Some(s) = start {
        if calendar.date(steps).is_none() {
            return Err(root.error("steps", format!("{steps} days from {s} run past the calendar")));
        }
    }
    Ok((steps, calendar))
}

/// `[params]`: the model's parameters, defaults filled in.
fn parse_params(root: &mut Table, model: &ModelSpec) -> Result<ParamSet, ScenarioError> {
    let mut params = ParamSet::defaults((model.params)());
    let Some(t) = root.table("params")? else {
        return Ok(params);
    };
    let keys = t.keys();
    for k in &keys {
        let item = t.raw(k).expect("key listed by the table");
        let value = match item.as_value() {
            Some(Value::Integer(i)) => ParamValue::Number(*i.value() as f64),
            Some(Value::Float(f)) => ParamValue::Number(*f.value()),
            Some(Value::String(s)) => ParamValue::Choice(s.value().clone()),
            _ => return Err(t.error(k, "must be a number or a string")),
        };
        params
            .set(k, value)
            .map_err(|e| t.error(k, format!("{e}; see `myriad describe {}`", model.name)))?;
    }
    for group in model.exclusive {
        let set: Vec<&str> = group.iter().copied().filter(|g| keys.iter().any(|k| k == g)).collect();
        if set.len() > 1 {
            return Err(t.error(set[1], format!("set only one of {}", group.join(", "))));
        }
    }
    Ok(params)
}

/// `[limits] memory_gb`, or the machine's default.
fn parse_limits(root: &mut Table) -> Result<f64, ScenarioError> {
    let v = match root.table("limits")? {
        None => None,
        Some(mut t) => {
            let v = t.f64_where("memory_gb", |x| x > 0.0, "a number of gigabytes > 0")?;
            t.finish()?;
            v
        }
    };
    Ok(v.unwrap_or_else(crate::resources::default_limit_gb))
}

/// Refuse a scenario too large for the memory limit, when its size is
/// known before anything is read: generated populations and registered
/// sources (files are checked once read).
fn check_memory(
    src: &Source,
    population: &PopulationSource,
    layers: &[LayerSpec],
    memory_gb: f64,
) -> Result<(), ScenarioError> {
    let agents = match population {
        PopulationSource::Synthetic(n) => *n as f64,
        PopulationSource::Source { spec, options } => (spec.max_agents)(options),
        PopulationSource::File { .. } => return Ok(()),
    };
    crate::resources::check(&crate::resources::estimate(agents, layers), memory_gb)
        .map_err(|m| src.error(None, "population", m))
}

/// `[output]` switches.
fn parse_output(root: &mut Table) -> Result<OutputSpec, ScenarioError> {
    let Some(mut t) = root.table("output")? else {
        return Ok(OutputSpec {
            parquet: true,
            plot: true,
            agents_every: None,
        });
    };
    let o = OutputSpec {
        parquet: t.bool("parquet")?.unwrap_or(true),
        plot: t.bool("plot")?.unwrap_or(true),
        agents_every: t.int("agents_every", 1, u32::MAX as i64)?.map(|k| k as u32),
    };
    t.finish()?;
    Ok(o)
}

/// The first stage of a scenario: its TOML, read and with `--set` and
/// `--seed` applied, not yet checked. Front ends change it (a web form, a
/// Python dict) and then [`RawScenario::validate`] it into a [`Scenario`].
#[derive(Clone, Debug)]
pub struct RawScenario {
    file: PathBuf,
    doc: toml_edit::DocumentMut,
    overridden: Vec<String>,
}

impl RawScenario {
    /// Read a scenario file (bounded in size, UTF-8) and apply the overrides.
    pub fn read(file: &Path, overrides: &Overrides) -> Result<RawScenario, ScenarioError> {
        RawScenario::from_text(file, &read(file)?, overrides)
    }

    /// A scenario given as text; `file` names it in messages and anchors
    /// its relative paths.
    pub fn from_text(file: &Path, text: &str, overrides: &Overrides) -> Result<RawScenario, ScenarioError> {
        let (doc, overridden) = overrides::apply_overrides(file, text, overrides)?;
        Ok(RawScenario {
            file: file.to_path_buf(),
            doc,
            overridden,
        })
    }

    /// Change one value, as `--set key.path=value` does (errors name the assignment).
    pub fn set(&mut self, assignment: &str) -> Result<(), ScenarioError> {
        let path = overrides::apply_set(&mut self.doc, assignment).map_err(|message| ScenarioError {
            file: self.file.clone(),
            line: None,
            key: assignment.to_string(),
            message,
        })?;
        self.overridden.push(path);
        Ok(())
    }

    /// The TOML as it stands.
    pub fn document(&self) -> &toml_edit::DocumentMut {
        &self.doc
    }

    /// Check everything; the second stage.
    pub fn validate(&self) -> Result<Scenario, ScenarioError> {
        validate(&self.file, &self.doc, &self.overridden)
    }
}

/// Check a scenario given as text (`file` is used for messages and relative
/// paths): after `--set`, table by table in file order of meaning.
pub fn parse(file: &Path, text: &str, overrides: &Overrides) -> Result<Scenario, ScenarioError> {
    RawScenario::from_text(file, text, overrides)?.validate()
}

fn validate(file: &Path, doc: &toml_edit::DocumentMut, overridden: &[String]) -> Result<Scenario, ScenarioError> {
    let plain_err = |line: Option<usize>, message: String| ScenarioError {
        file: file.to_path_buf(),
        line,
        key: String::new(),
        message,
    };
    // Re-parse the edited document, for spans.
    let text = doc.to_string();
    let parsed = toml_edit::Document::parse(text.as_str()).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        plain_err(line, format!("invalid TOML: {}", e.message().trim()))
    })?;
    let src = Source {
        file,
        text: &text,
        overridden,
    };
    let mut root = Table::root(&src, parsed.as_item());
    let base_dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let head = parse_head(&mut root, file)?;
    let population = population::parse(&mut root, &base_dir)?;
    let params = parse_params(&mut root, head.model)?;
    let layers = layers::parse(&mut root, head.model, &base_dir, &population, file)?;
    let schedule = interventions::parse(&mut root, &params, &layers, &head.calendar, head.steps)?;
    let (behaviour, personas, control) = behaviour::parse(&mut root, head.model, &base_dir)?;
    let train = train::parse(&mut root, head.model)?;
    let memory_gb = parse_limits(&mut root)?;
    check_memory(&src, &population, &layers, memory_gb)?;
    let output = parse_output(&mut root)?;
    root.finish()?;
    let mut resolved: serde_json::Value =
        toml::from_str(&text).map_err(|e| plain_err(None, format!("invalid TOML: {e}")))?;
    mask_endpoints(&mut resolved);
    Ok(Scenario {
        file: file.to_path_buf(),
        name: head.name,
        model: head.model,
        seed: head.seed,
        steps: head.steps,
        calendar: head.calendar,
        population,
        params,
        layers,
        schedule,
        output,
        behaviour,
        personas,
        control,
        train,
        resolved,
        memory_gb,
    })
}

/// Replace credentials in `llm.endpoint(s)` of the resolved scenario, which
/// goes into `summary.json`.
fn mask_endpoints(resolved: &mut serde_json::Value) {
    let Some(llm) = resolved.get_mut("llm").and_then(|v| v.as_object_mut()) else {
        return;
    };
    for (key, v) in llm.iter_mut() {
        if key != "endpoint" && key != "endpoints" {
            continue;
        }
        match v {
            serde_json::Value::String(u) => *u = myriad_llm::display_url(u),
            serde_json::Value::Array(list) => {
                for e in list.iter_mut() {
                    if let serde_json::Value::String(u) = e {
                        *u = myriad_llm::display_url(u);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Checks of layer parameters against the population size: (layer index, key, message).
pub fn check_sizes(layers: &[LayerSpec], n: u32) -> Result<(), (usize, &'static str, String)> {
    for (i, l) in layers.iter().enumerate() {
        let too_big = |key, what: f64| Err((i, key, format!("{what} is too large for a population of {n} agents")));
        match &l.kind {
            LayerKind::ErdosRenyi { mean_degree } if *mean_degree >= n as f64 => {
                return too_big("mean_degree", *mean_degree)
            }
            LayerKind::Configuration(d) if d.mean() >= n as f64 => return too_big("mean", d.mean()),
            LayerKind::RandomRegular { degree } if *degree >= n => return too_big("degree", *degree as f64),
            LayerKind::WattsStrogatz { k, .. } if *k >= n => return too_big("k", *k as f64),
            LayerKind::BarabasiAlbert { m } if *m >= n => return too_big("m", *m as f64),
            LayerKind::DegreeSequence(d) if d.len() != n as usize => {
                return Err((
                    i,
                    "degrees",
                    format!("lists {} degrees but the population has {n} agents", d.len()),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}
