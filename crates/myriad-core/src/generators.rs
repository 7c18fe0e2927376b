//! Random contact-network generators. Each is a pure function of its
//! parameters and a [`CounterRng`], so a network is identical on any thread
//! count. They return an [`EdgeList`]; [`crate::Csr::from_edges`] then drops
//! self-loops and merges repeated edges, and reports how many it found.

use crate::csr::EdgeList;
use crate::rng::CounterRng;
use rand_distr::{Distribution, Gamma, Poisson};
use rayon::prelude::*;

/// A distribution of node degrees for the configuration model.
#[derive(Clone, Debug, PartialEq)]
pub enum DegreeDistribution {
    /// Every node has the same degree.
    Fixed(u32),
    /// Poisson with the given mean.
    Poisson {
        /// Mean degree.
        mean: f64,
    },
    /// Negative binomial with mean `mean` and dispersion `k` (variance
    /// `mean + mean^2 / k`), drawn as a gamma–Poisson mixture.
    NegativeBinomial {
        /// Mean degree.
        mean: f64,
        /// Dispersion parameter k > 0; smaller is more heterogeneous.
        dispersion: f64,
    },
}

impl DegreeDistribution {
    /// Draw the degree of `node`.
    pub fn sample(&self, rng: &CounterRng, node: u64) -> u32 {
        let mut seq = rng.sequence(node);
        let poisson = |lambda: f64, seq: &mut _| -> u32 {
            if lambda <= 0.0 {
                return 0;
            }
            match Poisson::new(lambda) {
                Ok(p) => p.sample(seq).min(u32::MAX as f64) as u32,
                Err(_) => 0,
            }
        };
        match *self {
            DegreeDistribution::Fixed(k) => k,
            DegreeDistribution::Poisson { mean } => poisson(mean, &mut seq),
            DegreeDistribution::NegativeBinomial { mean, dispersion } => {
                let lambda = match Gamma::new(dispersion, mean / dispersion) {
                    Ok(g) => g.sample(&mut seq),
                    Err(_) => mean,
                };
                poisson(lambda, &mut seq)
            }
        }
    }

    /// Theoretical mean.
    pub fn mean(&self) -> f64 {
        match *self {
            DegreeDistribution::Fixed(k) => k as f64,
            DegreeDistribution::Poisson { mean } => mean,
            DegreeDistribution::NegativeBinomial { mean, .. } => mean,
        }
    }

    /// Theoretical variance.
    pub fn variance(&self) -> f64 {
        match *self {
            DegreeDistribution::Fixed(_) => 0.0,
            DegreeDistribution::Poisson { mean } => mean,
            DegreeDistribution::NegativeBinomial { mean, dispersion } => mean + mean * mean / dispersion,
        }
    }
}

/// Erdős–Rényi random graph with `n` nodes and mean degree `mean_degree`, as
/// G(n, m) with `m = round(n * mean_degree / 2)` independently drawn edges.
/// For large `n` this has the same Poisson degree distribution as G(n, p);
/// the rare self-loops and repeats are removed when the CSR is built.
pub fn erdos_renyi(n: u32, mean_degree: f64, rng: &CounterRng) -> EdgeList {
    let m = (n as f64 * mean_degree / 2.0).round() as usize;
    let mut ends = vec![0u32; 2 * m];
    if n > 0 {
        ends.par_chunks_mut(2).enumerate().for_each(|(e, p)| {
            p.copy_from_slice(&erdos_renyi_edge(n, rng, e));
        });
    }
    EdgeList::from_flat(ends)
}

/// The two ends of edge `e` of [`erdos_renyi`] (n > 0).
#[inline]
fn erdos_renyi_edge(n: u32, rng: &CounterRng, e: usize) -> [u32; 2] {
    [
        rng.below(e as u64, 0, n as u64) as u32,
        rng.below(e as u64, 1, n as u64) as u32,
    ]
}

/// The edges of [`erdos_renyi`] with at least one end in `rows`, in the
/// same order: a rank's share of the graph without holding all of it.
pub fn erdos_renyi_touching(n: u32, mean_degree: f64, rng: &CounterRng, rows: std::ops::Range<u32>) -> EdgeList {
    let m = (n as f64 * mean_degree / 2.0).round() as usize;
    if n == 0 {
        return EdgeList::default();
    }
    let ends = |e: usize| erdos_renyi_edge(n, rng, e);
    let kept: Vec<u32> = (0..m)
        .into_par_iter()
        .with_min_len(1 << 14)
        .filter(|&e| ends(e).iter().any(|a| rows.contains(a)))
        .flat_map_iter(ends)
        .collect();
    EdgeList::from_flat(kept)
}

/// Draw one degree per node from `dist`.
pub fn sample_degrees(n: u32, dist: &DegreeDistribution, rng: &CounterRng) -> Vec<u32> {
    (0..n as u64).into_par_iter().map(|i| dist.sample(rng, i)).collect()
}

/// Configuration model: stubs are paired uniformly at random (a Fisher–Yates
/// shuffle of the stub list). If the degree sum is odd the last stub is
/// dropped, which the second return value reports. Self-loops and repeated
/// edges are removed when the CSR is built ("erased" configuration model).
pub fn configuration(degrees: &[u32], rng: &CounterRng) -> (EdgeList, bool) {
    let total: u64 = degrees.iter().map(|&d| d as u64).sum();
    let mut stubs = Vec::with_capacity(total as usize);
    for (i, &d) in degrees.iter().enumerate() {
        stubs.extend(std::iter::repeat_n(i as u32, d as usize));
    }
    let odd = stubs.len() % 2 == 1;
    if odd {
        stubs.pop();
    }
    for i in (1..stubs.len()).rev() {
        let j = rng.below(i as u64, 0, i as u64 + 1) as usize;
        stubs.swap(i, j);
    }
    (EdgeList::from_flat(stubs), odd)
}

/// Random regular graph of degree `k` (erased configuration model).
pub fn random_regular(n: u32, k: u32, rng: &CounterRng) -> (EdgeList, bool) {
    configuration(&vec![k; n as usize], rng)
}

/// Watts–Strogatz small world: a ring where each node links to its `k / 2`
/// nearest neighbours on each side, and each of these edges has its far end
/// moved to a uniformly chosen other node with probability `rewire`.
pub fn watts_strogatz(n: u32, k: u32, rewire: f64, rng: &CounterRng) -> EdgeList {
    watts_strogatz_touching(n, k, rewire, rng, 0..n)
}

/// The edges of [`watts_strogatz`] with at least one end in `rows`, in the
/// same order: every node's edges are drawn (a rewired edge may land
/// anywhere), only those touching the rows are kept.
pub fn watts_strogatz_touching(n: u32, k: u32, rewire: f64, rng: &CounterRng, rows: std::ops::Range<u32>) -> EdgeList {
    let half = (k / 2) as usize;
    if n < 2 || half == 0 {
        return EdgeList::from_flat(Vec::new());
    }
    let threshold = crate::rng::bernoulli_threshold(rewire);
    // Edge j of node i: to its (j + 1)-th neighbour on the ring, or rewired.
    let edge = |i: usize, j: usize| {
        let mut target = ((i + j + 1) % n as usize) as u32;
        if rng.draw(i as u64, 2 * j as u64) < threshold {
            // Draw among the n - 1 other nodes, so a rewired edge is never a loop.
            let r = rng.below(i as u64, 2 * j as u64 + 1, n as u64 - 1) as u32;
            target = if r >= i as u32 { r + 1 } else { r };
        }
        [i as u32, target]
    };
    if rows.start == 0 && rows.end >= n {
        let mut ends = vec![0u32; 2 * half * n as usize];
        ends.par_chunks_mut(2 * half).enumerate().for_each(|(i, chunk)| {
            for j in 0..half {
                chunk[2 * j..2 * j + 2].copy_from_slice(&edge(i, j));
            }
        });
        return EdgeList::from_flat(ends);
    }
    let kept: Vec<u32> = (0..n as usize)
        .into_par_iter()
        .with_min_len(1 << 12)
        .flat_map_iter(|i| {
            (0..half)
                .map(move |j| edge(i, j))
                .filter(|e| e.iter().any(|a| rows.contains(a)))
                .flatten()
        })
        .collect();
    EdgeList::from_flat(kept)
}

/// Barabási–Albert preferential attachment, each new node bringing `m` edges,
/// by the linear-time algorithm of Batagelj and Brandes (2005): the edge
/// array itself is the urn from which attachment targets are drawn.
pub fn barabasi_albert(n: u32, m: u32, rng: &CounterRng) -> EdgeList {
    let total = n as usize * m as usize;
    let mut ends = vec![0u32; 2 * total];
    for v in 0..n as usize {
        for i in 0..m as usize {
            let e = v * m as usize + i;
            ends[2 * e] = v as u32;
            let r = rng.below(e as u64, 0, 2 * e as u64 + 1) as usize;
            ends[2 * e + 1] = ends[r];
        }
    }
    EdgeList::from_flat(ends)
}

/// Households, classes, workplaces: agents `0..n` are cut into consecutive
/// groups whose sizes are drawn from `size_weights` (entry `s - 1` is the
/// relative weight of size `s`), and each group is fully connected. The last
/// group is truncated to fit. Returns the edges and each agent's group id;
/// numbering members consecutively keeps contacts close in memory.
pub fn groups(n: u32, size_weights: &[f64], rng: &CounterRng) -> (EdgeList, Vec<u32>) {
    let starts = group_starts(n, size_weights, rng);
    let group_of: Vec<u32> = {
        let mut v = vec![0u32; n as usize];
        starts.windows(2).enumerate().for_each(|(gi, w)| {
            v[w[0] as usize..w[1] as usize].fill(gi as u32);
        });
        v
    };
    (group_edges(&starts), group_of)
}

/// The edges of [`groups`] with at least one end in `rows`: only the groups
/// overlapping `rows` (a rank's share, without making every group's edges).
pub fn groups_touching(n: u32, size_weights: &[f64], rng: &CounterRng, rows: std::ops::Range<u32>) -> EdgeList {
    let starts = group_starts(n, size_weights, rng);
    // Groups g with starts[g] < rows.end and starts[g + 1] > rows.start.
    let first = starts.partition_point(|&s| s <= rows.start).saturating_sub(1);
    let last = starts
        .partition_point(|&s| s < rows.end)
        .max(first + 1)
        .min(starts.len() - 1);
    group_edges(&starts[first..=last])
}

/// Where each group starts (and `n` last): sizes drawn from `size_weights`
/// one group after another, the last truncated to fit.
fn group_starts(n: u32, size_weights: &[f64], rng: &CounterRng) -> Vec<u32> {
    let total: f64 = size_weights.iter().sum();
    let mut cdf = Vec::with_capacity(size_weights.len());
    let mut acc = 0.0;
    for w in size_weights {
        acc += w / total;
        cdf.push(acc);
    }
    let mut starts = vec![0u32];
    let mut filled = 0u64;
    let mut g = 0u64;
    while filled < n as u64 {
        let u = rng.uniform(g, 0);
        let size = cdf.partition_point(|&c| c <= u).min(cdf.len() - 1) as u64 + 1;
        filled = (filled + size).min(n as u64);
        starts.push(filled as u32);
        g += 1;
    }
    starts
}

/// Every pair within each group `starts[g]..starts[g + 1]`, group by group.
fn group_edges(starts: &[u32]) -> EdgeList {
    let edge_start: Vec<usize> = std::iter::once(0)
        .chain(starts.windows(2).scan(0usize, |acc, w| {
            let s = (w[1] - w[0]) as usize;
            *acc += s * (s - 1) / 2;
            Some(*acc)
        }))
        .collect();
    let mut ends = vec![0u32; 2 * edge_start[edge_start.len() - 1]];
    // Split the output by group so groups fill their edges in parallel.
    let mut rest: &mut [u32] = &mut ends;
    let mut jobs = Vec::with_capacity(starts.len().saturating_sub(1));
    for (gi, w) in starts.windows(2).enumerate() {
        let len = 2 * (edge_start[gi + 1] - edge_start[gi]);
        let (mine, r) = std::mem::take(&mut rest).split_at_mut(len);
        rest = r;
        jobs.push((w[0], w[1], mine));
    }
    jobs.into_par_iter().for_each(|(a, b, out)| {
        let mut k = 0;
        for i in a..b {
            for j in i + 1..b {
                out[k] = i;
                out[k + 1] = j;
                k += 2;
            }
        }
    });
    EdgeList::from_flat(ends)
}

/// Undirected edges [`groups_from_ids`] would make: the sum over groups of
/// s(s-1)/2, computed without making them (to refuse a column that puts a
/// million agents in one group before asking for 10^12 edges).
pub fn group_pairs(ids: &[i64]) -> f64 {
    let mut sorted: Vec<i64> = ids.iter().copied().filter(|&g| g >= 0).collect();
    sorted.par_sort_unstable();
    let mut pairs = 0.0;
    for run in sorted.chunk_by(|a, b| a == b) {
        let s = run.len() as f64;
        pairs += s * (s - 1.0) / 2.0;
    }
    pairs
}

/// Fully connect agents that share a group id: `ids[i]` is agent `i`'s group
/// (households, school classes, work teams read from a population column);
/// a negative id means "in no group". Members need not be contiguous.
pub fn groups_from_ids(ids: &[i64]) -> EdgeList {
    groups_from_ids_touching(ids, 0..ids.len() as u32)
}

/// The edges of [`groups_from_ids`] for the groups with a member among
/// `rows`: every edge touching those rows, each pair in the same order,
/// without the pairs of the other groups (a rank of a partitioned run
/// builds its rows of a layer of households or work teams this way).
pub fn groups_from_ids_touching(ids: &[i64], rows: std::ops::Range<u32>) -> EdgeList {
    let whole = rows.start == 0 && rows.end as usize >= ids.len();
    let wanted: Vec<i64> = if whole {
        Vec::new()
    } else {
        let here = &ids[(rows.start as usize).min(ids.len())..(rows.end as usize).min(ids.len())];
        let mut w: Vec<i64> = here.iter().copied().filter(|&g| g >= 0).collect();
        w.par_sort_unstable();
        w.dedup();
        w
    };
    let mut members: Vec<(i64, u32)> = ids
        .par_iter()
        .enumerate()
        .filter(|(_, &g)| g >= 0 && (whole || wanted.binary_search(&g).is_ok()))
        .map(|(i, &g)| (g, i as u32))
        .collect();
    members.par_sort_unstable();
    let mut ends = Vec::new();
    for group in members.chunk_by(|a, b| a.0 == b.0) {
        for (k, a) in group.iter().enumerate() {
            for b in &group[k + 1..] {
                ends.push(a.1);
                ends.push(b.1);
            }
        }
    }
    EdgeList::from_flat(ends)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csr::Csr;
    use crate::rng::Stream;

    fn rng() -> CounterRng {
        CounterRng::new(2024, Stream::NETWORK)
    }

    /// The edges of `edges` with an end in `rows`, in order.
    fn touching(edges: &EdgeList, rows: &std::ops::Range<u32>) -> Vec<u32> {
        edges
            .ends
            .chunks_exact(2)
            .filter(|p| rows.contains(&p[0]) || rows.contains(&p[1]))
            .flatten()
            .copied()
            .collect()
    }

    const ROWS: [std::ops::Range<u32>; 5] = [0..1000, 0..1, 300..650, 999..1000, 500..500];

    /// ER mean degree: each edge contributes 2, duplicates are O(c^2/n).
    #[test]
    fn erdos_renyi_touching_keeps_exactly_the_edges_touching_the_rows() {
        let whole = erdos_renyi(1000, 4.0, &rng());
        let rows = 300..650;
        let kept = touching(&whole, &rows);
        assert!(!kept.is_empty() && kept.len() < whole.ends.len());
        assert_eq!(erdos_renyi_touching(1000, 4.0, &rng(), rows).ends, kept);
    }

    #[test]
    fn groups_touching_keeps_exactly_the_edges_touching_the_rows() {
        let weights = [0.3, 0.3, 0.2, 0.2];
        let (whole, _) = groups(1000, &weights, &rng());
        let pairs = |ends: Vec<u32>| {
            let mut v: Vec<[u32; 2]> = ends.chunks_exact(2).map(|p| [p[0], p[1]]).collect();
            v.sort_unstable();
            v
        };
        for rows in ROWS {
            // Groups that only touch the range's ends may add edges with no
            // end in it; the rows' edges must all be there.
            let got = touching(&groups_touching(1000, &weights, &rng(), rows.clone()), &rows);
            assert_eq!(pairs(got), pairs(touching(&whole, &rows)), "rows {rows:?}");
        }
    }

    #[test]
    fn watts_strogatz_touching_keeps_exactly_the_edges_touching_the_rows() {
        let whole = watts_strogatz(1000, 6, 0.2, &rng());
        for rows in ROWS {
            let got = watts_strogatz_touching(1000, 6, 0.2, &rng(), rows.clone()).ends;
            assert_eq!(got, touching(&whole, &rows), "rows {rows:?}");
        }
    }

    #[test]
    fn groups_from_ids_touching_keeps_the_edges_touching_the_rows_in_order() {
        // Groups scattered over the ids, some agents in none.
        let ids: Vec<i64> = (0..1000u64)
            .map(|i| if i % 11 == 3 { -1 } else { ((i * 37) % 97) as i64 })
            .collect();
        let whole = groups_from_ids(&ids);
        for rows in ROWS {
            let got = groups_from_ids_touching(&ids, rows.clone());
            assert_eq!(touching(&got, &rows), touching(&whole, &rows), "rows {rows:?}");
            // Only the groups with a member in the rows.
            assert!(got.ends.len() <= whole.ends.len());
            if rows.len() < 100 {
                assert!(got.ends.len() < whole.ends.len() / 10, "rows {rows:?}");
            }
        }
    }

    #[test]
    fn erdos_renyi_degrees_are_poisson() {
        let n = 200_000;
        let (g, r) = Csr::from_edges(n, erdos_renyi(n, 8.0, &rng())).unwrap();
        assert!((g.mean_degree() - 8.0).abs() < 0.01, "{}", g.mean_degree());
        assert!(r.duplicates_merged < 100);
        // Variance of a Poisson degree equals its mean; the standard error of
        // the sample variance is about sqrt(2 c^2 / n) = 0.025 here.
        let var = (0..n)
            .map(|i| (g.degree(i) as f64 - g.mean_degree()).powi(2))
            .sum::<f64>()
            / n as f64;
        assert!((var - 8.0).abs() < 0.15, "variance {var}");
    }

    #[test]
    fn random_regular_is_almost_regular() {
        let n = 100_000;
        let (edges, odd) = random_regular(n, 6, &rng());
        assert!(!odd);
        let (g, r) = Csr::from_edges(n, edges).unwrap();
        // Expected loops + repeats in the configuration model: (k-1)/2 + (k-1)^2/4 ~ 8.75.
        assert!(r.self_loops_removed + r.duplicates_merged < 40, "{r:?}");
        let irregular = (0..n).filter(|&i| g.degree(i) != 6).count();
        assert!(irregular < 80);
    }

    #[test]
    fn negative_binomial_degrees_match_moments() {
        let n = 200_000;
        let dist = DegreeDistribution::NegativeBinomial {
            mean: 10.0,
            dispersion: 2.0,
        };
        let d = sample_degrees(n, &dist, &rng());
        let mean = d.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        let var = d.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        // Standard error of the mean: sqrt(60 / 2e5) = 0.017.
        assert!((mean - 10.0).abs() < 0.09, "mean {mean}");
        assert!((var - dist.variance()).abs() / dist.variance() < 0.05, "var {var}");
        let (edges, _) = configuration(&d, &rng());
        let (g, _) = Csr::from_edges(n, edges).unwrap();
        assert!((g.mean_degree() - mean).abs() < 0.1);
    }

    #[test]
    fn watts_strogatz_without_rewiring_is_a_ring_lattice() {
        let n = 1000;
        let (g, r) = Csr::from_edges(n, watts_strogatz(n, 4, 0.0, &rng())).unwrap();
        assert_eq!(r.edges, 2000);
        assert_eq!(g.neighbours(0), &[1, 2, 998, 999]);
        assert!((0..n).all(|i| g.degree(i) == 4));
    }

    #[test]
    fn watts_strogatz_rewires_the_expected_share() {
        let n = 100_000;
        let e = watts_strogatz(n, 10, 0.1, &rng());
        let rewired = e
            .ends
            .chunks(2)
            .filter(|p| {
                let d = (p[1] as i64 - p[0] as i64).rem_euclid(n as i64);
                !(1..=5).contains(&d)
            })
            .count() as f64;
        let m = e.len() as f64;
        // Binomial(m, ~0.1) share, standard error sqrt(0.09 / m) ~ 0.0013.
        assert!((rewired / m - 0.1).abs() < 0.007, "{}", rewired / m);
    }

    #[test]
    fn barabasi_albert_has_heavy_tail_and_m_edges_per_node() {
        let n = 50_000;
        let m = 3;
        let (g, r) = Csr::from_edges(n, barabasi_albert(n, m, &rng())).unwrap();
        assert_eq!(r.input_edges, (n * m) as u64);
        assert!(r.edges as f64 > 0.99 * (n * m) as f64);
        let max = (0..n).map(|i| g.degree(i)).max().unwrap();
        // Expected maximum degree grows like m sqrt(n) ~ 670; a Poisson graph of
        // the same mean would rarely exceed 20.
        assert!(max > 150, "max degree {max}");
    }

    #[test]
    fn groups_from_ids_connect_members_only() {
        let ids = [3, -1, 3, 0, 3, 0, -1];
        let (g, r) = Csr::from_edges(7, groups_from_ids(&ids)).unwrap();
        assert_eq!(r.edges, 4);
        assert_eq!(g.neighbours(0), &[2, 4]);
        assert_eq!(g.neighbours(3), &[5]);
        assert_eq!(g.degree(1) + g.degree(6), 0);
    }

    #[test]
    fn groups_partition_and_connect_fully() {
        let n = 10_001;
        let (edges, group_of) = groups(n, &[0.2, 0.3, 0.3, 0.2], &rng());
        let (g, _) = Csr::from_edges(n, edges).unwrap();
        for i in 0..n {
            let size = group_of.iter().filter(|&&x| x == group_of[i as usize]).count();
            assert_eq!(g.degree(i) as usize, size - 1);
            assert!(g
                .neighbours(i)
                .iter()
                .all(|&j| group_of[j as usize] == group_of[i as usize]));
        }
        // Mean size 2.5 -> about 4000 groups.
        let count = *group_of.last().unwrap() + 1;
        assert!((3800..4200).contains(&count), "{count}");
    }
}

#[cfg(test)]
mod determinism {
    use super::*;
    use crate::csr::Csr;
    use crate::rng::Stream;

    /// Every generator, and the CSR builder, give the same layer on any
    /// number of threads (the builder's row bands depend on the thread count).
    #[test]
    fn layers_are_identical_on_1_2_and_7_threads() {
        let build = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    let rng = CounterRng::new(99, Stream::NETWORK);
                    let n = 30_000;
                    let nb = DegreeDistribution::NegativeBinomial {
                        mean: 6.0,
                        dispersion: 1.5,
                    };
                    let lists = vec![
                        erdos_renyi(n, 7.0, &rng),
                        configuration(&sample_degrees(n, &nb, &rng), &rng).0,
                        random_regular(n, 5, &rng).0,
                        watts_strogatz(n, 6, 0.2, &rng),
                        barabasi_albert(n, 3, &rng),
                        groups(n, &[0.1, 0.4, 0.3, 0.2], &rng).0,
                        EdgeList {
                            ends: erdos_renyi(n, 3.0, &rng).ends,
                            weights: Some((0..(n as usize * 3 / 2)).map(|i| (i % 7) as f32).collect()),
                        },
                    ];
                    lists
                        .into_iter()
                        .map(|e| Csr::from_edges(n, e).unwrap())
                        .collect::<Vec<_>>()
                })
        };
        let one = build(1);
        assert_eq!(one, build(2));
        assert_eq!(one, build(7));
    }
}
