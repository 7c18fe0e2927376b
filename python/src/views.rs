//! numpy arrays over the engine's memory, without copies. An array keeps
//! alive the simulation state it points into: when a simulation is reset,
//! restored or closed while arrays over it exist, the old state is kept
//! (not freed) until the last of them is gone, so an old array never reads
//! freed memory; it simply stops following the simulation.

use numpy::ndarray::{ArrayView1, ArrayView2};
use numpy::{Element, PyArray1, PyArray2};
use pyo3::prelude::*;
use std::sync::{Arc, Mutex};

/// States retired while arrays over them were alive.
#[derive(Default)]
pub struct Retired(Mutex<Vec<Box<dyn Send>>>);

impl Retired {
    /// Keep `state` as long as this generation's arrays live.
    pub fn keep(&self, state: Box<dyn Send>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(state);
    }
}

/// The base object of every array handed out: holds the generation.
#[pyclass(frozen, module = "myriad._myriad")]
pub struct ViewOwner {
    _keep: Arc<Retired>,
}

/// The arrays of one state of a simulation.
pub struct Generation(Arc<Retired>);

impl Default for Generation {
    fn default() -> Self {
        Generation(Arc::new(Retired::default()))
    }
}

impl Generation {
    /// Whether any array over this generation is still alive.
    pub fn in_use(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }

    /// Replace the state: `old` is dropped now if no array points into
    /// it, or kept with the arrays that do.
    pub fn retire(&mut self, old: Box<dyn Send>) {
        if self.in_use() {
            self.0.keep(old);
            *self = Generation::default();
        }
    }

    fn owner<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(Bound::new(py, ViewOwner { _keep: self.0.clone() })?.into_any())
    }

    /// A read-only 1-D array over `data`.
    ///
    /// # Safety
    /// `data` must stay allocated for as long as this generation is not
    /// retired (memory of the current state, never reallocated by a step).
    pub unsafe fn view1<'py, T: Element>(&self, py: Python<'py>, data: &[T]) -> PyResult<Bound<'py, PyArray1<T>>> {
        let a = unsafe { PyArray1::borrow_from_array(&ArrayView1::from(data), self.owner(py)?) };
        a.getattr("flags")?.setattr("writeable", false)?;
        Ok(a)
    }

    /// A read-only `rows x cols` array over `data`.
    ///
    /// # Safety
    /// As for [`Generation::view1`].
    pub unsafe fn view2<'py, T: Element>(
        &self,
        py: Python<'py>,
        data: &[T],
        cols: usize,
    ) -> PyResult<Bound<'py, PyArray2<T>>> {
        let rows = data.len().checked_div(cols).unwrap_or(0);
        let v = ArrayView2::from_shape((rows, cols), data)
            .map_err(|e| crate::errors::RunError::new_err(format!("array shape: {e}")))?;
        let a = unsafe { PyArray2::borrow_from_array(&v, self.owner(py)?) };
        a.getattr("flags")?.setattr("writeable", false)?;
        Ok(a)
    }
}
