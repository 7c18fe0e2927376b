//! `myriad personas SCENARIO`: the scenario's personas, written by its LLM,
//! saved as `personas.csv` with a diversity report in `summary.json`.

use crate::{OutArgs, ScenarioArgs};
use anyhow::{Context, Result};
use myriad_sim::build;
use std::process::ExitCode;

/// Write the personas of the scenario's `[personas]` table.
pub fn personas(scenario: &ScenarioArgs, output: &OutArgs) -> Result<ExitCode> {
    let prepared = scenario.prepare(output, "-personas")?;
    let s = scenario.load()?;
    let pool = myriad_sim::simulation::pool(prepared.threads)?;
    let pop = pool.install(|| build::population(&s))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let t = std::time::Instant::now();
    let g = myriad_sim::behaviour::personas(&s, &pop, rt.handle())?;
    let seconds = t.elapsed().as_secs_f64();
    let dir = prepared.out.create(output.force, "personas")?;

    let names: Vec<String> = g
        .values
        .first()
        .map(|v| v.keys().cloned().collect())
        .unwrap_or_default();
    let mut agents = vec![0u64; g.values.len()];
    for &p in &g.of {
        agents[p as usize] += 1;
    }
    let mut w = csv::Writer::from_path(dir.join("personas.csv"))
        .with_context(|| format!("writing {}", dir.join("personas.csv").display()))?;
    let mut header = vec!["persona".to_string(), "agents".to_string()];
    header.extend(names.iter().cloned());
    header.push("text".into());
    w.write_record(&header)?;
    for (k, (values, text)) in g.values.iter().zip(&g.personas.texts).enumerate() {
        let mut row = vec![k.to_string(), agents[k].to_string()];
        row.extend(names.iter().map(|n| values.get(n).cloned().unwrap_or_default()));
        row.push(text.clone());
        w.write_record(&row)?;
    }
    w.flush()
        .with_context(|| format!("writing {}", dir.join("personas.csv").display()))?;

    let diversity = myriad_llm::personas::diversity(&g.personas.texts);
    let spec = s.personas.as_ref().expect("personas were written");
    let summary = serde_json::json!({
        "scenario_file": scenario.scenario.display().to_string(),
        "model": g.model,
        "per": if spec.per_agent { "agent" } else { "group" },
        "attributes": names,
        "personas": g.values.len(),
        "agents": pop.size(),
        "temperature": spec.llm.temperature,
        "max_tokens": spec.llm.max_tokens,
        "requests": g.personas.requests,
        "reasked_duplicates": g.personas.reasked,
        "duplicates_left": g.personas.duplicates,
        "diversity": diversity,
        "client": g.stats,
        "seconds": seconds,
    });
    let path = dir.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "{} personas for {} agents in {seconds:.1} s: {:.0}% distinct, mean word-set similarity {:.3} ({} re-asked as duplicates)\n{}",
        g.values.len(),
        pop.size(),
        diversity.distinct_share * 100.0,
        diversity.mean_pairwise_jaccard,
        g.personas.reasked,
        dir.join("personas.csv").display()
    );
    Ok(ExitCode::SUCCESS)
}
