//! Text answers against option probabilities on the same prompts: for the
//! COVID isolation question of each Staten Island age group, the share of
//! yes among 100 sampled answers that the parser reads (temperature 0.7,
//! 8 tokens, as the shipped scenario asks) beside p(yes) read from the
//! next-token distribution, with the time each takes.
//!
//! cargo run --release -p myriad-llm --features local --example compare_modes -- MODEL.gguf

use myriad_llm::local::{Generation, LocalError, LocalModel, LocalSettings};
use myriad_llm::{parse, AnswerKind};
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("MODEL.gguf");
    let mut s = LocalSettings::new(&path);
    s.batch = 100;
    let m = LocalModel::load(s).expect("model");
    let k = 100u32;
    println!("| age group | text: readable | text: share of yes | text: s for 100 answers | logprob: p(yes) | logprob: mass on yes/no | logprob: s for the score |");
    println!("|---|---|---|---|---|---|---|");
    let (mut text_s, mut score_s) = (0.0, 0.0);
    for age in ["U19", "20t29", "30t39", "40t49", "50t64", "65A"] {
        let prompt = format!(
            "You live in SI, New York City, and are in the age group {age}. Last week there were 310 new COVID-19 infections in your borough (change on the week before: +40%). Will you stay at home this week, avoiding school, work and going out? Answer yes or no."
        );
        let g = Generation {
            temperature: 0.7,
            max_tokens: 8,
            chat: true,
            system: None,
        };
        let asked: Vec<(&str, u32)> = (0..k).map(|i| (prompt.as_str(), i)).collect();
        let t = Instant::now();
        let out = m.generate::<LocalError>(&asked, &g, |_, _| Ok(())).unwrap();
        let dt_text = t.elapsed().as_secs_f64();
        let read: Vec<f64> = out
            .iter()
            .filter_map(|o| parse(&o.text, &AnswerKind::YesNo).ok().and_then(|a| a.value()))
            .collect();
        let t = Instant::now();
        let sc = m
            .score(&[prompt.as_str()], &["yes".into(), "no".into()], true, None)
            .unwrap();
        let dt_score = t.elapsed().as_secs_f64();
        text_s += dt_text;
        score_s += dt_score;
        println!(
            "| {age} | {}/{k} | {:.2} | {:.3} | {:.2} | {:.2} | {:.3} |",
            read.len(),
            read.iter().sum::<f64>() / read.len().max(1) as f64,
            dt_text,
            sc[0].probabilities[0],
            sc[0].mass,
            dt_score
        );
    }
    eprintln!("text: {text_s:.2} s for 600 answers; logprob: {score_s:.2} s for 6 scores");
}
