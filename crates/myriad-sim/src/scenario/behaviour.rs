//! `[llm]` (the client: endpoints, model, limits, cache) and `[behaviour]`
//! (where decisions come from, and a `[behaviour.<decision>]` prompt per
//! decision the LLM makes).

use super::{BehaviourSpec, ControlChoice, DecisionSpec, PersonaSpec};
use crate::toml_reader::{ScenarioError, Table};
use myriad_core::model::{DecisionAnswer, DecisionDoc, ModelSpec};
use myriad_llm::{Api, LlmConfig, Mode};
use std::path::Path;
use toml_edit::Value;

/// What `[behaviour]`, `[llm]` and `[personas]` ask for: LLM decisions,
/// personas, or a controller or policy.
type Providers = (Option<BehaviourSpec>, Option<PersonaSpec>, Option<ControlChoice>);

/// `[behaviour]` with the `[llm]` it needs (`None` when the model's rule
/// decides), and `[personas]`.
pub(super) fn parse(root: &mut Table, model: &'static ModelSpec, base_dir: &Path) -> Result<Providers, ScenarioError> {
    let llm = match root.table("llm")? {
        None => None,
        Some(t) => Some(llm(t, base_dir)?),
    };
    let personas = match root.table("personas")? {
        None => None,
        Some(t) => Some(personas(t, llm.as_ref())?),
    };
    let Some(mut t) = root.table("behaviour")? else {
        return Ok((None, personas, None));
    };
    let provider = t.string("provider")?.unwrap_or_else(|| "heuristic".into());
    if provider == "controller" || provider == "policy" {
        let control = control(&mut t, model, &provider, base_dir)?;
        t.finish()?;
        return Ok((None, personas, Some(control)));
    }
    let samples = t.int("samples", 1, 10_000)?.unwrap_or(5) as u32;
    let reasks = t.int("reasks", 0, 100)?.unwrap_or(2) as u32;
    let smoothing = t
        .f64_where("smoothing", |x| (0.0..1.0).contains(&x), "in [0, 1)")?
        .unwrap_or(0.0);
    let fallback = fallback(&mut t)?;
    let per_agent = match t.string("ask")?.as_deref() {
        None | Some("archetypes") => None,
        Some("agents") => Some(t.int("memory_turns", 0, 1000)?.unwrap_or(0) as usize),
        Some(other) => return Err(t.error("ask", format!("'{other}': use archetypes or agents"))),
    };
    if per_agent.is_none() && t.get("memory_turns").is_some() {
        return Err(t.error("memory_turns", "memory is per agent: it needs ask = \"agents\""));
    }
    let max_agents = t.int("max_agents", 1, u32::MAX as i64)?.unwrap_or(100_000) as u32;
    let logprob = answer_mode(&mut t)?.unwrap_or(false);
    let local = llm.as_ref().is_some_and(|c| c.local.is_some());
    let mut decisions = Vec::new();
    for doc in model.decisions {
        if let Some(d) = decision(&mut t, doc, per_agent.is_some(), fallback, logprob)? {
            if d.logprob && !local && provider == "llm" {
                return Err(t.error(
                    "answer",
                    format!(
                        "decision '{}': answer = \"logprob\" reads the embedded model's probabilities; it needs [llm] backend = \"local\"",
                        d.name
                    ),
                ));
            }
            decisions.push(d);
        }
    }
    let unknown_hint = if model.decisions.is_empty() {
        format!("model '{}' makes no decisions", model.name)
    } else {
        let names: Vec<&str> = model.decisions.iter().map(|d| d.name).collect();
        format!("decisions of model '{}': {}", model.name, names.join(", "))
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
        other => {
            return Err(t.error(
                "provider",
                format!("'{other}': use heuristic (the model's rule), llm, controller or policy"),
            ))
        }
    };
    t.finish().map_err(|mut e| {
        e.message = format!("{} ({unknown_hint})", e.message);
        e
    })?;
    Ok((spec, personas, None))
}

/// `provider = "controller"` or `"policy"` (with `policy = "FILE"` and
/// `actions = "sample" | "mean"`), for a controllable model.
fn control(
    t: &mut Table,
    model: &'static ModelSpec,
    provider: &str,
    base_dir: &Path,
) -> Result<ControlChoice, ScenarioError> {
    let Some(doc) = model.control else {
        let controllable: Vec<&str> = myriad_models::MODELS
            .iter()
            .filter(|m| m.control.is_some())
            .map(|m| m.name)
            .collect();
        return Err(t.error(
            "provider",
            format!(
                "model '{}' declares no actions for a {provider} to choose (controllable models: {})",
                model.name,
                controllable.join(", ")
            ),
        ));
    };
    if provider == "controller" {
        return Ok(ControlChoice::Controller);
    }
    let file = t.string("policy")?.ok_or_else(|| {
        t.error(
            "provider",
            "provider = \"policy\" needs policy = \"FILE.safetensors\" (written by myriad train)",
        )
    })?;
    let path = base_dir.join(&file);
    let sample = match t.string("actions")?.as_deref() {
        None | Some("sample") => true,
        Some("mean") => false,
        Some(other) => return Err(t.error("actions", format!("'{other}': use sample or mean"))),
    };
    let policy = myriad_policy::Policy::load(&path).map_err(|e| t.error("policy", e.to_string()))?;
    let actions: Vec<&str> = doc.actions.iter().map(|a| a.name).collect();
    policy
        .check_fits(&path, model.name, doc.observation, &actions)
        .map_err(|e| t.error("policy", e.to_string()))?;
    Ok(ControlChoice::Policy {
        path,
        policy: std::sync::Arc::new(policy),
        sample,
    })
}

/// `[personas]`: a prompt over population columns, one persona per group
/// (default) or per agent, with their own temperature and length.
fn personas(mut t: Table, llm: Option<&LlmConfig>) -> Result<PersonaSpec, ScenarioError> {
    let mut llm = llm
        .cloned()
        .ok_or_else(|| t.error_here("[personas] are written by the LLM: add an [llm] table"))?;
    let text = t.string("prompt")?.ok_or_else(|| {
        t.error_here("needs prompt = \"...\" with placeholders for population columns, e.g. {age_group}, {borough}")
    })?;
    let template = myriad_llm::Template::parse(&text).map_err(|e| t.error("prompt", e.to_string()))?;
    if template.placeholders().contains(&"persona") {
        return Err(t.error("prompt", "a persona cannot be written from {persona}"));
    }
    let per_agent = match t.string("per")?.as_deref() {
        None | Some("group") => false,
        Some("agent") => true,
        Some(other) => return Err(t.error("per", format!("'{other}': use group or agent"))),
    };
    llm.temperature = t
        .f64_where("temperature", |x| (0.0..=2.0).contains(&x), "between 0 and 2")?
        .unwrap_or(0.9);
    llm.max_tokens = t.int("max_tokens", 1, 4096)?.unwrap_or(60) as u32;
    let attempts = t.int("attempts", 0, 100)?.unwrap_or(3) as u32;
    let max_agents = t.int("max_agents", 1, u32::MAX as i64)?.unwrap_or(10_000) as u32;
    t.finish()?;
    Ok(PersonaSpec {
        llm,
        template,
        per_agent,
        attempts,
        max_agents,
    })
}

/// `answer`: "text" (sample answers and parse them) or "logprob" (read the
/// options' probabilities); `Some(true)` for logprob.
fn answer_mode(t: &mut Table) -> Result<Option<bool>, ScenarioError> {
    match t.string("answer")?.as_deref() {
        None => Ok(None),
        Some("text") => Ok(Some(false)),
        Some("logprob") => Ok(Some(true)),
        Some(other) => Err(t.error(
            "answer",
            format!("'{other}': use text (sample answers and read them) or logprob (the probability of each answer, embedded model)"),
        )),
    }
}

/// `fallback`: "heuristic" (the rule; `None`) or a value.
fn fallback(t: &mut Table) -> Result<Option<f64>, ScenarioError> {
    match t.get("fallback") {
        None => Ok(None),
        Some(item) => match item.as_value() {
            Some(Value::String(s)) if s.value() == "heuristic" || s.value() == "rule" => Ok(None),
            Some(Value::Float(f)) if f.value().is_finite() => Ok(Some(*f.value())),
            Some(Value::Integer(i)) => Ok(Some(*i.value() as f64)),
            _ => Err(t.error(
                "fallback",
                "must be \"heuristic\" (the model's rule) or a value: a probability for yes/no decisions, a number in range for numeric ones",
            )),
        },
    }
}

/// `[behaviour.<decision>]`, if the scenario has one for this decision.
fn decision(
    t: &mut Table,
    doc: &DecisionDoc,
    per_agent: bool,
    fallback: Option<f64>,
    logprob: bool,
) -> Result<Option<DecisionSpec>, ScenarioError> {
    let Some(mut d) = t.table(doc.name)? else {
        return Ok(None);
    };
    let text = d
        .string("prompt")?
        .ok_or_else(|| d.error_here("needs prompt = \"...\" (placeholders like {age_group}, {cases})"))?;
    let template = myriad_llm::Template::parse(&text).map_err(|e| d.error("prompt", e.to_string()))?;
    let remember = match d.string("remember")? {
        None => None,
        Some(r) if per_agent => Some(myriad_llm::Template::parse(&r).map_err(|e| d.error("remember", e.to_string()))?),
        Some(_) => return Err(d.error("remember", "memory is per agent: it needs ask = \"agents\"")),
    };
    let (answer, lo, hi) = match doc.answer {
        DecisionAnswer::YesNo => (myriad_llm::AnswerKind::YesNo, 0.0, 1.0),
        DecisionAnswer::Number { min, max } => (myriad_llm::AnswerKind::Number { min, max }, min, max),
        DecisionAnswer::Text => {
            if !per_agent {
                return Err(d.error_here(format!(
                    "decision '{}' is free text, asked of each agent: it needs [behaviour] ask = \"agents\"",
                    doc.name
                )));
            }
            (myriad_llm::AnswerKind::Text, f64::NEG_INFINITY, f64::INFINITY)
        }
    };
    let logprob = answer_mode(&mut d)?.unwrap_or(logprob);
    if logprob && answer != myriad_llm::AnswerKind::YesNo {
        return Err(d.error_here(format!(
            "decision '{}' is not a yes/no question; answer = \"logprob\" reads yes/no decisions only (set answer = \"text\" for it)",
            doc.name
        )));
    }
    d.finish()?;
    if let Some(f) = fallback.filter(|f| !(lo..=hi).contains(f)) {
        return Err(t.error(
            "fallback",
            format!("{f} is outside [{lo}, {hi}], the answers decision '{}' takes", doc.name),
        ));
    }
    Ok(Some(DecisionSpec {
        name: doc.name.to_string(),
        template,
        remember,
        answer,
        logprob,
    }))
}

/// `[llm]`: the backend (the embedded model or an OpenAI-compatible
/// server), then the client's settings.
fn llm(mut t: Table, base_dir: &Path) -> Result<LlmConfig, ScenarioError> {
    let has_endpoint = t.raw("endpoint").is_some() || t.raw("endpoints").is_some();
    let backend = t
        .string("backend")?
        .unwrap_or_else(|| if has_endpoint { "http" } else { "local" }.into());
    let mut c = match backend.as_str() {
        "http" => http(&mut t)?,
        "local" => local(&mut t, base_dir)?,
        other => {
            return Err(t.error(
                "backend",
                format!("'{other}': use local (the embedded model) or http (an OpenAI-compatible server)"),
            ))
        }
    };
    c.system = t.string("system")?;
    limits(&mut t, &mut c)?;
    cache(&mut t, &mut c, base_dir)?;
    t.finish()?;
    Ok(c)
}

/// Keys that only mean something to an HTTP server.
const HTTP_ONLY: [&str; 8] = [
    "endpoint",
    "endpoints",
    "api",
    "api_key_env",
    "timeout_seconds",
    "max_concurrency",
    "requests_per_second",
    "max_retries",
];

/// `backend = "local"`: the GGUF file (relative to the scenario; the
/// pulled default when omitted), threads, prompts per batch, context.
fn local(t: &mut Table, base_dir: &Path) -> Result<LlmConfig, ScenarioError> {
    if let Some(key) = HTTP_ONLY.iter().find(|k| t.raw(k).is_some()) {
        return Err(t.error(
            key,
            "is a setting of backend = \"http\" (an OpenAI-compatible server); the embedded model (backend = \"local\") has none",
        ));
    }
    let path = match t.string("model")? {
        Some(m) if m.trim().is_empty() => return Err(t.error("model", "is empty: give the path of a GGUF file")),
        Some(m) => base_dir.join(m),
        None => myriad_llm::local::default_model_path(),
    };
    let mut s = myriad_llm::local::LocalSettings::new(path);
    if let Some(n) = t.int("threads", 1, 1024)? {
        s.threads = n as usize;
    }
    if let Some(b) = t.int("batch", 1, 4096)? {
        s.batch = b as usize;
    }
    if let Some(n) = t.int("context", 64, 1 << 20)? {
        s.context = n as u32;
    }
    Ok(LlmConfig::local(s))
}

/// `backend = "http"`: the endpoints, the model they serve, the API.
fn http(t: &mut Table) -> Result<LlmConfig, ScenarioError> {
    for key in ["threads", "context"] {
        if t.raw(key).is_some() {
            return Err(t.error(key, "is a setting of the embedded model (backend = \"local\")"));
        }
    }
    let endpoints: Vec<String> = match t.get("endpoints") {
        None => {
            let one = t.string("endpoint")?.ok_or_else(|| {
                t.error_here("needs endpoint = \"http://host:port/v1\" (or endpoints = [...]; or backend = \"local\" for the embedded model)")
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
    let mut c = LlmConfig::new(&endpoints[0], &model_name);
    c.endpoints = endpoints;
    c.api = match t.string("api")?.as_deref() {
        None | Some("chat") => Api::Chat,
        Some("completions") => Api::Completions,
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
    Ok(c)
}

/// Sampling, time, concurrency, rate and batch limits of `[llm]`.
fn limits(t: &mut Table, c: &mut LlmConfig) -> Result<(), ScenarioError> {
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
    if c.local.is_some() {
        return Ok(());
    }
    if let Some(b) = t.int("batch", 1, 100_000)? {
        if b > 1 && c.api != Api::Completions {
            return Err(t.error(
                "batch",
                "several prompts per request need api = \"completions\" (a chat request carries one conversation)",
            ));
        }
        c.batch = b as usize;
    }
    Ok(())
}

/// `cache` and `mode`, checked without creating anything.
fn cache(t: &mut Table, c: &mut LlmConfig, base_dir: &Path) -> Result<(), ScenarioError> {
    c.cache = t.string("cache")?.map(|f| base_dir.join(f));
    c.mode = match t.string("mode")? {
        None if c.cache.is_some() => Mode::Record,
        None => Mode::Live,
        Some(m) => Mode::parse(&m).ok_or_else(|| t.error("mode", format!("'{m}': use live, record or replay")))?,
    };
    if c.mode != Mode::Live && c.cache.is_none() {
        return Err(t.error("mode", "record and replay need cache = \"llm-cache.jsonl\""));
    }
    if let Some(path) = &c.cache {
        check_cache_path(path, c.mode).map_err(|m| t.error("cache", m))?;
    }
    Ok(())
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
        Err(_) if mode == Mode::Replay => Err(format!(
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
