//! Tables handed to Python: columns of numbers or text, given to pandas as
//! numpy arrays and to pyarrow and polars through the Arrow PyCapsule
//! stream interface (`__arrow_c_stream__`).

use crate::errors;
use crate::simulation::History;
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{ArrayRef, Float64Array, RecordBatch, RecordBatchIterator, StringArray, UInt64Array};
use arrow_schema::{ArrowError, DataType, Field, Schema};
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};
use std::sync::Arc;

/// One column.
#[derive(Clone)]
pub enum Col {
    /// Steps, seeds, counts.
    U64(Vec<u64>),
    /// Metric values.
    F64(Vec<f64>),
    /// Dates, labels, parameter values given as text.
    Str(Vec<String>),
}

/// A table of named columns of equal length.
#[pyclass(module = "myriad._myriad", frozen)]
#[derive(Clone, Default)]
pub struct Table {
    columns: Vec<(String, Col)>,
}

impl Table {
    /// An empty table.
    pub fn new() -> Table {
        Table::default()
    }

    /// Add a column.
    pub fn push(&mut self, name: impl Into<String>, col: Col) {
        self.columns.push((name.into(), col));
    }

    /// A simulation's rows: `step`, `date` when dated, then the metrics.
    pub fn from_history(h: &History, names: Vec<String>, dates: Option<Vec<String>>) -> Table {
        let mut t = Table::new();
        t.push("step", Col::U64(h.steps.iter().map(|&s| s as u64).collect()));
        if let Some(d) = dates {
            t.push("date", Col::Str(d));
        }
        let w = names.len();
        for (j, name) in names.into_iter().enumerate() {
            t.push(
                name,
                Col::F64(h.values.iter().skip(j).step_by(w.max(1)).copied().collect()),
            );
        }
        t
    }

    fn batch(&self) -> Result<RecordBatch, ArrowError> {
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for (name, col) in &self.columns {
            let (dt, a): (DataType, ArrayRef) = match col {
                Col::U64(v) => (DataType::UInt64, Arc::new(UInt64Array::from(v.clone()))),
                Col::F64(v) => (DataType::Float64, Arc::new(Float64Array::from(v.clone()))),
                Col::Str(v) => (DataType::Utf8, Arc::new(StringArray::from(v.clone()))),
            };
            fields.push(Field::new(name, dt, false));
            arrays.push(a);
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
    }
}

#[pymethods]
impl Table {
    /// Column names, in order.
    #[getter]
    fn column_names(&self) -> Vec<String> {
        self.columns.iter().map(|(n, _)| n.clone()).collect()
    }

    fn __len__(&self) -> usize {
        self.columns.first().map_or(0, |(_, c)| match c {
            Col::U64(v) => v.len(),
            Col::F64(v) => v.len(),
            Col::Str(v) => v.len(),
        })
    }

    /// The columns as a dict of numpy arrays (numbers) and lists (text),
    /// in column order: `pandas.DataFrame(t.to_dict())`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (name, col) in &self.columns {
            match col {
                Col::U64(v) => d.set_item(name, PyArray1::from_slice(py, v))?,
                Col::F64(v) => d.set_item(name, PyArray1::from_slice(py, v))?,
                Col::Str(v) => d.set_item(name, v.clone())?,
            }
        }
        Ok(d)
    }

    /// The Arrow PyCapsule stream interface: pyarrow, polars and other
    /// Arrow libraries read the table from this without a Python loop.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        // The schema is ours; a consumer casts if it wants another.
        let _ = requested_schema;
        let batch = self
            .batch()
            .map_err(|e| errors::RunError::new_err(format!("building the Arrow table: {e}")))?;
        let schema = batch.schema();
        let reader = RecordBatchIterator::new(vec![Ok(batch)], schema);
        let stream = FFI_ArrowArrayStream::new(Box::new(reader));
        PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
    }

    fn __repr__(&self) -> String {
        format!("Table({} rows: {})", self.__len__(), self.column_names().join(", "))
    }
}
