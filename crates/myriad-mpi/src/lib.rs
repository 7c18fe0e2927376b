//! Partitioned runs over MPI: [`Mpi`] is the [`Comm`] of one rank of
//! `mpirun -n R myriad run SCENARIO`, on OpenMPI through rsmpi.
//!
//! Only the binary's `mpi` feature pulls this crate in, so that users
//! without MPI build nothing extra.

use mpi::collective::SystemOperation;
use mpi::datatype::{Partition, PartitionMut};
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Threading;
use myriad_core::comm::{Comm, Traffic};
use std::sync::Mutex;
use std::time::Instant;

/// Was this process started by an MPI launcher (`mpirun`, `srun`)?
/// Reads the variables OpenMPI, MPICH and PMIx set; a process started
/// without one is a single process and does not initialise MPI.
pub fn launched() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

/// Ranks a launcher started, from its environment (1 when not launched):
/// what a myriad built without MPI reads to refuse `mpirun -n 4`.
pub fn launched_ranks() -> usize {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
        .unwrap_or(1)
}

/// Errors starting MPI.
#[derive(Debug, thiserror::Error)]
pub enum MpiError {
    /// `MPI_Init_thread` failed or MPI was already initialised.
    #[error("MPI could not be initialised (MPI_Init_thread failed)")]
    Init,
    /// The library cannot serve calls from the run's worker threads.
    #[error("the MPI library offers thread level {0:?}; myriad needs at least Serialized (its collective calls come from worker threads, one at a time)")]
    Threading(Threading),
}

/// One rank's communicator over `MPI_COMM_WORLD`. Dropping the last
/// reference finalises MPI.
pub struct Mpi {
    world: SimpleCommunicator,
    // Ranks sharing this machine's memory (MPI_Comm_split_type SHARED).
    here: usize,
    traffic: Mutex<Traffic>,
    // Finalises MPI when dropped: declared last so that it goes last.
    _universe: Universe,
}

// SAFETY: MPI is initialised with at least MPI_THREAD_SERIALIZED, which
// allows calls from any thread provided no two are concurrent. A run makes
// its collective calls from one step (or build phase) at a time, and the
// traffic counters are behind a mutex.
unsafe impl Send for Mpi {}
unsafe impl Sync for Mpi {}

impl Mpi {
    /// Initialise MPI (once per process).
    pub fn init() -> Result<Mpi, MpiError> {
        let (universe, level) = mpi::initialize_with_threading(Threading::Serialized).ok_or(MpiError::Init)?;
        if level < Threading::Serialized {
            return Err(MpiError::Threading(level));
        }
        let world = universe.world();
        let here = world.split_shared(world.rank()).size() as usize;
        Ok(Mpi {
            world,
            here,
            traffic: Mutex::new(Traffic::default()),
            _universe: universe,
        })
    }

    /// Stop every rank at once with `code` (`MPI_Abort`): for a rank that
    /// cannot go on while the others wait in a collective call.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }

    fn count(&self, started: Instant, bytes: u64) {
        let mut t = self.traffic.lock().unwrap_or_else(|e| e.into_inner());
        t.bytes_sent += bytes;
        t.seconds += started.elapsed().as_secs_f64();
        t.calls += 1;
    }

    fn others(&self) -> u64 {
        self.ranks() as u64 - 1
    }
}

fn displacements(counts: &[i32]) -> Vec<i32> {
    counts
        .iter()
        .scan(0i32, |at, &c| {
            let d = *at;
            *at += c;
            Some(d)
        })
        .collect()
}

impl Comm for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn ranks(&self) -> usize {
        self.world.size() as usize
    }

    fn ranks_here(&self) -> usize {
        self.here
    }

    fn sum_u64(&self, values: &mut [u64]) {
        let t = Instant::now();
        let send = values.to_vec();
        self.world.all_reduce_into(&send[..], values, SystemOperation::sum());
        self.count(t, 8 * values.len() as u64 * self.others());
    }

    fn max_u64(&self, values: &mut [u64]) {
        let t = Instant::now();
        let send = values.to_vec();
        self.world.all_reduce_into(&send[..], values, SystemOperation::max());
        self.count(t, 8 * values.len() as u64 * self.others());
    }

    fn exclusive_sum_u64(&self, value: u64) -> u64 {
        let t = Instant::now();
        let mut out = 0u64;
        self.world.exclusive_scan_into(&value, &mut out, SystemOperation::sum());
        self.count(t, 8);
        // MPI leaves rank 0's result undefined.
        if self.rank() == 0 {
            0
        } else {
            out
        }
    }

    fn exchange_u32(&self, outgoing: &[Vec<u32>]) -> Vec<u32> {
        let t = Instant::now();
        let ranks = self.ranks();
        assert_eq!(outgoing.len(), ranks, "one outgoing buffer per rank");
        let send_counts: Vec<i32> = outgoing
            .iter()
            .map(|v| i32::try_from(v.len()).expect("fewer than 2^31 marks to one rank in one step"))
            .collect();
        let mut recv_counts = vec![0i32; ranks];
        self.world.all_to_all_into(&send_counts[..], &mut recv_counts[..]);
        let send: Vec<u32> = outgoing.concat();
        let send_displs = displacements(&send_counts);
        let recv_displs = displacements(&recv_counts);
        let total: usize = recv_counts.iter().map(|&c| c as usize).sum();
        let mut recv = vec![0u32; total];
        {
            let sp = Partition::new(&send[..], &send_counts[..], &send_displs[..]);
            let mut rp = PartitionMut::new(&mut recv[..], &recv_counts[..], &recv_displs[..]);
            self.world.all_to_all_varcount_into(&sp, &mut rp);
        }
        let to_others = send.len() - outgoing[self.rank()].len();
        self.count(t, 4 * (to_others as u64 + self.others()));
        recv
    }

    fn broadcast_bytes(&self, root: usize, bytes: &mut Vec<u8>) {
        let t = Instant::now();
        let at = self.world.process_at_rank(root as i32);
        let mut len = bytes.len() as u64;
        at.broadcast_into(&mut len);
        if len > 0 {
            bytes.resize(len as usize, 0);
            at.broadcast_into(&mut bytes[..]);
        } else {
            // Nothing to send (and an empty buffer's address would read as MPI_IN_PLACE).
            bytes.clear();
        }
        let sent = if self.rank() == root {
            (len + 8) * self.others()
        } else {
            0
        };
        self.count(t, sent);
    }

    fn all_gather_bytes(&self, mine: &[u8]) -> Vec<u8> {
        let t = Instant::now();
        let ranks = self.ranks();
        let len = i32::try_from(mine.len()).expect("fewer than 2^31 bytes from one rank");
        let mut counts = vec![0i32; ranks];
        self.world.all_gather_into(&len, &mut counts[..]);
        let displs = displacements(&counts);
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        // An empty byte slice's address is 1, which OpenMPI reads as
        // MPI_IN_PLACE: empty buffers point into an allocation instead.
        let mut send = Vec::with_capacity(mine.len().max(1));
        send.extend_from_slice(mine);
        let mut all = vec![0u8; total.max(1)];
        {
            let mut rp = PartitionMut::new(&mut all[..total], &counts[..], &displs[..]);
            self.world.all_gather_varcount_into(&send[..], &mut rp);
        }
        all.truncate(total);
        self.count(t, (mine.len() as u64 + 4) * self.others());
        all
    }

    fn traffic(&self) -> Traffic {
        *self.traffic.lock().unwrap_or_else(|e| e.into_inner())
    }
}
