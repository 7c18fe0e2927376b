//! The games with LLM players, end to end against a local
//! OpenAI-compatible server with scripted answers, and the shipped game
//! scenarios.

mod common;
use common::{myriad, run_quietly, serve_v1, stderr, write};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};

type Prompts = Arc<Mutex<Vec<String>>>;

/// Scripted answers: donor-game prompts get "0" (and a strategy when asked
/// to write one); commons prompts "I will take 10.", a line of discussion or
/// a reflection; every plain-completions prompt "Answer: 30".
/// Returns the base URL and the prompts received, in arrival order.
fn serve() -> (String, Prompts) {
    let seen: Prompts = Arc::default();
    let state = seen.clone();
    let app = Router::new()
        .route(
            "/v1/chat/completions",
            post(|State(seen): State<Prompts>, Json(req): Json<Value>| async move {
                let prompt = req["messages"][0]["content"].as_str().unwrap_or_default().to_string();
                let text = if prompt.contains("write your strategy") {
                    "Give half to those who give."
                } else if prompt.contains("donor game") {
                    "0"
                } else if prompt.contains("say to the group") {
                    // The fourth speaker closes the discussion.
                    if prompt.contains("agent 2: We") {
                        "Agreed. [end]"
                    } else {
                        "We should take 10 each."
                    }
                } else if prompt.contains("take away") {
                    "Keep to 10."
                } else {
                    "I will take 10."
                };
                seen.lock().unwrap().push(prompt);
                Json(json!({
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 50, "completion_tokens": 3}
                }))
            }),
        )
        .route(
            "/v1/completions",
            post(|State(seen): State<Prompts>, Json(req): Json<Value>| async move {
                let prompts: Vec<String> = req["prompt"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_str().unwrap().to_string())
                    .collect();
                let choices: Vec<Value> = (0..prompts.len())
                    .map(|i| json!({"index": i, "text": " Answer: 30"}))
                    .collect();
                seen.lock().unwrap().extend(prompts);
                Json(json!({"choices": choices, "usage": {"prompt_tokens": 7, "completion_tokens": 3}}))
            }),
        )
        .with_state(state);
    (serve_v1(app), seen)
}

fn run(scenario: &Path, out: &Path) -> (String, Value) {
    let o = run_quietly(scenario, out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    let summary = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    (csv, summary)
}

fn column(csv: &str, name: &str) -> Vec<f64> {
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let j = header.iter().position(|h| *h == name).unwrap();
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').nth(j).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn commons_llm_players_answer_per_agent_with_public_harvests_and_bounded_memory() {
    let d = tempfile::tempdir().unwrap();
    let (url, seen) = serve();
    let s = write(
        d.path(),
        "commons.toml",
        &format!(
            r#"
model = "commons"
seed = 1
steps = 12
[population]
size = 5
[llm]
endpoint = "{url}"
model = "m"
[behaviour]
provider = "llm"
ask = "agents"
memory_turns = 2
samples = 1
[behaviour.harvest]
prompt = "Agent {{agent}}: {{stock}} {{resource}}. Last month: {{last_harvests}}. Memory:\n{{memory}}\nHow many {{unit}}?"
remember = "Month {{month}}: asked {{answer}}"
"#
        ),
    );
    let (csv, summary) = run(&s, &d.path().join("out"));
    // Everyone takes 10 of 100: the lake stays full for 12 months.
    assert!(column(&csv, "stock").iter().all(|&x| x == 100.0));
    assert_eq!(*column(&csv, "survival_time").last().unwrap(), 12.0);
    assert_eq!(*column(&csv, "efficiency").last().unwrap(), 1.0);
    assert_eq!(summary["behaviour"]["client"]["calls"], 60);
    let prompts = seen.lock().unwrap();
    let last = prompts
        .iter()
        .find(|p| p.starts_with("Agent 3:") && p.contains("Month 11"))
        .unwrap();
    assert!(last.contains("100 tons of fish"), "{last}");
    assert!(
        last.contains("agent 0: 10, agent 1: 10, agent 2: 10, agent 3: 10, agent 4: 10"),
        "{last}"
    );
    // Two turns of memory: months 10 and 11, not earlier ones.
    assert!(last.contains("Month 10: asked 10\nMonth 11: asked 10\n"), "{last}");
    assert!(!last.contains("Month 9:"), "{last}");
}

#[test]
fn commons_llm_players_discuss_reflect_and_see_both_next_month() {
    let d = tempfile::tempdir().unwrap();
    let (url, seen) = serve();
    let scenario = |communication: &str| {
        write(
            d.path(),
            &format!("talk-{communication}.toml"),
            &format!(
                r#"
model = "commons"
seed = 1
steps = 3
[population]
size = 5
[params]
communication = "{communication}"
[llm]
endpoint = "{url}"
model = "m"
[behaviour]
provider = "llm"
ask = "agents"
samples = 1
[behaviour.harvest]
prompt = "Agent {{agent}} harvest. Discussion: {{discussion}}. Reflection: {{reflection}}."
[behaviour.discuss]
prompt = "Agent {{agent}}: harvests {{harvests}}. So far:\n{{conversation}}\nWhat do you say to the group?"
[behaviour.reflect]
prompt = "Agent {{agent}}: after\n{{conversation}}\nwhat do you take away?"
"#
            ),
        )
    };
    let out = d.path().join("on");
    let (csv, summary) = run(&scenario("on"), &out);
    // Agents 0, 1, 2 speak, agent 3 agrees and closes: 4 utterances a month.
    assert_eq!(column(&csv, "utterances")[1..], [4.0, 4.0, 4.0]);
    // Per month: 5 harvests, 4 utterances, 5 reflections.
    assert_eq!(summary["behaviour"]["client"]["calls"], 42);
    let prompts = seen.lock().unwrap().clone();
    let month2 = prompts
        .iter()
        .find(|p| p.starts_with("Agent 4 harvest") && !p.contains("none yet"))
        .unwrap();
    assert!(
        month2.contains("agent 0: We should take 10 each.\nagent 1: We should take 10 each.\nagent 2: We should take 10 each.\nagent 3: Agreed."),
        "{month2}"
    );
    assert!(month2.contains("Reflection: Keep to 10."), "{month2}");
    let transcript = std::fs::read_to_string(out.join("transcript.jsonl")).unwrap();
    let events: Vec<Value> = transcript.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds = |k: &str| events.iter().filter(|e| e["kind"] == k).count();
    assert_eq!((kinds("harvest"), kinds("say"), kinds("reflect")), (15, 12, 15));
    assert!(events
        .iter()
        .any(|e| e["kind"] == "say" && e["text"] == "Agreed." && e["step"] == 2));

    // GovSim's no-communication perturbation: harvests only.
    seen.lock().unwrap().clear();
    let (csv, summary) = run(&scenario("off"), &d.path().join("off"));
    assert_eq!(column(&csv, "utterances")[1..], [0.0, 0.0, 0.0]);
    assert_eq!(summary["behaviour"]["client"]["calls"], 15);
}

#[test]
fn guess_llm_players_are_asked_in_batches_and_told_the_previous_target() {
    let d = tempfile::tempdir().unwrap();
    let (url, seen) = serve();
    let s = write(
        d.path(),
        "guess.toml",
        &format!(
            r#"
model = "guess"
seed = 1
steps = 2
[population]
size = 1000
[params]
prompt_variant = "strategic"
[llm]
endpoint = "{url}"
model = "m"
api = "completions"
batch = 100
[behaviour]
provider = "llm"
ask = "agents"
samples = 1
[behaviour.guess]
prompt = "{{players}} players, round {{round}}, target {{ratio}} of the mean, previous {{previous_target}}. {{instruction}}"
"#
        ),
    );
    let (csv, summary) = run(&s, &d.path().join("out"));
    assert_eq!(column(&csv, "valid")[1..], [1000.0, 1000.0]);
    assert_eq!(column(&csv, "mean")[1..], [30.0, 30.0]);
    assert_eq!(column(&csv, "target")[1..], [20.0, 20.0]);
    assert_eq!(column(&csv, "reports_30_40")[1..], [1000.0, 1000.0]);
    // 1,000 players x 2 rounds in batches of 100.
    assert_eq!(summary["behaviour"]["client"]["calls"], 20);
    assert_eq!(summary["behaviour"]["client"]["tokens_in"], 140);
    let prompts = seen.lock().unwrap();
    assert_eq!(prompts.len(), 2000);
    assert!(prompts[0].contains("previous none yet") && prompts[0].contains("2/3"));
    assert!(prompts[1999].contains("round 2") && prompts[1999].contains("previous 20.00"));
    assert!(prompts[0].contains("guess the other players' strategies"));
}

#[test]
fn donor_llm_donors_are_the_only_ones_asked_and_see_the_recipients_traces() {
    let d = tempfile::tempdir().unwrap();
    let (url, seen) = serve();
    let s = write(
        d.path(),
        "donor.toml",
        &format!(
            r#"
model = "donor"
seed = 1
steps = 2
[population]
size = 12
[llm]
endpoint = "{url}"
model = "m"
[behaviour]
provider = "llm"
ask = "agents"
memory_turns = 1
samples = 1
[behaviour.strategy]
prompt = "A donor game, generation {{generation}}. {{advice}} Agent {{agent}}, write your strategy."
[behaviour.donate]
prompt = "A donor game: you are {{agent}} in generation {{generation}} with {{resources}}, strategy '{{strategy}}', memory [{{memory}}]; recipient {{recipient}} has {{recipient_resources}}; they did: {{recipient_traces}}."
"#
        ),
    );
    let out = d.path().join("out");
    let (csv, summary) = run(&s, &out);
    // Nobody gives: everyone keeps the endowment.
    assert_eq!(column(&csv, "mean_resources")[1..], [10.0, 10.0]);
    assert_eq!(column(&csv, "max_resources")[1..], [10.0, 10.0]);
    // Generation 1: 12 strategies, then 6 donors per round, 2 games of 12
    // rounds; generation 2: the 6 newcomers' strategies and the rounds.
    assert_eq!(summary["behaviour"]["client"]["calls"], 12 + 144 + 6 + 144);
    let transcript = std::fs::read_to_string(out.join("transcript.jsonl")).unwrap();
    let events: Vec<Value> = transcript.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let count = |kind: &str, step: u64| events.iter().filter(|e| e["kind"] == kind && e["step"] == step).count();
    assert_eq!((count("strategy", 1), count("donate", 1)), (12, 144));
    assert_eq!((count("strategy", 2), count("donate", 2)), (6, 144));
    let prompts = seen.lock().unwrap();
    assert!(prompts
        .iter()
        .any(|p| p.contains("strategy 'Give half to those who give.'")));
    let first = prompts.iter().find(|p| p.contains("recipient")).unwrap();
    assert!(first.contains("they did: none yet"), "{first}");
    assert!(
        prompts
            .iter()
            .any(|p| p.contains("they did: gave 0.00 of 10.00 units to agent")),
        "traces are shown"
    );
    // Newcomers take dead agents' places with an empty memory; survivors
    // remember their last answer.
    let newcomers: Vec<u64> = events
        .iter()
        .filter(|e| e["kind"] == "strategy" && e["step"] == 2)
        .map(|e| e["agent"].as_u64().unwrap())
        .collect();
    for agent in 0..12u64 {
        let first_in_2 = prompts
            .iter()
            .find(|p| p.starts_with(&format!("A donor game: you are {agent} in generation 2 ")))
            .unwrap();
        let fresh = first_in_2.contains("memory [(nothing yet)]");
        assert_eq!(fresh, newcomers.contains(&agent), "{first_in_2}");
    }
}

#[test]
fn shipped_game_scenarios_run() {
    let d = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    for (name, set) in [
        ("commons-fishery", "steps=12"),
        ("donor-game", "steps=3"),
        ("guess-million", "population.size=20000"),
    ] {
        let out = d.path().join(name);
        let s = root.join(format!("{name}.toml"));
        let o = run_quietly(&s, &out, &["--set", set]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert!(out.join("timeseries.png").exists());
    }
    for name in ["commons-llm", "guess-llm", "donor-llm"] {
        let o = myriad(&["validate", root.join(format!("{name}.toml")).to_str().unwrap()]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
    }
}

#[test]
fn games_refuse_layers_and_odd_donor_populations() {
    let d = tempfile::tempdir().unwrap();
    let s = write(
        d.path(),
        "bad.toml",
        "model = \"guess\"\nsteps = 1\n[population]\nsize = 10\n[[layers]]\nname = \"x\"\ntype = \"well_mixed\"\n",
    );
    let o = myriad(&["validate", s.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("model 'guess' has no contact layers"),
        "{}",
        stderr(&o)
    );
    let s = write(
        d.path(),
        "odd.toml",
        "model = \"donor\"\nsteps = 1\n[population]\nsize = 7\n",
    );
    let o = myriad(&[
        "run",
        s.to_str().unwrap(),
        "--out",
        d.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("even number of agents"), "{}", stderr(&o));
}

/// Guess 2/3 as a controllable game: under the hand-written controller
/// (report the previous target, 50 x ratio in round 1) every player
/// reports x_k = 50 ratio^k in round k, and all win exactly when
/// x_k (1 - ratio) <= margin.
#[test]
fn guess_game_under_the_controller_follows_level_k_reasoning() {
    let d = tempfile::tempdir().unwrap();
    let s = write(
        d.path(),
        "g.toml",
        "model = \"guess\"\nseed = 1\nsteps = 12\n[population]\nsize = 1000\n[behaviour]\nprovider = \"controller\"\n",
    );
    let out = d.path().join("out");
    let o = run_quietly(&s, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let ratio = 2.0f64 / 3.0;
    for line in lines.skip(1) {
        let v: Vec<f64> = line.split(',').map(|x| x.parse().unwrap()).collect();
        let k = v[0] as i32;
        let x = 50.0 * ratio.powi(k);
        // Actions and observations are f32: each round rounds the report
        // twice (relative 2^-24 each), compounding over at most 12 rounds.
        assert!(
            (v[col("mean")] - x).abs() <= 2e-6 * x,
            "round {k}: mean {}",
            v[col("mean")]
        );
        let all_win = x * (1.0 - ratio) <= 0.5;
        assert_eq!(v[col("winners")], if all_win { 1000.0 } else { 0.0 }, "round {k}");
    }
}
