//! Reading a TOML table key by key, so that every error can name the file,
//! the key path and the line, and unknown keys are rejected.

use myriad_core::calendar::NaiveDate;
use myriad_core::params::closest;
use std::fmt;
use std::path::{Path, PathBuf};
use toml_edit::{Item, TableLike, Value};

/// Where a step-or-date key points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepAt {
    /// This step.
    Step(u32),
    /// A date before the run's first day.
    BeforeStart {
        /// The date given.
        date: NaiveDate,
        /// The run's first day.
        start: NaiveDate,
    },
}

/// A problem in a scenario file, located as precisely as possible.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioError {
    /// The scenario file.
    pub file: PathBuf,
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `layers[0].mean_degree`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", clip(&self.key, SHOWN_CHARS))?;
        }
        write!(f, ": {}", clip_quoted(&self.message))
    }
}

/// Characters of a user's value shown in a message: enough to recognise
/// it, never all of a 100,000-character string.
const SHOWN_CHARS: usize = 80;

/// `text` cut to `n` characters, with a note of its full length.
fn clip(text: &str, n: usize) -> String {
    let count = text.chars().count();
    if count <= n {
        return text.to_string();
    }
    let head: String = text.chars().take(n).collect();
    format!("{head}...({count} characters)")
}

/// A message with every quoted value ('...' or "...") longer than
/// [`SHOWN_CHARS`] cut, and the whole bounded: messages quote what the user
/// wrote, which may be anything.
fn clip_quoted(message: &str) -> String {
    let chars: Vec<char> = message.chars().collect();
    let mut out = String::with_capacity(message.len().min(4096));
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' {
            if let Some(len) = chars[i + 1..].iter().position(|&d| d == c) {
                let inner: String = chars[i + 1..i + 1 + len].iter().collect();
                out.push(c);
                out.push_str(&clip(&inner, SHOWN_CHARS));
                out.push(c);
                i += len + 2;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    clip(&out, 2000)
}

impl std::error::Error for ScenarioError {}

/// The text being read and where it came from.
pub struct Source<'a> {
    /// The file, for messages.
    pub file: &'a Path,
    /// The TOML text (after command-line overrides).
    pub text: &'a str,
    /// Key paths replaced by `--set`; errors on them say so instead of a line.
    pub overridden: &'a [String],
}

impl Source<'_> {
    fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .bytes()
            .filter(|&b| b == b'\n')
            .count()
            + 1
    }

    /// An error at a byte span (or none).
    pub fn error(&self, span: Option<std::ops::Range<usize>>, key: &str, message: impl Into<String>) -> ScenarioError {
        let mut message = message.into();
        let bare = key.replace(['[', ']'], ".").replace("..", ".");
        let from_cli = self
            .overridden
            .iter()
            .any(|o| bare.trim_end_matches('.') == o.as_str() || bare.starts_with(&format!("{o}.")));
        if from_cli {
            message.push_str(" (value given with --set)");
        }
        ScenarioError {
            file: self.file.to_path_buf(),
            line: if from_cli {
                None
            } else {
                span.map(|s| self.line_of(s.start))
            },
            key: key.to_string(),
            message,
        }
    }
}

/// A table being read; [`Table::finish`] rejects keys nobody asked for.
pub struct Table<'a> {
    src: &'a Source<'a>,
    table: &'a dyn TableLike,
    span: Option<std::ops::Range<usize>>,
    /// Key path of this table ("" for the root).
    pub path: String,
    used: Vec<&'static str>,
    marked: Vec<String>,
}

/// Spans of tables are recorded on the item; inline tables on the value.
fn item_span(item: &Item) -> Option<std::ops::Range<usize>> {
    item.span().or_else(|| item.as_table().and_then(|t| t.span()))
}

impl<'a> Table<'a> {
    /// The root table of a document.
    pub fn root(src: &'a Source<'a>, item: &'a Item) -> Table<'a> {
        Table {
            src,
            table: item.as_table_like().expect("a document root is a table"),
            span: Some(0..0),
            path: String::new(),
            used: Vec::new(),
            marked: Vec::new(),
        }
    }

    /// Full key path of `key` in this table.
    pub fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The span of `key`'s value, else of this table.
    pub fn span_of(&self, key: &str) -> Option<std::ops::Range<usize>> {
        self.table
            .get_key_value(key)
            .and_then(|(k, v)| item_span(v).or_else(|| k.span()))
            .or_else(|| self.span.clone())
    }

    /// An error about `key` of this table.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ScenarioError {
        self.src.error(self.span_of(key), &self.key_path(key), message)
    }

    /// An error about this table as a whole.
    pub fn error_here(&self, message: impl Into<String>) -> ScenarioError {
        self.src.error(self.span.clone(), &self.path, message)
    }

    /// An error for a missing required `key`, pointing at a likely typo of it.
    pub fn missing(&self, key: &str, message: impl Into<String>) -> ScenarioError {
        let typo = self
            .table
            .iter()
            .map(|(k, _)| k)
            .find(|k| !self.used.iter().any(|u| u == k) && strsim::levenshtein(k, key) <= 2);
        match typo {
            Some(k) => self.error(
                k,
                format!("unknown key; {} (is '{k}' a typo of '{key}'?)", message.into()),
            ),
            None => self.error_here(message),
        }
    }

    /// Mark `key` as known and return its item.
    pub fn get(&mut self, key: &'static str) -> Option<&'a Item> {
        self.used.push(key);
        self.table.get(key)
    }

    fn value(&mut self, key: &'static str) -> Option<&'a Value> {
        self.get(key).and_then(|i| i.as_value())
    }

    /// An optional number (integer or float).
    pub fn f64(&mut self, key: &'static str) -> Result<Option<f64>, ScenarioError> {
        match self.get(key) {
            None => Ok(None),
            Some(item) => match item.as_value() {
                Some(Value::Integer(i)) => Ok(Some(*i.value() as f64)),
                Some(Value::Float(f)) => Ok(Some(*f.value())),
                _ => Err(self.error(key, "must be a number")),
            },
        }
    }

    /// An optional number checked with `ok`, whose failure message is `expect`.
    pub fn f64_where(
        &mut self,
        key: &'static str,
        ok: impl Fn(f64) -> bool,
        expect: &str,
    ) -> Result<Option<f64>, ScenarioError> {
        match self.f64(key)? {
            Some(x) if !ok(x) || !x.is_finite() => Err(self.error(key, format!("must be {expect}, got {x}"))),
            other => Ok(other),
        }
    }

    /// An optional whole number within `min..=max`.
    pub fn int(&mut self, key: &'static str, min: i64, max: i64) -> Result<Option<i64>, ScenarioError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Integer(i)) => {
                let v = *i.value();
                if v < min || v > max {
                    Err(self.error(key, format!("must be between {min} and {max}, got {v}")))
                } else {
                    Ok(Some(v))
                }
            }
            Some(_) => Err(self.error(key, "must be a whole number")),
        }
    }

    /// An optional string.
    pub fn string(&mut self, key: &'static str) -> Result<Option<String>, ScenarioError> {
        match self.get(key) {
            None => Ok(None),
            Some(item) => match item.as_str() {
                Some(s) => Ok(Some(s.to_string())),
                None => Err(self.error(key, "must be a string")),
            },
        }
    }

    /// An optional date: `"YYYY-MM-DD"` or a TOML date (`2020-03-01`).
    pub fn date(&mut self, key: &'static str) -> Result<Option<NaiveDate>, ScenarioError> {
        match self.get(key) {
            None => Ok(None),
            Some(item) => self.date_of(key, item).map(Some),
        }
    }

    /// The date an item holds, or an error naming `key`.
    pub fn date_of(&self, key: &str, item: &Item) -> Result<NaiveDate, ScenarioError> {
        let text = match item.as_value() {
            Some(Value::String(s)) => s.value().clone(),
            Some(Value::Datetime(d)) if d.value().time.is_none() && d.value().offset.is_none() => d.value().to_string(),
            _ => return Err(self.error(key, "must be a date, \"YYYY-MM-DD\"")),
        };
        myriad_core::calendar::parse_date(&text).map_err(|e| self.error(key, e))
    }

    /// An optional step: a whole number, or on a dated run a date (the step
    /// falling on it; `None` in the error's place if the date is before the start).
    pub fn step_or_date(
        &mut self,
        key: &'static str,
        calendar: &myriad_core::Calendar,
    ) -> Result<Option<StepAt>, ScenarioError> {
        let Some(item) = self.get(key) else { return Ok(None) };
        if let Some(Value::Integer(_)) = item.as_value() {
            return Ok(self.int(key, 0, u32::MAX as i64)?.map(|v| StepAt::Step(v as u32)));
        }
        let date = self.date_of(key, item).map_err(|mut e| {
            e.message = format!("must be a step number or a date \"YYYY-MM-DD\" ({})", e.message);
            e
        })?;
        let Some(start) = calendar.start() else {
            return Err(self.error(
                key,
                format!("is the date {date}, but the scenario has no start_date: add start_date = \"YYYY-MM-DD\" or give a step number"),
            ));
        };
        Ok(Some(match calendar.step_of(date) {
            Some(s) => StepAt::Step(s),
            None => StepAt::BeforeStart { date, start },
        }))
    }

    /// An optional boolean.
    pub fn bool(&mut self, key: &'static str) -> Result<Option<bool>, ScenarioError> {
        match self.get(key) {
            None => Ok(None),
            Some(item) => item
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.error(key, "must be true or false")),
        }
    }

    /// An optional array of numbers.
    pub fn numbers(&mut self, key: &'static str) -> Result<Option<Vec<f64>>, ScenarioError> {
        match self.get(key) {
            None => Ok(None),
            Some(item) => {
                let arr = item
                    .as_array()
                    .ok_or_else(|| self.error(key, "must be an array of numbers"))?;
                arr.iter()
                    .map(|v| match v {
                        Value::Integer(i) => Ok(*i.value() as f64),
                        Value::Float(f) => Ok(*f.value()),
                        _ => Err(self.error(key, "must be an array of numbers")),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some)
            }
        }
    }

    /// An optional sub-table (standard or inline).
    pub fn table(&mut self, key: &'static str) -> Result<Option<Table<'a>>, ScenarioError> {
        match self.get(key) {
            None => Ok(None),
            Some(item) => match item.as_table_like() {
                Some(t) => Ok(Some(Table {
                    src: self.src,
                    table: t,
                    span: item_span(item),
                    path: self.key_path(key),
                    used: Vec::new(),
                    marked: Vec::new(),
                })),
                None => Err(self.error(key, "must be a table")),
            },
        }
    }

    /// An optional array of tables (`[[key]]`), possibly empty.
    pub fn tables(&mut self, key: &'static str) -> Result<Vec<Table<'a>>, ScenarioError> {
        let path = self.key_path(key);
        let src = self.src;
        let entry = |i: usize, table: &'a dyn TableLike, span| Table {
            src,
            table,
            span,
            path: format!("{path}[{i}]"),
            used: Vec::new(),
            marked: Vec::new(),
        };
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Item::ArrayOfTables(a)) => Ok(a.iter().enumerate().map(|(i, t)| entry(i, t, t.span())).collect()),
            Some(Item::Value(Value::Array(a))) if a.iter().all(|v| v.as_inline_table().is_some()) => Ok(a
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.as_inline_table().map(|t| entry(i, t, t.span())))
                .collect()),
            Some(_) => Err(self.error(key, format!("must be an array of tables ([[{key}]])"))),
        }
    }

    /// Keys of this table in file order (does not mark them known).
    pub fn keys(&self) -> Vec<String> {
        self.table.iter().map(|(k, _)| k.to_string()).collect()
    }

    /// The raw item of a key, marking nothing (for dynamic keys).
    pub fn raw(&self, key: &str) -> Option<&'a Item> {
        self.table.get(key)
    }

    /// Mark a key read by name at run time (options of a population source).
    pub fn mark(&mut self, key: String) {
        self.marked.push(key);
    }

    /// Reject keys that were never asked for, suggesting the closest known one.
    pub fn finish(self) -> Result<(), ScenarioError> {
        for (k, _) in self.table.iter() {
            if !self.used.contains(&k) && !self.marked.iter().any(|m| m == k) {
                let hint = closest(k, self.used.iter().copied())
                    .map(|c| format!(" (did you mean '{c}'?)"))
                    .unwrap_or_else(|| {
                        let mut known = self.used.clone();
                        known.sort_unstable();
                        known.dedup();
                        format!(" (known keys here: {})", known.join(", "))
                    });
                return Err(self.error(k, format!("unknown key{hint}")));
            }
        }
        Ok(())
    }
}
