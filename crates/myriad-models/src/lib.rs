//! myriad-models: one module per model family, each reading like the rules
//! of its paper, the synthetic New York City as a population source, and
//! the registry listing them.

#![deny(missing_docs)]

pub mod covid;
pub mod epidemic;
pub mod games;
pub mod nyc;
pub mod registry;
pub mod setup;
pub mod sis;
pub mod swarm;

pub use myriad_core::model::{
    ColumnDoc, DecisionAnswer, DecisionDoc, ModelError, ModelInput, ModelSpec, PeriodicTable, PlotPanel, TableKind,
};
pub use registry::{find, models, source, MODELS, SOURCES};
