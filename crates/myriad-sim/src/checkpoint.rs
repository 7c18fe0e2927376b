//! Checkpoints: every K steps each rank writes its agents' state, with the
//! rows so far and the scenario's hash, to
//! `<run>/checkpoint/step-<k>/rank-<r>-of-<R>.bin`, so that a stopped run
//! (Ctrl-C, a lost machine, a rank that died) can continue with
//! `myriad run SCENARIO --resume <run>` and give the same outputs as an
//! uninterrupted run.
//!
//! A file is written under a temporary name and renamed, so a file that
//! exists is whole; a step is complete when all R files exist, and resuming
//! takes the last complete step. Ranks write without waiting for each
//! other; the step before the last is kept until the next one is written.
//! Randomness is keyed by step and agent, so the state and the step are
//! all a run needs to go on.

use crate::error::{Error, InputError, Result};
use crate::scenario::Scenario;
use crate::simulation::Simulation;
use crate::sinks::{Sink, SinkError};
use myriad_core::comm::Comm;
use myriad_core::hash::StateHasher;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"MYRIADCK";
const FORMAT: u32 = 1;

/// The folder of a run's checkpoints.
pub fn folder(run: &Path) -> PathBuf {
    run.join("checkpoint")
}

fn step_folder(run: &Path, step: u32) -> PathBuf {
    folder(run).join(format!("step-{step}"))
}

fn file_name(rank: usize, ranks: usize) -> String {
    format!("rank-{rank}-of-{ranks}.bin")
}

fn file_path(run: &Path, step: u32, rank: usize, ranks: usize) -> PathBuf {
    step_folder(run, step).join(file_name(rank, ranks))
}

/// A hash of everything that decides a run's results: the scenario as
/// resolved (after `--set`) but for its number of steps, which a resumed
/// run may extend, and the seed.
pub fn scenario_hash(s: &Scenario) -> String {
    let mut resolved = s.resolved.clone();
    if let Some(o) = resolved.as_object_mut() {
        o.remove("steps");
    }
    let mut h = StateHasher::new();
    h.str(&resolved.to_string());
    h.u64(s.seed);
    format!("{:016x}", h.finish())
}

/// The header of a checkpoint file.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Header {
    myriad_version: String,
    scenario_hash: String,
    scenario_file: String,
    model: String,
    step: u32,
    rank: usize,
    ranks: usize,
    every: u32,
}

/// Writes this rank's checkpoint every `every` steps (a sink: it sees every
/// row, and the simulation between steps).
pub struct CheckpointSink {
    run: PathBuf,
    every: u32,
    rows: Vec<Vec<f64>>,
    header: Header,
    last: Option<u32>,
}

/// Can `sim` write checkpoints every `every` steps? Asked before a run's
/// folder is made, so that a refusal leaves nothing behind.
pub fn check(every: u32, sim: &Simulation) -> Result<()> {
    let s = sim.scenario();
    if every == 0 {
        return Err(InputError("--checkpoint-every must be at least 1 step".into()).into());
    }
    if sim.has_provider() {
        return Err(InputError(format!(
            "{}: checkpoints of runs whose decisions come from a provider ([behaviour] or [control]) are not supported: the provider's memory and cache are not saved",
            s.file.display()
        ))
        .into());
    }
    if !sim.saves_state() {
        return Err(InputError(format!(
            "{}: model '{}' cannot write checkpoints (its state cannot be saved yet)",
            s.file.display(),
            s.model.name
        ))
        .into());
    }
    Ok(())
}

impl CheckpointSink {
    /// Checkpoints of `sim`'s run in `run`, every `every` steps; see [`check`].
    pub fn new(run: &Path, every: u32, sim: &Simulation) -> Result<CheckpointSink> {
        check(every, sim)?;
        let s = sim.scenario();
        let comm = sim.comm();
        Ok(CheckpointSink {
            run: run.to_path_buf(),
            every,
            rows: Vec::new(),
            header: Header {
                myriad_version: env!("CARGO_PKG_VERSION").into(),
                scenario_hash: scenario_hash(s),
                scenario_file: s.file.display().to_string(),
                model: s.model.name.into(),
                step: 0,
                rank: comm.rank(),
                ranks: comm.ranks(),
                every,
            },
            last: None,
        })
    }

    /// A resumed run: the checkpoint at `step` exists already.
    pub fn resumed_at(mut self, step: u32) -> CheckpointSink {
        self.last = Some(step);
        self
    }

    fn write(&mut self, sim: &Simulation) -> std::io::Result<()> {
        let step = sim.step_index();
        self.header.step = step;
        let mut bytes = Vec::new();
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&FORMAT.to_le_bytes());
        let header = serde_json::to_vec(&self.header).map_err(std::io::Error::other)?;
        bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&header);
        let width = self.rows.first().map_or(0, Vec::len);
        bytes.extend_from_slice(&(self.rows.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&(width as u64).to_le_bytes());
        for row in &self.rows {
            row.iter()
                .for_each(|x| bytes.extend_from_slice(&x.to_bits().to_le_bytes()));
        }
        let mut state = Vec::new();
        sim.save_state(&mut state);
        bytes.extend_from_slice(&(state.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&state);
        let mut h = StateHasher::new();
        h.bytes(&bytes);
        bytes.extend_from_slice(&h.finish().to_le_bytes());

        let dir = step_folder(&self.run, step);
        std::fs::create_dir_all(&dir)?;
        let path = file_path(&self.run, step, self.header.rank, self.header.ranks);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, &path)?;
        // The step before the previous one is no longer needed.
        if let Some(old) = self.last.and_then(|l| l.checked_sub(self.every)) {
            let old_dir = step_folder(&self.run, old);
            let _ = std::fs::remove_file(old_dir.join(file_name(self.header.rank, self.header.ranks)));
            let _ = std::fs::remove_dir(old_dir); // once every rank's file is gone
        }
        Ok(())
    }
}

impl Sink for CheckpointSink {
    fn row(&mut self, _step: u32, row: &[f64]) -> std::result::Result<(), SinkError> {
        self.rows.push(row.to_vec());
        Ok(())
    }

    fn between_steps(&mut self, sim: &Simulation) -> std::result::Result<(), SinkError> {
        let step = sim.step_index();
        if step == 0 || !step.is_multiple_of(self.every) || self.last == Some(step) {
            return Ok(());
        }
        self.write(sim).map_err(|e| {
            SinkError::Io(myriad_io::IoError::Write {
                path: file_path(&self.run, step, self.header.rank, self.header.ranks),
                source: e,
            })
        })?;
        self.last = Some(step);
        Ok(())
    }
}

/// A checkpoint read back: the step, the rows up to it, this rank's state.
pub struct Loaded {
    /// The step the state is at.
    pub step: u32,
    /// Rows of steps 0..=step.
    pub rows: Vec<Vec<f64>>,
    /// The model's state of this rank's agents.
    pub state: Vec<u8>,
    /// The interval the run wrote checkpoints at.
    pub every: u32,
}

/// The last step of `run` for which every one of `ranks` files was written
/// (read on rank 0, then shared, so every rank resumes from the same step).
pub fn last_complete(run: &Path, comm: &dyn Comm) -> Result<u32> {
    let ranks = comm.ranks();
    let found = if comm.rank() == 0 {
        last_complete_here(run, ranks)
    } else {
        Ok(0)
    };
    let found = crate::error::agree(comm, found)?;
    let mut step = vec![found as u64];
    comm.max_u64(&mut step);
    Ok(step[0] as u32)
}

fn last_complete_here(run: &Path, ranks: usize) -> Result<u32> {
    let dir = folder(run);
    let no_checkpoints = || {
        Error::Input(InputError(format!(
            "--resume {}: no checkpoints there (a run writes them with --checkpoint-every K into <run>/checkpoint)",
            run.display()
        )))
    };
    let entries = std::fs::read_dir(&dir).map_err(|_| no_checkpoints())?;
    let mut steps: Vec<(u32, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            Some((name.strip_prefix("step-")?.parse().ok()?, e.path()))
        })
        .collect();
    steps.sort();
    let mut other_ranks = None;
    for (step, path) in steps.iter().rev() {
        if (0..ranks).all(|r| path.join(file_name(r, ranks)).is_file()) {
            return Ok(*step);
        }
        if let Some(Ok(e)) = std::fs::read_dir(path).ok().and_then(|mut d| d.next()) {
            other_ranks.get_or_insert(e.file_name().to_string_lossy().into_owned());
        }
    }
    match other_ranks {
        Some(name) => Err(Error::Input(InputError(format!(
            "--resume {}: no checkpoint written by {ranks} rank{} (found {name}); resume with as many ranks as the run had",
            run.display(),
            if ranks == 1 { "" } else { "s" }
        )))),
        None => Err(no_checkpoints()),
    }
}

/// Read this rank's checkpoint file of `step`, checking that it belongs to
/// this scenario, version, rank and number of ranks.
pub fn read(run: &Path, step: u32, s: &Scenario, comm: &dyn Comm) -> Result<Loaded> {
    let path = file_path(run, step, comm.rank(), comm.ranks());
    let bad = |why: String| Error::Input(InputError(format!("checkpoint {}: {why}", path.display())));
    let bytes = std::fs::read(&path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8]> {
        let end = at.checked_add(n).filter(|&e| e <= bytes.len());
        let Some(end) = end else {
            return Err(bad("the file is cut short".into()));
        };
        let out = &bytes[at..end];
        at = end;
        Ok(out)
    };
    if take(8)? != MAGIC {
        return Err(bad("not a myriad checkpoint".into()));
    }
    let u64_of = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    let format = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes"));
    if format != FORMAT {
        return Err(bad(format!("format {format}, this myriad reads format {FORMAT}")));
    }
    if bytes.len() < 8 {
        return Err(bad("the file is cut short".into()));
    }
    let body = &bytes[..bytes.len() - 8];
    let mut h = StateHasher::new();
    h.bytes(body);
    if h.finish() != u64_of(&bytes[bytes.len() - 8..]) {
        return Err(bad("the file is damaged (its checksum does not match)".into()));
    }
    let len = u64_of(take(8)?) as usize;
    let header: Header = serde_json::from_slice(take(len)?).map_err(|e| bad(format!("unreadable header: {e}")))?;
    if header.myriad_version != env!("CARGO_PKG_VERSION") {
        return Err(bad(format!(
            "written by myriad {}, this is {}; resume with the version that wrote it",
            header.myriad_version,
            env!("CARGO_PKG_VERSION")
        )));
    }
    let hash = scenario_hash(s);
    if header.scenario_hash != hash || header.model != s.model.name {
        return Err(bad(format!(
            "written by a run of {} (model {}) with other settings: the scenario, its --set or its --seed differ from that run's (settings hash {} here, {} there)",
            header.scenario_file, header.model, hash, header.scenario_hash
        )));
    }
    if header.step != step || header.rank != comm.rank() || header.ranks != comm.ranks() {
        return Err(bad(format!(
            "holds step {} of rank {} of {}",
            header.step, header.rank, header.ranks
        )));
    }
    let count = u64_of(take(8)?) as usize;
    let width = u64_of(take(8)?) as usize;
    if count != step as usize + 1 {
        return Err(bad(format!("holds {count} rows for step {step}")));
    }
    let mut rows = Vec::with_capacity(count);
    for _ in 0..count {
        let raw = take(width.checked_mul(8).ok_or_else(|| bad("bad row width".into()))?)?;
        rows.push(raw.chunks_exact(8).map(|b| f64::from_bits(u64_of(b))).collect());
    }
    let len = u64_of(take(8)?) as usize;
    let state = take(len)?.to_vec();
    // The checksum, and nothing else, follows the state.
    if at != bytes.len() - 8 {
        return Err(bad("the state's length does not match the file".into()));
    }
    Ok(Loaded {
        step,
        rows,
        state,
        every: header.every,
    })
}

/// Continue `sim` from the last complete checkpoint of the run in `dir`, on
/// every rank: the same step everywhere, each rank its own file, every
/// refusal naming the file. Returns what was read (the rows up to it).
pub fn resume(sim: &mut Simulation, dir: &Path, s: &Scenario) -> Result<Loaded> {
    let comm = sim.comm().clone();
    let step = last_complete(dir, &*comm)?;
    let loaded = crate::error::agree(&*comm, read(dir, step, s, &*comm))?;
    let path = file_path(dir, step, comm.rank(), comm.ranks());
    let restored = if step > s.steps {
        Err(InputError(format!(
            "--resume {}: its checkpoint is at step {step}, past the scenario's last step {}",
            dir.display(),
            s.steps
        ))
        .into())
    } else {
        let row = loaded.rows.last().cloned().unwrap_or_default();
        sim.restore_state(step, &row, &loaded.state)
            .map_err(|e| Error::Input(InputError(format!("checkpoint {}: {e:#}", path.display()))))
    };
    crate::error::agree(&*comm, restored)?;
    Ok(loaded)
}
