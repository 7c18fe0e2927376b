//! Time-series output: a CSV file written and flushed row by row (so an
//! interrupted run keeps every finished step), and a Parquet file at the end.

use crate::error::IoError;
use arrow_array::{ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, UInt32Array};
use arrow_schema::{DataType, Field, Schema};
use myriad_core::calendar::Calendar;
use myriad_core::metrics::MetricSpec;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Format a metric value: whole-number metrics as integers, the others
/// with full precision (shortest text that reads back to the same float).
pub fn format_value(spec: &MetricSpec, x: f64) -> String {
    spec.format(x)
}

/// A CSV time series: header `step,<metric>...` (`step,date,<metric>...`
/// on a dated run), one row per step.
///
/// Each line is written whole or not at all: when a write fails (a full
/// disk), the file is cut back to the end of the last complete line, so a
/// reader never sees half a row.
pub struct TimeseriesCsv {
    path: PathBuf,
    specs: Vec<MetricSpec>,
    calendar: Calendar,
    out: File,
    /// Bytes of complete lines written so far.
    committed: u64,
}

impl TimeseriesCsv {
    /// Create the file and write its header.
    pub fn create(path: &Path, specs: &[MetricSpec], calendar: &Calendar) -> Result<TimeseriesCsv, IoError> {
        let f = File::create(path).map_err(|e| IoError::write(path, e))?;
        let mut w = TimeseriesCsv {
            path: path.to_path_buf(),
            specs: specs.to_vec(),
            calendar: *calendar,
            out: f,
            committed: 0,
        };
        let date = calendar.start().map(|_| "date");
        let header: Vec<&str> = std::iter::once("step")
            .chain(date)
            .chain(specs.iter().map(|s| s.name.as_str()))
            .collect();
        w.write_line(&header.join(","))?;
        Ok(w)
    }

    fn write_line(&mut self, line: &str) -> Result<(), IoError> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        match self.out.write_all(&bytes) {
            Ok(()) => {
                self.committed += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Best effort: remove the part of the line that was written.
                let _ = self.out.set_len(self.committed);
                Err(IoError::write(&self.path, e))
            }
        }
    }

    /// Append and flush one row.
    pub fn write_row(&mut self, step: u32, row: &[f64]) -> Result<(), IoError> {
        let mut line = step.to_string();
        if self.calendar.start().is_some() {
            line.push(',');
            line.push_str(&self.calendar.label(step));
        }
        for (spec, x) in self.specs.iter().zip(row) {
            line.push(',');
            line.push_str(&spec.format(*x));
        }
        self.write_line(&line)
    }
}

/// Write a whole time series to Parquet: `step` (uint32), `date` (date32, on
/// a dated run), then one column per metric (int64 counts, float64 values).
pub fn write_timeseries_parquet(
    path: &Path,
    specs: &[MetricSpec],
    steps: &[u32],
    rows: &[&[f64]],
    calendar: &Calendar,
) -> Result<(), IoError> {
    let mut fields = vec![Field::new("step", DataType::UInt32, false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(UInt32Array::from(steps.to_vec()))];
    if calendar.start().is_some() {
        fields.push(Field::new("date", DataType::Date32, false));
        arrays.push(Arc::new(Date32Array::from_iter_values(
            steps.iter().map(|&s| calendar.epoch_day(s).unwrap_or(0)),
        )));
    }
    for (j, s) in specs.iter().enumerate() {
        if s.integer {
            fields.push(Field::new(&s.name, DataType::Int64, false));
            arrays.push(Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r[j] as i64))));
        } else {
            fields.push(Field::new(&s.name, DataType::Float64, false));
            arrays.push(Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r[j]))));
        }
    }
    let err = |e: &dyn std::fmt::Display| IoError::write(path, std::io::Error::other(e.to_string()));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| err(&e))?;
    let f = File::create(path).map_err(|e| IoError::write(path, e))?;
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).map_err(|e| err(&e))?;
    w.write(&batch).map_err(|e| err(&e))?;
    w.close().map_err(|e| err(&e))?;
    Ok(())
}
