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

/// `myriad llm bench`: per-agent decisions per second against an endpoint.
pub fn bench(endpoint: &str, model: &str, agents: u32, concurrency: usize, batch: usize) -> Result<()> {
    let mut cfg = myriad_llm::LlmConfig::new(endpoint, model);
    cfg.max_concurrency = concurrency;
    cfg.timeout = std::time::Duration::from_secs(120);
    cfg.api = if batch > 1 {
        myriad_llm::Api::Completions
    } else {
        myriad_llm::Api::Chat
    };
    let client = myriad_llm::LlmClient::new(cfg).map_err(|e| InputError(e.to_string()))?;
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
    let texts: Vec<String> = if batch > 1 {
        runtime
            .block_on(client.complete_batched(&prompts, batch))?
            .into_iter()
            .map(|c| c.text)
            .collect()
    } else {
        runtime
            .block_on(client.complete_all(&prompts))
            .into_iter()
            .map(|r| r.map(|c| c.text).map_err(|e| anyhow::anyhow!("{e}")))
            .collect::<Result<_>>()?
    };
    let wall = t.elapsed().as_secs_f64();
    let yes = texts
        .iter()
        .filter(|t| {
            matches!(
                myriad_llm::parse(t, &myriad_llm::AnswerKind::YesNo),
                Ok(myriad_llm::Answer::YesNo(true))
            )
        })
        .count();
    let stats = client.stats();
    println!(
        "{agents} per-agent decisions in {wall:.2} s: {:.0} decisions/s ({} HTTP requests, {} prompts each, {} in flight at most, {} retries); {:.1}% yes",
        agents as f64 / wall,
        stats.calls,
        batch.max(1),
        concurrency,
        stats.retries,
        100.0 * yes as f64 / agents.max(1) as f64
    );
    Ok(())
}
