//! myriad-models: one module per model family, each reading like the rules
//! of its paper, plus the registry the command line uses to find them.

pub mod covid;
pub mod epidemic;
pub mod games;
pub mod nyc;
pub mod registry;
pub mod setup;

pub use registry::{find, models, DecisionAnswer, DecisionDoc, ModelError, ModelInfo, ModelInput, PlotPanel};
