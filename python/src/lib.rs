//! The `myriad._myriad` extension module: the simulation library for
//! Python (PyO3). The Python package `myriad` (python/myriad) wraps it
//! with pandas, Gymnasium, PettingZoo and Mesa-style helpers.

mod actions;
mod analyses;
mod env;
mod errors;
mod interrupt;
mod simulation;
mod source;
mod table;
mod views;

use pyo3::prelude::*;

/// Names and one-line descriptions of the models in this build.
#[pyfunction]
fn models() -> Vec<(&'static str, &'static str)> {
    myriad_models::registry::models()
        .iter()
        .map(|m| (m.name, m.summary))
        .collect()
}

#[pymodule]
fn _myriad(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<simulation::PySimulation>()?;
    m.add_class::<simulation::PySnapshot>()?;
    m.add_class::<env::PyEnv>()?;
    m.add_class::<table::Table>()?;
    m.add_class::<views::ViewOwner>()?;
    m.add_function(wrap_pyfunction!(analyses::ensemble, m)?)?;
    m.add_function(wrap_pyfunction!(analyses::sweep, m)?)?;
    m.add_function(wrap_pyfunction!(analyses::counterfactual, m)?)?;
    m.add_function(wrap_pyfunction!(analyses::calibrate, m)?)?;
    m.add_function(wrap_pyfunction!(models, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
