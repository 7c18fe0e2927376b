//! Actions handed in from Python (a policy's output, an environment step):
//! checked for dtype, shape and finiteness, with messages naming the agent
//! and component, before anything is stepped.

use crate::errors;
use myriad_core::control::first_non_finite;
use numpy::{PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

/// `obj` as `agents x names.len()` actions in agent order. A 1-D array of
/// `agents` entries is taken when there is one action component.
pub fn read(py: Python<'_>, obj: &Bound<'_, PyAny>, agents: usize, names: &[&str], what: &str) -> PyResult<Vec<f32>> {
    let d = names.len();
    let np = py.import("numpy")?;
    let arr = np.call_method1("asarray", (obj,))?;
    let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
    if !matches!(kind.as_str(), "b" | "i" | "u" | "f") {
        let dtype = arr.getattr("dtype")?.str()?.to_string();
        return Err(errors::input(format!(
            "{what}: expected numbers (float32), got an array of dtype {dtype}"
        )));
    }
    let arr = np.call_method1("ascontiguousarray", (arr, "float32"))?;
    let arr: PyReadonlyArrayDyn<'_, f32> = arr.extract()?;
    let shape = arr.shape().to_vec();
    let ok = shape == [agents, d] || (d == 1 && shape == [agents]);
    if !ok {
        return Err(errors::input(format!(
            "{what}: expected shape ({agents}, {d}) for {agents} agents x {d} action component(s) ({}), got {:?}",
            names.join(", "),
            shape
        )));
    }
    let data = arr.as_slice()?.to_vec();
    if let Some(e) = first_non_finite(&data, d, what, names) {
        return Err(errors::input(e));
    }
    Ok(data)
}
