//! The embedded backend: a GGUF model run inside the process, on CPU
//! threads, by llama.cpp (through the `llama-cpp-2` bindings, cargo
//! feature `local`). No server, no network.
//!
//! This module holds what the rest of the crate needs whether or not the
//! engine is compiled in (settings, errors, seeds, the model's identity in
//! the cache); [`LocalModel`] itself needs the feature.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[cfg(feature = "local")]
mod engine;
#[cfg(feature = "local")]
pub use engine::{check_file, LocalModel};

/// Check that `path` is a readable GGUF model without loading it (what a
/// run checks before it starts); without the backend compiled in, says so.
pub fn check_model(path: &Path) -> Result<(), LocalError> {
    #[cfg(feature = "local")]
    return check_file(path).map(|_| ());
    #[cfg(not(feature = "local"))]
    {
        let _ = path;
        Err(LocalError::NotBuilt)
    }
}

/// True when this build has the embedded backend.
pub const AVAILABLE: bool = cfg!(feature = "local");

/// How the embedded model is run (`[llm] backend = "local"`).
#[derive(Clone, Debug, PartialEq)]
pub struct LocalSettings {
    /// The GGUF file.
    pub path: PathBuf,
    /// CPU threads of the forward passes.
    pub threads: usize,
    /// Prompts evaluated together (sequences of one context).
    pub batch: usize,
    /// Largest prompt plus answer, in tokens, per sequence (at most the
    /// model's training context).
    pub context: u32,
    /// Bytes the process may use at most (the model file plus its working
    /// memory must fit); `None`: what the machine has available.
    pub memory_limit: Option<u64>,
}

impl LocalSettings {
    /// Defaults for a model file: every core, 32 prompts together, 2,048
    /// tokens per prompt and answer.
    pub fn new(path: impl Into<PathBuf>) -> LocalSettings {
        LocalSettings {
            path: path.into(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            batch: 32,
            context: 2048,
            memory_limit: None,
        }
    }
}

/// What can go wrong with the embedded model.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// No file at the path.
    #[error("model file {path} does not exist (get the default model with `myriad llm pull`, or set [llm] model = \"PATH.gguf\")")]
    Missing {
        /// The path.
        path: String,
    },
    /// Not a GGUF file at all.
    #[error("model file {path} is not a GGUF file ({reason}); the local backend reads GGUF models such as SmolLM2-135M-Instruct.Q4_1.gguf")]
    NotGguf {
        /// The path.
        path: String,
        /// What was found.
        reason: String,
    },
    /// A GGUF file that cannot be read.
    #[error("model file {path} is damaged: {reason} (fetch it again, e.g. `myriad llm pull --force`)")]
    Corrupt {
        /// The path.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The model does not fit in memory.
    #[error("model file {path} needs about {needs_gb:.2} GB of memory with its working buffers, but {has_gb:.2} GB are available{hint}")]
    TooLarge {
        /// The path.
        path: String,
        /// Estimated need.
        needs_gb: f64,
        /// What there is.
        has_gb: f64,
        /// Where the limit comes from.
        hint: String,
    },
    /// A prompt longer than a sequence may be.
    #[error("a prompt of {tokens} tokens plus an answer of up to {answer} tokens does not fit the model's context window of {window} tokens per prompt (prompt starts \"{start}\"); shorten the prompt, lower max_tokens or raise [llm] context")]
    PromptTooLong {
        /// Prompt tokens.
        tokens: usize,
        /// Answer tokens allowed.
        answer: u32,
        /// Tokens per sequence.
        window: u32,
        /// Start of the prompt.
        start: String,
    },
    /// Options a score cannot tell apart.
    #[error("answer options {0}")]
    Options(String),
    /// This build has no embedded backend.
    #[error("this myriad was built without the local backend (cargo feature `local` of myriad-llm; it needs cmake and libclang to build); use an OpenAI-compatible server with backend = \"http\"")]
    NotBuilt,
    /// llama.cpp failed.
    #[error("the local model {path} failed: {reason}")]
    Engine {
        /// The model file.
        path: String,
        /// What failed.
        reason: String,
    },
}

/// Bytes of memory available now (Linux: `MemAvailable`), if known.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Sampling of generated answers.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation<'a> {
    /// Temperature (0: the most likely token).
    pub temperature: f64,
    /// Answer tokens at most.
    pub max_tokens: u32,
    /// Wrap prompts in the model's chat template (else the raw prompt).
    pub chat: bool,
    /// System message, in chat form.
    pub system: Option<&'a str>,
}

/// One generated answer with its token counts.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    /// The text.
    pub text: String,
    /// Prompt tokens (after the chat template).
    pub tokens_in: u64,
    /// Answer tokens.
    pub tokens_out: u64,
}

/// The probabilities of a question's options after a prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    /// Per option, normalised over the options (they sum to 1).
    pub probabilities: Vec<f64>,
    /// The share of the model's next-token probability that fell on the
    /// options at all (low: the model wanted to say something else).
    pub mass: f64,
    /// Prompt tokens.
    pub tokens_in: u64,
}

/// The sampling seed of sample `sample` of `prompt`: different prompts and
/// samples draw independent streams.
pub fn seed(prompt: &str, sample: u32) -> u32 {
    let mut h = Sha256::new();
    h.update(sample.to_le_bytes());
    h.update(prompt.as_bytes());
    let d = h.finalize();
    u32::from_le_bytes([d[0], d[1], d[2], d[3]])
}

/// A model's identity in cache keys and reports: `local:` and its file
/// name (not the folder, so a recorded cache replays on any machine, and
/// without the file).
pub fn model_id(path: &Path) -> String {
    let name = path
        .file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    format!("local:{name}")
}

/// The file name of the default model (SmolLM2-135M-Instruct, 4-bit,
/// Apache-2.0), as `myriad llm pull` unpacks it.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Where models live: `$MYRIAD_MODEL_DIR`, else `$XDG_CACHE_HOME/myriad/models`,
/// else `~/.cache/myriad/models` (else `./.myriad-models` with no home).
pub fn model_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MYRIAD_MODEL_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("myriad").join("models");
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(h) => PathBuf::from(h).join(".cache").join("myriad").join("models"),
        None => PathBuf::from(".myriad-models"),
    }
}

/// The model used when `[llm]` names none: [`DEFAULT_MODEL_FILE`] in
/// [`model_dir`].
pub fn default_model_path() -> PathBuf {
    model_dir().join(DEFAULT_MODEL_FILE)
}
