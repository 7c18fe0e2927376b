//! The llama.cpp engine of the embedded backend.
//!
//! Prompts are evaluated many at a time: each prompt is a sequence of one
//! shared context, the prompt tokens of all sequences go through the model
//! together, and then every step decodes one token of each unfinished
//! sequence in one forward pass. Each sequence samples with its own seed
//! (derived from the prompt and the sample index), so a prompt's answer
//! does not depend on which other prompts share its batch's sampling.
//!
//! Scoring ([`LocalModel::score`]) reads the next-token distribution after
//! the prompt instead of generating: the probability of each option of a
//! yes/no or multiple-choice question from one forward pass.
//!
//! A file is checked before anything is loaded: it must exist, start with
//! the GGUF magic, have a header llama.cpp can parse, and fit in memory.

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::gguf::GgufContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use super::{available_memory, seed, Generated, Generation, LocalError, LocalSettings, Scores};

/// llama.cpp's global state: initialised once per process.
fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // llama.cpp logs every tensor it loads to stderr; a command
            // line tool's users want their own messages only.
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default().with_logs_enabled(false));
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// A model file's size after checking that it is a readable GGUF file
/// (without loading its weights).
pub fn check_file(path: &Path) -> Result<u64, LocalError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|_| LocalError::Missing { path: shown.clone() })?;
    if !meta.is_file() {
        return Err(LocalError::NotGguf {
            path: shown,
            reason: "it is a folder".into(),
        });
    }
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path).and_then(|mut f| {
        use std::io::Read;
        f.read(&mut magic)
    });
    match read {
        Err(e) => {
            return Err(LocalError::Corrupt {
                path: shown,
                reason: format!("cannot read it: {e}"),
            })
        }
        Ok(n) if n < 4 || &magic != b"GGUF" => {
            return Err(LocalError::NotGguf {
                path: shown,
                reason: format!(
                    "it starts with {:?} instead of \"GGUF\"",
                    String::from_utf8_lossy(&magic[..n.min(4)])
                ),
            })
        }
        Ok(_) => {}
    }
    backend().map_err(|reason| LocalError::Engine {
        path: shown.clone(),
        reason,
    })?;
    let Some(header) = GgufContext::from_file(path) else {
        return Err(LocalError::Corrupt {
            path: shown,
            reason: "llama.cpp cannot read its header (truncated or not a model)".into(),
        });
    };
    if header.n_tensors() <= 0 {
        return Err(LocalError::Corrupt {
            path: shown,
            reason: "it holds no tensors".into(),
        });
    }
    Ok(meta.len())
}

/// A loaded model. Shared between threads; one evaluation runs at a time
/// (each uses every thread it was given).
pub struct LocalModel {
    settings: LocalSettings,
    shown: String,
    model: LlamaModel,
    template: Option<LlamaChatTemplate>,
    window: u32,
    busy: Mutex<()>,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel").field("path", &self.shown).finish()
    }
}

/// Bytes of working memory per token of context (the key-value cache of a
/// small model is about 20 kB per token; larger models need more, and
/// their files are larger in proportion).
fn kv_bytes_per_token(file_bytes: u64) -> u64 {
    (file_bytes / 4096).max(24 * 1024)
}

impl LocalModel {
    /// Check and load the model file.
    pub fn load(settings: LocalSettings) -> Result<LocalModel, LocalError> {
        let shown = settings.path.display().to_string();
        let size = check_file(&settings.path)?;
        let tokens = u64::from(settings.context) * settings.batch.max(1) as u64;
        let needs = size + tokens * kv_bytes_per_token(size) + (256 << 20);
        let (has, hint) = match settings.memory_limit {
            Some(limit) => (limit, " under [limits] memory_gb".to_string()),
            None => (
                available_memory().unwrap_or(u64::MAX),
                "; use a smaller model, or lower [llm] batch or context".to_string(),
            ),
        };
        if needs > has {
            return Err(LocalError::TooLarge {
                path: shown,
                needs_gb: needs as f64 / 1e9,
                has_gb: has as f64 / 1e9,
                hint,
            });
        }
        let engine = |reason: String| LocalError::Engine {
            path: shown.clone(),
            reason,
        };
        let backend = backend().map_err(engine)?;
        let model = LlamaModel::load_from_file(backend, &settings.path, &LlamaModelParams::default()).map_err(|e| {
            LocalError::Corrupt {
                path: shown.clone(),
                reason: format!("llama.cpp cannot load it ({e})"),
            }
        })?;
        let window = settings.context.min(model.n_ctx_train()).max(16);
        let template = model.chat_template(None).ok();
        Ok(LocalModel {
            settings,
            shown,
            model,
            template,
            window,
            busy: Mutex::new(()),
        })
    }

    /// The settings it was loaded with.
    pub fn settings(&self) -> &LocalSettings {
        &self.settings
    }

    /// Tokens per sequence (prompt and answer).
    pub fn window(&self) -> u32 {
        self.window
    }

    fn engine(&self, reason: impl std::fmt::Display) -> LocalError {
        LocalError::Engine {
            path: self.shown.clone(),
            reason: reason.to_string(),
        }
    }

    /// The tokens the model reads for `prompt`: in the chat template when
    /// asked (and the model has one), else the raw text.
    pub fn tokens(&self, prompt: &str, chat: bool, system: Option<&str>) -> Result<Vec<LlamaToken>, LocalError> {
        let text = match (&self.template, chat) {
            (Some(t), true) => {
                let mut messages = Vec::new();
                if let Some(s) = system {
                    messages.push(LlamaChatMessage::new("system".into(), s.into()).map_err(|e| self.engine(e))?);
                }
                messages.push(LlamaChatMessage::new("user".into(), prompt.into()).map_err(|e| self.engine(e))?);
                self.model
                    .apply_chat_template(t, &messages, true)
                    .map_err(|e| self.engine(format!("chat template: {e}")))?
            }
            _ => prompt.to_string(),
        };
        // The chat template writes its special tokens as text.
        let vocab = self.model.vocab();
        Ok(vocab.tokenize(text.as_bytes(), vocab.should_add_bos(), true))
    }

    fn too_long(&self, prompt: &str, tokens: usize, answer: u32) -> LocalError {
        LocalError::PromptTooLong {
            tokens,
            answer,
            window: self.window,
            start: prompt.chars().take(60).collect(),
        }
    }

    /// A context for `sequences` sequences of `tokens` tokens in all.
    fn context(&self, sequences: usize, tokens: usize) -> Result<LlamaContext<'_>, LocalError> {
        let backend = backend().map_err(|e| self.engine(e))?;
        let n_ctx = (tokens as u32 + 256).next_multiple_of(256);
        let threads = self.settings.threads.clamp(1, 1024) as i32;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(n_ctx.min(4096))
            .with_n_ubatch(512)
            .with_n_seq_max(sequences.max(1) as u32)
            .with_kv_unified(true)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        self.model
            .new_context(backend, params)
            .map_err(|e| self.engine(format!("cannot make a context of {n_ctx} tokens: {e}")))
    }

    /// Generate an answer to each `(prompt, sample)`: `batch` prompts at a
    /// time; `done(first, answers)` receives each batch's answers as soon
    /// as they exist (to store them), `first` being the index of the
    /// batch's first prompt. Answers are in prompt order.
    pub fn generate<E: From<LocalError>>(
        &self,
        prompts: &[(&str, u32)],
        g: &Generation,
        mut done: impl FnMut(usize, &[Generated]) -> Result<(), E>,
    ) -> Result<Vec<Generated>, E> {
        let _busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let mut tokens = Vec::with_capacity(prompts.len());
        for &(p, _) in prompts {
            let t = self.tokens(p, g.chat, g.system)?;
            if t.len() + g.max_tokens as usize > self.window as usize || t.is_empty() {
                return Err(self.too_long(p, t.len(), g.max_tokens).into());
            }
            tokens.push(t);
        }
        let batch = self.settings.batch.max(1);
        let mut out = Vec::with_capacity(prompts.len());
        for (c, chunk) in tokens.chunks(batch).enumerate() {
            let first = c * batch;
            let seeds: Vec<u32> = prompts[first..first + chunk.len()]
                .iter()
                .map(|&(p, s)| seed(p, s))
                .collect();
            let answers = self.generate_chunk(chunk, &seeds, g)?;
            done(first, &answers)?;
            out.extend(answers);
        }
        Ok(out)
    }

    /// One batch of sequences, generated together.
    fn generate_chunk(
        &self,
        prompts: &[Vec<LlamaToken>],
        seeds: &[u32],
        g: &Generation,
    ) -> Result<Vec<Generated>, LocalError> {
        let total: usize = prompts.iter().map(|t| t.len() + g.max_tokens as usize).sum();
        let mut ctx = self.context(prompts.len(), total)?;
        let mut samplers: Vec<LlamaSampler> = seeds
            .iter()
            .map(|&s| {
                if g.temperature <= 0.0 {
                    LlamaSampler::greedy()
                } else {
                    LlamaSampler::chain_simple([LlamaSampler::temp(g.temperature as f32), LlamaSampler::dist(s)])
                }
            })
            .collect();
        let vocab = self.model.vocab();
        let mut answers: Vec<Vec<LlamaToken>> = vec![Vec::new(); prompts.len()];
        // The next token of each unfinished sequence, once sampled.
        let mut next: Vec<Option<LlamaToken>> = vec![None; prompts.len()];
        // A sampled token ends its sequence (end of generation, or the
        // token limit) or is fed back in the next pass.
        let take = |seq: usize, token: LlamaToken, answers: &mut Vec<Vec<LlamaToken>>| {
            if vocab.is_eog(token) {
                return None;
            }
            answers[seq].push(token);
            (answers[seq].len() < g.max_tokens as usize).then_some(token)
        };
        // The prompts, as many tokens per forward pass as the context takes.
        let cap = ctx.n_batch() as usize;
        let mut batch = LlamaBatch::new(cap.max(prompts.len()), 1);
        self.feed_prompts(&mut ctx, &mut batch, prompts, cap, |ctx, seq, row| {
            let t = samplers[seq].sample(ctx, row);
            next[seq] = take(seq, t, &mut answers);
        })?;
        // Then one token per unfinished sequence per forward pass.
        loop {
            batch.clear();
            let mut rows = Vec::new();
            for (seq, t) in next.iter_mut().enumerate() {
                if let Some(token) = t.take() {
                    let pos = (prompts[seq].len() + answers[seq].len() - 1) as i32;
                    batch.add(token, pos, &[seq as i32], true).map_err(|e| self.engine(e))?;
                    rows.push(seq);
                }
            }
            if rows.is_empty() {
                break;
            }
            ctx.decode(&mut batch).map_err(|e| self.engine(e))?;
            for (i, &seq) in rows.iter().enumerate() {
                let t = samplers[seq].sample(&ctx, i as i32);
                next[seq] = take(seq, t, &mut answers);
            }
        }
        Ok(answers
            .iter()
            .zip(prompts)
            .map(|(a, p)| {
                let mut bytes = Vec::new();
                for &t in a {
                    bytes.extend(vocab.token_to_piece(t, false, None));
                }
                Generated {
                    text: String::from_utf8_lossy(&bytes).trim().to_string(),
                    tokens_in: p.len() as u64,
                    tokens_out: a.len() as u64,
                }
            })
            .collect())
    }

    /// Run the prompts' tokens through the model, `cap` tokens per forward
    /// pass, and call `last(ctx, sequence, row)` once a sequence's last
    /// prompt token has been evaluated (its logits are at that row until
    /// the next pass).
    ///
    /// A prompt that starts like an earlier one of the batch (the samples
    /// of one prompt; archetype prompts that differ only in their last
    /// words) copies the earlier one's attention cache for the shared
    /// tokens instead of computing them again.
    fn feed_prompts(
        &self,
        ctx: &mut LlamaContext<'_>,
        batch: &mut LlamaBatch,
        prompts: &[Vec<LlamaToken>],
        cap: usize,
        mut last: impl FnMut(&LlamaContext<'_>, usize, i32),
    ) -> Result<(), LocalError> {
        batch.clear();
        let mut ends: Vec<(usize, i32)> = Vec::new();
        // Sequences before this one have all their prompt tokens evaluated.
        let mut evaluated = 0usize;
        let mut flush = |ctx: &mut LlamaContext<'_>, batch: &mut LlamaBatch, ends: &mut Vec<(usize, i32)>| {
            if batch.n_tokens() == 0 {
                return Ok(());
            }
            ctx.decode(batch).map_err(|e| self.engine(e))?;
            for &(seq, row) in ends.iter() {
                last(ctx, seq, row);
            }
            ends.clear();
            batch.clear();
            Ok::<(), LocalError>(())
        };
        for (seq, tokens) in prompts.iter().enumerate() {
            let mut start = 0;
            if let Some((src, shared)) = shared_prefix(prompts, seq) {
                if src >= evaluated {
                    flush(ctx, batch, &mut ends)?;
                    evaluated = seq;
                }
                ctx.copy_kv_cache_seq(src as i32, seq as i32, Some(0), Some(shared as u32))
                    .map_err(|e| self.engine(e))?;
                start = shared;
            }
            for (pos, &t) in tokens.iter().enumerate().skip(start) {
                if batch.n_tokens() as usize >= cap {
                    flush(ctx, batch, &mut ends)?;
                    evaluated = seq;
                }
                let is_last = pos + 1 == tokens.len();
                if is_last {
                    ends.push((seq, batch.n_tokens()));
                }
                batch
                    .add(t, pos as i32, &[seq as i32], is_last)
                    .map_err(|e| self.engine(e))?;
            }
        }
        flush(ctx, batch, &mut ends)
    }

    /// The probability of each option as the answer to each prompt, from
    /// the next-token distribution after the prompt: an option's
    /// probability is that of the first tokens of its spellings (`yes`,
    /// `Yes`, `YES`, with or without a leading space), normalised over the
    /// options. Options must differ in their first token.
    pub fn score(
        &self,
        prompts: &[&str],
        options: &[String],
        chat: bool,
        system: Option<&str>,
    ) -> Result<Vec<Scores>, LocalError> {
        let _busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let firsts = self.option_tokens(options)?;
        let mut tokens = Vec::with_capacity(prompts.len());
        for &p in prompts {
            let t = self.tokens(p, chat, system)?;
            if t.len() + 1 > self.window as usize || t.is_empty() {
                return Err(self.too_long(p, t.len(), 1));
            }
            tokens.push(t);
        }
        let batch = self.settings.batch.max(1);
        let mut out = Vec::with_capacity(prompts.len());
        for chunk in tokens.chunks(batch) {
            let total: usize = chunk.iter().map(Vec::len).sum();
            let mut ctx = self.context(chunk.len(), total)?;
            let cap = ctx.n_batch() as usize;
            let mut lb = LlamaBatch::new(cap.max(chunk.len()), 1);
            let mut scores: Vec<Option<Scores>> = vec![None; chunk.len()];
            self.feed_prompts(&mut ctx, &mut lb, chunk, cap, |ctx, seq, row| {
                let logits = ctx.get_logits_ith(row);
                scores[seq] = Some(option_scores(logits, &firsts, chunk[seq].len() as u64));
            })?;
            out.extend(scores.into_iter().map(|s| s.expect("every sequence was evaluated")));
        }
        Ok(out)
    }

    /// The distinct first tokens of each option's spellings.
    fn option_tokens(&self, options: &[String]) -> Result<Vec<Vec<LlamaToken>>, LocalError> {
        if options.len() < 2 {
            return Err(LocalError::Options("must be at least two".into()));
        }
        let vocab = self.model.vocab();
        let mut firsts: Vec<Vec<LlamaToken>> = Vec::new();
        for o in options {
            let o = o.trim();
            let mut spellings = vec![o.to_string(), o.to_lowercase(), o.to_uppercase(), capitalised(o)];
            spellings.extend(spellings.clone().into_iter().map(|s| format!(" {s}")));
            let mut ts: Vec<LlamaToken> = spellings
                .iter()
                .filter_map(|s| vocab.tokenize(s.as_bytes(), false, false).first().copied())
                .collect();
            ts.sort_by_key(|t| t.0);
            ts.dedup();
            if ts.is_empty() {
                return Err(LocalError::Options(format!("'{o}' has no tokens")));
            }
            firsts.push(ts);
        }
        for i in 0..firsts.len() {
            for j in i + 1..firsts.len() {
                if firsts[i].iter().any(|t| firsts[j].contains(t)) {
                    return Err(LocalError::Options(format!(
                        "'{}' and '{}' begin with the same token, so one forward pass cannot tell them apart; use options that differ in their first word",
                        options[i], options[j]
                    )));
                }
            }
        }
        Ok(firsts)
    }
}

/// Options' probabilities from next-token logits.
fn option_scores(logits: &[f32], firsts: &[Vec<LlamaToken>], tokens_in: u64) -> Scores {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let total: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    let raw: Vec<f64> = firsts
        .iter()
        .map(|ts| {
            ts.iter()
                .filter_map(|t| logits.get(t.0 as usize))
                .map(|&l| (l as f64 - max).exp() / total)
                .sum()
        })
        .collect();
    let mass: f64 = raw.iter().sum();
    let probabilities = if mass > 0.0 {
        raw.iter().map(|p| p / mass).collect()
    } else {
        vec![1.0 / raw.len() as f64; raw.len()]
    };
    Scores {
        probabilities,
        mass,
        tokens_in,
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c.flat_map(char::to_lowercase)).collect(),
        None => String::new(),
    }
}

/// Fewest shared tokens worth a cache copy.
const MIN_SHARED: usize = 16;

/// The earlier prompt sharing the longest start with prompt `seq`, and the
/// number of tokens shared (at most all but its last token, whose logits
/// are needed), if at least [`MIN_SHARED`].
fn shared_prefix(prompts: &[Vec<LlamaToken>], seq: usize) -> Option<(usize, usize)> {
    let this = &prompts[seq];
    let limit = this.len().saturating_sub(1);
    let mut best: Option<(usize, usize)> = None;
    for (src, other) in prompts[..seq].iter().enumerate() {
        let n = this.iter().zip(other).take(limit).take_while(|(a, b)| a == b).count();
        if n >= MIN_SHARED && best.is_none_or(|(_, b)| n > b) {
            best = Some((src, n));
        }
    }
    best
}
