//! Where a run's rows and events go as they are computed: files written
//! step by step, memory, a progress display, later a web page. Each sink's
//! methods can fail with a typed error, which stops the run.

use myriad_core::metrics::{MetricSpec, Recorder};
use myriad_io::{IoError, TimeseriesCsv};
use std::path::{Path, PathBuf};

/// A sink failed: which one, and why.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A file could not be written.
    #[error(transparent)]
    Io(#[from] IoError),
    /// Anything else, in words.
    #[error("{0}")]
    Other(String),
}

/// What a sink learns when the run starts.
pub struct RunStart<'a> {
    /// What building took (agents, layers).
    pub built: &'a crate::simulation::BuildInfo,
    /// The metrics, in row order.
    pub metrics: &'a [MetricSpec],
    /// Steps the run will compute (the last step's number).
    pub steps: u32,
    /// Agents.
    pub agents: u32,
    /// Dates of the steps, if the scenario has a calendar.
    pub calendar: &'a myriad_core::Calendar,
}

/// A receiver of a run's rows and events.
pub trait Sink {
    /// The run starts (before the row of step 0).
    fn start(&mut self, run: &RunStart) -> Result<(), SinkError> {
        let _ = run;
        Ok(())
    }

    /// The metric row of `step` (step 0 is the initial state).
    fn row(&mut self, step: u32, row: &[f64]) -> Result<(), SinkError>;

    /// Transcript events of `step` (what agents said or did).
    fn events(&mut self, step: u32, events: &[serde_json::Value]) -> Result<(), SinkError> {
        let _ = (step, events);
        Ok(())
    }

    /// Between steps, after the rows and events of `sim`'s current step
    /// (step 0 included): a sink that inspects agents or holds the run
    /// (the dashboard's pause) does it here, where the state is whole.
    fn between_steps(&mut self, sim: &crate::simulation::Simulation) -> Result<(), SinkError> {
        let _ = sim;
        Ok(())
    }

    /// The run ended (finished, interrupted or stopped by an error).
    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// `timeseries.csv`, one line per step, each written whole and flushed.
pub struct CsvSink {
    path: PathBuf,
    file: Option<TimeseriesCsv>,
}

impl CsvSink {
    /// A sink writing `path` once the run starts.
    pub fn new(path: &Path) -> CsvSink {
        CsvSink {
            path: path.to_path_buf(),
            file: None,
        }
    }
}

impl Sink for CsvSink {
    fn start(&mut self, run: &RunStart) -> Result<(), SinkError> {
        self.file = Some(TimeseriesCsv::create(&self.path, run.metrics, run.calendar)?);
        Ok(())
    }

    fn row(&mut self, step: u32, row: &[f64]) -> Result<(), SinkError> {
        match &mut self.file {
            Some(f) => Ok(f.write_row(step, row)?),
            None => Err(SinkError::Other("the CSV sink got a row before the run started".into())),
        }
    }
}

/// `transcript.jsonl`: one JSON object per event, with its step; the file
/// is created by the first event (runs without events write none).
pub struct TranscriptSink {
    path: PathBuf,
}

impl TranscriptSink {
    /// A sink appending to `path`.
    pub fn new(path: &Path) -> TranscriptSink {
        TranscriptSink {
            path: path.to_path_buf(),
        }
    }
}

impl Sink for TranscriptSink {
    fn row(&mut self, _step: u32, _row: &[f64]) -> Result<(), SinkError> {
        Ok(())
    }

    fn events(&mut self, step: u32, events: &[serde_json::Value]) -> Result<(), SinkError> {
        use std::io::Write;
        if events.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for e in events {
            let mut e = e.clone();
            if let Some(obj) = e.as_object_mut() {
                obj.insert("step".into(), serde_json::json!(step));
            }
            text.push_str(&e.to_string());
            text.push('\n');
        }
        let write = |path: &Path| -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
            f.write_all(text.as_bytes())?;
            f.flush()
        };
        write(&self.path).map_err(|e| {
            SinkError::Io(IoError::Write {
                path: self.path.clone(),
                source: e,
            })
        })
    }
}

/// Every row in memory (the analyses read results from here, not from files).
pub struct MemorySink {
    /// The rows recorded so far.
    pub recorder: Recorder,
}

impl MemorySink {
    /// An empty sink for these metrics.
    pub fn new(metrics: &[MetricSpec]) -> MemorySink {
        MemorySink {
            recorder: Recorder::new(metrics.to_vec()),
        }
    }
}

impl Sink for MemorySink {
    fn row(&mut self, step: u32, row: &[f64]) -> Result<(), SinkError> {
        self.recorder.record(step, row);
        Ok(())
    }
}

/// Every agent's state every `every` steps (and at step 0), one Parquet
/// file per rank: `<run>/agents/step-<k>/part-<rank>.parquet`, which
/// Arrow, pandas and polars read as one dataset per step.
pub struct AgentsSink {
    run: PathBuf,
    every: u32,
}

impl AgentsSink {
    /// Snapshots into `run`, every `every` steps (at least 1).
    pub fn new(run: &Path, every: u32) -> AgentsSink {
        AgentsSink {
            run: run.to_path_buf(),
            every: every.max(1),
        }
    }
}

impl Sink for AgentsSink {
    fn row(&mut self, _step: u32, _row: &[f64]) -> Result<(), SinkError> {
        Ok(())
    }

    fn between_steps(&mut self, sim: &crate::simulation::Simulation) -> Result<(), SinkError> {
        let step = sim.step_index();
        if !step.is_multiple_of(self.every) {
            return Ok(());
        }
        let dir = self.run.join("agents").join(format!("step-{step}"));
        std::fs::create_dir_all(&dir).map_err(|e| IoError::Write {
            path: dir.clone(),
            source: e,
        })?;
        let path = dir.join(format!("part-{}.parquet", sim.comm().rank()));
        let columns = sim.agent_columns();
        let labelled: Vec<_> = columns
            .iter()
            .map(|(name, view)| (*name, *view, sim.column_labels(name)))
            .collect();
        Ok(myriad_io::write_agents_parquet(&path, sim.part().lo(), &labelled)?)
    }
}
