//! `--set key.path=value` and `--seed`: changes applied to the scenario's
//! TOML before it is read, so that every value is checked the same way.

use super::Overrides;
use crate::toml_reader::ScenarioError;
use std::path::Path;
use toml_edit::{Item, Value};

/// Parse `text` and apply the overrides; also returns the key paths changed.
pub(super) fn apply_overrides(
    file: &Path,
    text: &str,
    overrides: &Overrides,
) -> Result<(toml_edit::DocumentMut, Vec<String>), ScenarioError> {
    let plain_err = |line: Option<usize>, key: &str, message: String| ScenarioError {
        file: file.to_path_buf(),
        line,
        key: key.to_string(),
        message,
    };
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        plain_err(line, "", format!("invalid TOML: {}", e.message().trim()))
    })?;
    let mut overridden = Vec::new();
    for assignment in &overrides.set {
        let path = apply_set(&mut doc, assignment).map_err(|m| plain_err(None, assignment, m))?;
        overridden.push(path);
    }
    if let Some(seed) = overrides.seed {
        let seed = i64::try_from(seed).map_err(|_| {
            plain_err(
                None,
                "seed",
                format!("--seed must be at most {} (got {seed})", i64::MAX),
            )
        })?;
        doc["seed"] = toml_edit::value(seed);
        overridden.push("seed".into());
    }
    Ok((doc, overridden))
}

/// Apply one `key.path=value` to the document; returns the key path.
/// Array-of-table entries are addressed by index or by their `name`
/// (`layers.community.mean_degree`).
pub(super) fn apply_set(doc: &mut toml_edit::DocumentMut, assignment: &str) -> Result<String, String> {
    let (path, raw) = assignment
        .split_once('=')
        .ok_or_else(|| "expected key.path=value".to_string())?;
    let path = path.trim();
    let value: Value = raw.trim().parse().unwrap_or_else(|_| Value::from(raw.trim()));
    let parts: Vec<&str> = path.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err("empty key in path".into());
    }
    let mut item: &mut Item = doc.as_item_mut();
    let mut shown = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        if let Item::ArrayOfTables(arr) = item {
            let idx = match part.parse::<usize>() {
                Ok(k) => k,
                Err(_) => arr
                    .iter()
                    .position(|t| t.get("name").and_then(|n| n.as_str()) == Some(part))
                    .ok_or_else(|| format!("no entry named '{part}' in {}", shown.join(".")))?,
            };
            let len = arr.len();
            let t = arr
                .get_mut(idx)
                .ok_or_else(|| format!("{} has {len} entries, no index {idx}", shown.join(".")))?;
            shown.push(idx.to_string());
            if last {
                return Err("cannot replace a whole table entry".into());
            }
            let next = parts[i + 1];
            // Descend into the table: the remaining parts continue from here.
            let rest: Vec<&str> = parts[i + 1..].to_vec();
            let mut sub: &mut Item = t.entry(next).or_insert(Item::None);
            if rest.len() == 1 {
                *sub = Item::Value(value);
                shown.push(next.to_string());
                return Ok(shown.join("."));
            }
            shown.push(next.to_string());
            for (j, p) in rest[1..].iter().enumerate() {
                if sub.is_none() {
                    *sub = Item::Table(toml_edit::Table::new());
                }
                let tl = sub
                    .as_table_like_mut()
                    .ok_or_else(|| format!("'{}' is not a table", shown.join(".")))?;
                sub = tl.entry(p).or_insert(Item::None);
                shown.push(p.to_string());
                if j == rest.len() - 2 {
                    *sub = Item::Value(value);
                    return Ok(shown.join("."));
                }
            }
            unreachable!("loop returns at the last part");
        }
        if item.is_none() {
            *item = Item::Table(toml_edit::Table::new());
        }
        let table = item
            .as_table_like_mut()
            .ok_or_else(|| format!("'{}' is not a table", shown.join(".")))?;
        shown.push(part.to_string());
        let next = table.entry(part).or_insert(Item::None);
        if last {
            *next = Item::Value(value);
            return Ok(shown.join("."));
        }
        item = next;
    }
    unreachable!("loop returns at the last part")
}
