//! myriad's errors as Python exceptions, with the message the command line
//! gives (file, line, key): bad input is a `ValueError`, a failure while
//! running a `RuntimeError`.

use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

create_exception!(
    myriad,
    ScenarioError,
    PyValueError,
    "A scenario that cannot be read or checked; the message names the file, line and key."
);
create_exception!(
    myriad,
    InputError,
    PyValueError,
    "Other bad input: options, data files, sizes, arrays of the wrong shape or dtype."
);
create_exception!(
    myriad,
    RunError,
    PyRuntimeError,
    "A failure while running: a decision provider that failed, an output that could not be written."
);

/// A library error as the matching Python exception.
pub fn to_py(e: myriad_sim::Error) -> PyErr {
    match e {
        myriad_sim::Error::Scenario(e) => ScenarioError::new_err(e.to_string()),
        e if e.is_input() => InputError::new_err(e.to_string()),
        e => RunError::new_err(e.to_string()),
    }
}

/// A scenario error as a Python exception.
pub fn scenario(e: myriad_sim::ScenarioError) -> PyErr {
    ScenarioError::new_err(e.to_string())
}

/// Bad input found in the bindings themselves.
pub fn input(message: impl Into<String>) -> PyErr {
    InputError::new_err(message.into())
}

/// Add the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ScenarioError", py.get_type::<ScenarioError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("RunError", py.get_type::<RunError>())?;
    Ok(())
}
