//! Where a scenario comes from in Python: a file, TOML text or a dict, with
//! `set={"key.path": value}` overrides and a seed, checked by the same code
//! as the command line (errors name the file, line and key).

use crate::errors;
use myriad_sim::scenario::{Overrides, RawScenario};
use myriad_sim::Scenario;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use std::path::PathBuf;

/// A Python value as a TOML value; `key` names it in errors.
fn to_toml(v: &Bound<'_, PyAny>, key: &str) -> PyResult<toml::Value> {
    if v.is_instance_of::<PyBool>() {
        return Ok(toml::Value::Boolean(v.extract()?));
    }
    if v.is_instance_of::<PyInt>() {
        let i: i64 = v
            .extract()
            .map_err(|_| errors::input(format!("{key}: integer out of range")))?;
        return Ok(toml::Value::Integer(i));
    }
    if v.is_instance_of::<PyFloat>() {
        return Ok(toml::Value::Float(v.extract()?));
    }
    if v.is_instance_of::<PyString>() {
        return Ok(toml::Value::String(v.extract()?));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut t = toml::Table::new();
        for (k, x) in d.iter() {
            let k: String = k
                .extract()
                .map_err(|_| errors::input(format!("{key}: keys must be strings")))?;
            let sub = if key.is_empty() {
                k.clone()
            } else {
                format!("{key}.{k}")
            };
            t.insert(k, to_toml(&x, &sub)?);
        }
        return Ok(toml::Value::Table(t));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let items: Vec<Bound<'_, PyAny>> = v.try_iter()?.collect::<PyResult<_>>()?;
        let mut a = Vec::with_capacity(items.len());
        for (i, x) in items.iter().enumerate() {
            a.push(to_toml(x, &format!("{key}[{i}]"))?);
        }
        return Ok(toml::Value::Array(a));
    }
    // numpy scalars: integers have __index__, floats __float__.
    if let Ok(i) = v.extract::<i64>() {
        return Ok(toml::Value::Integer(i));
    }
    if let Ok(f) = v.extract::<f64>() {
        return Ok(toml::Value::Float(f));
    }
    let ty = v.get_type().name()?.to_string();
    Err(errors::input(format!(
        "{key}: a {ty} cannot go into a scenario (numbers, strings, booleans, lists and dicts can)"
    )))
}

/// A Python value as TOML text (a `--set` value).
pub fn toml_text(v: &Bound<'_, PyAny>, key: &str) -> PyResult<String> {
    Ok(to_toml(v, key)?.to_string())
}

/// `set={"params.beta": 0.3}` as `--set` assignments.
fn assignments(set: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<String>> {
    let mut out = Vec::new();
    if let Some(d) = set {
        for (k, v) in d.iter() {
            let k: String = k
                .extract()
                .map_err(|_| errors::input("set: keys must be strings such as \"params.beta\""))?;
            out.push(format!("{k}={}", toml_text(&v, &k)?));
        }
    }
    Ok(out)
}

/// The scenario's source as given to a constructor.
pub enum Given<'a, 'py> {
    /// A scenario file.
    File(PathBuf),
    /// TOML text; relative paths from `base`.
    Toml(&'a str, PathBuf),
    /// A dict; relative paths from `base`.
    Dict(&'a Bound<'py, PyDict>, PathBuf),
}

impl<'a, 'py> Given<'a, 'py> {
    /// From the keyword arguments: exactly one of `file`, `toml`, `scenario`.
    pub fn from_args(
        file: Option<PathBuf>,
        toml: Option<&'a str>,
        scenario: Option<&'a Bound<'py, PyDict>>,
        base_dir: Option<PathBuf>,
    ) -> PyResult<Given<'a, 'py>> {
        let base = base_dir.unwrap_or_else(|| PathBuf::from("."));
        match (file, toml, scenario) {
            (Some(f), None, None) => Ok(Given::File(f)),
            (None, Some(t), None) => Ok(Given::Toml(t, base)),
            (None, None, Some(d)) => Ok(Given::Dict(d, base)),
            _ => Err(errors::input(
                "give exactly one of file=PATH, toml=TEXT or scenario=DICT",
            )),
        }
    }
}

/// Read and check the scenario with the overrides.
pub fn load(given: &Given<'_, '_>, seed: Option<u64>, set: Option<&Bound<'_, PyDict>>) -> PyResult<Scenario> {
    let overrides = Overrides {
        set: assignments(set)?,
        seed,
    };
    let raw = match given {
        Given::File(f) => RawScenario::read(f, &overrides),
        Given::Toml(text, base) => RawScenario::from_text(&base.join("<toml>"), text, &overrides),
        Given::Dict(d, base) => {
            let value = to_toml(d.as_any(), "")?;
            let text = toml::to_string(&value).map_err(|e| errors::input(format!("scenario dict: {e}")))?;
            RawScenario::from_text(&base.join("<dict>"), &text, &overrides)
        }
    }
    .map_err(errors::scenario)?;
    raw.validate().map_err(errors::scenario)
}

/// The `threads=` argument: a worker count of at least 1, or None for
/// all cores.
pub fn threads(threads: Option<usize>) -> PyResult<Option<usize>> {
    match threads {
        Some(0) => Err(errors::input("threads must be at least 1")),
        t => Ok(t),
    }
}

/// A key telling scenarios apart (model and resolved document), for
/// refusing a snapshot taken from another scenario.
pub fn identity(s: &Scenario) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.model.name.hash(&mut h);
    let mut resolved = s.resolved.clone();
    if let Some(o) = resolved.as_object_mut() {
        // The seed and step count do not change what a state means.
        o.remove("seed");
        o.remove("steps");
    }
    resolved.to_string().hash(&mut h);
    h.finish()
}
