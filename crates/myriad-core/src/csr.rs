//! Undirected contact layers in compressed sparse row (CSR) form.

use rayon::prelude::*;
use std::sync::atomic::{AtomicU32, Ordering};

/// An undirected edge list: `ends[2e]` and `ends[2e + 1]` are the two agents of
/// edge `e`, with an optional weight per edge. Stored flat so that generators
/// (a shuffled stub list, the Batagelj–Brandes array) can hand over their
/// buffers without copying.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EdgeList {
    /// Flat pairs of agent ids.
    pub ends: Vec<u32>,
    /// One weight per edge, if the layer is weighted.
    pub weights: Option<Vec<f32>>,
}

impl EdgeList {
    /// An unweighted edge list from flat pairs.
    pub fn from_flat(ends: Vec<u32>) -> Self {
        assert!(ends.len() % 2 == 0, "edge list needs an even number of ends");
        Self { ends, weights: None }
    }

    /// Number of edges, self-loops and duplicates included.
    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    /// True when there is no edge.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// What building a layer did to its input edges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BuildReport {
    /// Edges given to the builder.
    pub input_edges: u64,
    /// Edges dropped because both ends were the same agent.
    pub self_loops_removed: u64,
    /// Repeated edges merged into one (for weighted layers the largest weight is kept).
    pub duplicates_merged: u64,
    /// Distinct undirected edges in the layer.
    pub edges: u64,
}

/// Errors building a layer.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CsrError {
    /// An edge names an agent id that does not exist.
    #[error("edge {edge} names agent {agent}, but the population has only {n} agents (ids 0..{n})")]
    AgentOutOfRange {
        /// Index of the edge in the input.
        edge: u64,
        /// The offending id.
        agent: u32,
        /// Population size.
        n: u32,
    },
    /// A weight is negative or not a number.
    #[error("edge {edge} has weight {weight}; weights must be finite and >= 0")]
    BadWeight {
        /// Index of the edge in the input.
        edge: u64,
        /// The offending weight.
        weight: f32,
    },
}

/// Symmetric adjacency of one contact layer. Row `i` lists the neighbours of
/// agent `i` in increasing id order, without self-loops or repeats.
#[derive(Clone, Debug, PartialEq)]
pub struct Csr {
    offsets: Vec<u64>,
    targets: Vec<u32>,
    weights: Option<Vec<f32>>,
}

impl Csr {
    /// Build a symmetric CSR over `n` agents from an undirected edge list,
    /// removing self-loops and merging duplicate edges. Runs in parallel; the
    /// result does not depend on the thread count because each row is sorted.
    pub fn from_edges(n: u32, edges: EdgeList) -> Result<(Csr, BuildReport), CsrError> {
        let n_us = n as usize;
        let m = edges.len();
        if let Some(bad) = edges.ends.par_iter().position_first(|&a| a >= n) {
            return Err(CsrError::AgentOutOfRange {
                edge: (bad / 2) as u64,
                agent: edges.ends[bad],
                n,
            });
        }
        if let Some(w) = &edges.weights {
            if let Some(bad) = w.par_iter().position_first(|x| !(x.is_finite() && *x >= 0.0)) {
                return Err(CsrError::BadWeight {
                    edge: bad as u64,
                    weight: w[bad],
                });
            }
        }
        let pairs = || edges.ends.par_chunks_exact(2);
        let self_loops = pairs().filter(|p| p[0] == p[1]).count() as u64;

        let degree: Vec<AtomicU32> = (0..n_us).into_par_iter().map(|_| AtomicU32::new(0)).collect();
        pairs().for_each(|p| {
            if p[0] != p[1] {
                degree[p[0] as usize].fetch_add(1, Ordering::Relaxed);
                degree[p[1] as usize].fetch_add(1, Ordering::Relaxed);
            }
        });
        let mut offsets = Vec::with_capacity(n_us + 1);
        let mut total = 0u64;
        offsets.push(0);
        for d in &degree {
            total += d.swap(0, Ordering::Relaxed) as u64;
            offsets.push(total);
        }

        // Scatter both directions; `degree` is reused as the per-row cursor.
        let slots: Vec<AtomicU32> = (0..total).into_par_iter().map(|_| AtomicU32::new(0)).collect();
        let wslots: Option<Vec<AtomicU32>> = edges
            .weights
            .as_ref()
            .map(|_| (0..total).into_par_iter().map(|_| AtomicU32::new(0)).collect());
        let put = |row: u32, val: u32, w: Option<f32>| {
            let at = offsets[row as usize] + degree[row as usize].fetch_add(1, Ordering::Relaxed) as u64;
            slots[at as usize].store(val, Ordering::Relaxed);
            if let (Some(ws), Some(w)) = (&wslots, w) {
                ws[at as usize].store(w.to_bits(), Ordering::Relaxed);
            }
        };
        pairs().enumerate().for_each(|(e, p)| {
            if p[0] != p[1] {
                let w = edges.weights.as_ref().map(|w| w[e]);
                put(p[0], p[1], w);
                put(p[1], p[0], w);
            }
        });
        drop(edges);
        drop(degree);
        let mut targets: Vec<u32> = slots.into_iter().map(AtomicU32::into_inner).collect();
        let mut weights: Option<Vec<f32>> = wslots.map(|ws| {
            ws.into_iter()
                .map(|a| f32::from_bits(a.into_inner()))
                .collect()
        });

        // Sort and deduplicate each row in parallel blocks of whole rows.
        let mut kept = vec![0u32; n_us];
        let blocks = row_blocks(&offsets, 1 << 16);
        {
            let mut t_rest: &mut [u32] = &mut targets;
            let mut w_rest: Option<&mut [f32]> = weights.as_deref_mut();
            let mut k_rest: &mut [u32] = &mut kept;
            let mut jobs = Vec::with_capacity(blocks.len());
            for &(r0, r1) in &blocks {
                let len = (offsets[r1] - offsets[r0]) as usize;
                let (t, tr) = std::mem::take(&mut t_rest).split_at_mut(len);
                t_rest = tr;
                let w = match w_rest.take() {
                    Some(ws) => {
                        let (w, wr) = ws.split_at_mut(len);
                        w_rest = Some(wr);
                        Some(w)
                    }
                    None => None,
                };
                let (k, kr) = std::mem::take(&mut k_rest).split_at_mut(r1 - r0);
                k_rest = kr;
                jobs.push((r0, r1, t, w, k));
            }
            jobs.into_par_iter().for_each(|(r0, r1, t, mut w, k)| {
                let base = offsets[r0];
                let mut pairs_buf: Vec<(u32, f32)> = Vec::new();
                for r in r0..r1 {
                    let a = (offsets[r] - base) as usize;
                    let b = (offsets[r + 1] - base) as usize;
                    let row = &mut t[a..b];
                    k[r - r0] = match w.as_deref_mut() {
                        None => {
                            row.sort_unstable();
                            dedup_sorted(row)
                        }
                        Some(ws) => {
                            let wrow = &mut ws[a..b];
                            pairs_buf.clear();
                            pairs_buf.extend(row.iter().copied().zip(wrow.iter().copied()));
                            // Largest weight first within a target, so dedup keeps it.
                            pairs_buf.sort_unstable_by(|x, y| x.0.cmp(&y.0).then(y.1.total_cmp(&x.1)));
                            let mut len = 0;
                            for i in 0..pairs_buf.len() {
                                if i == 0 || pairs_buf[i].0 != pairs_buf[i - 1].0 {
                                    row[len] = pairs_buf[i].0;
                                    wrow[len] = pairs_buf[i].1;
                                    len += 1;
                                }
                            }
                            len as u32
                        }
                    };
                }
            });
        }

        // Compact rows in place (sequential memmove; rows only shrink).
        let mut write = 0usize;
        let mut new_offsets = Vec::with_capacity(n_us + 1);
        new_offsets.push(0u64);
        for r in 0..n_us {
            let start = offsets[r] as usize;
            let len = kept[r] as usize;
            if start != write {
                targets.copy_within(start..start + len, write);
                if let Some(ws) = weights.as_mut() {
                    ws.copy_within(start..start + len, write);
                }
            }
            write += len;
            new_offsets.push(write as u64);
        }
        targets.truncate(write);
        targets.shrink_to_fit();
        if let Some(ws) = weights.as_mut() {
            ws.truncate(write);
            ws.shrink_to_fit();
        }
        let distinct = write as u64 / 2;
        let report = BuildReport {
            input_edges: m as u64,
            self_loops_removed: self_loops,
            duplicates_merged: m as u64 - self_loops - distinct,
            edges: distinct,
        };
        Ok((
            Csr {
                offsets: new_offsets,
                targets,
                weights,
            },
            report,
        ))
    }

    /// A layer with no edges over `n` agents.
    pub fn empty(n: u32) -> Csr {
        Csr {
            offsets: vec![0; n as usize + 1],
            targets: Vec::new(),
            weights: None,
        }
    }

    /// Number of agents (rows).
    pub fn n(&self) -> u32 {
        (self.offsets.len() - 1) as u32
    }

    /// Number of undirected edges.
    pub fn edge_count(&self) -> u64 {
        self.targets.len() as u64 / 2
    }

    /// Neighbours of agent `i`.
    #[inline]
    pub fn neighbours(&self, i: u32) -> &[u32] {
        let (a, b) = self.range(i);
        &self.targets[a..b]
    }

    /// Weights of the edges of agent `i`, aligned with [`Csr::neighbours`].
    #[inline]
    pub fn edge_weights(&self, i: u32) -> Option<&[f32]> {
        let (a, b) = self.range(i);
        self.weights.as_ref().map(|w| &w[a..b])
    }

    /// Position range of row `i` in the target array.
    #[inline]
    pub fn range(&self, i: u32) -> (usize, usize) {
        (
            self.offsets[i as usize] as usize,
            self.offsets[i as usize + 1] as usize,
        )
    }

    /// Degree of agent `i`.
    #[inline]
    pub fn degree(&self, i: u32) -> u32 {
        let (a, b) = self.range(i);
        (b - a) as u32
    }

    /// True when edges carry weights.
    pub fn is_weighted(&self) -> bool {
        self.weights.is_some()
    }

    /// Mean degree.
    pub fn mean_degree(&self) -> f64 {
        if self.n() == 0 {
            0.0
        } else {
            self.targets.len() as f64 / self.n() as f64
        }
    }

    /// Approximate heap size in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.offsets.len() * 8
            + self.targets.len() * 4
            + self.weights.as_ref().map_or(0, |w| w.len() * 4)
    }
}

/// Remove repeats from a sorted slice in place, returning the kept length.
fn dedup_sorted(row: &mut [u32]) -> u32 {
    if row.is_empty() {
        return 0;
    }
    let mut len = 1;
    for i in 1..row.len() {
        if row[i] != row[len - 1] {
            row[len] = row[i];
            len += 1;
        }
    }
    len as u32
}

/// Split rows into contiguous blocks of roughly `target` entries each.
fn row_blocks(offsets: &[u64], target: u64) -> Vec<(usize, usize)> {
    let n = offsets.len() - 1;
    let mut blocks = Vec::new();
    let mut start = 0;
    while start < n {
        let goal = offsets[start] + target;
        let mut end = offsets.partition_point(|&o| o < goal).clamp(start + 1, n);
        if end <= start {
            end = start + 1;
        }
        blocks.push((start, end));
        start = end;
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn removes_self_loops_and_merges_duplicates() {
        let e = EdgeList::from_flat(vec![0, 1, 1, 0, 2, 2, 1, 2, 0, 1]);
        let (g, r) = Csr::from_edges(4, e).unwrap();
        assert_eq!(r.input_edges, 5);
        assert_eq!(r.self_loops_removed, 1);
        assert_eq!(r.duplicates_merged, 2);
        assert_eq!(r.edges, 2);
        assert_eq!(g.neighbours(0), &[1]);
        assert_eq!(g.neighbours(1), &[0, 2]);
        assert_eq!(g.neighbours(2), &[1]);
        assert_eq!(g.neighbours(3), &[] as &[u32]);
    }

    #[test]
    fn weighted_duplicates_keep_largest_weight() {
        let e = EdgeList {
            ends: vec![0, 1, 1, 0, 1, 2],
            weights: Some(vec![0.5, 2.0, 1.0]),
        };
        let (g, r) = Csr::from_edges(3, e).unwrap();
        assert_eq!(r.duplicates_merged, 1);
        assert_eq!(g.edge_weights(0).unwrap(), &[2.0]);
        assert_eq!(g.edge_weights(1).unwrap(), &[2.0, 1.0]);
    }

    #[test]
    fn rejects_out_of_range_and_bad_weights() {
        let e = EdgeList::from_flat(vec![0, 1, 1, 5]);
        assert_eq!(
            Csr::from_edges(3, e).unwrap_err(),
            CsrError::AgentOutOfRange { edge: 1, agent: 5, n: 3 }
        );
        let e = EdgeList {
            ends: vec![0, 1],
            weights: Some(vec![-1.0]),
        };
        assert!(matches!(Csr::from_edges(3, e), Err(CsrError::BadWeight { .. })));
    }

    proptest! {
        /// Whatever the input, the layer is symmetric, sorted, loop-free, and
        /// the report accounts for every input edge.
        #[test]
        fn csr_is_symmetric_and_accounts_for_edges(
            n in 1u32..60,
            raw in proptest::collection::vec((0u32..60, 0u32..60), 0..400)
        ) {
            let ends: Vec<u32> = raw.iter().flat_map(|&(a, b)| [a % n, b % n]).collect();
            let (g, r) = Csr::from_edges(n, EdgeList::from_flat(ends)).unwrap();
            prop_assert_eq!(r.input_edges, raw.len() as u64);
            prop_assert_eq!(r.self_loops_removed + r.duplicates_merged + r.edges, r.input_edges);
            let mut distinct = std::collections::BTreeSet::new();
            for &(a, b) in &raw {
                let (a, b) = (a % n, b % n);
                if a != b { distinct.insert((a.min(b), a.max(b))); }
            }
            prop_assert_eq!(r.edges, distinct.len() as u64);
            for i in 0..n {
                let row = g.neighbours(i);
                prop_assert!(row.windows(2).all(|w| w[0] < w[1]));
                for &j in row {
                    prop_assert!(j != i);
                    prop_assert!(g.neighbours(j).binary_search(&i).is_ok());
                }
            }
        }
    }
}
