//! The embedded backend against the real model (SmolLM2-135M-Instruct,
//! fetched by `myriad llm pull`, which the README's test command runs
//! first): bad model files, seeded answers, batching, the context window,
//! option probabilities, and record then replay without the model.
#![cfg(feature = "local")]

use myriad_llm::local::{default_model_path, Generation, LocalError, LocalModel, LocalSettings};
use myriad_llm::{LlmClient, LlmConfig, LlmError, Mode};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The pulled model; a clear failure when it is missing.
fn model_path() -> PathBuf {
    let p = default_model_path();
    assert!(
        p.is_file(),
        "{} is missing: run `myriad llm pull` (or scripts/test, which does) before these tests",
        p.display()
    );
    p
}

fn settings() -> LocalSettings {
    let mut s = LocalSettings::new(model_path());
    s.threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    s.batch = 8;
    s
}

/// One loaded model for the tests of this file.
fn model() -> &'static LocalModel {
    static M: OnceLock<LocalModel> = OnceLock::new();
    M.get_or_init(|| LocalModel::load(settings()).expect("the pulled model loads"))
}

const ISOLATE: &str = "You live in Staten Island, New York City, and are in the age group 65A. Last week there were 310 new COVID-19 infections in your borough (change on the week before: +40%). Will you stay at home this week, avoiding school, work and going out? Answer yes or no.";

fn generation(temperature: f64) -> Generation<'static> {
    Generation {
        temperature,
        max_tokens: 8,
        chat: true,
        system: None,
    }
}

#[test]
fn bad_model_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let load = |p: &PathBuf| LocalModel::load(LocalSettings::new(p)).map(|_| ()).unwrap_err();

    let missing = dir.path().join("nowhere.gguf");
    let e = load(&missing);
    assert!(matches!(e, LocalError::Missing { .. }), "{e}");
    assert!(e.to_string().contains("nowhere.gguf") && e.to_string().contains("myriad llm pull"));

    let text = dir.path().join("notes.gguf");
    std::fs::write(&text, "these are not weights\n").unwrap();
    let e = load(&text);
    assert!(matches!(e, LocalError::NotGguf { .. }), "{e}");
    assert!(e.to_string().contains("notes.gguf"));

    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, "").unwrap();
    assert!(matches!(load(&empty), LocalError::NotGguf { .. }));

    // The real file cut short: the header promises tensors that are not there.
    let real = std::fs::read(model_path()).unwrap();
    for cut in [64usize, 4096, 1 << 20, real.len() / 2] {
        let torn = dir.path().join(format!("torn-{cut}.gguf"));
        std::fs::write(&torn, &real[..cut]).unwrap();
        let e = load(&torn);
        assert!(matches!(e, LocalError::Corrupt { .. }), "cut at {cut}: {e}");
        assert!(e.to_string().contains(&format!("torn-{cut}.gguf")), "{e}");
    }

    // Garbage after a valid magic number.
    let junk = dir.path().join("junk.gguf");
    let mut bytes = b"GGUF".to_vec();
    bytes.extend((0..10_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    std::fs::write(&junk, bytes).unwrap();
    assert!(matches!(load(&junk), LocalError::Corrupt { .. }));

    // Too large for the memory allowed: refused before loading.
    let mut s = settings();
    s.memory_limit = Some(50 << 20);
    let e = LocalModel::load(s).map(|_| ()).unwrap_err();
    assert!(matches!(e, LocalError::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("SmolLM2-135M-Instruct.Q4_1.gguf"), "{e}");
}

#[test]
fn a_prompt_longer_than_the_context_is_refused_with_its_start() {
    let mut s = settings();
    s.context = 128;
    let m = LocalModel::load(s).unwrap();
    let long = format!(
        "Please consider this. {}",
        "The week was long and the news were many. ".repeat(30)
    );
    let e = m
        .generate::<LocalError>(&[(ISOLATE, 0), (&long, 0)], &generation(0.0), |_, _| Ok(()))
        .unwrap_err();
    assert!(matches!(e, LocalError::PromptTooLong { .. }), "{e}");
    assert!(e.to_string().contains("Please consider this."), "{e}");
}

#[test]
fn answers_are_seeded_and_do_not_depend_on_the_thread_count() {
    let m = model();
    let g = generation(0.8);
    let asked: Vec<(&str, u32)> = (0..6).map(|s| (ISOLATE, s)).collect();
    let a = m.generate::<LocalError>(&asked, &g, |_, _| Ok(())).unwrap();
    let b = m.generate::<LocalError>(&asked, &g, |_, _| Ok(())).unwrap();
    assert_eq!(a, b, "same seeds, same answers");
    // Six samples at temperature 0.8 are not all the same text.
    let distinct: std::collections::BTreeSet<&str> = a.iter().map(|x| x.text.as_str()).collect();
    assert!(distinct.len() > 1, "{distinct:?}");
    // One thread computes what two do (each row of a product is summed by
    // one thread, whatever their number).
    let mut s = settings();
    s.threads = 1;
    let one = LocalModel::load(s).unwrap();
    assert_eq!(one.generate::<LocalError>(&asked, &g, |_, _| Ok(())).unwrap(), a);
    // Token counts are the model's: the chat-wrapped prompt and at most 8 out.
    assert!(a.iter().all(|x| x.tokens_in > 60 && (1..=8).contains(&x.tokens_out)));
}

#[test]
fn option_probabilities_agree_with_the_first_words_the_model_samples() {
    // At temperature 1 the first answer token is drawn from the model's
    // next-token distribution, the one `score` reads: among N samples the
    // number R starting with a spelling of yes or no is Binomial(N, mass),
    // and given R, the number of yeses is Binomial(R, p_yes). Both are
    // checked within 4 standard deviations (a false alarm about once in
    // 16,000 runs; the seeds are fixed, so the result does not vary).
    let mut s = settings();
    s.batch = 100;
    let m = LocalModel::load(s).unwrap();
    let options = vec!["yes".to_string(), "no".to_string()];
    let prompts = [
        ISOLATE,
        "You are in the age group 20t29 and have a job. Last week there were 12 new COVID-19 infections in your borough. Will you go to your workplace this week? Answer yes or no.",
    ];
    let scores = m.score(&prompts, &options, true, None).unwrap();
    let g = Generation {
        temperature: 1.0,
        max_tokens: 1,
        chat: true,
        system: None,
    };
    let n = 400u32;
    for (p, sc) in prompts.iter().zip(&scores) {
        let sum: f64 = sc.probabilities.iter().sum();
        assert!((sum - 1.0).abs() < 1e-9, "{sc:?}");
        assert!(sc.mass > 0.05 && sc.mass <= 1.0 + 1e-9, "{p}: {sc:?}");
        let asked: Vec<(&str, u32)> = (0..n).map(|k| (*p, k)).collect();
        let out = m.generate::<LocalError>(&asked, &g, |_, _| Ok(())).unwrap();
        let word = |t: &str| {
            let t = t.trim().to_lowercase();
            if !t.is_empty() && "yes".starts_with(&t) {
                Some(true)
            } else if !t.is_empty() && "no".starts_with(&t) {
                Some(false)
            } else {
                None
            }
        };
        let said: Vec<bool> = out.iter().filter_map(|o| word(&o.text)).collect();
        let r = said.len() as f64;
        let yes = said.iter().filter(|&&y| y).count() as f64;
        let sd_mass = (sc.mass * (1.0 - sc.mass) / n as f64).sqrt();
        assert!(
            (r / n as f64 - sc.mass).abs() <= 4.0 * sd_mass + 1e-9,
            "{p}: {r} of {n} samples start with yes/no, the scored mass is {:.3}",
            sc.mass
        );
        let q = sc.probabilities[0];
        let sd = (q * (1.0 - q) / r).sqrt();
        assert!(
            (yes / r - q).abs() <= 4.0 * sd + 1e-9,
            "{p}: {yes} yes of {r}, scored p(yes) = {q:.3}"
        );
    }
    // Options with the same first token cannot be told apart.
    let e = m
        .score(&[ISOLATE], &["yes".into(), "Yes, surely".into()], true, None)
        .unwrap_err();
    assert!(matches!(e, LocalError::Options(_)), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_run_replays_without_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("answers.jsonl");
    let mut cfg = LlmConfig::local(settings());
    cfg.max_tokens = 6;
    cfg.cache = Some(cache.clone());
    cfg.mode = Mode::Record;
    let requests: Vec<(String, u32)> = (0..4).map(|s| (ISOLATE.to_string(), s)).collect();
    let prompts = vec![ISOLATE.to_string(), "Is water wet? Answer yes or no.".to_string()];
    let options = vec!["yes".to_string(), "no".to_string()];
    let (answers, scores) = {
        let client = LlmClient::new(cfg.clone()).unwrap();
        let a: Vec<String> = client
            .answer_all(&requests)
            .await
            .into_iter()
            .map(|r| r.unwrap().text)
            .collect();
        let s: Vec<Vec<f64>> = client
            .score_all(&prompts, &options)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        let st = client.stats();
        assert_eq!(st.calls, 6, "4 answers and 2 scores");
        assert!(st.tokens_in > 4 * 60 && st.tokens_out >= 4, "{st:?}");
        (a, s)
    };
    // Replay from a folder where no model file exists: same answers, same
    // probabilities, no model loaded.
    let mut replay = cfg.clone();
    let mut s = settings();
    s.path = dir.path().join("absent").join("SmolLM2-135M-Instruct.Q4_1.gguf");
    replay.local = Some(s);
    replay.mode = Mode::Replay;
    let client = LlmClient::new(replay.clone()).unwrap();
    let again: Vec<String> = client
        .answer_all(&requests)
        .await
        .into_iter()
        .map(|r| r.unwrap().text)
        .collect();
    assert_eq!(again, answers);
    let rescored: Vec<Vec<f64>> = client
        .score_all(&prompts, &options)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rescored, scores);
    assert_eq!(client.stats().calls, 0);
    // A prompt that was never recorded is a replay miss, not a model load.
    let miss = client.answer_all(&[("Something new?".to_string(), 0)]).await;
    assert!(matches!(
        &*miss[0].as_ref().unwrap_err().clone(),
        LlmError::ReplayMiss { .. }
    ));
    // Outside replay, the missing file is refused when the client is made.
    replay.mode = Mode::Live;
    replay.cache = None;
    let e = LlmClient::new(replay).map(|_| ()).unwrap_err();
    assert!(e.to_string().contains("absent"), "{e}");
}

#[test]
fn the_model_still_says_what_the_parser_cases_recorded() {
    // tests/data/smollm2-answers.jsonl was recorded by
    // examples/record_answers.rs with these settings (batches of 32, all
    // samples of a scenario's prompts asked together): the same requests
    // give the same texts, so the parser cases are what the model says.
    let mut s = settings();
    s.batch = 32;
    let m = LocalModel::load(s).unwrap();
    let rows: Vec<serde_json::Value> = include_str!("data/smollm2-answers.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut sources: Vec<&str> = rows.iter().map(|r| r["source"].as_str().unwrap()).collect();
    sources.dedup();
    for source in sources {
        let set: Vec<&serde_json::Value> = rows.iter().filter(|r| r["source"] == source).collect();
        let asked: Vec<(&str, u32)> = set
            .iter()
            .map(|r| (r["prompt"].as_str().unwrap(), r["sample"].as_u64().unwrap() as u32))
            .collect();
        let g = Generation {
            temperature: set[0]["temperature"].as_f64().unwrap(),
            max_tokens: set[0]["max_tokens"].as_u64().unwrap() as u32,
            chat: true,
            system: None,
        };
        let out = m.generate::<LocalError>(&asked, &g, |_, _| Ok(())).unwrap();
        for (r, o) in set.iter().zip(&out) {
            assert_eq!(
                o.text,
                r["answer"].as_str().unwrap(),
                "{source}, sample {}",
                r["sample"]
            );
        }
    }
}
