//! Input and output errors, each naming the file concerned.

use std::path::PathBuf;

/// An error reading or writing a data file.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The file could not be opened or read.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// An output file could not be written (a full disk, no permission):
    /// a failure of the run, not of its input.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file is not valid CSV or Parquet.
    #[error("{}{}: {message}", path.display(), line_suffix(*line))]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<u64>,
        /// What is wrong.
        message: String,
    },
    /// A row has a different number of fields from the header.
    #[error("{}:{line}: row has {found} fields but the header has {expected}", path.display())]
    Ragged {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// Header width.
        expected: usize,
        /// This row's width.
        found: usize,
    },
    /// A required column is absent.
    #[error("{}: missing column '{column}' (columns present: {})", path.display(), clip(&present.join(", ")))]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column sought.
        column: String,
        /// Columns the file has.
        present: Vec<String>,
    },
    /// A value does not have the column's required type.
    #[error("{}{}: column '{column}' must hold {expected} values, found \"{}\"", path.display(), line_suffix(*line), clip(value))]
    WrongType {
        /// The file.
        path: PathBuf,
        /// 1-based line (CSV) or row (Parquet, counting from 1 after the header).
        line: Option<u64>,
        /// Column name.
        column: String,
        /// Expected type.
        expected: String,
        /// The value found.
        value: String,
    },
    /// An agent id is negative or not below the population size.
    #[error("{}:{line}: column '{column}' has agent id {id}, outside 0..{n}", path.display())]
    IdOutOfRange {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// Column name.
        column: String,
        /// The id.
        id: i64,
        /// Population size.
        n: u64,
    },
    /// The same agent id appears on two rows.
    #[error("{}:{line}: agent id {id} already appeared on line {first}", path.display())]
    DuplicateId {
        /// The file.
        path: PathBuf,
        /// 1-based line of the repeat.
        line: u64,
        /// 1-based line of the first occurrence.
        first: u64,
        /// The id.
        id: i64,
    },
    /// The file has a header but no rows.
    #[error("{}: no rows", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// At most this many characters of a value from the user's file are shown
/// in a message: enough to recognise it, never the whole of a damaged file.
pub const SHOWN_CHARS: usize = 80;

/// `text`, cut to [`SHOWN_CHARS`] characters with a note of the full length.
pub fn clip(text: &str) -> String {
    let n = text.chars().count();
    if n <= SHOWN_CHARS {
        text.to_string()
    } else {
        let head: String = text.chars().take(SHOWN_CHARS).collect();
        format!("{head}... ({n} characters)")
    }
}

fn line_suffix(line: Option<u64>) -> String {
    line.map(|l| format!(":{l}")).unwrap_or_default()
}

impl IoError {
    pub(crate) fn file(path: &std::path::Path, source: std::io::Error) -> IoError {
        IoError::File {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn write(path: &std::path::Path, source: std::io::Error) -> IoError {
        IoError::Write {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Is this a failure to write an output (not a problem with the input)?
    pub fn is_write(&self) -> bool {
        matches!(self, IoError::Write { .. })
    }

    pub(crate) fn format(path: &std::path::Path, line: Option<u64>, message: impl Into<String>) -> IoError {
        IoError::Format {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    /// Map a `csv` crate error to ours, keeping line numbers.
    pub(crate) fn from_csv(path: &std::path::Path, e: csv::Error) -> IoError {
        let line = e.position().map(|p| p.line());
        match e.into_kind() {
            csv::ErrorKind::Io(source) => IoError::file(path, source),
            csv::ErrorKind::UnequalLengths { pos, expected_len, len } => IoError::Ragged {
                path: path.to_path_buf(),
                line: pos.map(|p| p.line()).or(line).unwrap_or(0),
                expected: expected_len as usize,
                found: len as usize,
            },
            csv::ErrorKind::Utf8 { pos, err } => {
                IoError::format(path, pos.map(|p| p.line()).or(line), format!("invalid UTF-8 ({err})"))
            }
            other => IoError::format(path, line, format!("{other:?}")),
        }
    }
}
