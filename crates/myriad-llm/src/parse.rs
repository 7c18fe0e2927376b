//! Reading an LLM's free-text answer as the value a decision needs: yes/no,
//! a number, a choice from a list, or a JSON object with required fields.
//!
//! Models wrap answers in prose, markdown, quotes and trailing punctuation;
//! a parser that only accepts the bare word fails on a large share of real
//! answers. These parsers look for the answer where models put it (a JSON
//! block, the first word, a final "Answer: ..." line) and refuse anything
//! ambiguous (both "yes" and "no" as standalone words), so that an unclear
//! answer is re-asked instead of guessed.

use serde::{Deserialize, Serialize};

/// What kind of answer a prompt asks for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum AnswerKind {
    /// Yes or no.
    YesNo,
    /// A number in `[min, max]`.
    Number {
        /// Smallest accepted value.
        min: f64,
        /// Largest accepted value.
        max: f64,
    },
    /// One of a list of options (case-insensitive).
    Choice {
        /// The options.
        options: Vec<String>,
    },
    /// A JSON object with these fields, each of a JSON type
    /// (`"bool"`, `"number"`, `"string"`).
    Json {
        /// `(field, type)` pairs.
        fields: Vec<(String, String)>,
    },
    /// Free text (something an agent says or writes down), trimmed; only
    /// an empty answer is refused.
    Text,
}

/// A parsed answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// Yes (true) or no (false).
    YesNo(bool),
    /// A number.
    Number(f64),
    /// Index into the options.
    Choice(usize),
    /// The JSON object.
    Json(serde_json::Value),
    /// Free text.
    Text(String),
}

impl Answer {
    /// The answer as a number for averaging: yes 1, no 0, the number, the
    /// choice index; JSON and text have none.
    pub fn value(&self) -> Option<f64> {
        match self {
            Answer::YesNo(b) => Some(f64::from(u8::from(*b))),
            Answer::Number(x) => Some(*x),
            Answer::Choice(i) => Some(*i as f64),
            Answer::Json(_) | Answer::Text(_) => None,
        }
    }
}

/// Why an answer could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("cannot read the answer as {expected}: {reason}")]
pub struct ParseError {
    /// What was expected.
    pub expected: String,
    /// What was wrong.
    pub reason: String,
}

fn fail(expected: &str, reason: impl Into<String>) -> ParseError {
    ParseError {
        expected: expected.into(),
        reason: reason.into(),
    }
}

/// Words of a text, lowercased, split on anything that is not a letter,
/// digit, '.', '-' or '+'.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '.' || c == '-' || c == '+'))
        .map(|w| w.trim_matches('.').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// The part of an answer most likely to hold the answer: the text after a
/// last "answer:" or "final answer:" label, else the whole text.
fn answer_part(text: &str) -> &str {
    let lower = text.to_lowercase();
    match lower.rfind("answer:") {
        Some(i) => &text[i + "answer:".len()..],
        None => text,
    }
}

/// The first JSON object in a text (inside a ```json fence or bare).
fn json_object(text: &str) -> Option<serde_json::Value> {
    let mut start = 0;
    while let Some(open) = text[start..].find('{') {
        let from = start + open;
        let mut de = serde_json::Deserializer::from_str(&text[from..]).into_iter::<serde_json::Value>();
        if let Some(Ok(v)) = de.next() {
            if v.is_object() {
                return Some(v);
            }
        }
        start = from + 1;
    }
    None
}

/// Parse `text` as `kind`.
pub fn parse(text: &str, kind: &AnswerKind) -> Result<Answer, ParseError> {
    match kind {
        AnswerKind::YesNo => parse_yes_no(text),
        AnswerKind::Number { min, max } => parse_number(text, *min, *max),
        AnswerKind::Choice { options } => parse_choice(text, options),
        AnswerKind::Json { fields } => parse_json(text, fields),
        AnswerKind::Text => match text.trim() {
            "" => Err(fail("text", "the answer is empty")),
            t => Ok(Answer::Text(t.to_string())),
        },
    }
}

fn parse_yes_no(text: &str) -> Result<Answer, ParseError> {
    const EXPECTED: &str = "yes or no";
    // A JSON answer like {"answer": "yes"} or {"decision": true}.
    if let Some(serde_json::Value::Object(map)) = json_object(text) {
        for v in map.values() {
            match v {
                serde_json::Value::Bool(b) => return Ok(Answer::YesNo(*b)),
                serde_json::Value::String(s) => {
                    if let Ok(a) = parse_yes_no_words(s) {
                        return Ok(a);
                    }
                }
                _ => {}
            }
        }
    }
    parse_yes_no_words(answer_part(text)).map_err(|r| fail(EXPECTED, r))
}

fn parse_yes_no_words(text: &str) -> Result<Answer, String> {
    let w = words(text);
    if w.is_empty() {
        return Err("the answer is empty".into());
    }
    let yes = |x: &str| matches!(x, "yes" | "y" | "true" | "agree" | "affirmative");
    let no = |x: &str| matches!(x, "no" | "n" | "false" | "disagree" | "negative");
    // The first word decides when it is a clear yes or no ("Yes, because ...").
    if yes(&w[0]) {
        return Ok(Answer::YesNo(true));
    }
    if no(&w[0]) {
        return Ok(Answer::YesNo(false));
    }
    let (has_yes, has_no) = (w.iter().any(|x| yes(x)), w.iter().any(|x| no(x)));
    match (has_yes, has_no) {
        (true, false) => Ok(Answer::YesNo(true)),
        (false, true) => Ok(Answer::YesNo(false)),
        (true, true) => Err("it says both yes and no".into()),
        (false, false) => Err(format!("no yes or no in '{}'", shorten(text))),
    }
}

fn parse_number(text: &str, min: f64, max: f64) -> Result<Answer, ParseError> {
    let expected = format!("a number in [{min}, {max}]");
    let part = answer_part(text);
    let labelled = part.len() < text.len();
    let all = words(part);
    // Numbers that name something ("agent 4", "month 2") are not answers.
    let numbers: Vec<f64> = all
        .iter()
        .enumerate()
        .filter(|(k, _)| *k == 0 || !NAMING.contains(&all[k - 1].as_str()))
        .filter_map(|(_, w)| w.trim_end_matches('%').parse::<f64>().ok())
        .filter(|x| x.is_finite())
        .collect();
    // An answer whose first line is a number alone ("4.", "12\n\nI chose it
    // because ...") gives it first; with a label, the first number after
    // it; otherwise the last number (reasoning comes first, the answer last).
    let first_line = text
        .trim_start()
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .trim_end_matches(['.', '!']);
    let alone = first_line
        .trim_end_matches('%')
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite());
    let pick = match alone {
        Some(x) if !labelled => Some(x),
        _ if labelled => numbers.first().copied(),
        _ => numbers.last().copied(),
    };
    match pick {
        Some(x) if x >= min && x <= max => Ok(Answer::Number(x)),
        Some(x) => Err(fail(&expected, format!("{x} is out of range"))),
        None => Err(fail(&expected, format!("no number in '{}'", shorten(text)))),
    }
}

/// Words after which a number names something rather than answers.
const NAMING: &[&str] = &[
    "agent",
    "player",
    "generation",
    "round",
    "month",
    "week",
    "day",
    "year",
    "step",
];

fn parse_choice(text: &str, options: &[String]) -> Result<Answer, ParseError> {
    let expected = format!("one of {}", options.join(", "));
    let part = answer_part(text).to_lowercase();
    let hits: Vec<usize> = options
        .iter()
        .enumerate()
        .filter(|(_, o)| {
            let o = o.to_lowercase();
            // Whole-word match, so "no" does not match "know".
            part.match_indices(&o).any(|(i, _)| {
                let before = part[..i].chars().next_back();
                let after = part[i + o.len()..].chars().next();
                before.is_none_or(|c| !c.is_alphanumeric()) && after.is_none_or(|c| !c.is_alphanumeric())
            })
        })
        .map(|(i, _)| i)
        .collect();
    match hits.as_slice() {
        [one] => Ok(Answer::Choice(*one)),
        [] => Err(fail(&expected, format!("none of the options in '{}'", shorten(text)))),
        _ => Err(fail(&expected, "it names several options")),
    }
}

fn parse_json(text: &str, fields: &[(String, String)]) -> Result<Answer, ParseError> {
    const EXPECTED: &str = "a JSON object";
    let v = json_object(text).ok_or_else(|| fail(EXPECTED, format!("no JSON object in '{}'", shorten(text))))?;
    for (name, ty) in fields {
        let field = v
            .get(name)
            .ok_or_else(|| fail(EXPECTED, format!("field '{name}' is missing")))?;
        let ok = match ty.as_str() {
            "bool" => field.is_boolean(),
            "number" => field.is_number(),
            "string" => field.is_string(),
            _ => true,
        };
        if !ok {
            return Err(fail(EXPECTED, format!("field '{name}' is not a {ty}")));
        }
    }
    Ok(Answer::Json(v))
}

fn shorten(text: &str) -> String {
    let t: String = text.trim().chars().take(60).collect();
    if text.trim().chars().count() > 60 {
        format!("{t}...")
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yn(t: &str) -> Result<Answer, ParseError> {
        parse(t, &AnswerKind::YesNo)
    }

    #[test]
    fn yes_no_reads_the_forms_models_use() {
        for t in [
            "Yes",
            "yes.",
            "  YES!",
            "Yes, I would stay home.",
            "\"yes\"",
            "**Yes**",
            "I think so. Answer: yes",
            "{\"answer\": \"yes\"}",
            "```json\n{\"isolate\": true}\n```",
        ] {
            assert_eq!(yn(t), Ok(Answer::YesNo(true)), "{t}");
        }
        for t in [
            "No",
            "no, I will go to work",
            "Final answer: No.",
            "{\"answer\": false}",
        ] {
            assert_eq!(yn(t), Ok(Answer::YesNo(false)), "{t}");
        }
    }

    #[test]
    fn yes_no_refuses_unclear_answers() {
        for t in [
            "",
            "maybe",
            "It depends: yes if cases rise, no otherwise",
            "I cannot answer",
        ] {
            assert!(yn(t).is_err(), "{t}");
        }
    }

    #[test]
    fn numbers_take_the_labelled_or_last_value_in_range() {
        let k = AnswerKind::Number { min: 0.0, max: 100.0 };
        assert_eq!(parse("33", &k), Ok(Answer::Number(33.0)));
        assert_eq!(
            parse("Half of 50 is 25, and 2/3 of that is about 16.7", &k),
            Ok(Answer::Number(16.7))
        );
        assert_eq!(parse("Answer: 22. Because 3 x 7 = 21", &k), Ok(Answer::Number(22.0)));
        assert_eq!(parse("I pick 45%.", &k), Ok(Answer::Number(45.0)));
        assert!(parse("150", &k).is_err());
        assert!(parse("none", &k).is_err());
        // Seen from SmolLM2-135M: a number alone on the first line, then
        // talk; and numbers that name an agent or a month.
        assert_eq!(
            parse("1\n\nIn the first generation, you use 1 from the 3", &k),
            Ok(Answer::Number(1.0))
        );
        assert!(parse("I'm sorry for the confusion, I'm Agent 4, one of", &k).is_err());
        assert_eq!(parse("In month 3 I take 12 tons", &k), Ok(Answer::Number(12.0)));
    }

    #[test]
    fn choices_match_whole_words_once() {
        let k = AnswerKind::Choice {
            options: vec!["stay".into(), "go".into()],
        };
        assert_eq!(parse("I will GO to work.", &k), Ok(Answer::Choice(1)));
        assert_eq!(parse("stay", &k), Ok(Answer::Choice(0)));
        assert!(parse("going out", &k).is_err());
        assert!(parse("stay or go", &k).is_err());
    }

    #[test]
    fn json_checks_required_fields_and_types() {
        let k = AnswerKind::Json {
            fields: vec![("give".into(), "number".into()), ("why".into(), "string".into())],
        };
        let ok = parse("Sure! {\"give\": 4, \"why\": \"fair\"} hope that helps", &k).unwrap();
        assert_eq!(ok, Answer::Json(serde_json::json!({"give": 4, "why": "fair"})));
        assert!(parse("{\"give\": \"4\", \"why\": \"x\"}", &k).is_err());
        assert!(parse("{\"why\": \"x\"}", &k).is_err());
        assert!(parse("{broken", &k).is_err());
    }
}
