//! Per-agent questions: every agent asks the LLM itself, with its own
//! attributes and a bounded memory of its recent turns. Meant for small
//! populations (a commons of five, a donor game of twelve) or for runs where
//! the cost of one call per agent is wanted; large populations use
//! [`crate::archetype`].
//!
//! The memory holds at most `turns` entries per agent, so it costs
//! `agents x turns` short strings however long the run: an unbounded
//! conversation history is the failure mode of the platforms this replaces.

use crate::archetype::{ArchetypeError, Question};
use crate::client::LlmClient;
use crate::parse::{parse, Answer};
use crate::template::Template;
use std::collections::{BTreeMap, VecDeque};

/// Name of the placeholder that receives an agent's memory.
pub const MEMORY: &str = "memory";
/// Name of the placeholder that receives the answer in a memory entry.
pub const ANSWER: &str = "answer";
/// What `{memory}` holds before the first turn.
const EMPTY_MEMORY: &str = "(nothing yet)";

/// The last `turns` entries of every agent.
#[derive(Clone, Debug)]
pub struct Memory {
    turns: usize,
    entries: Vec<VecDeque<String>>,
}

impl Memory {
    /// Empty memories for `agents` agents, each holding at most `turns` entries.
    pub fn new(agents: usize, turns: usize) -> Memory {
        Memory {
            turns,
            entries: vec![VecDeque::new(); if turns == 0 { 0 } else { agents }],
        }
    }

    /// Most entries kept per agent.
    pub fn turns(&self) -> usize {
        self.turns
    }

    /// An agent's entries, oldest first.
    pub fn entries(&self, agent: usize) -> impl Iterator<Item = &str> {
        self.entries.get(agent).into_iter().flatten().map(String::as_str)
    }

    /// An agent's memory as prompt text: one entry per line.
    pub fn text(&self, agent: usize) -> String {
        let lines: Vec<&str> = self.entries(agent).collect();
        if lines.is_empty() {
            EMPTY_MEMORY.to_string()
        } else {
            lines.join("\n")
        }
    }

    /// Forget everything about an agent.
    pub fn clear(&mut self, agent: usize) {
        if let Some(m) = self.entries.get_mut(agent) {
            m.clear();
        }
    }

    /// Add an entry, forgetting the oldest one when the memory is full.
    pub fn remember(&mut self, agent: usize, entry: String) {
        if self.turns == 0 {
            return;
        }
        let m = &mut self.entries[agent];
        if m.len() == self.turns {
            m.pop_front();
        }
        m.push_back(entry);
    }
}

/// What one round of per-agent asking produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentRound {
    /// Per agent: the mean of its readable answers (the share of "yes"), or
    /// NaN where the caller's fallback applies.
    pub values: Vec<f64>,
    /// Answers requested (before deduplication and cache).
    pub requests: u64,
    /// Answers that could not be read.
    pub unparsed: u64,
    /// Agents that got no readable answer.
    pub fallbacks: u64,
    /// Per agent: its first readable answer as text (what its memory
    /// records; for free-text questions, the answer itself).
    pub texts: Vec<Option<String>>,
}

/// Agents that each ask their own question and remember their answers.
#[derive(Clone, Debug)]
pub struct PerAgent {
    count: usize,
    memory: Memory,
    remember: Option<Template>,
}

impl PerAgent {
    /// `agents` agents with `turns` turns of memory; `remember` is the
    /// template of a memory entry (`{answer}` plus any placeholder of the
    /// prompt); without it an entry is "You answered: {answer}".
    pub fn new(agents: usize, turns: usize, remember: Option<Template>) -> PerAgent {
        PerAgent {
            count: agents,
            memory: Memory::new(agents, turns),
            remember,
        }
    }

    /// The memories.
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// Forget an agent's memory (a new agent in its place).
    pub fn forget(&mut self, agent: usize) {
        self.memory.clear(agent);
    }

    /// Ask each agent in `who` its question `q.samples` times; the result
    /// has one value per agent of `who`, in that order. `common` holds the
    /// values shared by every agent; `values(i)` gives agent i's own
    /// (attributes, its observations), which `common` overrides;
    /// `{memory}` is filled here. Each agent's samples use sample indices of
    /// its own, so agents with the same prompt still give independent
    /// answers (and are cached separately).
    pub async fn ask(
        &mut self,
        client: &LlmClient,
        q: &Question,
        who: &[usize],
        common: &BTreeMap<String, String>,
        values: impl Fn(usize) -> BTreeMap<String, String>,
    ) -> Result<AgentRound, ArchetypeError> {
        let (pending, filled) = self.prompts(q, who, common, values)?;
        let mut round = AgentRound::default();
        if q.logprob {
            // One score per agent: its prompt's sample 0.
            let prompts: Vec<String> = pending.into_iter().filter(|p| p.1 == 0).map(|p| p.2).collect();
            round.requests = prompts.len() as u64;
            round.values = crate::archetype::yes_probabilities(client, q, &prompts).await?;
            let texts: Vec<Option<String>> = round.values.iter().map(|&v| Some(shown(&q.kind, v))).collect();
            self.remember_answers(who, filled, &texts)?;
            round.texts = texts;
            return Ok(round);
        }
        let mut tally = Tally::new(who.len());
        let (k, total) = (q.samples.max(1), self.count as u64);
        // Sample index of agent i, sample s, attempt a: (a * agents + i) * k + s
        // (wrapping past 2^32, where indices would repeat).
        let index = |attempt: u32, i: usize, s: u32| -> u32 {
            ((u64::from(attempt) * total + i as u64) * u64::from(k) + u64::from(s)) as u32
        };
        let mut pending = pending;
        for attempt in 0..=q.reasks {
            if pending.is_empty() {
                break;
            }
            let slots: Vec<(usize, u32)> = pending.iter().map(|&(j, s, _)| (j, s)).collect();
            let requests: Vec<(String, u32)> = pending
                .into_iter()
                .map(|(j, s, prompt)| (prompt, index(attempt, who[j], s)))
                .collect();
            round.requests += requests.len() as u64;
            let answers = client.answer_all(&requests).await;
            let mut again = Vec::new();
            for ((&(j, s), answer), (prompt, _)) in slots.iter().zip(answers).zip(requests) {
                if !tally.read(j, &answer?.text, &q.kind) {
                    round.unparsed += 1;
                    again.push((j, s, prompt));
                }
            }
            pending = again;
        }
        round.values = (0..who.len())
            .map(|j| {
                tally.mean(j).unwrap_or_else(|| {
                    round.fallbacks += 1;
                    q.fallback.unwrap_or(f64::NAN)
                })
            })
            .collect();
        self.remember_answers(who, filled, &tally.last_text)?;
        round.texts = tally.last_text;
        Ok(round)
    }

    /// Each asker's prompt, `q.samples` times, as (position in `who`,
    /// sample, prompt); and, when agents remember, the values each prompt
    /// was filled with (to write the memory entries).
    #[allow(clippy::type_complexity)]
    fn prompts(
        &self,
        q: &Question,
        who: &[usize],
        common: &BTreeMap<String, String>,
        values: impl Fn(usize) -> BTreeMap<String, String>,
    ) -> Result<(Vec<(usize, u32, String)>, Vec<BTreeMap<String, String>>), ArchetypeError> {
        let k = q.samples.max(1);
        let remembering = self.memory.turns() > 0;
        let needs_memory = q.template.placeholders().contains(&MEMORY);
        let mut filled = Vec::new();
        let mut pending = Vec::with_capacity(who.len() * k as usize);
        for (j, &i) in who.iter().enumerate() {
            let v = values(i);
            let memory = if needs_memory || remembering {
                BTreeMap::from([(MEMORY.to_string(), self.memory.text(i))])
            } else {
                BTreeMap::new()
            };
            let prompt = q.template.fill_layered(&[&memory, common, &v])?;
            for s in 1..k {
                pending.push((j, s, prompt.clone()));
            }
            pending.push((j, 0, prompt));
            if remembering {
                let mut all = v;
                all.extend(common.clone());
                all.extend(memory);
                filled.push(all);
            }
        }
        Ok((pending, filled))
    }

    /// Write each asker's memory entry from its last readable answer.
    fn remember_answers(
        &mut self,
        who: &[usize],
        filled: Vec<BTreeMap<String, String>>,
        last_text: &[Option<String>],
    ) -> Result<(), ArchetypeError> {
        for (j, mut v) in filled.into_iter().enumerate() {
            let answer = last_text[j].clone().unwrap_or_else(|| "(no readable answer)".into());
            v.insert(ANSWER.to_string(), answer.clone());
            let entry = match &self.remember {
                Some(t) => t.fill(&v)?,
                None => format!("You answered: {answer}"),
            };
            self.memory.remember(who[j], entry);
        }
        Ok(())
    }
}

/// Readable answers per asker: their sum and count, and the first as text.
struct Tally {
    sums: Vec<f64>,
    counts: Vec<u32>,
    last_text: Vec<Option<String>>,
}

impl Tally {
    fn new(n: usize) -> Tally {
        Tally {
            sums: vec![0.0; n],
            counts: vec![0; n],
            last_text: vec![None; n],
        }
    }

    /// Read asker `j`'s answer; false when it cannot be read.
    fn read(&mut self, j: usize, text: &str, kind: &crate::parse::AnswerKind) -> bool {
        let read = match parse(text, kind) {
            Ok(Answer::Text(t)) => Some((0.0, t)),
            Ok(a) => a.value().map(|v| (v, shown(kind, v))),
            Err(_) => None,
        };
        let Some((v, text)) = read else { return false };
        self.sums[j] += v;
        self.counts[j] += 1;
        if self.last_text[j].is_none() {
            self.last_text[j] = Some(text);
        }
        true
    }

    /// The mean of `j`'s readable answers, if any.
    fn mean(&self, j: usize) -> Option<f64> {
        (self.counts[j] > 0).then(|| self.sums[j] / self.counts[j] as f64)
    }
}

/// An answer as the agent is reminded of it.
fn shown(kind: &crate::parse::AnswerKind, v: f64) -> String {
    use crate::parse::AnswerKind;
    match kind {
        AnswerKind::YesNo => if v >= 0.5 { "yes" } else { "no" }.to_string(),
        AnswerKind::Choice { options } => options.get(v as usize).cloned().unwrap_or_default(),
        _ => format!("{v}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_keeps_only_the_last_turns() {
        let mut m = Memory::new(2, 3);
        assert_eq!(m.text(0), EMPTY_MEMORY);
        for t in 0..10 {
            m.remember(0, format!("turn {t}"));
        }
        m.remember(1, "only".into());
        assert_eq!(m.entries(0).collect::<Vec<_>>(), ["turn 7", "turn 8", "turn 9"]);
        assert_eq!(m.text(0), "turn 7\nturn 8\nturn 9");
        assert_eq!(m.text(1), "only");
        m.clear(0);
        assert_eq!(m.text(0), EMPTY_MEMORY);
        assert_eq!(m.text(1), "only");
    }

    #[test]
    fn zero_turns_remember_nothing_and_allocate_nothing() {
        let mut m = Memory::new(1_000_000, 0);
        m.remember(5, "x".into());
        assert_eq!(m.text(5), EMPTY_MEMORY);
        assert!(m.entries.is_empty());
    }
}
