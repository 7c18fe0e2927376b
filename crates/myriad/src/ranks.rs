//! Which rank of a partitioned run this process is: `mpirun -n R myriad run`
//! starts R processes, each one rank, talking over MPI (the `mpi` feature).

use myriad_core::comm::Comm;
use myriad_sim::InputError;
use std::sync::{Arc, Mutex};

/// The run's communicator, kept until [`finish`]: every rank must reach the
/// end together, after rank 0 has printed any error, or `mpirun` (which
/// stops the job when one process exits with an error) could stop rank 0
/// before it says why.
static WORLD: Mutex<Option<Arc<dyn Comm>>> = Mutex::new(None);

/// Wait for every rank, then let MPI finish (a no-op for one process).
pub fn finish() {
    let world = WORLD.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(comm) = world {
        let mut done = [0u64];
        comm.max_u64(&mut done);
    }
}

/// This process's rank and the number of ranks, as the launcher's
/// environment says (0 of 1 when not started by `mpirun` or `srun`).
pub fn from_environment() -> (usize, usize) {
    let read = |names: &[&str]| names.iter().find_map(|v| std::env::var(v).ok()?.parse::<usize>().ok());
    let ranks = read(&["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]).unwrap_or(1);
    let rank = read(&["OMPI_COMM_WORLD_RANK", "PMI_RANK"]).unwrap_or(0);
    (rank, ranks.max(1))
}

/// A command other than `run` started as one of several ranks: an error.
pub fn refuse_split(command: &str) -> anyhow::Result<()> {
    let (_, ranks) = from_environment();
    if ranks > 1 {
        return Err(InputError(format!(
            "only `myriad run` can be split over processes; run `myriad {command}` without mpirun (or with mpirun -n 1)"
        ))
        .into());
    }
    Ok(())
}

/// The communicator of a partitioned run, when started by an MPI launcher;
/// `None` for a single process. Kept for [`finish`].
pub fn communicator() -> anyhow::Result<Option<Arc<dyn Comm>>> {
    let comm = connect(from_environment().1)?;
    if let Some(c) = &comm {
        *WORLD.lock().unwrap_or_else(|e| e.into_inner()) = Some(c.clone());
        myriad_sim::resources::set_machine_share(c.ranks_here(), c.ranks());
    }
    Ok(comm)
}

#[cfg(feature = "mpi")]
fn connect(ranks: usize) -> anyhow::Result<Option<Arc<dyn Comm>>> {
    if ranks > 1 || myriad_mpi::launched() {
        let mpi = myriad_mpi::Mpi::init()?;
        Ok(Some(Arc::new(mpi)))
    } else {
        Ok(None)
    }
}

#[cfg(not(feature = "mpi"))]
fn connect(ranks: usize) -> anyhow::Result<Option<Arc<dyn Comm>>> {
    if ranks > 1 {
        return Err(InputError(format!(
            "started as one of {ranks} MPI processes, but this myriad was built without MPI support; build it with `cargo build --release --features mpi` (needs libopenmpi-dev), or run without mpirun"
        ))
        .into());
    }
    Ok(None)
}
