//! `[population]`: generated agents (`size`), a file, or a registered
//! population source (`synthetic = "..."`) with its options.

use super::PopulationSource;
use crate::toml_reader::{ScenarioError, Table};
use myriad_core::population::ColumnType;
use myriad_core::source::{OptionValue, SourceOptions, SourceSpec};
use std::path::Path;
use toml_edit::Value;

/// The population table.
pub(super) fn parse(root: &mut Table, base_dir: &Path) -> Result<PopulationSource, ScenarioError> {
    let mut t = root
        .table("population")?
        .ok_or_else(|| root.error_here("missing table [population] (give size = N or file = \"...\")"))?;
    let size = t.int("size", 1, u32::MAX as i64)?;
    let pfile = t.string("file")?;
    let source = match t.string("synthetic")? {
        Some(kind) => {
            let spec = lookup(&t, &kind)?;
            if size.is_some() || pfile.is_some() {
                return Err(t.error("synthetic", "give one of size, file or synthetic"));
            }
            let options = options(&mut t, spec)?;
            (spec.check)(&options).map_err(|(key, msg)| t.error(&key, msg))?;
            Some(PopulationSource::Source { spec, options })
        }
        None => None,
    };
    let columns = columns(&mut t)?;
    let p = match (size, pfile) {
        _ if source.is_some() => source.expect("checked"),
        (Some(n), None) if columns.is_empty() => PopulationSource::Synthetic(n as u32),
        (Some(_), None) => {
            return Err(t.error(
                "columns",
                "column requirements apply to a population file; add file = \"...\"",
            ))
        }
        (None, Some(f)) => PopulationSource::File {
            path: base_dir.join(f),
            columns,
        },
        (Some(_), Some(_)) => return Err(t.error("file", "give either size or file, not both")),
        (None, None) => {
            return Err(t.error_here("needs size = N (synthetic agents), file = \"people.csv\" or synthetic = \"nyc\""))
        }
    };
    t.finish()?;
    Ok(p)
}

/// A registered source by name.
fn lookup(t: &Table, kind: &str) -> Result<&'static SourceSpec, ScenarioError> {
    myriad_models::source(kind).ok_or_else(|| {
        let known: Vec<&str> = myriad_models::SOURCES.iter().map(|s| s.name).collect();
        t.error(
            "synthetic",
            format!("unknown synthetic population '{kind}' (known: {})", known.join(", ")),
        )
    })
}

/// `columns = { name = "int" | "float" | "text" }`: columns a population
/// file must have.
fn columns(t: &mut Table) -> Result<Vec<(String, ColumnType)>, ScenarioError> {
    let mut columns = Vec::new();
    if let Some(ct) = t.table("columns")? {
        for k in ct.keys() {
            let ty = ct
                .raw(&k)
                .and_then(|i| i.as_str())
                .and_then(ColumnType::parse)
                .ok_or_else(|| ct.error(&k, "column type must be \"int\", \"float\" or \"text\""))?;
            columns.push((k, ty));
        }
    }
    Ok(columns)
}

/// The keys of `[population]` a source reads (everything but `synthetic`,
/// `size`, `file` and `columns`), as option values.
fn options(t: &mut Table, spec: &SourceSpec) -> Result<SourceOptions, ScenarioError> {
    let mut options = SourceOptions::new();
    for key in t.keys() {
        if ["synthetic", "size", "file", "columns"].contains(&key.as_str()) {
            continue;
        }
        let item = t.raw(&key).expect("key listed by the table");
        let value = match item.as_value() {
            Some(Value::Integer(i)) => OptionValue::Number(*i.value() as f64),
            Some(Value::Float(f)) => OptionValue::Number(*f.value()),
            Some(Value::String(s)) => OptionValue::Text(s.value().clone()),
            Some(Value::Array(a)) => match a.iter().map(|v| v.as_str().map(str::to_string)).collect() {
                Some(list) => OptionValue::List(list),
                None => return Err(t.error(&key, "must be a list of strings")),
            },
            _ => {
                return Err(t.error(
                    &key,
                    format!(
                        "must be a number, a string or a list of strings (an option of synthetic = \"{}\")",
                        spec.name
                    ),
                ))
            }
        };
        t.mark(key.clone());
        options.insert(key, value);
    }
    Ok(options)
}
