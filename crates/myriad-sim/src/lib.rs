//! myriad-sim: the simulation library every front end calls (the command
//! line, and later Python, the web dashboard, MPI and training loops).
//!
//! - [`scenario`] and [`toml_reader`]: the scenario in two stages, raw TOML
//!   then a validated [`Scenario`] whose errors name the file, line and key;
//! - [`build`], [`behaviour`] and [`resources`]: building the population,
//!   the contact layers and the decision provider, after checking the
//!   memory they need;
//! - [`simulation`]: the [`Simulation`] value (build, step, snapshot,
//!   restore, fork, state hash) on a thread pool of its own;
//! - [`sinks`] and [`outputs`]: where rows go as they are computed, and the
//!   files written after; [`run`]: a run into an output folder
//!   ([`outdir`]: folders myriad made and may replace);
//! - [`ensemble`], [`counterfactual`], [`calibrate`] (with
//!   [`calibrate_dated`] for dated scenarios), [`forecast`] and [`sweep`]:
//!   the analyses, on results held in memory;
//! - [`plot`]: the PNG charts (cargo feature `plots`);
//! - [`error`]: typed errors that tell bad input from a failure while running.

#![deny(missing_docs)]

pub mod behaviour;
pub mod build;
pub mod calibrate;
pub mod calibrate_dated;
pub mod checkpoint;
pub mod control;
pub mod counterfactual;
pub mod dated_plots;
pub mod ensemble;
pub mod error;
pub mod outcomes;
pub mod outdir;
pub mod outputs;
#[cfg(feature = "plots")]
pub mod plot;
#[cfg(not(feature = "plots"))]
#[path = "plot_none.rs"]
pub mod plot;
pub mod plot_data;
pub mod resources;
pub mod run;
pub mod scenario;
pub mod simulation;
pub mod sinks;
pub mod sweep;
pub mod toml_reader;

/// `myriad forecast`: fit up to cut-off dates per behaviour, forecast,
/// score. It lives beside the dated calibration whose search it reuses.
pub use calibrate_dated::forecast;
pub use error::{Error, InputError, Result};
pub use scenario::{load, Overrides, Scenario};
pub use simulation::{Decisions, SimOptions, Simulation, Snapshot};
pub use toml_reader::ScenarioError;
