//! Population import: one row per agent, header names become column names.
//!
//! Column types are inferred (all whole numbers: int; all numbers: float;
//! otherwise: text) and checked against the types a scenario requires. An
//! optional `id` column gives each row's agent id; ids must cover `0..n`
//! exactly once, and rows are reordered by id.

use crate::error::IoError;
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::Array;
use arrow_schema::DataType;
use myriad_core::population::{Column, ColumnData, ColumnType, Population};
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

/// Name of the optional agent-id column.
pub const ID_COLUMN: &str = "id";

/// Read a population from a `.csv` or `.parquet` file, checking that each
/// `(name, type)` in `required` is present with a compatible type.
pub fn read_population(path: &Path, required: &[(String, ColumnType)]) -> Result<Population, IoError> {
    let (columns, lines) = match extension(path).as_str() {
        "csv" => read_csv_columns(path)?,
        "parquet" | "pq" => (read_parquet_columns(path)?, None),
        other => {
            return Err(IoError::format(
                path,
                None,
                format!("unknown file type '.{other}': population files must end in .csv or .parquet"),
            ))
        }
    };
    let rows = columns.first().map_or(0, |c| c.data.len());
    if rows == 0 {
        return Err(IoError::Empty {
            path: path.to_path_buf(),
        });
    }
    let columns = coerce_required(path, columns, required)?;
    let columns = order_by_id(path, columns, lines.as_deref())?;
    Population::from_columns(rows as u64, columns).map_err(|e| IoError::format(path, None, e.to_string()))
}

pub(crate) fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Check required columns exist; widen int to float where float is asked for.
fn coerce_required(
    path: &Path,
    mut columns: Vec<Column>,
    required: &[(String, ColumnType)],
) -> Result<Vec<Column>, IoError> {
    for (name, want) in required {
        let Some(col) = columns.iter_mut().find(|c| &c.name == name) else {
            return Err(IoError::MissingColumn {
                path: path.to_path_buf(),
                column: name.clone(),
                present: columns.iter().map(|c| c.name.clone()).collect(),
            });
        };
        let have = col.data.column_type();
        match (have, *want) {
            (a, b) if a == b => {}
            (ColumnType::Int, ColumnType::Float) => {
                if let ColumnData::Int(v) = &col.data {
                    col.data = ColumnData::Float(v.iter().map(|&x| x as f64).collect());
                }
            }
            (_, ColumnType::Text) => col.data = to_text(&col.data),
            (_, want) => {
                let (line, value) = first_misfit(&col.data, want);
                return Err(IoError::WrongType {
                    path: path.to_path_buf(),
                    line,
                    column: name.clone(),
                    expected: want.to_string(),
                    value,
                });
            }
        }
    }
    Ok(columns)
}

/// The first value (and its CSV line, header = line 1) not of type `want`.
fn first_misfit(data: &ColumnData, want: ColumnType) -> (Option<u64>, String) {
    let fits = |s: &str| match want {
        ColumnType::Int => s.parse::<i64>().is_ok(),
        ColumnType::Float => s.parse::<f64>().is_ok(),
        ColumnType::Text => true,
    };
    match data {
        ColumnData::Float(v) => v
            .iter()
            .position(|x| x.fract() != 0.0)
            .map(|i| (Some(i as u64 + 2), v[i].to_string()))
            .unwrap_or((None, "decimal numbers".into())),
        ColumnData::Text { codes, labels } => codes
            .iter()
            .position(|&c| !fits(&labels[c as usize]))
            .map(|i| (Some(i as u64 + 2), labels[codes[i] as usize].clone()))
            .unwrap_or((None, "text".into())),
        ColumnData::Int(_) => (None, "integers".into()),
    }
}

fn to_text(data: &ColumnData) -> ColumnData {
    let strings: Vec<String> = match data {
        ColumnData::Int(v) => v.iter().map(|x| x.to_string()).collect(),
        ColumnData::Float(v) => v.iter().map(|x| x.to_string()).collect(),
        ColumnData::Text { .. } => return data.clone(),
    };
    let mut b = TextBuilder::default();
    for s in &strings {
        b.push(s);
    }
    b.finish()
}

/// Reorder rows so that row `i` is agent `i`, when an `id` column exists.
fn order_by_id(path: &Path, columns: Vec<Column>, lines: Option<&[u64]>) -> Result<Vec<Column>, IoError> {
    let Some(idcol) = columns.iter().find(|c| c.name == ID_COLUMN) else {
        return Ok(columns);
    };
    let line_of = |row: usize| lines.map_or(row as u64 + 2, |l| l[row]);
    let ColumnData::Int(ids) = &idcol.data else {
        let (line, value) = first_misfit(&idcol.data, ColumnType::Int);
        return Err(IoError::WrongType {
            path: path.to_path_buf(),
            line,
            column: ID_COLUMN.into(),
            expected: "int".into(),
            value,
        });
    };
    let n = ids.len();
    let mut row_of = vec![usize::MAX; n];
    for (row, &id) in ids.iter().enumerate() {
        if id < 0 || id as u64 >= n as u64 {
            return Err(IoError::IdOutOfRange {
                path: path.to_path_buf(),
                line: line_of(row),
                column: ID_COLUMN.into(),
                id,
                n: n as u64,
            });
        }
        if row_of[id as usize] != usize::MAX {
            return Err(IoError::DuplicateId {
                path: path.to_path_buf(),
                line: line_of(row),
                first: line_of(row_of[id as usize]),
                id,
            });
        }
        row_of[id as usize] = row;
    }
    Ok(columns
        .into_iter()
        .map(|c| Column {
            data: permute(&c.data, &row_of),
            name: c.name,
        })
        .collect())
}

fn permute(data: &ColumnData, row_of: &[usize]) -> ColumnData {
    match data {
        ColumnData::Int(v) => ColumnData::Int(row_of.iter().map(|&r| v[r]).collect()),
        ColumnData::Float(v) => ColumnData::Float(row_of.iter().map(|&r| v[r]).collect()),
        ColumnData::Text { codes, labels } => ColumnData::Text {
            codes: row_of.iter().map(|&r| codes[r]).collect(),
            labels: labels.clone(),
        },
    }
}

#[derive(Default)]
struct TextBuilder {
    codes: Vec<u32>,
    labels: Vec<String>,
    index: HashMap<String, u32>,
}

/// Field metadata key holding a text column's labels in code order, so that
/// a written population reads back with the same codes (and labels no agent
/// has, like a neighbourhood with no residents).
const LABELS_KEY: &str = "myriad:labels";

impl TextBuilder {
    /// A builder that starts from the labels stored with the field, if any.
    fn seeded(field: &arrow_schema::Field) -> TextBuilder {
        let mut t = TextBuilder::default();
        let labels: Vec<String> = field
            .metadata()
            .get(LABELS_KEY)
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default();
        for l in labels {
            if !t.index.contains_key(&l) {
                t.index.insert(l.clone(), t.labels.len() as u32);
                t.labels.push(l);
            }
        }
        t
    }

    fn push(&mut self, s: &str) {
        let code = match self.index.get(s) {
            Some(&c) => c,
            None => {
                let c = self.labels.len() as u32;
                self.labels.push(s.to_string());
                self.index.insert(s.to_string(), c);
                c
            }
        };
        self.codes.push(code);
    }

    /// A dictionary-encoded batch: each distinct value is looked up once.
    fn push_dictionary(&mut self, arr: &arrow_array::DictionaryArray<Int32Type>) {
        let values = arr.values().as_string::<i32>();
        let map: Vec<u32> = values
            .iter()
            .map(|s| {
                let s = s.unwrap_or("");
                match self.index.get(s) {
                    Some(&c) => c,
                    None => {
                        let c = self.labels.len() as u32;
                        self.labels.push(s.to_string());
                        self.index.insert(s.to_string(), c);
                        c
                    }
                }
            })
            .collect();
        self.codes.extend(arr.keys().values().iter().map(|&k| map[k as usize]));
    }

    fn finish(self) -> ColumnData {
        ColumnData::Text {
            codes: self.codes,
            labels: self.labels,
        }
    }
}

/// Open a CSV file (fields trimmed) and read its header.
pub(crate) fn open_csv(path: &Path) -> Result<(csv::Reader<File>, Vec<String>), IoError> {
    let f = File::open(path).map_err(|e| IoError::file(path, e))?;
    let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(f);
    let header = rdr
        .headers()
        .map_err(|e| IoError::from_csv(path, e))?
        .iter()
        .map(str::to_string)
        .collect();
    Ok((rdr, header))
}

/// Refuse a record with a field spanning several lines. Population and
/// edge files hold one agent or edge per line, so such a field is almost
/// always a quote that was never closed, which would otherwise swallow
/// every following row into one value.
pub(crate) fn check_single_line(path: &Path, rec: &csv::StringRecord, header: &[String]) -> Result<(), IoError> {
    if let Some((j, _)) = rec.iter().enumerate().find(|(_, f)| f.contains(['\n', '\r'])) {
        let line = rec.position().map_or(0, |p| p.line());
        let column = header.get(j).map_or_else(|| format!("{}", j + 1), |h| format!("'{h}'"));
        return Err(IoError::format(
            path,
            Some(line),
            format!(
                "a quoted value in column {column} opens on this line and is not closed before the end of the line (a stray or missing '\"'?); values may not span lines"
            ),
        ));
    }
    Ok(())
}

/// A header must name every column, once.
fn check_header(path: &Path, header: &[String]) -> Result<(), IoError> {
    if header.is_empty() || header.iter().all(|h| h.is_empty()) {
        return Err(IoError::format(path, Some(1), "no header row"));
    }
    for (i, h) in header.iter().enumerate() {
        if h.is_empty() {
            return Err(IoError::format(
                path,
                Some(1),
                format!("column {} has an empty name", i + 1),
            ));
        }
        if header[..i].contains(h) {
            return Err(IoError::format(path, Some(1), format!("column '{h}' appears twice")));
        }
    }
    Ok(())
}

/// Two passes: the first infers each column's type, the second parses.
/// Returns the columns and the file line of each row (for error messages).
fn read_csv_columns(path: &Path) -> Result<(Vec<Column>, Option<Vec<u64>>), IoError> {
    let (mut rdr, header) = open_csv(path)?;
    check_header(path, &header)?;
    let w = header.len();
    let mut all_int = vec![true; w];
    let mut all_num = vec![true; w];
    let mut rec = csv::StringRecord::new();
    let mut lines = Vec::new();
    while rdr.read_record(&mut rec).map_err(|e| IoError::from_csv(path, e))? {
        let line = rec.position().map_or(0, |p| p.line());
        check_single_line(path, &rec, &header)?;
        lines.push(line);
        for (j, field) in rec.iter().enumerate() {
            if field.is_empty() {
                return Err(IoError::format(
                    path,
                    Some(line),
                    format!("column '{}' is empty", header[j]),
                ));
            }
            if all_int[j] && field.parse::<i64>().is_err() {
                all_int[j] = false;
            }
            if !all_int[j] && all_num[j] && field.parse::<f64>().is_err() {
                all_num[j] = false;
            }
        }
    }
    enum Builder {
        Int(Vec<i64>),
        Float(Vec<f64>),
        Text(TextBuilder),
    }
    let mut builders: Vec<Builder> = (0..w)
        .map(|j| {
            if all_int[j] {
                Builder::Int(Vec::with_capacity(lines.len()))
            } else if all_num[j] {
                Builder::Float(Vec::with_capacity(lines.len()))
            } else {
                Builder::Text(TextBuilder::default())
            }
        })
        .collect();
    let (mut rdr, _) = open_csv(path)?;
    while rdr.read_record(&mut rec).map_err(|e| IoError::from_csv(path, e))? {
        for (b, field) in builders.iter_mut().zip(rec.iter()) {
            // The first pass proved these parses succeed.
            match b {
                Builder::Int(v) => v.push(field.parse().unwrap_or_default()),
                Builder::Float(v) => v.push(field.parse().unwrap_or_default()),
                Builder::Text(t) => t.push(field),
            }
        }
    }
    let columns = header
        .into_iter()
        .zip(builders)
        .map(|(name, b)| Column {
            name,
            data: match b {
                Builder::Int(v) => ColumnData::Int(v),
                Builder::Float(v) => ColumnData::Float(v),
                Builder::Text(t) => t.finish(),
            },
        })
        .collect();
    Ok((columns, Some(lines)))
}

/// A column being read from Parquet.
enum Acc {
    Int(Vec<i64>),
    Float(Vec<f64>),
    Text(TextBuilder),
}

fn read_parquet_columns(path: &Path) -> Result<Vec<Column>, IoError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let f = File::open(path).map_err(|e| IoError::file(path, e))?;
    let perr = |e: &dyn std::fmt::Display| IoError::format(path, None, format!("not a readable Parquet file: {e}"));
    let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| perr(&e))?;
    let schema = builder.schema().clone();
    let reader = builder.build().map_err(|e| perr(&e))?;
    let mut accs: Vec<Acc> = schema
        .fields()
        .iter()
        .map(|field| accumulator(path, field))
        .collect::<Result<_, _>>()?;
    let mut rows_before = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| perr(&e))?;
        for (j, (arr, acc)) in batch.columns().iter().zip(accs.iter_mut()).enumerate() {
            let name = schema.field(j).name();
            if arr.null_count() > 0 {
                let row = (0..arr.len()).find(|&r| arr.is_null(r)).unwrap_or(0);
                return Err(IoError::format(
                    path,
                    None,
                    format!(
                        "column '{name}' has a missing (null) value at row {}",
                        rows_before + row as u64 + 1
                    ),
                ));
            }
            append(path, name, acc, arr)?;
        }
        rows_before += batch.num_rows() as u64;
    }
    Ok(schema
        .fields()
        .iter()
        .zip(accs)
        .map(|(f, acc)| Column {
            name: f.name().clone(),
            data: match acc {
                Acc::Int(v) => ColumnData::Int(v),
                Acc::Float(v) => ColumnData::Float(v),
                Acc::Text(t) => t.finish(),
            },
        })
        .collect())
}

/// How a Parquet field is read: integers (and booleans), floats or text.
fn accumulator(path: &Path, field: &arrow_schema::Field) -> Result<Acc, IoError> {
    Ok(match field.data_type() {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Boolean => Acc::Int(Vec::new()),
        DataType::Float32 | DataType::Float64 => Acc::Float(Vec::new()),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Acc::Text(TextBuilder::seeded(field)),
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
            Acc::Text(TextBuilder::seeded(field))
        }
        other => {
            return Err(IoError::format(
                path,
                None,
                format!("column '{}' has Parquet/Arrow type {other}, which myriad cannot read (use integers, floats, booleans or strings)", field.name()),
            ))
        }
    })
}

/// Append one batch's values of a column.
fn append(path: &Path, name: &str, acc: &mut Acc, arr: &arrow_array::ArrayRef) -> Result<(), IoError> {
    macro_rules! ints {
        ($t:ty, $v:expr) => {
            $v.extend(arr.as_primitive::<$t>().values().iter().map(|&x| x as i64))
        };
    }
    match (acc, arr.data_type()) {
        (Acc::Int(v), DataType::Int8) => ints!(Int8Type, v),
        (Acc::Int(v), DataType::Int16) => ints!(Int16Type, v),
        (Acc::Int(v), DataType::Int32) => ints!(Int32Type, v),
        (Acc::Int(v), DataType::Int64) => ints!(Int64Type, v),
        (Acc::Int(v), DataType::UInt8) => ints!(UInt8Type, v),
        (Acc::Int(v), DataType::UInt16) => ints!(UInt16Type, v),
        (Acc::Int(v), DataType::UInt32) => ints!(UInt32Type, v),
        (Acc::Int(v), DataType::UInt64) => {
            for &x in arr.as_primitive::<UInt64Type>().values().iter() {
                v.push(
                    i64::try_from(x).map_err(|_| {
                        IoError::format(path, None, format!("column '{name}' has value {x}, too large"))
                    })?,
                );
            }
        }
        (Acc::Int(v), DataType::Boolean) => v.extend(arr.as_boolean().iter().map(|b| b.unwrap_or(false) as i64)),
        (Acc::Float(v), DataType::Float32) => {
            v.extend(arr.as_primitive::<Float32Type>().values().iter().map(|&x| x as f64))
        }
        (Acc::Float(v), DataType::Float64) => v.extend(arr.as_primitive::<Float64Type>().values().iter().copied()),
        (Acc::Text(t), DataType::Utf8) => arr.as_string::<i32>().iter().for_each(|s| t.push(s.unwrap_or(""))),
        (Acc::Text(t), DataType::LargeUtf8) => arr.as_string::<i64>().iter().for_each(|s| t.push(s.unwrap_or(""))),
        (Acc::Text(t), DataType::Utf8View) => arr.as_string_view().iter().for_each(|s| t.push(s.unwrap_or(""))),
        (Acc::Text(t), DataType::Dictionary(k, _)) if **k == DataType::Int32 => {
            t.push_dictionary(arr.as_dictionary::<Int32Type>())
        }
        (_, other) => {
            return Err(IoError::format(
                path,
                None,
                format!("column '{name}' changes type to {other} between row groups"),
            ))
        }
    }
    Ok(())
}

/// Write a population to Parquet, one row per agent in id order: integer
/// columns as int64, decimals as float64, text as dictionary-encoded
/// strings. [`read_population`] reads it back unchanged (the cache of a
/// built synthetic population).
pub fn write_population_parquet(path: &Path, population: &Population) -> Result<(), IoError> {
    use arrow_array::{ArrayRef, DictionaryArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
    use arrow_schema::{Field, Schema};
    use std::sync::Arc;
    let err = |e: &dyn std::fmt::Display| IoError::write(path, std::io::Error::other(e.to_string()));
    if population.columns().is_empty() {
        return Err(IoError::format(
            path,
            None,
            "the population has no attribute columns to write".to_string(),
        ));
    }
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for c in population.columns() {
        match &c.data {
            ColumnData::Int(v) => {
                fields.push(Field::new(&c.name, DataType::Int64, false));
                arrays.push(Arc::new(Int64Array::from(v.clone())));
            }
            ColumnData::Float(v) => {
                fields.push(Field::new(&c.name, DataType::Float64, false));
                arrays.push(Arc::new(Float64Array::from(v.clone())));
            }
            ColumnData::Text { codes, labels } => {
                let keys = Int32Array::from_iter_values(codes.iter().map(|&k| k as i32));
                let values = Arc::new(StringArray::from_iter_values(labels.iter()));
                let dict = DictionaryArray::<Int32Type>::try_new(keys, values).map_err(|e| err(&e))?;
                let labels_json = serde_json::to_string(labels).map_err(|e| err(&e))?;
                fields.push(
                    Field::new(
                        &c.name,
                        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                        false,
                    )
                    .with_metadata(HashMap::from([(LABELS_KEY.to_string(), labels_json)])),
                );
                arrays.push(Arc::new(dict));
            }
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema, arrays).map_err(|e| err(&e))?;
    write_agent_rows(path, path, &batch)
}

/// Write one row per agent to `file` (errors name `path`, the file the
/// caller means), in row groups of a million agents, which keep the
/// writer's buffers small.
fn write_agent_rows(file: &Path, path: &Path, batch: &arrow_array::RecordBatch) -> Result<(), IoError> {
    let err = |e: &dyn std::fmt::Display| IoError::write(path, std::io::Error::other(e.to_string()));
    let f = File::create(file).map_err(|e| IoError::write(path, e))?;
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).map_err(|e| err(&e))?;
    let rows = batch.num_rows();
    let mut start = 0;
    while start < rows {
        let len = (rows - start).min(1 << 20);
        w.write(&batch.slice(start, len)).map_err(|e| err(&e))?;
        start += len;
    }
    w.close().map_err(|e| err(&e))?;
    Ok(())
}

/// One rank's part of the agents' state at one step, as Parquet: a global
/// `agent` id column (from `first_agent`) and one column per state column;
/// small-code columns carry their labels in the field metadata, as in
/// population files.
pub fn write_agents_parquet(
    path: &Path,
    first_agent: u32,
    columns: &[(&str, myriad_core::model::ColumnView<'_>, Option<&[&str]>)],
) -> Result<(), IoError> {
    use arrow_array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, UInt16Array, UInt32Array, UInt8Array};
    use arrow_schema::{Field, Schema};
    use myriad_core::model::ColumnView;
    use std::sync::Arc;
    let err = |e: &dyn std::fmt::Display| IoError::write(path, std::io::Error::other(e.to_string()));
    let n = columns.first().map_or(0, |c| c.1.len());
    let mut fields = vec![Field::new("agent", DataType::UInt32, false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(UInt32Array::from_iter_values(
        (0..n as u32).map(|i| first_agent + i),
    ))];
    for (name, view, labels) in columns {
        let (ty, array): (DataType, ArrayRef) = match view {
            ColumnView::U8(v) => (DataType::UInt8, Arc::new(UInt8Array::from(v.to_vec()))),
            ColumnView::U16(v) => (DataType::UInt16, Arc::new(UInt16Array::from(v.to_vec()))),
            ColumnView::U32(v) => (DataType::UInt32, Arc::new(UInt32Array::from(v.to_vec()))),
            ColumnView::F64(v) => (DataType::Float64, Arc::new(Float64Array::from(v.to_vec()))),
            ColumnView::Bool(v) => (DataType::Boolean, Arc::new(BooleanArray::from(v.to_vec()))),
        };
        let mut field = Field::new(*name, ty, false);
        if let Some(l) = labels {
            let json = serde_json::to_string(l).map_err(|e| err(&e))?;
            field = field.with_metadata(HashMap::from([(LABELS_KEY.to_string(), json)]));
        }
        fields.push(field);
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema, arrays).map_err(|e| err(&e))?;
    // Under a temporary name first: a snapshot that exists is whole.
    let tmp = path.with_extension("parquet.tmp");
    write_agent_rows(&tmp, path, &batch)?;
    std::fs::rename(&tmp, path).map_err(|e| IoError::write(path, e))
}
