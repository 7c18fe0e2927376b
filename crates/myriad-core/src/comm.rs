//! Partitioned runs: which agents this process owns ([`Part`]) and how it
//! talks to the processes owning the others ([`Comm`]).
//!
//! A partitioned run is bulk-synchronous: each process (rank) owns one
//! contiguous range of agent ids, computes its agents' step, sends the
//! marks its agents set on other ranks' agents in one exchange per phase,
//! and sums its tallies with everyone else's. Randomness is keyed by global
//! agent ids and edge slots, so the result does not depend on the number of
//! ranks. A single process uses [`Local`], which does nothing.

use std::sync::Arc;

/// Bytes and seconds a communicator spent exchanging.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Traffic {
    /// Bytes this rank sent to other ranks in exchanges and reductions.
    pub bytes_sent: u64,
    /// Seconds this rank spent inside collective calls (waiting included).
    pub seconds: f64,
    /// Collective calls made.
    pub calls: u64,
}

/// Collective operations between the ranks of a run. Every rank must make
/// the same calls in the same order (MPI's rule); the local communicator
/// of a single process returns its input.
pub trait Comm: Send + Sync {
    /// This process's rank, from 0.
    fn rank(&self) -> usize;

    /// Number of ranks.
    fn ranks(&self) -> usize;

    /// Number of ranks on this machine (sharing its memory).
    fn ranks_here(&self) -> usize {
        self.ranks()
    }

    /// Sum `values` element-wise over all ranks, in place.
    fn sum_u64(&self, values: &mut [u64]);

    /// Largest of `values` element-wise over all ranks, in place: ranks
    /// agree on a flag (stop, failed) by taking its maximum.
    fn max_u64(&self, values: &mut [u64]);

    /// The sum of `value` over the ranks before this one (0 on rank 0).
    fn exclusive_sum_u64(&self, value: u64) -> u64;

    /// Send `outgoing[r]` to rank `r` (every rank at once); returns what
    /// the other ranks sent to this one, concatenated in rank order.
    fn exchange_u32(&self, outgoing: &[Vec<u32>]) -> Vec<u32>;

    /// Rank `root`'s `bytes`, on every rank.
    fn broadcast_bytes(&self, root: usize, bytes: &mut Vec<u8>);

    /// Every rank's `mine`, concatenated in rank order, on every rank.
    fn all_gather_bytes(&self, mine: &[u8]) -> Vec<u8>;

    /// What this rank has exchanged so far.
    fn traffic(&self) -> Traffic {
        Traffic::default()
    }
}

/// `x` as two words for [`Comm::exchange_u32`] (low word first), bit for bit.
pub fn f64_words(x: f64) -> [u32; 2] {
    let b = x.to_bits();
    [b as u32, (b >> 32) as u32]
}

/// The `f64` whose [`f64_words`] are `w[0]`, `w[1]`.
pub fn f64_from_words(w: &[u32]) -> f64 {
    f64::from_bits(u64::from(w[0]) | u64::from(w[1]) << 32)
}

/// The communicator of a single process.
#[derive(Clone, Copy, Debug, Default)]
pub struct Local;

impl Comm for Local {
    fn rank(&self) -> usize {
        0
    }
    fn ranks(&self) -> usize {
        1
    }
    fn sum_u64(&self, _values: &mut [u64]) {}
    fn max_u64(&self, _values: &mut [u64]) {}
    fn exclusive_sum_u64(&self, _value: u64) -> u64 {
        0
    }
    fn exchange_u32(&self, outgoing: &[Vec<u32>]) -> Vec<u32> {
        outgoing.first().cloned().unwrap_or_default()
    }
    fn broadcast_bytes(&self, _root: usize, _bytes: &mut Vec<u8>) {}
    fn all_gather_bytes(&self, mine: &[u8]) -> Vec<u8> {
        mine.to_vec()
    }
}

/// The agents a rank owns: the contiguous global ids `lo..hi` of `n`, cut
/// at `bounds` (`bounds[r]..bounds[r + 1]` belongs to rank `r`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// This rank.
    pub rank: usize,
    /// Where each rank's range starts, and `n` last (`ranks + 1` entries).
    pub bounds: Vec<u32>,
}

impl Part {
    /// All `n` agents on one process.
    pub fn whole(n: u32) -> Part {
        Part {
            rank: 0,
            bounds: vec![0, n],
        }
    }

    /// `ranks` ranges of nearly equal size (`r * n / ranks` onwards).
    pub fn even(n: u32, rank: usize, ranks: usize) -> Part {
        let bounds = (0..=ranks)
            .map(|r| (r as u64 * n as u64 / ranks.max(1) as u64) as u32)
            .collect();
        Part { rank, bounds }
    }

    /// Number of ranks.
    pub fn ranks(&self) -> usize {
        self.bounds.len() - 1
    }

    /// First global id owned here.
    pub fn lo(&self) -> u32 {
        self.bounds[self.rank]
    }

    /// One past the last global id owned here.
    pub fn hi(&self) -> u32 {
        self.bounds[self.rank + 1]
    }

    /// Agents owned here.
    pub fn len(&self) -> usize {
        (self.hi() - self.lo()) as usize
    }

    /// True when this rank owns no agents.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Agents in the whole population.
    pub fn total(&self) -> u32 {
        *self.bounds.last().expect("bounds has ranks + 1 entries")
    }

    /// Does this rank own global id `agent`?
    #[inline]
    pub fn owns(&self, agent: u32) -> bool {
        (self.lo()..self.hi()).contains(&agent)
    }

    /// The rank owning global id `agent` (which must be below [`Self::total`]).
    #[inline]
    pub fn owner(&self, agent: u32) -> usize {
        self.bounds.partition_point(|&b| b <= agent) - 1
    }
}

/// How a model is split: its part of the agents and the communicator to
/// the other parts. [`Split::single`] for a run in one process.
#[derive(Clone)]
pub struct Split {
    /// The agents this process owns (`None`: all of them).
    pub part: Option<Part>,
    /// The communicator.
    pub comm: Arc<dyn Comm>,
}

impl Split {
    /// One process owning every agent.
    pub fn single() -> Split {
        Split {
            part: None,
            comm: Arc::new(Local),
        }
    }

    /// Is the run split over more than one rank?
    pub fn is_split(&self) -> bool {
        self.comm.ranks() > 1
    }

    /// This rank's part of `n` agents (the whole for a single process).
    pub fn part_of(&self, n: u32) -> Part {
        self.part.clone().unwrap_or_else(|| Part::whole(n))
    }
}

impl Default for Split {
    fn default() -> Split {
        Split::single()
    }
}

impl std::fmt::Debug for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Split")
            .field("part", &self.part)
            .field("rank", &self.comm.rank())
            .field("ranks", &self.comm.ranks())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f64_words_keep_every_bit() {
        for x in [0.0, -0.0, 1.0 / 3.0, -1e300, f64::MIN_POSITIVE, f64::NAN, f64::INFINITY] {
            assert_eq!(f64_from_words(&f64_words(x)).to_bits(), x.to_bits());
        }
    }

    #[test]
    fn even_parts_cover_every_agent_once_and_owner_agrees() {
        for n in [0u32, 1, 7, 100, 1001] {
            for ranks in 1..=5 {
                let parts: Vec<Part> = (0..ranks).map(|r| Part::even(n, r, ranks)).collect();
                assert_eq!(parts.iter().map(Part::len).sum::<usize>(), n as usize);
                for a in 0..n {
                    let owners: Vec<usize> = parts.iter().filter(|p| p.owns(a)).map(|p| p.rank).collect();
                    assert_eq!(owners.len(), 1, "n={n} ranks={ranks} agent {a}");
                    assert_eq!(parts[0].owner(a), owners[0]);
                }
            }
        }
    }
}
