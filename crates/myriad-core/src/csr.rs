//! Undirected contact layers in compressed sparse row (CSR) form.

use rayon::prelude::*;

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
        assert!(ends.len().is_multiple_of(2), "edge list needs an even number of ends");
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
    // For a rank's rows of a partitioned layer: the global position of its
    // first entry (0 for a whole layer).
    first_slot: u64,
}

impl Csr {
    /// Build a symmetric CSR over `n` agents from an undirected edge list,
    /// removing self-loops and merging duplicate edges. Runs in parallel; the
    /// result does not depend on the thread count because each row is sorted.
    pub fn from_edges(n: u32, edges: EdgeList) -> Result<(Csr, BuildReport), CsrError> {
        Csr::rows_from_edges(n, 0..n, edges)
    }

    /// Rows `rows` of the symmetric CSR [`Csr::from_edges`] would build
    /// from the same edges over `n` agents, identical to them entry for
    /// entry: a rank's part of a partitioned layer. Edges with no end in
    /// `rows` are ignored. For a part of the rows, the report counts the
    /// input edges and self-loops whose first end is in `rows` (summed over
    /// the parts, they are the whole layer's), `edges` is the number of row
    /// entries here and `duplicates_merged` is 0 (known only over all parts).
    /// Row `k` of the result is global row `rows.start + k`; set the global
    /// position of its first entry with [`Csr::at_slot`].
    pub fn rows_from_edges(
        n: u32,
        rows: std::ops::Range<u32>,
        edges: EdgeList,
    ) -> Result<(Csr, BuildReport), CsrError> {
        let self_loops = check_edges(n, &edges)?;
        let (lo, hi) = (rows.start as usize, rows.end.min(n).max(rows.start) as usize);
        let whole = lo == 0 && hi == n as usize;
        let m = edges.len() as u64;
        let owned = if whole {
            (m, self_loops)
        } else {
            edges
                .ends
                .par_chunks(1 << 16)
                .map(|c| {
                    c.chunks_exact(2)
                        .filter(|p| (lo..hi).contains(&(p[0] as usize)))
                        .fold((0u64, 0u64), |(e, l), p| (e + 1, l + (p[0] == p[1]) as u64))
                })
                .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        };
        // Rows are split into bands; each band scans the whole edge list and
        // handles only the ends that fall in its rows. Scans are sequential
        // reads, and each band's counters and targets stay in a small,
        // cache-friendly region, with no atomics: much faster than scattering
        // into one large array from all threads, and deterministic.
        let bands = band_bounds(lo, hi, rayon::current_num_threads());
        let offsets = row_offsets(lo, hi, &edges, &bands);
        let (mut targets, mut weights) = scatter(&edges, lo, &offsets, &bands);
        drop(edges);
        let kept = sort_rows(&offsets, &mut targets, weights.as_deref_mut());
        let offsets = compact(&offsets, &kept, &mut targets, weights.as_mut());
        let report = if whole {
            let distinct = targets.len() as u64 / 2;
            BuildReport {
                input_edges: m,
                self_loops_removed: self_loops,
                duplicates_merged: m - self_loops - distinct,
                edges: distinct,
            }
        } else {
            // Counts over all ranks are sums of each range's own: an edge
            // belongs to the range holding its first end; `edges` holds this
            // range's row entries.
            BuildReport {
                input_edges: owned.0,
                self_loops_removed: owned.1,
                duplicates_merged: 0,
                edges: targets.len() as u64,
            }
        };
        Ok((
            Csr {
                offsets,
                targets,
                weights,
                first_slot: 0,
            },
            report,
        ))
    }

    /// The same rows, whose first entry is at global position `slot` of
    /// the whole layer (the entries of the rows before them on other ranks).
    pub fn at_slot(mut self, slot: u64) -> Csr {
        self.first_slot = slot;
        self
    }

    /// Global position of this CSR's first entry in the whole layer (0 for
    /// a whole layer): edge-keyed random draws use global positions.
    pub fn first_slot(&self) -> u64 {
        self.first_slot
    }

    /// Number of entries (directed edges) in these rows.
    pub fn entries(&self) -> u64 {
        self.targets.len() as u64
    }

    /// A layer with no edges over `n` agents.
    pub fn empty(n: u32) -> Csr {
        Csr {
            offsets: vec![0; n as usize + 1],
            targets: Vec::new(),
            weights: None,
            first_slot: 0,
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
        (self.offsets[i as usize] as usize, self.offsets[i as usize + 1] as usize)
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
        self.offsets.len() * 8 + self.targets.len() * 4 + self.weights.as_ref().map_or(0, |w| w.len() * 4)
    }
}

/// Row bands for the scatter: one per thread. Each band rescans the whole
/// edge list, and measurement (BENCHMARKS.md) showed that on this class of
/// machine the extra scans cost more than the cache misses that smaller
/// bands would save, once huge pages have made those misses cheap.
fn band_bounds(lo: usize, hi: usize, threads: usize) -> Vec<usize> {
    let n = hi - lo;
    let bands = threads.clamp(1, 64).min(n.max(1));
    (0..=bands).map(|b| lo + b * n / bands).collect()
}

/// Split `data` into one mutable slice per band, where `at(row)` is the
/// position in `data` of the first element of `row`.
fn split_by_rows<'a, T>(
    data: &'a mut [T],
    bands: &[usize],
    at: impl Fn(usize) -> usize,
) -> Vec<(usize, usize, &'a mut [T])> {
    let mut rest = data;
    let mut out = Vec::with_capacity(bands.len().saturating_sub(1));
    for w in bands.windows(2) {
        let len = at(w[1]) - at(w[0]);
        let (mine, r) = std::mem::take(&mut rest).split_at_mut(len);
        rest = r;
        out.push((w[0], w[1], mine));
    }
    out
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

/// Refuse agents out of range and bad weights; count the self-loops.
fn check_edges(n: u32, edges: &EdgeList) -> Result<u64, CsrError> {
    let max_id = edges
        .ends
        .par_chunks(1 << 16)
        .map(|c| c.iter().copied().max().unwrap_or(0))
        .max()
        .unwrap_or(0);
    if max_id >= n {
        let bad = edges.ends.iter().position(|&a| a >= n).unwrap_or(0);
        return Err(CsrError::AgentOutOfRange {
            edge: (bad / 2) as u64,
            agent: edges.ends[bad],
            n,
        });
    }
    if let Some(w) = &edges.weights {
        if let Some(bad) = w.iter().position(|x| !(x.is_finite() && *x >= 0.0)) {
            return Err(CsrError::BadWeight {
                edge: bad as u64,
                weight: w[bad],
            });
        }
    }
    Ok(edges
        .ends
        .par_chunks(1 << 16)
        .map(|c| c.chunks_exact(2).filter(|p| p[0] == p[1]).count() as u64)
        .sum::<u64>())
}

/// Where each row starts, from the degrees (self-loops left out), counted
/// band by band.
fn row_offsets(lo: usize, hi: usize, edges: &EdgeList, bands: &[usize]) -> Vec<u64> {
    let n = hi - lo;
    let mut degree: Vec<u32> = crate::memory::huge_zeroed(n);
    split_by_rows(&mut degree, bands, |r| r - lo)
        .into_par_iter()
        .for_each(|(lo, hi, deg)| {
            for p in edges.ends.chunks_exact(2) {
                let (a, b) = (p[0] as usize, p[1] as usize);
                if a != b {
                    if (lo..hi).contains(&a) {
                        deg[a - lo] += 1;
                    }
                    if (lo..hi).contains(&b) {
                        deg[b - lo] += 1;
                    }
                }
            }
        });
    let mut offsets = Vec::with_capacity(n + 1);
    let mut total = 0u64;
    offsets.push(0);
    for &d in &degree {
        total += d as u64;
        offsets.push(total);
    }
    offsets
}

/// Both ends of every edge into their rows (unsorted, repeats kept), band
/// by band; the weights beside them.
fn scatter(edges: &EdgeList, first: usize, offsets: &[u64], bands: &[usize]) -> (Vec<u32>, Option<Vec<f32>>) {
    let total = *offsets.last().expect("offsets has n + 1 entries") as usize;
    let mut targets: Vec<u32> = crate::memory::huge_zeroed(total);
    let mut weights: Option<Vec<f32>> = edges.weights.as_ref().map(|_| vec![0f32; total]);
    let t_parts = split_by_rows(&mut targets, bands, |r| offsets[r - first] as usize);
    let mut w_parts: Vec<Option<&mut [f32]>> = match weights.as_deref_mut() {
        Some(w) => split_by_rows(w, bands, |r| offsets[r - first] as usize)
            .into_iter()
            .map(|(_, _, s)| Some(s))
            .collect(),
        None => (0..t_parts.len()).map(|_| None).collect(),
    };
    let jobs: Vec<_> = t_parts.into_iter().zip(w_parts.drain(..)).collect();
    jobs.into_par_iter().for_each(|((lo, hi, out), mut wout)| {
        let base = offsets[lo - first];
        let mut cursor: Vec<u32> = vec![0; hi - lo];
        let mut put = |row: usize, val: u32, e: usize| {
            let at = (offsets[row - first] - base) as usize + cursor[row - lo] as usize;
            cursor[row - lo] += 1;
            out[at] = val;
            if let (Some(ws), Some(src)) = (wout.as_deref_mut(), edges.weights.as_ref()) {
                ws[at] = src[e];
            }
        };
        for (e, p) in edges.ends.chunks_exact(2).enumerate() {
            let (a, b) = (p[0] as usize, p[1] as usize);
            if a != b {
                if (lo..hi).contains(&a) {
                    put(a, b as u32, e);
                }
                if (lo..hi).contains(&b) {
                    put(b, a as u32, e);
                }
            }
        }
    });
    (targets, weights)
}

/// Sort and deduplicate each row in parallel blocks of whole rows (for
/// weighted rows, the largest weight of repeated targets is kept); returns
/// each row's length after deduplication.
fn sort_rows(offsets: &[u64], targets: &mut [u32], weights: Option<&mut [f32]>) -> Vec<u32> {
    let n = offsets.len() - 1;
    let mut kept = vec![0u32; n];
    let blocks = row_blocks(offsets, 1 << 16);
    let mut t_rest: &mut [u32] = targets;
    let mut w_rest: Option<&mut [f32]> = weights;
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
                Some(ws) => dedup_weighted(row, &mut ws[a..b], &mut pairs_buf),
            };
        }
    });
    kept
}

/// Sort a weighted row by target, keeping the largest weight of a repeated
/// target; returns the new length.
fn dedup_weighted(row: &mut [u32], wrow: &mut [f32], pairs_buf: &mut Vec<(u32, f32)>) -> u32 {
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

/// Move each row's kept entries up to close the gaps (sequential memmove;
/// rows only shrink); returns the new offsets.
fn compact(offsets: &[u64], kept: &[u32], targets: &mut Vec<u32>, mut weights: Option<&mut Vec<f32>>) -> Vec<u64> {
    let n = kept.len();
    let mut write = 0usize;
    let mut new_offsets = Vec::with_capacity(n + 1);
    new_offsets.push(0u64);
    for r in 0..n {
        let start = offsets[r] as usize;
        let len = kept[r] as usize;
        if start != write {
            targets.copy_within(start..start + len, write);
            if let Some(ws) = weights.as_deref_mut() {
                ws.copy_within(start..start + len, write);
            }
        }
        write += len;
        new_offsets.push(write as u64);
    }
    targets.truncate(write);
    targets.shrink_to_fit();
    if let Some(ws) = weights {
        ws.truncate(write);
        ws.shrink_to_fit();
    }
    new_offsets
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A rank's rows equal the same rows of the whole layer, entry for
    /// entry and weight for weight, and the ranks' rows together are all of it.
    #[test]
    fn rows_of_a_range_equal_the_whole_layers_rows() {
        let rng = crate::CounterRng::new(5, crate::Stream(77));
        let n = 2_000;
        let mut edges = crate::generators::erdos_renyi(n, 6.0, &rng);
        edges.ends.extend([3, 3, 10, 11, 11, 10]); // a self-loop and a repeat
        let weights: Vec<f32> = (0..edges.len()).map(|e| (e % 7) as f32).collect();
        let weighted = EdgeList {
            ends: edges.ends.clone(),
            weights: Some(weights),
        };
        for whole_edges in [edges, weighted] {
            let (whole, _) = Csr::from_edges(n, whole_edges.clone()).unwrap();
            for ranks in [1usize, 2, 3, 7] {
                let mut entries = 0;
                for r in 0..ranks {
                    let part = crate::comm::Part::even(n, r, ranks);
                    let (rows, _) = Csr::rows_from_edges(n, part.lo()..part.hi(), whole_edges.clone()).unwrap();
                    assert_eq!(rows.n() as usize, part.len());
                    for k in 0..rows.n() {
                        let g = part.lo() + k;
                        assert_eq!(rows.neighbours(k), whole.neighbours(g));
                        assert_eq!(rows.edge_weights(k), whole.edge_weights(g));
                        assert_eq!(rows.range(k).0 as u64 + entries, whole.range(g).0 as u64);
                    }
                    entries += rows.entries();
                }
                assert_eq!(entries, whole.entries());
            }
        }
    }

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
            CsrError::AgentOutOfRange {
                edge: 1,
                agent: 5,
                n: 3
            }
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
