//! myriad-llm: large language models as decision makers of agents.
//!
//! - [`client`]: an OpenAI-compatible HTTP client (chat or completions) with
//!   concurrency and rate limits, least-loaded endpoint choice, retries with
//!   backoff and jitter, and the answer cache ([`cache`]: live, record,
//!   replay);
//! - [`template`]: prompt templates filled from agent attributes and model
//!   observations;
//! - [`local`]: the embedded backend, a GGUF model run in the process by
//!   llama.cpp (cargo feature `local`), for generated answers and for the
//!   probabilities of yes/no and choice answers from one forward pass;
//! - [`mod@parse`]: robust reading of answers (yes/no, number, choice, JSON);
//! - [`personas`]: persona texts written by the model from agents'
//!   attributes, with a diversity report;
//! - [`archetype`]: asking once per group of agents that share the prompt's
//!   attributes, and drawing each agent's decision from the group's answers.

#![deny(missing_docs)]

pub mod agents;
pub mod archetype;
pub mod behaviour;
pub mod cache;
pub mod client;
pub mod local;
pub mod parse;
pub mod personas;
pub mod redact;
pub mod template;

pub use cache::Mode;
pub use client::{Api, Completion, LlmClient, LlmConfig, LlmError, StatsSnapshot};
pub use parse::{parse, Answer, AnswerKind, ParseError};
pub use redact::{display_url, Redactor};
pub use template::{Template, TemplateError};
