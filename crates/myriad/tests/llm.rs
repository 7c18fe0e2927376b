//! LLM-driven decisions end to end: the `covid` model's weekly isolation
//! asked of a local OpenAI-compatible server per archetype, recorded, and
//! replayed byte for byte without the server.

mod common;
use common::{myriad, run_quietly, serve_v1, stderr};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A chat-completions server answering "Yes." when the prompt mentions
/// 65A and "No." otherwise; returns its base URL and hit counter.
fn serve() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = Router::new()
        .route(
            "/v1/chat/completions",
            post(|State(h): State<Arc<AtomicUsize>>, Json(req): Json<Value>| async move {
                h.fetch_add(1, Ordering::SeqCst);
                let prompt = req["messages"][0]["content"].as_str().unwrap_or_default().to_string();
                // Per-agent memory test: "yes" after a remembered "no";
                // agent-state test: "yes" when unwell.
                let text = if prompt.contains("65A") || prompt.contains(": no") || prompt.contains("unwell") {
                    "Yes."
                } else {
                    "No."
                };
                Json(json!({
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 20, "completion_tokens": 2}
                }))
            }),
        )
        .with_state(h);
    (serve_v1(app), hits)
}

/// 3,000 people, ages cycling through the six groups (500 each), no one infected.
fn people(dir: &Path) {
    people_n(dir, 3000);
}

/// `n` people, ages cycling through the six groups.
fn people_n(dir: &Path, n: usize) {
    let ages = ["U19", "20t29", "30t39", "40t49", "50t64", "65A"];
    let mut text = String::from("age_group,household\n");
    for i in 0..n {
        text.push_str(&format!("{},{}\n", ages[i % 6], i / 3));
    }
    std::fs::write(dir.join("people.csv"), text).unwrap();
}

/// A `covid` scenario on `people.csv` with one household layer, the given
/// steps and initial infections, `[llm]` at `endpoint` plus `llm`, and the
/// `[behaviour]` tables `behaviour`; written to `dir/file`.
fn covid_llm(dir: &Path, file: &str, steps: u32, infected: u32, endpoint: &str, llm: &str, behaviour: &str) -> PathBuf {
    let text = format!(
        r#"
model = "covid"
seed = 3
steps = {steps}

[population]
file = "people.csv"

[params]
initial_infected = {infected}

[[layers]]
name = "household"
type = "groups"
column = "household"

[llm]
endpoint = "{endpoint}"
model = "test-model"
timeout_seconds = 2
{llm}

[behaviour]
provider = "llm"
{behaviour}
"#
    );
    common::write(dir, file, &text)
}

fn scenario(dir: &Path, endpoint: &str, mode: &str, extra: &str) -> PathBuf {
    covid_llm(
        dir,
        &format!("llm-{mode}.toml"),
        14,
        30,
        endpoint,
        &format!("cache = \"llm-cache.jsonl\"\nmode = \"{mode}\"\n{extra}"),
        "samples = 3\n[behaviour.isolate]\nprompt = \"You are aged {age_group}. Last week {cases} new cases ({cases_change}). Do you stay home this week? Answer yes or no.\"",
    )
}

fn column(csv: &str, name: &str, step: usize) -> f64 {
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let j = header.iter().position(|h| *h == name).unwrap();
    csv.lines()
        .nth(step + 1)
        .unwrap()
        .split(',')
        .nth(j)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn archetype_decisions_come_from_the_llm_and_replay_byte_identically() {
    let d = tempfile::tempdir().unwrap();
    people(d.path());
    let (url, hits) = serve();
    let recorded = d.path().join("recorded");
    let s = scenario(d.path(), &url, "record", "");
    let o = run_quietly(&s, &recorded, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(recorded.join("timeseries.csv")).unwrap();
    // The LLM says yes exactly for 65A: 500 of 3,000 agents isolate.
    assert_eq!(column(&csv, "isolating_fraction", 1), 500.0 / 3000.0);
    // 6 archetypes (age groups) x 3 samples x 2 weeks, each prompt new.
    assert_eq!(hits.load(Ordering::SeqCst), 36);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(recorded.join("summary.json")).unwrap()).unwrap();
    let b = &summary["behaviour"];
    assert_eq!(b["decisions"][0]["groups"], 6);
    assert_eq!(b["answers_requested"], 36);
    assert_eq!(b["client"]["calls"], 36);
    assert_eq!(b["client"]["tokens_in"], 720);
    assert_eq!(b["fallbacks"], 0);
    assert!(!summary.to_string().contains("api_key"));

    // Replay with no server at all: the same run, byte for byte.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v1", l.local_addr().unwrap())
    };
    let s = scenario(d.path(), &dead, "replay", "");
    let replayed = d.path().join("replayed");
    let o = run_quietly(&s, &replayed, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(replayed.join("timeseries.csv")).unwrap(), csv);
    assert_eq!(hits.load(Ordering::SeqCst), 36);

    // The heuristic, by switching the provider: no LLM involved.
    let heuristic = d.path().join("heuristic");
    let o = run_quietly(&s, &heuristic, &["--set", "behaviour.provider=heuristic"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let h = std::fs::read_to_string(heuristic.join("timeseries.csv")).unwrap();
    assert_ne!(column(&h, "isolating_fraction", 1), 500.0 / 3000.0);
}

#[test]
fn an_unreachable_endpoint_stops_the_run_naming_it_and_keeps_the_steps_done() {
    let d = tempfile::tempdir().unwrap();
    people(d.path());
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v1", l.local_addr().unwrap())
    };
    let s = scenario(d.path(), &dead, "live", "max_retries = 1");
    // `cache` with mode live is allowed (the cache is not used).
    let out = d.path().join("out");
    let o = run_quietly(&s, &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&dead) && err.contains("unreachable"), "{err}");
    let csv = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "step 0 and step 1 are kept: {csv}");
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(
        summary.contains("\"error\": \"step 1: behaviour 'isolate'"),
        "{summary}"
    );
    assert!(summary.contains("\"interrupted\": false"), "{summary}");

    // `llm check` names the endpoint too.
    let o = myriad(&["llm", "check", s.to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains(&dead), "{}", stderr(&o));
}

#[test]
fn llm_check_reports_the_answer() {
    let d = tempfile::tempdir().unwrap();
    let (url, _) = serve();
    let s = scenario(d.path(), &url, "live", "");
    let o = myriad(&["llm", "check", s.to_str().unwrap(), "--prompt", "Are you 65A?"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("answer: \"Yes.\"") && out.contains("YesNo(true)"), "{out}");
}

/// A per-agent scenario: every agent asks itself, remembering `turns` answers.
fn per_agent_scenario(dir: &Path, endpoint: &str, turns: u32, cache: &str, extra: &str) -> PathBuf {
    covid_llm(
        dir,
        &format!("agents-{turns}.toml"),
        21,
        0,
        endpoint,
        &format!("cache = \"{cache}\"\nmode = \"record\""),
        &format!(
            "ask = \"agents\"\nmemory_turns = {turns}\nsamples = 1\n{extra}\n[behaviour.isolate]\nprompt = \"You are aged {{age_group}}. Your earlier answers:\\n{{memory}}\\nDo you stay home this week? Answer yes or no.\"\nremember = \"week {{week}}: {{answer}}\""
        ),
    )
}

#[test]
fn per_agent_decisions_remember_exactly_the_configured_turns() {
    // The server says yes after a remembered "no" (and always for 65A). An
    // agent under 65 answers no in week 1, yes in week 2 (it remembers the
    // no); in week 3 it says no again if it remembers one turn (only the
    // yes), yes if it remembers two. So the share isolating in week 3 shows
    // the memory bound.
    let d = tempfile::tempdir().unwrap();
    people_n(d.path(), 300);
    let (url, hits) = serve();
    let week_shares = |turns: u32| {
        let s = per_agent_scenario(d.path(), &url, turns, &format!("cache-{turns}.jsonl"), "");
        let out = d.path().join(format!("out-{turns}"));
        let o = run_quietly(&s, &out, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        let csv = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
        let summary: Value = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
        let dec = &summary["behaviour"]["decisions"][0];
        assert_eq!(dec["asking"], "agents");
        assert_eq!(dec["agents"], 300);
        assert_eq!(dec["memory_turns"], turns);
        [1, 8, 15].map(|step| column(&csv, "isolating_fraction", step))
    };
    let old = 50.0 / 300.0; // the 65A agents always stay home
    assert_eq!(week_shares(1), [old, 1.0, old]);
    // 300 agents x 3 weeks, one call each: agents with equal prompts are
    // still asked separately (their own sample indices).
    assert_eq!(hits.load(Ordering::SeqCst), 900);
    assert_eq!(week_shares(2), [old, 1.0, 1.0]);
    assert_eq!(hits.load(Ordering::SeqCst), 1800);
}

#[test]
fn per_agent_mode_refuses_a_population_over_max_agents() {
    let d = tempfile::tempdir().unwrap();
    people_n(d.path(), 300);
    let s = per_agent_scenario(d.path(), "http://127.0.0.1:9/v1", 0, "c.jsonl", "max_agents = 299");
    let out = d.path().join("out");
    let o = run_quietly(&s, &out, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("300 agents") && err.contains("max_agents = 299"), "{err}");
    assert!(!out.exists());
}

#[test]
fn a_full_disk_under_the_cache_stops_the_run_naming_the_file_and_keeps_the_steps_done() {
    // /dev/full accepts the open and fails every write with ENOSPC.
    if !Path::new("/dev/full").exists() {
        eprintln!("no /dev/full on this system; skipped");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    people_n(d.path(), 60);
    let (url, _) = serve();
    let s = per_agent_scenario(d.path(), &url, 1, "/dev/full", "");
    let out = d.path().join("out");
    let o = run_quietly(&s, &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("/dev/full") && err.contains("No space left"), "{err}");
    let csv = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    // Step 1 finishes on the model's rule, then the run stops.
    assert_eq!(csv.lines().count(), 3, "steps 0 and 1 are kept: {csv}");
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(summary.contains("No space left"), "{summary}");
}

#[test]
fn behaviour_settings_that_cannot_work_are_refused_naming_the_key() {
    let d = tempfile::tempdir().unwrap();
    let base = |model: &str, behaviour: &str, llm_extra: &str| {
        format!(
            "model = \"{model}\"\nsteps = 1\n[population]\nsize = 10\n[llm]\nendpoint = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n{llm_extra}\n[behaviour]\nprovider = \"llm\"\n{behaviour}\n"
        )
    };
    let cases = [
        (
            base("commons", "[behaviour.discuss]\nprompt = \"say\"", ""),
            "decision 'discuss' is free text, asked of each agent: it needs [behaviour] ask = \"agents\"",
        ),
        (
            base("guess", "memory_turns = 3\n[behaviour.guess]\nprompt = \"x\"", ""),
            "behaviour.memory_turns: memory is per agent: it needs ask = \"agents\"",
        ),
        (
            base(
                "guess",
                "ask = \"agents\"\nfallback = 150\n[behaviour.guess]\nprompt = \"x\"",
                "",
            ),
            "behaviour.fallback: 150 is outside [0, 100], the answers decision 'guess' takes",
        ),
        (
            base(
                "guess",
                "ask = \"agents\"\n[behaviour.guess]\nprompt = \"x\"",
                "batch = 100",
            ),
            "llm.batch: several prompts per request need api = \"completions\"",
        ),
        (
            base("guess", "ask = \"everyone\"\n[behaviour.guess]\nprompt = \"x\"", ""),
            "behaviour.ask: 'everyone': use archetypes or agents",
        ),
    ];
    for (k, (text, expected)) in cases.iter().enumerate() {
        let s = common::write(d.path(), &format!("bad-{k}.toml"), text);
        let o = myriad(&["validate", s.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "case {k}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(expected), "case {k}: expected '{expected}' in: {err}");
        assert!(
            err.contains(&format!("bad-{k}.toml:")),
            "case {k} names the file and line: {err}"
        );
    }
}

#[test]
fn archetypes_are_also_grouped_by_the_agent_states_a_prompt_mentions() {
    // 3,000 people, ages cycling through the six groups; every tenth is
    // infectious at the start (300: agents 0, 10, 20, ..., so 100 each of
    // U19, 30t39 and 50t64). The server says yes for 65A and for
    // "unwell", so 500 + 300 = 800 stay home.
    let d = tempfile::tempdir().unwrap();
    let ages = ["U19", "20t29", "30t39", "40t49", "50t64", "65A"];
    let mut text = String::from("age_group,household,stage\n");
    for i in 0..3000 {
        text.push_str(&format!(
            "{},{},{}\n",
            ages[i % 6],
            i / 3,
            if i % 10 == 0 { 2 } else { 0 }
        ));
    }
    std::fs::write(d.path().join("people.csv"), text).unwrap();
    let (url, hits) = serve();
    let s = covid_llm(
        d.path(),
        "states.toml",
        1,
        0,
        &url,
        "",
        "samples = 3\n[behaviour.isolate]\nprompt = \"You are aged {age_group} and feel {health}. Stay home this week?\"",
    );
    let out = d.path().join("out");
    let o = run_quietly(&s, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    assert_eq!(column(&csv, "isolating_fraction", 1), 800.0 / 3000.0);
    // 6 age groups well, 3 of them also unwell: 9 archetypes, 3 samples each.
    assert_eq!(hits.load(Ordering::SeqCst), 27);
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["behaviour"]["decisions"][0]["groups"], 9);

    // A prompt with a state and no column: two archetypes, well and unwell.
    let text = std::fs::read_to_string(&s)
        .unwrap()
        .replace("You are aged {age_group} and feel", "You feel");
    let s = common::write(d.path(), "state-only.toml", &text);
    let out = d.path().join("state-only");
    let o = run_quietly(&s, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    assert_eq!(column(&csv, "isolating_fraction", 1), 300.0 / 3000.0);
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["behaviour"]["decisions"][0]["groups"], 2);
}
