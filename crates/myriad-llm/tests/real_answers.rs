//! What a real small model says to the shipped prompts, and how the parser
//! reads it. `tests/data/smollm2-answers.jsonl` holds 60 answers of
//! SmolLM2-135M-Instruct (embedded backend, recorded by
//! `examples/record_answers.rs`) to prompts of the COVID, commons, donor and
//! guess scenarios, each with the reading a person gives it (`human`: the
//! number, 1/0 for yes/no, or null when the text does not answer).
//!
//! The parser must agree with the person everywhere except the answers
//! listed in `MISREAD`, which are pinned so that a change in either
//! direction is seen (a fixed misreading must leave the list).

use myriad_llm::{parse, AnswerKind};
use serde_json::Value;

/// Answers the parser reads differently from a person, with why.
const MISREAD: &[(usize, &str)] = &[
    (
        4,
        "'I will stay at home this week.' means yes, but has no yes/no word; re-asked",
    ),
    (33, "'You took away 0 tons.' reports the past; the parser takes the 0"),
    (34, "'... has 100 tons' describes the lake; the parser takes the 100"),
    (
        41,
        "'You are 6 in generation 1 ...' is no answer; the parser takes the 6",
    ),
    (
        43,
        "'The only numbers in this game are 1, 2, and 3' lists numbers; the parser takes the last",
    ),
];

fn rows() -> Vec<Value> {
    let text = include_str!("data/smollm2-answers.jsonl");
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn the_parser_reads_real_answers_as_a_person_does_except_the_pinned_misreadings() {
    let rows = rows();
    assert_eq!(rows.len(), 60);
    let mut misread = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let kind: AnswerKind = serde_json::from_value(r["kind"].clone()).unwrap();
        let read = parse(r["answer"].as_str().unwrap(), &kind).ok().and_then(|a| a.value());
        let human = r["human"].as_f64();
        if read != human {
            misread.push(i);
        }
    }
    let pinned: Vec<usize> = MISREAD.iter().map(|m| m.0).collect();
    assert_eq!(misread, pinned, "answers read differently from a person");
    // The readable share, as the runs see it: of 30 yes/no answers, how
    // many the parser reads (the rest are re-asked).
    let yes_no: Vec<&Value> = rows.iter().filter(|r| r["kind"]["type"] == "yes_no").collect();
    let readable = yes_no
        .iter()
        .filter(|r| parse(r["answer"].as_str().unwrap(), &AnswerKind::YesNo).is_ok())
        .count();
    assert_eq!((yes_no.len(), readable), (30, 20));
}
