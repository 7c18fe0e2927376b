//! Scenario files: what to run, read from TOML and checked completely before
//! anything runs or is written.

use crate::toml_reader::{ScenarioError, Source, Table};
use myriad_core::generators::DegreeDistribution;
use myriad_core::model::ModelSpec;
use myriad_core::params::{ParamKind, ParamSet, ParamValue};
use myriad_core::population::ColumnType;
use myriad_core::schedule::{Change, Intervention, Schedule, Target};
use myriad_core::source::{OptionValue, SourceOptions, SourceSpec};
use std::path::{Path, PathBuf};
use toml_edit::{Item, Value};

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

const LAYER_TYPES: &[&str] = &[
    "erdos_renyi",
    "configuration",
    "random_regular",
    "watts_strogatz",
    "barabasi_albert",
    "groups",
    "edge_list",
    "well_mixed",
];

/// Read and check a scenario file.
pub fn load(file: &Path, overrides: &Overrides) -> Result<Scenario, ScenarioError> {
    parse(file, &read(file)?, overrides)
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
    apply_overrides(file, &read(file)?, overrides).map(|(doc, _)| doc)
}

/// Parse `text` and apply the overrides; also returns the key paths changed.
fn apply_overrides(
    file: &Path,
    text: &str,
    overrides: &Overrides,
) -> Result<(toml_edit::DocumentMut, Vec<String>), ScenarioError> {
    let plain_err = |line: Option<usize>, key: &str, message: String| ScenarioError {
        file: file.to_path_buf(),
        line,
        key: key.to_string(),
        message,
    };
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        plain_err(line, "", format!("invalid TOML: {}", e.message().trim()))
    })?;
    let mut overridden = Vec::new();
    for assignment in &overrides.set {
        let path = apply_set(&mut doc, assignment).map_err(|m| plain_err(None, assignment, m))?;
        overridden.push(path);
    }
    if let Some(seed) = overrides.seed {
        let seed = i64::try_from(seed).map_err(|_| {
            plain_err(
                None,
                "seed",
                format!("--seed must be at most {} (got {seed})", i64::MAX),
            )
        })?;
        doc["seed"] = toml_edit::value(seed);
        overridden.push("seed".into());
    }
    Ok((doc, overridden))
}

/// The keys of `[population]` a source reads (everything but `synthetic`,
/// `size`, `file` and `columns`), as option values.
fn source_options(t: &mut Table, spec: &SourceSpec) -> Result<SourceOptions, ScenarioError> {
    let mut options = SourceOptions::new();
    for key in t.keys() {
        if ["synthetic", "size", "file", "columns"].contains(&key.as_str()) {
            continue;
        }
        let item = t.raw(&key).expect("key listed by the table");
        let value = match item.as_value() {
            Some(Value::Integer(i)) => OptionValue::Number(*i.value() as f64),
            Some(Value::Float(f)) => OptionValue::Number(*f.value()),
            Some(Value::String(s)) => OptionValue::Text(s.value().clone()),
            Some(Value::Array(a)) => match a.iter().map(|v| v.as_str().map(str::to_string)).collect() {
                Some(list) => OptionValue::List(list),
                None => return Err(t.error(&key, "must be a list of strings")),
            },
            _ => {
                return Err(t.error(
                    &key,
                    format!(
                        "must be a number, a string or a list of strings (an option of synthetic = \"{}\")",
                        spec.name
                    ),
                ))
            }
        };
        t.mark(key.clone());
        options.insert(key, value);
    }
    Ok(options)
}

/// `[behaviour]` and `[llm]`.
fn parse_behaviour(
    root: &mut Table,
    model: &'static ModelSpec,
    base_dir: &Path,
) -> Result<Option<BehaviourSpec>, ScenarioError> {
    let llm = match root.table("llm")? {
        None => None,
        Some(mut t) => {
            let endpoints: Vec<String> = match t.get("endpoints") {
                None => {
                    let one = t.string("endpoint")?.ok_or_else(|| {
                        t.error_here("needs endpoint = \"http://host:port/v1\" (or endpoints = [...])")
                    })?;
                    vec![one]
                }
                Some(item) => item
                    .as_array()
                    .and_then(|a| {
                        a.iter()
                            .map(|v| v.as_str().map(str::to_string))
                            .collect::<Option<Vec<_>>>()
                    })
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| t.error("endpoints", "must be a non-empty list of URLs"))?,
            };
            let key = if t.raw("endpoints").is_some() {
                "endpoints"
            } else {
                "endpoint"
            };
            for e in &endpoints {
                myriad_llm::client::check_endpoint(e).map_err(|m| t.error(key, m))?;
            }
            let model_name = t
                .string("model")?
                .ok_or_else(|| t.error_here("needs model = \"<model name the endpoint serves>\""))?;
            let mut c = myriad_llm::LlmConfig::new(&endpoints[0], &model_name);
            c.endpoints = endpoints;
            c.api = match t.string("api")?.as_deref() {
                None | Some("chat") => myriad_llm::Api::Chat,
                Some("completions") => myriad_llm::Api::Completions,
                Some(other) => return Err(t.error("api", format!("'{other}': use chat or completions"))),
            };
            c.api_key_env = t.string("api_key_env")?;
            if let Some(var) = &c.api_key_env {
                if std::env::var_os(var).is_none() {
                    return Err(t.error(
                        "api_key_env",
                        format!("the environment variable {var} is not set (export it with the API key)"),
                    ));
                }
            }
            c.system = t.string("system")?;
            if let Some(x) = t.f64_where("temperature", |x| (0.0..=2.0).contains(&x), "between 0 and 2")? {
                c.temperature = x;
            }
            if let Some(x) = t.int("max_tokens", 1, 100_000)? {
                c.max_tokens = x as u32;
            }
            let (lo, hi) = (
                myriad_llm::client::MIN_TIMEOUT.as_secs_f64(),
                myriad_llm::client::MAX_TIMEOUT.as_secs_f64(),
            );
            if let Some(x) = t.f64_where(
                "timeout_seconds",
                |x| (lo..=hi).contains(&x),
                &format!("between {lo} and {hi} seconds"),
            )? {
                c.timeout = std::time::Duration::from_secs_f64(x);
            }
            if let Some(x) = t.int("max_concurrency", 1, 100_000)? {
                c.max_concurrency = x as usize;
            }
            let (lo, hi) = (
                myriad_llm::client::MIN_REQUESTS_PER_SECOND,
                myriad_llm::client::MAX_REQUESTS_PER_SECOND,
            );
            c.requests_per_second = t.f64_where(
                "requests_per_second",
                |x| (lo..=hi).contains(&x),
                &format!("between {lo} and {hi}"),
            )?;
            if let Some(x) = t.int("max_retries", 0, 100)? {
                c.max_retries = x as u32;
            }
            if let Some(b) = t.int("batch", 1, 100_000)? {
                if b > 1 && c.api != myriad_llm::Api::Completions {
                    return Err(t.error(
                        "batch",
                        "several prompts per request need api = \"completions\" (a chat request carries one conversation)",
                    ));
                }
                c.batch = b as usize;
            }
            c.cache = t.string("cache")?.map(|f| base_dir.join(f));
            c.mode = match t.string("mode")? {
                None => {
                    if c.cache.is_some() {
                        myriad_llm::Mode::Record
                    } else {
                        myriad_llm::Mode::Live
                    }
                }
                Some(m) => myriad_llm::Mode::parse(&m)
                    .ok_or_else(|| t.error("mode", format!("'{m}': use live, record or replay")))?,
            };
            if c.mode != myriad_llm::Mode::Live && c.cache.is_none() {
                return Err(t.error("mode", "record and replay need cache = \"llm-cache.jsonl\""));
            }
            if let Some(path) = &c.cache {
                check_cache_path(path, c.mode).map_err(|m| t.error("cache", m))?;
            }
            t.finish()?;
            Some(c)
        }
    };
    let Some(mut t) = root.table("behaviour")? else {
        return Ok(None);
    };
    let provider = t.string("provider")?.unwrap_or_else(|| "heuristic".into());
    let samples = t.int("samples", 1, 10_000)?.unwrap_or(5) as u32;
    let reasks = t.int("reasks", 0, 100)?.unwrap_or(2) as u32;
    let smoothing = t
        .f64_where("smoothing", |x| (0.0..1.0).contains(&x), "in [0, 1)")?
        .unwrap_or(0.0);
    let fallback = match t.get("fallback") {
        None => None,
        Some(item) => match item.as_value() {
            Some(Value::String(s)) if s.value() == "heuristic" || s.value() == "rule" => None,
            Some(Value::Float(f)) if f.value().is_finite() => Some(*f.value()),
            Some(Value::Integer(i)) => Some(*i.value() as f64),
            _ => {
                return Err(t.error(
                    "fallback",
                    "must be \"heuristic\" (the model's rule) or a value: a probability for yes/no decisions, a number in range for numeric ones",
                ))
            }
        },
    };
    let per_agent = match t.string("ask")?.as_deref() {
        None | Some("archetypes") => None,
        Some("agents") => Some(t.int("memory_turns", 0, 1000)?.unwrap_or(0) as usize),
        Some(other) => return Err(t.error("ask", format!("'{other}': use archetypes or agents"))),
    };
    if per_agent.is_none() && t.get("memory_turns").is_some() {
        return Err(t.error("memory_turns", "memory is per agent: it needs ask = \"agents\""));
    }
    let max_agents = t.int("max_agents", 1, u32::MAX as i64)?.unwrap_or(100_000) as u32;
    let mut decisions = Vec::new();
    for doc in model.decisions {
        if let Some(mut d) = t.table(doc.name)? {
            let text = d
                .string("prompt")?
                .ok_or_else(|| d.error_here("needs prompt = \"...\" (placeholders like {age_group}, {cases})"))?;
            let template = myriad_llm::Template::parse(&text).map_err(|e| d.error("prompt", e.to_string()))?;
            let remember = match d.string("remember")? {
                None => None,
                Some(r) if per_agent.is_some() => {
                    Some(myriad_llm::Template::parse(&r).map_err(|e| d.error("remember", e.to_string()))?)
                }
                Some(_) => return Err(d.error("remember", "memory is per agent: it needs ask = \"agents\"")),
            };
            let (answer, lo, hi) = match doc.answer {
                myriad_models::DecisionAnswer::YesNo => (myriad_llm::AnswerKind::YesNo, 0.0, 1.0),
                myriad_models::DecisionAnswer::Number { min, max } => {
                    (myriad_llm::AnswerKind::Number { min, max }, min, max)
                }
                myriad_models::DecisionAnswer::Text => {
                    if per_agent.is_none() {
                        return Err(d.error_here(format!(
                            "decision '{}' is free text, asked of each agent: it needs [behaviour] ask = \"agents\"",
                            doc.name
                        )));
                    }
                    (myriad_llm::AnswerKind::Text, f64::NEG_INFINITY, f64::INFINITY)
                }
            };
            d.finish()?;
            if let Some(f) = fallback.filter(|f| !(lo..=hi).contains(f)) {
                return Err(t.error(
                    "fallback",
                    format!("{f} is outside [{lo}, {hi}], the answers decision '{}' takes", doc.name),
                ));
            }
            decisions.push(DecisionSpec {
                name: doc.name.to_string(),
                template,
                remember,
                answer,
            });
        }
    }
    let unknown_hint = if model.decisions.is_empty() {
        format!("model '{}' makes no decisions", model.name)
    } else {
        format!(
            "decisions of model '{}': {}",
            model.name,
            model.decisions.iter().map(|d| d.name).collect::<Vec<_>>().join(", ")
        )
    };
    let spec = match provider.as_str() {
        "heuristic" => None,
        "llm" => {
            let llm =
                llm.ok_or_else(|| t.error("provider", "provider = \"llm\" needs an [llm] table (endpoint, model)"))?;
            if decisions.is_empty() {
                return Err(t.error_here(format!(
                    "add a [behaviour.<decision>] table with a prompt ({unknown_hint})"
                )));
            }
            Some(BehaviourSpec {
                llm,
                samples,
                reasks,
                smoothing,
                fallback,
                per_agent,
                max_agents,
                decisions,
            })
        }
        other => return Err(t.error("provider", format!("'{other}': use heuristic or llm"))),
    };
    t.finish().map_err(|mut e| {
        e.message = format!("{} ({unknown_hint})", e.message);
        e
    })?;
    Ok(spec)
}

/// Can the cache file be used in `mode`? Checked without creating anything:
/// an existing path must be a file (or a device such as /dev/full), replay
/// needs it to exist, and record needs a folder it can be made in.
fn check_cache_path(path: &Path, mode: myriad_llm::Mode) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(format!(
            "{} is a folder; give a file name such as llm-cache.jsonl",
            path.display()
        )),
        Ok(_) => Ok(()),
        Err(_) if mode == myriad_llm::Mode::Replay => Err(format!(
            "{} does not exist: replay answers only from a recorded cache (record it first with mode = \"record\")",
            path.display()
        )),
        Err(_) => {
            // The nearest existing ancestor must be a folder we may write in.
            let mut dir = path.parent();
            while let Some(d) = dir {
                let d = if d.as_os_str().is_empty() { Path::new(".") } else { d };
                match std::fs::metadata(d) {
                    Ok(m) if m.is_dir() && !m.permissions().readonly() => return Ok(()),
                    Ok(m) if m.is_dir() => {
                        return Err(format!(
                            "cannot create {}: {} is read-only",
                            path.display(),
                            d.display()
                        ))
                    }
                    Ok(_) => {
                        return Err(format!(
                            "cannot create {}: {} is not a folder",
                            path.display(),
                            d.display()
                        ))
                    }
                    Err(_) => dir = d.parent(),
                }
            }
            Err(format!("cannot create {}", path.display()))
        }
    }
}

/// Check a scenario given as text (`file` is used for messages and relative paths).
pub fn parse(file: &Path, text: &str, overrides: &Overrides) -> Result<Scenario, ScenarioError> {
    let plain_err = |line: Option<usize>, key: &str, message: String| ScenarioError {
        file: file.to_path_buf(),
        line,
        key: key.to_string(),
        message,
    };
    let syntax = |e: toml_edit::TomlError, text: &str| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        plain_err(line, "", format!("invalid TOML: {}", e.message().trim()))
    };
    // Apply --set on an editable copy, then re-parse for spans.
    let (doc, overridden) = apply_overrides(file, text, overrides)?;
    let text = doc.to_string();
    let parsed = toml_edit::Document::parse(text.as_str()).map_err(|e| syntax(e, &text))?;
    let src = Source {
        file,
        text: &text,
        overridden: &overridden,
    };
    let mut root = Table::root(&src, parsed.as_item());
    let base_dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();

    let model_name = root
        .string("model")?
        .ok_or_else(|| root.error_here("missing key 'model' (see `myriad models`)"))?;
    let model = myriad_models::find(&model_name).ok_or_else(|| {
        let names: Vec<&str> = myriad_models::models().iter().map(|m| m.name).collect();
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
    let steps = root
        .int("steps", 1, u32::MAX as i64)?
        .ok_or_else(|| root.error_here("missing key 'steps' (number of steps to simulate)"))? as u32;

    let mut return_population = None;
    let population = {
        let mut t = root
            .table("population")?
            .ok_or_else(|| root.error_here("missing table [population] (give size = N or file = \"...\")"))?;
        let size = t.int("size", 1, u32::MAX as i64)?;
        let pfile = t.string("file")?;
        let synthetic = t.string("synthetic")?;
        if let Some(kind) = synthetic {
            let spec = myriad_models::source(&kind).ok_or_else(|| {
                let known: Vec<&str> = myriad_models::SOURCES.iter().map(|s| s.name).collect();
                t.error(
                    "synthetic",
                    format!("unknown synthetic population '{kind}' (known: {})", known.join(", ")),
                )
            })?;
            if size.is_some() || pfile.is_some() {
                return Err(t.error("synthetic", "give one of size, file or synthetic"));
            }
            let options = source_options(&mut t, spec)?;
            (spec.check)(&options).map_err(|(key, msg)| t.error(&key, msg))?;
            return_population = Some(PopulationSource::Source { spec, options });
        }
        let mut columns = Vec::new();
        if let Some(ct) = t.table("columns")? {
            for k in ct.keys() {
                let ty = ct
                    .raw(&k)
                    .and_then(|i| i.as_str())
                    .and_then(ColumnType::parse)
                    .ok_or_else(|| ct.error(&k, "column type must be \"int\", \"float\" or \"text\""))?;
                columns.push((k, ty));
            }
        }
        let p = match (size, pfile) {
            _ if return_population.is_some() => return_population.take().expect("checked"),
            (Some(n), None) if columns.is_empty() => PopulationSource::Synthetic(n as u32),
            (Some(_), None) => {
                return Err(t.error(
                    "columns",
                    "column requirements apply to a population file; add file = \"...\"",
                ))
            }
            (None, Some(f)) => PopulationSource::File {
                path: base_dir.join(f),
                columns,
            },
            (Some(_), Some(_)) => return Err(t.error("file", "give either size or file, not both")),
            (None, None) => {
                return Err(
                    t.error_here("needs size = N (synthetic agents), file = \"people.csv\" or synthetic = \"nyc\"")
                )
            }
        };
        t.finish()?;
        p
    };

    let params = {
        let mut params = ParamSet::defaults((model.params)());
        if let Some(t) = root.table("params")? {
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
        }
        params
    };

    let mut layers: Vec<LayerSpec> = Vec::new();
    for mut t in root.tables("layers")? {
        let lname = t.string("name")?.ok_or_else(|| t.error_here("missing key 'name'"))?;
        if layers.iter().any(|l| l.name == lname) {
            return Err(t.error("name", format!("layer name '{lname}' is used twice")));
        }
        let weight = t.f64_where("weight", |w| w >= 0.0, "a number >= 0")?.unwrap_or(1.0);
        let ty = t
            .string("type")?
            .ok_or_else(|| t.error_here(format!("missing key 'type' (one of {})", LAYER_TYPES.join(", "))))?;
        let positive = |x: f64| x > 0.0;
        let kind = match ty.as_str() {
            "erdos_renyi" => LayerKind::ErdosRenyi {
                mean_degree: t
                    .f64_where("mean_degree", positive, "a number > 0")?
                    .ok_or_else(|| t.missing("mean_degree", "erdos_renyi needs mean_degree"))?,
            },
            "configuration" => {
                let degrees = t.numbers("degrees")?;
                let dist = t.string("distribution")?;
                let mean = t.f64_where("mean", positive, "a number > 0")?;
                let dispersion = t.f64_where("dispersion", positive, "a number > 0")?;
                match (degrees, dist.as_deref()) {
                    (Some(d), None) => {
                        if let Some(bad) = d
                            .iter()
                            .find(|x| x.fract() != 0.0 || **x < 0.0 || **x > u32::MAX as f64)
                        {
                            return Err(t.error("degrees", format!("degrees must be whole numbers >= 0, found {bad}")));
                        }
                        LayerKind::DegreeSequence(d.iter().map(|&x| x as u32).collect())
                    }
                    (None, Some(dname)) => {
                        let need_mean =
                            || mean.ok_or_else(|| t.error_here(format!("distribution \"{dname}\" needs mean")));
                        LayerKind::Configuration(match dname {
                            "poisson" => DegreeDistribution::Poisson { mean: need_mean()? },
                            "negative_binomial" => DegreeDistribution::NegativeBinomial {
                                mean: need_mean()?,
                                dispersion: dispersion.ok_or_else(|| t.error_here("distribution \"negative_binomial\" needs dispersion (k > 0; variance = mean + mean^2/k)"))?,
                            },
                            _ => return Err(t.error("distribution", "must be \"poisson\" or \"negative_binomial\" (for a fixed degree use type = \"random_regular\")")),
                        })
                    }
                    (Some(_), Some(_)) => {
                        return Err(t.error("distribution", "give either degrees or distribution, not both"))
                    }
                    (None, None) => {
                        return Err(t.missing(
                            "degrees",
                            "configuration needs degrees = [...] or distribution = \"poisson\" | \"negative_binomial\"",
                        ))
                    }
                }
            }
            "random_regular" => LayerKind::RandomRegular {
                degree: t
                    .int("degree", 1, 100_000)?
                    .ok_or_else(|| t.missing("degree", "random_regular needs degree"))? as u32,
            },
            "watts_strogatz" => {
                let k = t
                    .int("k", 2, 100_000)?
                    .ok_or_else(|| t.missing("k", "watts_strogatz needs k (even number of ring neighbours)"))?;
                if k % 2 != 0 {
                    return Err(t.error("k", format!("must be even (k/2 neighbours on each side), got {k}")));
                }
                let rewire = t
                    .f64_where("rewire", |p| (0.0..=1.0).contains(&p), "a probability in [0, 1]")?
                    .ok_or_else(|| t.missing("rewire", "watts_strogatz needs rewire (probability)"))?;
                LayerKind::WattsStrogatz { k: k as u32, rewire }
            }
            "barabasi_albert" => LayerKind::BarabasiAlbert {
                m: t.int("m", 1, 100_000)?
                    .ok_or_else(|| t.missing("m", "barabasi_albert needs m (edges per new agent)"))?
                    as u32,
            },
            "groups" if t.raw("column").is_some() => {
                let column = t.string("column")?.unwrap_or_default();
                LayerKind::GroupsByColumn { column }
            }
            "groups" => {
                let size = t.int("size", 1, 100_000)?;
                let sizes = t.numbers("sizes")?;
                let size_weights = match (size, sizes) {
                    (Some(s), None) => {
                        let mut w = vec![0.0; s as usize];
                        w[s as usize - 1] = 1.0;
                        w
                    }
                    (None, Some(w)) => {
                        if w.is_empty()
                            || w.len() > 100_000
                            || w.iter().any(|x| *x < 0.0 || !x.is_finite())
                            || w.iter().sum::<f64>() <= 0.0
                        {
                            return Err(t.error(
                                "sizes",
                                "must list relative weights (>= 0, not all 0) of group sizes 1, 2, 3, ...",
                            ));
                        }
                        w
                    }
                    (Some(_), Some(_)) => return Err(t.error("sizes", "give either size or sizes, not both")),
                    (None, None) => {
                        return Err(t.missing(
                            "size",
                            "groups needs size = N or sizes = [weight of size 1, weight of size 2, ...]",
                        ))
                    }
                };
                LayerKind::Groups { size_weights }
            }
            "edge_list" => LayerKind::EdgeList {
                path: base_dir.join(
                    t.string("file")?
                        .ok_or_else(|| t.missing("file", "edge_list needs file = \"edges.csv\""))?,
                ),
            },
            "well_mixed" => LayerKind::WellMixed,
            other => {
                return Err(t.error(
                    "type",
                    format!(
                        "unknown layer type '{other}'{} (known: {})",
                        myriad_core::params::closest(other, LAYER_TYPES.iter().copied())
                            .map(|c| format!(", did you mean '{c}'?"))
                            .unwrap_or_default(),
                        LAYER_TYPES.join(", ")
                    ),
                ))
            }
        };
        let origin = (t.path.clone(), t.error_here("").line);
        t.finish()?;
        layers.push(LayerSpec {
            name: lname,
            weight,
            kind,
            origin,
        });
    }
    if layers.is_empty() && model.uses_layers {
        return Err(root.error_here("no contact layers: add at least one [[layers]] table"));
    }
    if !layers.is_empty() && !model.uses_layers {
        return Err(root.error_here(format!(
            "model '{}' has no contact layers: remove the [[layers]] tables",
            model.name
        )));
    }
    if let PopulationSource::Synthetic(n) = population {
        check_sizes(&layers, n).map_err(|(i, key, msg)| {
            let (path, line) = &layers[i].origin;
            ScenarioError {
                file: file.to_path_buf(),
                line: *line,
                key: format!("{path}.{key}"),
                message: msg,
            }
        })?;
    }

    let mut items = Vec::new();
    let mut origins = Vec::new();
    for mut t in root.tables("interventions")? {
        let iname = t.string("name")?.unwrap_or_else(|| t.path.clone());
        let start = t
            .int("start", 0, u32::MAX as i64)?
            .ok_or_else(|| t.error_here("missing key 'start' (first step of the change)"))? as u32;
        let end = t.int("end", 0, u32::MAX as i64)?.map(|e| e as u32);
        if let Some(e) = end {
            if e <= start {
                return Err(t.error("end", format!("must be after start ({start}), got {e}")));
            }
        }
        let target = match (t.string("param")?, t.string("layer")?) {
            (Some(p), None) => {
                let spec = params.spec(&p).map_err(|e| t.error("param", e.to_string()))?;
                if matches!(spec.kind, ParamKind::Choice(_)) {
                    return Err(t.error("param", format!("'{p}' is not numeric; interventions change numbers")));
                }
                Target::Param(p)
            }
            (None, Some(l)) => Target::LayerWeight(layers.iter().position(|x| x.name == l).ok_or_else(|| {
                let names: Vec<&str> = layers.iter().map(|x| x.name.as_str()).collect();
                t.error("layer", format!("no layer named '{l}' (layers: {})", names.join(", ")))
            })?),
            (Some(_), Some(_)) => return Err(t.error("layer", "give either param or layer, not both")),
            (None, None) => return Err(t.error_here("needs param = \"name\" or layer = \"name\"")),
        };
        let value_ok = |x: f64| x.is_finite() && (matches!(target, Target::Param(_)) || x >= 0.0);
        let what = if matches!(target, Target::Param(_)) {
            "a finite number"
        } else {
            "a layer weight: a finite number >= 0"
        };
        let change = match (
            t.f64_where("scale", |x| x >= 0.0, "a finite number >= 0")?,
            t.f64_where("value", value_ok, what)?,
        ) {
            (Some(s), None) => Change::Scale(s),
            (None, Some(v)) => Change::Set(v),
            (Some(_), Some(_)) => return Err(t.error("value", "give either scale or value, not both")),
            (None, None) => return Err(t.error_here("needs scale = factor or value = new value")),
        };
        origins.push(t.error_here(""));
        t.finish()?;
        items.push(Intervention {
            name: iname,
            start,
            end,
            target,
            change,
        });
    }
    let schedule = Schedule::new(items);
    let weights: Vec<f64> = layers.iter().map(|l| l.weight).collect();
    for step in schedule.change_points() {
        if let Err(e) = schedule.in_force(step, &params, &weights) {
            let culprit = schedule.items().iter().rposition(|i| i.active(step)).unwrap_or(0);
            let mut err = origins.get(culprit).cloned().unwrap_or_else(|| root.error_here(""));
            err.message = format!("at step {step} this leaves {e}");
            return Err(err);
        }
    }

    let behaviour = parse_behaviour(&mut root, model, &base_dir)?;

    let memory_gb = match root.table("limits")? {
        None => None,
        Some(mut t) => {
            let v = t.f64_where("memory_gb", |x| x > 0.0, "a number of gigabytes > 0")?;
            t.finish()?;
            v
        }
    }
    .unwrap_or_else(crate::resources::default_limit_gb);
    // Known before anything is read: the size of generated populations and
    // of the synthetic city (at most its 8.6M residents); files are checked
    // once read.
    let agents = match &population {
        PopulationSource::Synthetic(n) => Some(*n as f64),
        PopulationSource::Source { spec, options } => Some((spec.max_agents)(options)),
        PopulationSource::File { .. } => None,
    };
    if let Some(n) = agents {
        crate::resources::check(&crate::resources::estimate(n, &layers), memory_gb)
            .map_err(|m| src.error(None, "population", m))?;
    }

    let output = match root.table("output")? {
        None => OutputSpec {
            parquet: true,
            plot: true,
        },
        Some(mut t) => {
            let o = OutputSpec {
                parquet: t.bool("parquet")?.unwrap_or(true),
                plot: t.bool("plot")?.unwrap_or(true),
            };
            t.finish()?;
            o
        }
    };
    root.finish()?;

    let mut resolved: serde_json::Value =
        toml::from_str(&text).map_err(|e| plain_err(None, "", format!("invalid TOML: {e}")))?;
    mask_endpoints(&mut resolved);
    Ok(Scenario {
        file: file.to_path_buf(),
        name,
        model,
        seed,
        steps,
        population,
        params,
        layers,
        schedule,
        output,
        behaviour,
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

/// Apply one `key.path=value` to the document; returns the key path.
/// Array-of-table entries are addressed by index or by their `name`
/// (`layers.community.mean_degree`).
fn apply_set(doc: &mut toml_edit::DocumentMut, assignment: &str) -> Result<String, String> {
    let (path, raw) = assignment
        .split_once('=')
        .ok_or_else(|| "expected key.path=value".to_string())?;
    let path = path.trim();
    let value: Value = raw.trim().parse().unwrap_or_else(|_| Value::from(raw.trim()));
    let parts: Vec<&str> = path.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err("empty key in path".into());
    }
    let mut item: &mut Item = doc.as_item_mut();
    let mut shown = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        if let Item::ArrayOfTables(arr) = item {
            let idx = match part.parse::<usize>() {
                Ok(k) => k,
                Err(_) => arr
                    .iter()
                    .position(|t| t.get("name").and_then(|n| n.as_str()) == Some(part))
                    .ok_or_else(|| format!("no entry named '{part}' in {}", shown.join(".")))?,
            };
            let len = arr.len();
            let t = arr
                .get_mut(idx)
                .ok_or_else(|| format!("{} has {len} entries, no index {idx}", shown.join(".")))?;
            shown.push(idx.to_string());
            if last {
                return Err("cannot replace a whole table entry".into());
            }
            let next = parts[i + 1];
            // Descend into the table: the remaining parts continue from here.
            let rest: Vec<&str> = parts[i + 1..].to_vec();
            let mut sub: &mut Item = t.entry(next).or_insert(Item::None);
            if rest.len() == 1 {
                *sub = Item::Value(value);
                shown.push(next.to_string());
                return Ok(shown.join("."));
            }
            shown.push(next.to_string());
            for (j, p) in rest[1..].iter().enumerate() {
                if sub.is_none() {
                    *sub = Item::Table(toml_edit::Table::new());
                }
                let tl = sub
                    .as_table_like_mut()
                    .ok_or_else(|| format!("'{}' is not a table", shown.join(".")))?;
                sub = tl.entry(p).or_insert(Item::None);
                shown.push(p.to_string());
                if j == rest.len() - 2 {
                    *sub = Item::Value(value);
                    return Ok(shown.join("."));
                }
            }
            unreachable!("loop returns at the last part");
        }
        if item.is_none() {
            *item = Item::Table(toml_edit::Table::new());
        }
        let table = item
            .as_table_like_mut()
            .ok_or_else(|| format!("'{}' is not a table", shown.join(".")))?;
        shown.push(part.to_string());
        let next = table.entry(part).or_insert(Item::None);
        if last {
            *next = Item::Value(value);
            return Ok(shown.join("."));
        }
        item = next;
    }
    unreachable!("loop returns at the last part")
}
