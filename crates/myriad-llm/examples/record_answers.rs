//! Record what the embedded model answers to the shipped scenarios' prompts
//! (taken from the golden caches), with the parser's reading of each: the
//! source of `tests/data/smollm2-answers.jsonl`, whose readings are then
//! checked by hand and pinned by `tests/real_answers.rs`.
//!
//! cargo run --release -p myriad-llm --features local --example record_answers -- MODEL.gguf OUT.jsonl

use myriad_llm::local::{Generation, LocalModel, LocalSettings};
use myriad_llm::{parse, AnswerKind};
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model = LocalModel::load(LocalSettings::new(&args[1])).expect("model");
    let mut out = std::fs::File::create(&args[2]).expect("output");
    let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/../myriad/tests/golden/llm-cache");
    // (cache, how many distinct prompts, answer kind, max_tokens, temperature)
    let sets: [(&str, usize, AnswerKind, u32, f64); 4] = [
        ("covid-llm", 5, AnswerKind::YesNo, 8, 0.7),
        ("commons-llm", 1, AnswerKind::Number { min: 0.0, max: 100.0 }, 16, 0.7),
        ("donor-llm", 3, AnswerKind::Number { min: 0.0, max: 10.0 }, 16, 0.7),
        ("guess-llm", 1, AnswerKind::Number { min: 0.0, max: 100.0 }, 16, 1.0),
    ];
    for (cache, count, kind, max_tokens, temperature) in sets {
        let text = std::fs::read_to_string(format!("{golden}/{cache}.jsonl")).expect("cache");
        let mut prompts: Vec<String> = Vec::new();
        for line in text.lines() {
            let e: serde_json::Value = serde_json::from_str(line).unwrap();
            let p = e["prompt"].as_str().unwrap().to_string();
            // Numeric questions only (the donor game's strategies are free text).
            if p.contains("write your strategy") || prompts.contains(&p) {
                continue;
            }
            prompts.push(p);
            if prompts.len() == count {
                break;
            }
        }
        let g = Generation {
            temperature,
            max_tokens,
            chat: true,
            system: None,
        };
        let asked: Vec<(&str, u32)> = prompts
            .iter()
            .flat_map(|p| (0..6).map(move |s| (p.as_str(), s)))
            .collect();
        let answers = model
            .generate::<myriad_llm::local::LocalError>(&asked, &g, |_, _| Ok(()))
            .unwrap();
        for ((p, s), a) in asked.iter().zip(answers) {
            let read = parse(&a.text, &kind).ok().and_then(|x| x.value());
            let line = serde_json::json!({
                "source": cache, "kind": kind, "temperature": temperature, "max_tokens": max_tokens,
                "prompt": p, "sample": s, "answer": a.text, "read": read,
            });
            writeln!(out, "{line}").unwrap();
        }
    }
}
