//! myriad-core: the engine under every myriad model.
//!
//! - [`calendar`]: dates, weeks and months of a run;
//! - [`rng`]: counter-based random draws, pure functions of (seed, stream, counters);
//! - [`population`]: agents as typed columns indexed by a dense `u32` id;
//! - [`csr`] and [`generators`]: contact layers as CSR adjacency and their generators;
//! - [`mod@params`] and [`schedule`]: documented model parameters and scheduled interventions;
//! - [`metrics`]: the per-step aggregate recorder;
//! - [`cross`]: the one place where an agent's step writes to another agent;
//! - [`model`]: the model contract: its specification, input, step context and trait;
//! - [`hash`]: a stable hash of a simulation's state;
//! - [`source`]: population sources (the synthetic city) and their observed data;
//! - [`behaviour`]: providers of decision probabilities (LLM archetypes, policies);
//! - [`control`]: observations, actions and rewards of controllable models;
//! - [`space`]: the periodic box and its cell list for neighbours within a radius.

#![deny(missing_docs)]

pub mod behaviour;
pub mod calendar;
pub mod comm;
pub mod control;
pub mod cross;
pub mod csr;
mod declare;
pub mod generators;
pub mod hash;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod params;
pub mod population;
pub mod rng;
pub mod schedule;
pub mod source;
pub mod space;

pub use calendar::Calendar;
pub use csr::{BuildReport, Csr, CsrError, EdgeList};
pub use rng::{CounterRng, Stream};
