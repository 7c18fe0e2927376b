//! Persona generation (the "background generation" step of large LLM-agent
//! simulations): a short text per archetype, or per agent of a small
//! population, written by the model from the agent's attributes, so that
//! prompts can say `{persona}`.
//!
//! Diversity is controlled three ways: the temperature, a sample index per
//! persona (each agent's own seed, so agents with the same attributes still
//! differ), and re-asking a persona whose text another one already has (with
//! a new sample index, up to `attempts` times). Answers go through the
//! client's cache like every other answer, so a recorded set replays.

use crate::archetype::ArchetypeError;
use crate::client::LlmClient;
use crate::template::Template;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What to generate.
#[derive(Clone, Debug)]
pub struct PersonaRequest {
    /// The prompt, with placeholders for the attributes.
    pub template: Template,
    /// Rounds of re-asking personas that repeat another's text.
    pub attempts: u32,
}

/// Generated personas.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Personas {
    /// One text per persona, in the order asked.
    pub texts: Vec<String>,
    /// Answers requested (first asks and re-asks).
    pub requests: u64,
    /// Re-asks of duplicated texts.
    pub reasked: u64,
    /// Personas still duplicating another after the last attempt.
    pub duplicates: u64,
}

/// Ask for one persona per entry of `values` (its attributes); entry `k`
/// uses sample index `k` (re-asks: `k + n * attempt`).
pub async fn generate(
    client: &LlmClient,
    req: &PersonaRequest,
    values: &[BTreeMap<String, String>],
) -> Result<Personas, ArchetypeError> {
    let n = values.len();
    let prompts: Vec<String> = values.iter().map(|v| req.template.fill(v)).collect::<Result<_, _>>()?;
    let mut out = Personas {
        texts: vec![String::new(); n],
        ..Personas::default()
    };
    let mut pending: Vec<usize> = (0..n).collect();
    for attempt in 0..=req.attempts {
        if pending.is_empty() {
            break;
        }
        if attempt > 0 {
            out.reasked += pending.len() as u64;
        }
        let requests: Vec<(String, u32)> = pending
            .iter()
            .map(|&k| (prompts[k].clone(), (k as u64 + n as u64 * u64::from(attempt)) as u32))
            .collect();
        out.requests += requests.len() as u64;
        for (&k, answer) in pending.iter().zip(client.answer_all(&requests).await) {
            out.texts[k] = clean(&answer?.text);
        }
        pending = duplicated(&out.texts);
    }
    out.duplicates = pending.len() as u64;
    Ok(out)
}

/// A persona as kept: whitespace collapsed, quotes around it removed, and
/// an answer cut off by the token limit cut back to its last full sentence
/// (when it has one).
fn clean(text: &str) -> String {
    let t = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let t = t.trim_matches(|c| c == '"' || c == '\'').trim();
    let ends = |c: char| matches!(c, '.' | '!' | '?');
    if t.ends_with(ends) {
        return t.to_string();
    }
    match t.rfind(|c: char| ends(c)) {
        Some(k) => t[..=k].to_string(),
        None => t.to_string(),
    }
}

/// Indices of texts that repeat an earlier text (ignoring case) or are empty.
fn duplicated(texts: &[String]) -> Vec<usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut again = Vec::new();
    for (k, t) in texts.iter().enumerate() {
        let key = t.to_lowercase();
        if key.is_empty() || seen.insert(key, k).is_some() {
            again.push(k);
        }
    }
    again
}

/// How varied a set of texts is.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Diversity {
    /// Texts.
    pub count: usize,
    /// Distinct texts (ignoring case) over all.
    pub distinct_share: f64,
    /// Mean Jaccard similarity of the word sets of two different texts
    /// (0: no word in common, 1: the same words); over all pairs up to
    /// 2,000 texts, else over the first 2,000.
    pub mean_pairwise_jaccard: f64,
    /// Distinct words over all words (type-token ratio of the whole set).
    pub distinct_word_share: f64,
}

/// The diversity of `texts`.
pub fn diversity(texts: &[String]) -> Diversity {
    let words = |t: &str| -> BTreeSet<String> {
        t.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let distinct: BTreeSet<String> = texts.iter().map(|t| t.to_lowercase()).collect();
    let sets: Vec<BTreeSet<String>> = texts.iter().take(2000).map(|t| words(t)).collect();
    let (mut sum, mut pairs) = (0.0, 0u64);
    for i in 0..sets.len() {
        for j in i + 1..sets.len() {
            let inter = sets[i].intersection(&sets[j]).count();
            let union = sets[i].len() + sets[j].len() - inter;
            sum += if union == 0 { 1.0 } else { inter as f64 / union as f64 };
            pairs += 1;
        }
    }
    let all_words: Vec<String> = texts
        .iter()
        .flat_map(|t| {
            t.split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
        })
        .collect();
    let distinct_words: BTreeSet<&String> = all_words.iter().collect();
    Diversity {
        count: texts.len(),
        distinct_share: if texts.is_empty() {
            0.0
        } else {
            distinct.len() as f64 / texts.len() as f64
        },
        mean_pairwise_jaccard: if pairs == 0 { 0.0 } else { sum / pairs as f64 },
        distinct_word_share: if all_words.is_empty() {
            0.0
        } else {
            distinct_words.len() as f64 / all_words.len() as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diversity_of_known_sets() {
        let same = vec!["A b c".to_string(), "a B c".to_string()];
        let d = diversity(&same);
        assert_eq!((d.distinct_share, d.mean_pairwise_jaccard), (0.5, 1.0));
        let apart = vec!["a b".to_string(), "c d".to_string(), "e f".to_string()];
        let d = diversity(&apart);
        assert_eq!(
            (d.distinct_share, d.mean_pairwise_jaccard, d.distinct_word_share),
            (1.0, 0.0, 1.0)
        );
        // {a,b,c} and {b,c,d}: 2 shared of 4.
        let half = vec!["a b c".to_string(), "b c d".to_string()];
        assert_eq!(diversity(&half).mean_pairwise_jaccard, 0.5);
    }

    #[test]
    fn duplicates_after_their_first_occurrence_and_empty_texts_are_reasked() {
        let t: Vec<String> = ["x", "y", "X", "", "y"].iter().map(|s| s.to_string()).collect();
        assert_eq!(duplicated(&t), [2, 3, 4]);
        assert_eq!(clean("  \"You are  a\n nurse.\" "), "You are a nurse.");
        assert_eq!(clean("You are Ann. You work at night and"), "You are Ann.");
        assert_eq!(clean("You are Ann and"), "You are Ann and");
    }
}
