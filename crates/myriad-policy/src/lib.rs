//! myriad-policy: learned policies as decision providers.
//!
//! A policy is a small multilayer perceptron shared by every agent: it maps
//! an agent's own observation (its state and a fixed-size summary of what
//! it sees, so one policy serves any swarm size) to a Gaussian over its
//! action. The file is [safetensors](https://huggingface.co/docs/safetensors)
//! with the observation and action specification in its metadata, so a
//! policy is refused by a model it was not trained for.
//!
//! - [`Policy`]: the weights and their specification, read and written;
//! - [`Policy::act`]: batched inference over all agents on all threads;
//! - [`PolicyBehaviour`]: the provider behind `[behaviour] provider = "policy"`.

#![deny(missing_docs)]

mod file;
mod mlp;
mod provider;

pub use file::{Policy, PolicyError, PolicySpec, FORMAT};
pub use mlp::Dense;
pub use provider::{ControllerBehaviour, PolicyBehaviour};
