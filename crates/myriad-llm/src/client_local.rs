//! The client's embedded backend: the same cache, deduplication and
//! counters as the HTTP path, with answers from a model in the process; and
//! option probabilities (`answer = "logprob"`) from one forward pass.

use super::{dedup, Completion, LlmClient, LlmError};
use crate::cache::{Entry, Mode};
use crate::local::{LocalError, LocalSettings};
use std::sync::atomic::Ordering;
use std::sync::Arc;
#[cfg(feature = "local")]
use std::sync::Mutex;
use std::time::Instant;

/// The embedded model of a client: checked when the client is made, loaded
/// when an answer is first needed.
pub(super) struct LocalSlot {
    #[cfg(feature = "local")]
    settings: LocalSettings,
    #[cfg(feature = "local")]
    model: Mutex<Option<Arc<crate::local::LocalModel>>>,
}

impl LocalSlot {
    /// Check the model file (not in replay, which needs no model).
    pub(super) fn check(settings: &LocalSettings, mode: Mode) -> Result<LocalSlot, LlmError> {
        #[cfg(not(feature = "local"))]
        let _ = settings;
        if mode != Mode::Replay {
            #[cfg(feature = "local")]
            crate::local::check_file(&settings.path)?;
            #[cfg(not(feature = "local"))]
            return Err(LocalError::NotBuilt.into());
        }
        Ok(LocalSlot {
            #[cfg(feature = "local")]
            settings: settings.clone(),
            #[cfg(feature = "local")]
            model: Mutex::new(None),
        })
    }

    /// The loaded model.
    #[cfg(feature = "local")]
    fn model(&self) -> Result<Arc<crate::local::LocalModel>, LocalError> {
        let mut slot = self.model.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = &*slot {
            return Ok(m.clone());
        }
        let m = Arc::new(crate::local::LocalModel::load(self.settings.clone())?);
        *slot = Some(m.clone());
        Ok(m)
    }
}

/// Probabilities of a question's options, as cached.
#[derive(serde::Serialize, serde::Deserialize)]
struct Scored {
    probabilities: Vec<f64>,
    mass: f64,
}

impl LlmClient {
    /// One answer from the embedded model (the cache was consulted).
    pub(super) fn local_one(&self, slot: &LocalSlot, prompt: &str, sample: u32) -> Result<Completion, LlmError> {
        let mut v = self.generate_local(slot, &[(prompt, sample)])?;
        Ok(v.pop().expect("one answer per prompt"))
    }

    /// [`LlmClient::answer_all`] on the embedded model: identical requests
    /// once, cached answers per the mode, the rest generated in batches
    /// (each batch cached as soon as it is done).
    pub(super) fn local_answer_all(
        &self,
        slot: &LocalSlot,
        requests: &[(String, u32)],
    ) -> Vec<Result<Completion, Arc<LlmError>>> {
        let t0 = Instant::now();
        let (unique, slots) = dedup(requests);
        let result = self.cached_answers(&unique).and_then(|(mut answers, to_ask)| {
            let asked: Vec<(&str, u32)> = to_ask.iter().map(|&k| unique[k]).collect();
            let generated = self.generate_local(slot, &asked)?;
            for (k, c) in to_ask.into_iter().zip(generated) {
                answers[k] = Some(c);
            }
            Ok(answers)
        });
        self.stats
            .wait_micros
            .fetch_add(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
        match result {
            Ok(answers) => slots
                .into_iter()
                .map(|k| Ok(answers[k].clone().expect("every unique request was answered")))
                .collect(),
            Err(e) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                let e = Arc::new(e);
                requests.iter().map(|_| Err(e.clone())).collect()
            }
        }
    }

    /// Generate answers for requests not in the cache, storing each batch.
    #[cfg_attr(not(feature = "local"), allow(unused_variables))]
    fn generate_local(&self, slot: &LocalSlot, asked: &[(&str, u32)]) -> Result<Vec<Completion>, LlmError> {
        if asked.is_empty() {
            return Ok(Vec::new());
        }
        #[cfg(not(feature = "local"))]
        return Err(LocalError::NotBuilt.into());
        #[cfg(feature = "local")]
        {
            let model = slot.model()?;
            let g = crate::local::Generation {
                temperature: self.cfg.temperature,
                max_tokens: self.cfg.max_tokens,
                chat: self.cfg.api == super::Api::Chat,
                system: self.cfg.system.as_deref(),
            };
            let to_completion = |x: &crate::local::Generated| {
                self.sanitised(Completion {
                    text: x.text.clone(),
                    tokens_in: x.tokens_in,
                    tokens_out: x.tokens_out,
                    cached: false,
                })
            };
            let mut batch_start = Instant::now();
            let generated = model.generate(asked, &g, |first, batch: &[crate::local::Generated]| {
                let done: Vec<Completion> = batch.iter().map(to_completion).collect();
                for (k, c) in done.iter().enumerate() {
                    self.stats.calls.fetch_add(1, Ordering::Relaxed);
                    self.stats.tokens_in.fetch_add(c.tokens_in, Ordering::Relaxed);
                    self.stats.tokens_out.fetch_add(c.tokens_out, Ordering::Relaxed);
                    // The batch's time: its prompts were decoded together.
                    self.log_call("local", batch_start, asked[first + k].0, done.len(), Ok(c), 0);
                }
                batch_start = Instant::now();
                let answered: Vec<(&str, u32, &Completion)> = asked[first..first + done.len()]
                    .iter()
                    .zip(&done)
                    .map(|(&(p, s), c)| (p, s, c))
                    .collect();
                self.store(&answered)
            })?;
            Ok(generated.iter().map(to_completion).collect())
        }
    }

    /// The probability of each of `options` as the answer to each prompt,
    /// read from the model's next-token distribution (no text generated,
    /// no sampling): the embedded backend only. Cached like answers (one
    /// entry per prompt and option list). Results are in prompt order.
    pub async fn score_all(&self, prompts: &[String], options: &[String]) -> Vec<Result<Vec<f64>, Arc<LlmError>>> {
        let t0 = Instant::now();
        let result = self.score_cached(prompts, options);
        self.stats
            .wait_micros
            .fetch_add(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
        match result {
            Ok(v) => v.into_iter().map(Ok).collect(),
            Err(e) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                let e = Arc::new(e);
                prompts.iter().map(|_| Err(e.clone())).collect()
            }
        }
    }

    /// The text scored for a prompt and its options (the cache key's prompt).
    fn scored_prompt(prompt: &str, options: &[String]) -> String {
        format!("{prompt}\n[options scored: {}]", options.join(" | "))
    }

    fn score_cached(&self, prompts: &[String], options: &[String]) -> Result<Vec<Vec<f64>>, LlmError> {
        let Some(slot) = &self.local else {
            return Err(LlmError::Config(
                "answer = \"logprob\" needs the embedded backend (backend = \"local\")".into(),
            ));
        };
        let requests: Vec<(String, u32)> = prompts.iter().map(|p| (p.clone(), 0)).collect();
        let (unique, slots) = dedup(&requests);
        let keyed: Vec<String> = unique.iter().map(|&(p, _)| Self::scored_prompt(p, options)).collect();
        let key = |k: &str| {
            let mut key = self.key(k, 0);
            key.api = "logprob";
            key.temperature = 0.0;
            key.max_tokens = 1;
            key.hash()
        };
        let mut found: Vec<Option<Vec<f64>>> = vec![None; unique.len()];
        let mut to_ask = Vec::new();
        for (k, text) in keyed.iter().enumerate() {
            let hit = match (&self.cache, self.cfg.mode) {
                (Some(c), Mode::Record | Mode::Replay) => c.get(&key(text)),
                _ => None,
            };
            match hit.and_then(|e| serde_json::from_str::<Scored>(&e.text).ok()) {
                Some(s) => {
                    self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                    found[k] = Some(s.probabilities);
                }
                None if self.cfg.mode == Mode::Replay => return Err(self.replay_miss(text, 0)),
                None => to_ask.push(k),
            }
        }
        if !to_ask.is_empty() {
            let asked: Vec<&str> = to_ask.iter().map(|&k| unique[k].0).collect();
            let scores = self.score_local(slot, &asked, options)?;
            for (&k, (s, tokens_in)) in to_ask.iter().zip(scores) {
                if let (Some(cache), Mode::Record) = (&self.cache, self.cfg.mode) {
                    cache.put(Entry {
                        key: key(&keyed[k]),
                        model: self.cfg.model.clone(),
                        sample: 0,
                        prompt: self.redactor.clean(&keyed[k]),
                        text: serde_json::to_string(&s).expect("scores serialise"),
                        tokens_in,
                        tokens_out: 0,
                    })?;
                }
                found[k] = Some(s.probabilities);
            }
        }
        Ok(slots
            .into_iter()
            .map(|k| found[k].clone().expect("every prompt was scored"))
            .collect())
    }

    #[cfg_attr(not(feature = "local"), allow(unused_variables))]
    fn score_local(
        &self,
        slot: &LocalSlot,
        prompts: &[&str],
        options: &[String],
    ) -> Result<Vec<(Scored, u64)>, LlmError> {
        #[cfg(not(feature = "local"))]
        return Err(LocalError::NotBuilt.into());
        #[cfg(feature = "local")]
        {
            let model = slot.model()?;
            let scores = model.score(
                prompts,
                options,
                self.cfg.api == super::Api::Chat,
                self.cfg.system.as_deref(),
            )?;
            Ok(scores
                .into_iter()
                .map(|s| {
                    self.stats.calls.fetch_add(1, Ordering::Relaxed);
                    self.stats.tokens_in.fetch_add(s.tokens_in, Ordering::Relaxed);
                    (
                        Scored {
                            probabilities: s.probabilities,
                            mass: s.mass,
                        },
                        s.tokens_in,
                    )
                })
                .collect())
        }
    }
}
