//! `myriad llm check` and `myriad llm bench`: one prompt to a scenario's
//! endpoint, and per-agent decisions per second against an endpoint.

use anyhow::{Context, Result};
use myriad_sim::{scenario, InputError};
use std::path::Path;
use std::process::ExitCode;

/// Send one prompt (the first decision's, with sample values, unless
/// given) to the scenario's endpoint, and say how it reads.
pub fn check(scenario: &Path, prompt: Option<String>, set: Vec<String>) -> Result<ExitCode> {
    let s = scenario::load(scenario, &scenario::Overrides { set, seed: None })?;
    let spec = s.behaviour.as_ref().ok_or_else(|| {
        InputError(format!(
            "{}: no LLM configured ([behaviour] provider = \"llm\" with an [llm] table)",
            scenario.display()
        ))
    })?;
    let prompt = match prompt {
        Some(p) => p,
        None => {
            let d = &spec.decisions[0];
            let (name, template) = (&d.name, &d.template);
            let mut values: std::collections::BTreeMap<String, String> = template
                .placeholders()
                .iter()
                .map(|p| (p.to_string(), format!("<{p}>")))
                .collect();
            for (k, v) in [("week", "3"), ("cases", "1200"), ("cases_change", "+35%")] {
                values.insert(k.into(), v.into());
            }
            let filled = template.fill(&values).map_err(|e| InputError(e.to_string()))?;
            println!("decision '{name}', prompt with sample values:\n{filled}\n");
            filled
        }
    };
    let mut cfg = spec.llm.clone();
    cfg.mode = myriad_llm::Mode::Live;
    cfg.cache = None;
    let client = myriad_llm::LlmClient::new(cfg).map_err(|e| InputError(format!("[llm]: {e}")))?;
    let endpoints = client.shown_endpoints().join(", ");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let t = std::time::Instant::now();
    let answer = runtime.block_on(client.complete(&prompt, 0))?;
    let latency = t.elapsed().as_secs_f64();
    // Read as the first decision's answer (yes/no, a number, text).
    let kind = &spec.decisions[0].answer;
    let parsed = match myriad_llm::parse(&answer.text, kind) {
        Ok(a) => format!("{a:?}"),
        Err(e) => format!("unreadable ({e})"),
    };
    let kind_name = match kind {
        myriad_llm::AnswerKind::YesNo => "yes/no".to_string(),
        myriad_llm::AnswerKind::Number { min, max } => format!("a number in [{min}, {max}]"),
        myriad_llm::AnswerKind::Text => "text".to_string(),
        other => format!("{other:?}"),
    };
    let stats = client.stats();
    println!(
        "endpoint(s) {endpoints}, model {}: answered in {latency:.3} s after {} retries\nanswer: {:?}\nas {kind_name}: {parsed}\ntokens: {} in, {} out",
        client.config().model,
        stats.retries,
        answer.text,
        answer.tokens_in,
        answer.tokens_out
    );
    Ok(ExitCode::SUCCESS)
}

/// What `myriad llm bench` measures (its command-line options).
#[derive(clap::Args)]
pub struct BenchOptions {
    /// Base URL, e.g. http://127.0.0.1:8000/v1 (see `myriad llm serve`) [default: the embedded model].
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Model name sent with the requests, or the GGUF file of the embedded model
    /// [default: mock, or the pulled model].
    #[arg(long)]
    pub model: Option<String>,
    /// Agents, one prompt each.
    #[arg(long, default_value_t = 1_000)]
    pub agents: u32,
    /// Requests in flight at most (server).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Prompts per request (server; 1: one chat request per agent) or per batch (embedded).
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Read the probability of yes from the embedded model instead of generating text.
    #[arg(long)]
    pub logprob: bool,
    /// Answer tokens at most.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tokens: u32,
}

/// `myriad llm bench`: per-agent decisions per second, against an endpoint
/// or the embedded model.
pub fn bench(o: &BenchOptions) -> Result<()> {
    if o.batch == 0 || o.concurrency == 0 {
        return Err(InputError("--batch and --concurrency must be at least 1".into()).into());
    }
    let mut cfg = match &o.endpoint {
        Some(endpoint) => {
            let mut cfg = myriad_llm::LlmConfig::new(endpoint, o.model.as_deref().unwrap_or("mock"));
            cfg.max_concurrency = o.concurrency;
            cfg.timeout = std::time::Duration::from_secs(120);
            cfg.api = if o.batch > 1 {
                myriad_llm::Api::Completions
            } else {
                myriad_llm::Api::Chat
            };
            cfg
        }
        None => {
            let path = o
                .model
                .as_ref()
                .map_or_else(myriad_llm::local::default_model_path, std::path::PathBuf::from);
            let mut s = myriad_llm::local::LocalSettings::new(path);
            s.batch = o.batch.max(1);
            myriad_llm::LlmConfig::local(s)
        }
    };
    if o.logprob && o.endpoint.is_some() {
        return Err(InputError("--logprob reads the embedded model's probabilities; drop --endpoint".into()).into());
    }
    cfg.max_tokens = o.max_tokens;
    let local = cfg.local.is_some();
    let client = myriad_llm::LlmClient::new(cfg).map_err(|e| InputError(e.to_string()))?;
    let (agents, batch) = (o.agents, o.batch);
    let prompts: Vec<(String, u32)> = (0..agents)
        .map(|i| {
            (
                format!("You are agent {i}. Cases in your area rose last week. Do you stay home? Answer yes or no."),
                0,
            )
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let t = std::time::Instant::now();
    // Per agent: the probability of yes (1/0 for a text answer read as yes
    // or no, NaN when unreadable).
    let p_yes: Vec<f64> = if o.logprob {
        let texts: Vec<String> = prompts.into_iter().map(|p| p.0).collect();
        let options = myriad_llm::archetype::yes_no_options();
        runtime
            .block_on(client.score_all(&texts, &options))
            .into_iter()
            .map(|r| r.map(|p| p[0]).map_err(|e| anyhow::anyhow!("{e}")))
            .collect::<Result<_>>()?
    } else {
        let texts: Vec<String> = if batch > 1 && !local {
            runtime
                .block_on(client.complete_batched(&prompts, batch))?
                .into_iter()
                .map(|c| c.text)
                .collect()
        } else if local {
            runtime
                .block_on(client.answer_all(&prompts))
                .into_iter()
                .map(|r| r.map(|c| c.text).map_err(|e| anyhow::anyhow!("{e}")))
                .collect::<Result<_>>()?
        } else {
            runtime
                .block_on(client.complete_all(&prompts))
                .into_iter()
                .map(|r| r.map(|c| c.text).map_err(|e| anyhow::anyhow!("{e}")))
                .collect::<Result<_>>()?
        };
        texts
            .iter()
            .map(|t| match myriad_llm::parse(t, &myriad_llm::AnswerKind::YesNo) {
                Ok(a) => a.value().unwrap_or(f64::NAN),
                Err(_) => f64::NAN,
            })
            .collect()
    };
    let wall = t.elapsed().as_secs_f64();
    let read: Vec<f64> = p_yes.iter().copied().filter(|p| !p.is_nan()).collect();
    let stats = client.stats();
    let how = if local {
        format!(
            "embedded model, {} prompts per batch, {}",
            batch.max(1),
            if o.logprob {
                "yes/no probabilities"
            } else {
                "text answers"
            }
        )
    } else {
        format!(
            "{} HTTP requests, {} prompts each, {} in flight at most, {} retries",
            stats.calls,
            batch.max(1),
            o.concurrency,
            stats.retries
        )
    };
    println!(
        "{agents} per-agent decisions in {wall:.2} s: {:.1} decisions/s, {:.0} tokens/s ({} in, {} out; {how}); {:.1}% readable, mean p(yes) {:.3}",
        agents as f64 / wall,
        (stats.tokens_in + stats.tokens_out) as f64 / wall,
        stats.tokens_in,
        stats.tokens_out,
        100.0 * read.len() as f64 / agents.max(1) as f64,
        read.iter().sum::<f64>() / read.len().max(1) as f64
    );
    Ok(())
}
