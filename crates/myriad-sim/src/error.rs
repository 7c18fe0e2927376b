//! The library's errors: what went wrong, typed, so that a front end can
//! tell bad input (the command line's exit code 2, HTTP 400, a Python
//! `ValueError`) from a failure while running (exit code 1).

use crate::sinks::SinkError;
use crate::toml_reader::ScenarioError;
use myriad_io::IoError;

/// An error caused by the user's input, in words that name the file, key or
/// option concerned.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scenario file (with its line and key).
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// Other bad input: options, data, sizes.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A data file could not be read, or an output could not be written.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A file operation on an output folder failed.
    #[error("{what}: {source}")]
    File {
        /// What was being done ("writing runs/x/summary.json").
        what: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A sink could not take a row.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A failure while running (a provider that failed, a plot that could
    /// not be drawn, no run completed).
    #[error("{0}")]
    Run(String),
    /// Another rank of a partitioned run failed (its own error says why);
    /// this rank stops too, with the same kind of error.
    #[error("rank {rank} of the run failed (its error is reported by that rank)")]
    Elsewhere {
        /// The lowest rank that failed.
        rank: usize,
        /// Was its error bad input?
        input: bool,
    },
}

impl Error {
    /// Is the error the input's fault (rather than a failure while running)?
    pub fn is_input(&self) -> bool {
        match self {
            Error::Scenario(_) | Error::Input(_) => true,
            Error::Elsewhere { input, .. } => *input,
            Error::Io(e) => !e.is_write(),
            Error::Sink(SinkError::Io(e)) => !e.is_write(),
            Error::File { .. } | Error::Sink(_) | Error::Run(_) => false,
        }
    }
}

impl From<myriad_core::model::ModelError> for Error {
    fn from(e: myriad_core::model::ModelError) -> Error {
        Error::Input(InputError(e.to_string()))
    }
}

impl From<myriad_core::params::ParamError> for Error {
    fn from(e: myriad_core::params::ParamError) -> Error {
        Error::Input(InputError(e.to_string()))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Error {
        Error::Run(format!("cannot write JSON: {e}"))
    }
}

impl From<myriad_core::CsrError> for Error {
    fn from(e: myriad_core::CsrError) -> Error {
        Error::Input(InputError(e.to_string()))
    }
}

/// The library's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Say what was being done when a file operation failed.
pub trait FileContext<T> {
    /// The error as [`Error::File`], with `what` computed on failure only.
    fn doing(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> FileContext<T> for std::io::Result<T> {
    fn doing(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::File { what: what(), source })
    }
}

/// An error and its causes as one line, each cause once: a cause whose
/// text is already part of the message before it (an OS error repeated by
/// a wrapper) is not printed again, and the whole is bounded in length.
/// What the command line prints and the dashboard answers.
pub fn one_line<'a>(causes: impl IntoIterator<Item = &'a (dyn std::error::Error + 'static)>) -> String {
    let mut out = String::new();
    for cause in causes {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    const MAX_CHARS: usize = 4000;
    if out.chars().count() > MAX_CHARS {
        let head: String = out.chars().take(MAX_CHARS).collect();
        out = format!("{head}... (message cut)");
    }
    out
}

/// One fallible phase of a partitioned run, agreed over the ranks: a
/// failure on any rank fails them all (the others with [`Error::Elsewhere`]
/// naming the lowest failing rank), so that every rank leaves the
/// collective calls at the same point and exits with the same kind of
/// error. A collective call: every rank makes it. One process: `result`.
pub fn agree<T>(comm: &dyn myriad_core::comm::Comm, result: Result<T>) -> Result<T> {
    if comm.ranks() == 1 {
        return result;
    }
    let kind = match &result {
        Ok(_) => 0,
        Err(e) if e.is_input() => 2,
        Err(_) => 1,
    };
    // The maximum of (kind, MAX - rank) gives the kind and the lowest failing rank.
    let mut v = [kind, if kind > 0 { u64::MAX - comm.rank() as u64 } else { 0 }];
    comm.max_u64(&mut v);
    match result {
        Ok(_) if v[0] > 0 => Err(Error::Elsewhere {
            rank: (u64::MAX - v[1]) as usize,
            input: v[0] == 2,
        }),
        r => r,
    }
}
