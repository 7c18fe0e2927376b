//! Continuous 2-D periodic space (a torus) and a uniform-grid cell list for
//! fixed-radius neighbour queries.
//!
//! Agents' positions stay in the model's columns, in agent order; the cell
//! list keeps a copy of what neighbour queries read (positions and a
//! payload such as heading vectors) sorted by cell, so that the agents of
//! one cell, and of the cells around it, are contiguous in memory. It is
//! rebuilt every step: cells are computed in parallel, the counting sort is
//! a single pass in agent order (so the sorted order is the same whatever
//! the thread count) and the copies are gathered in parallel.

use rayon::prelude::*;

/// An L x L box with periodic boundaries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Torus {
    /// Side length L.
    pub size: f64,
}

impl Torus {
    /// Bring a coordinate back into `[0, L)`.
    #[inline(always)]
    pub fn wrap(&self, x: f64) -> f64 {
        let y = x - self.size * (x / self.size).floor();
        // `floor` can leave exactly L for tiny negative inputs.
        if y >= self.size {
            0.0
        } else {
            y
        }
    }

    /// The shortest signed displacement from `a` to `b` along one axis
    /// (minimum image), in `[-L/2, L/2]`.
    #[inline(always)]
    pub fn delta(&self, a: f64, b: f64) -> f64 {
        let mut d = b - a;
        let half = 0.5 * self.size;
        if d > half {
            d -= self.size;
        } else if d < -half {
            d += self.size;
        }
        d
    }
}

/// Errors setting up a neighbour grid.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpaceError {
    /// The radius does not fit the box: with periodic boundaries an agent
    /// would meet the same neighbour twice.
    #[error("interaction radius {radius} is larger than half the box side ({half}); shrink it or enlarge the box")]
    RadiusTooLarge {
        /// The radius asked for.
        radius: f64,
        /// Half the box side.
        half: f64,
    },
    /// Radius or box side not a positive finite number.
    #[error("box side {size} and radius {radius} must be positive finite numbers")]
    NotPositive {
        /// Box side.
        size: f64,
        /// Radius.
        radius: f64,
    },
}

/// A uniform grid of square cells at least as wide as the query radius, so
/// that every neighbour within the radius is in the 3 x 3 block of cells
/// around an agent's own.
#[derive(Clone, Debug)]
pub struct CellList {
    torus: Torus,
    radius: f64,
    side: usize,
    cell_width: f64,
    /// Start of each cell's agents in the sorted arrays (`side^2 + 1` entries).
    start: Vec<u32>,
    cell: Vec<u32>,
    /// Agent ids in cell order.
    pub order: Vec<u32>,
    /// Sorted x coordinates.
    pub x: Vec<f64>,
    /// Sorted y coordinates.
    pub y: Vec<f64>,
    /// Sorted payload (two values per agent, e.g. cos and sin of a heading).
    pub payload: Vec<[f64; 2]>,
}

impl CellList {
    /// A grid for neighbours within `radius` in `torus`, for `agents` agents
    /// (at most about two cells per agent: cells wider than the radius are
    /// still correct, and a tiny radius must not allocate a huge grid).
    pub fn new(torus: Torus, radius: f64, agents: usize) -> Result<CellList, SpaceError> {
        if !(torus.size.is_finite() && torus.size > 0.0 && radius.is_finite() && radius > 0.0) {
            return Err(SpaceError::NotPositive {
                size: torus.size,
                radius,
            });
        }
        if radius > 0.5 * torus.size {
            return Err(SpaceError::RadiusTooLarge {
                radius,
                half: 0.5 * torus.size,
            });
        }
        // At least 3 cells a side so that the 3 x 3 block holds distinct
        // cells; with fewer, one cell covers the box and is scanned once.
        let most = ((2 * agents.max(1)) as f64).sqrt().floor() as usize;
        let fit = ((torus.size / radius).floor() as usize).min(most);
        let side = if fit >= 3 { fit } else { 1 };
        Ok(CellList {
            torus,
            radius,
            side,
            cell_width: torus.size / side as f64,
            start: vec![0; side * side + 1],
            cell: Vec::new(),
            order: Vec::new(),
            x: Vec::new(),
            y: Vec::new(),
            payload: Vec::new(),
        })
    }

    /// The box.
    pub fn torus(&self) -> Torus {
        self.torus
    }

    /// The query radius.
    pub fn radius(&self) -> f64 {
        self.radius
    }

    /// Cells per side.
    pub fn side(&self) -> usize {
        self.side
    }

    #[inline(always)]
    fn axis_cell(&self, x: f64) -> usize {
        ((x / self.cell_width) as usize).min(self.side - 1)
    }

    /// The cell holding point (x, y).
    #[inline(always)]
    pub fn cell_of(&self, x: f64, y: f64) -> usize {
        self.axis_cell(y) * self.side + self.axis_cell(x)
    }

    /// `n` uniform points in the box from counter draws `(i, 0)` and `(i, 1)`
    /// of `rng`, handed to agents in cell order: agents are exchangeable,
    /// and ids that are near in space are then near in memory, so the
    /// cell-ordered copies gather from nearby addresses for as long as the
    /// agents have not mixed.
    pub fn uniform_points(&self, n: usize, rng: &crate::rng::CounterRng) -> (Vec<f64>, Vec<f64>) {
        let t = self.torus;
        let pts: Vec<(f64, f64)> = (0..n)
            .map(|i| {
                (
                    t.wrap(rng.uniform(i as u64, 0) * t.size),
                    t.wrap(rng.uniform(i as u64, 1) * t.size),
                )
            })
            .collect();
        let mut order: Vec<(u32, u32)> = pts
            .iter()
            .enumerate()
            .map(|(i, &(x, y))| (self.cell_of(x, y) as u32, i as u32))
            .collect();
        order.sort_unstable();
        order.iter().map(|&(_, i)| pts[i as usize]).unzip()
    }

    /// The sorted position of each agent (the inverse of [`Self::order`]).
    pub fn ranks(&self, rank: &mut Vec<u32>) {
        rank.resize(self.order.len(), 0);
        for (k, &i) in self.order.iter().enumerate() {
            rank[i as usize] = k as u32;
        }
    }

    /// Sort agents (positions in `[0, L)`) and their payload by cell.
    pub fn rebuild(&mut self, xs: &[f64], ys: &[f64], payload: impl Fn(usize) -> [f64; 2] + Sync) {
        let n = xs.len();
        let cells = self.side * self.side;
        let mut cell = std::mem::take(&mut self.cell);
        cell.resize(n, 0);
        let me = &*self;
        cell.par_iter_mut()
            .enumerate()
            .with_min_len(4096)
            .for_each(|(i, c)| *c = me.cell_of(xs[i], ys[i]) as u32);
        // Counting sort in agent order: stable, so agents of a cell keep
        // their id order and the result does not depend on threads.
        let start = &mut self.start;
        start.iter_mut().for_each(|s| *s = 0);
        for &c in &cell {
            start[c as usize + 1] += 1;
        }
        for k in 0..cells {
            start[k + 1] += start[k];
        }
        let mut next: Vec<u32> = start[..cells].to_vec();
        self.order.resize(n, 0);
        for (i, &c) in cell.iter().enumerate() {
            let slot = &mut next[c as usize];
            self.order[*slot as usize] = i as u32;
            *slot += 1;
        }
        self.cell = cell;
        let order = &self.order;
        self.x.resize(n, 0.0);
        self.y.resize(n, 0.0);
        self.payload.resize(n, [0.0; 2]);
        (&mut self.x, &mut self.y, &mut self.payload)
            .into_par_iter()
            .enumerate()
            .with_min_len(4096)
            .for_each(|(k, (x, y, p))| {
                let i = order[k] as usize;
                *x = xs[i];
                *y = ys[i];
                *p = payload(i);
            });
    }

    /// Sorted index range of the agents in cell `c`.
    #[inline(always)]
    pub fn cell_range(&self, c: usize) -> std::ops::Range<usize> {
        self.start[c] as usize..self.start[c + 1] as usize
    }

    /// Visit every agent within the radius of point (x, y) (itself
    /// included, if it is an agent): `visit(sorted index, dx, dy, d²)`,
    /// displacements by minimum image. Cells are visited in a fixed order,
    /// agents in sorted order within each, so sums over the visits are the
    /// same on every run.
    #[inline]
    pub fn for_each_within(&self, x: f64, y: f64, mut visit: impl FnMut(usize, f64, f64, f64)) {
        let r2 = self.radius * self.radius;
        self.for_each_candidate(x, y, |k, dx, dy, d2| {
            if d2 <= r2 {
                visit(k, dx, dy, d2)
            }
        });
    }

    /// Visit every agent of the cells that can hold agents within the
    /// radius of (x, y), near or not: `visit(sorted index, dx, dy, d²)`, for
    /// callers that test the distance without branching. Same order as
    /// [`Self::for_each_within`].
    #[inline]
    pub fn for_each_candidate(&self, x: f64, y: f64, mut visit: impl FnMut(usize, f64, f64, f64)) {
        let t = self.torus;
        if self.side == 1 {
            for k in 0..self.x.len() {
                let (dx, dy) = (t.delta(x, self.x[k]), t.delta(y, self.y[k]));
                visit(k, dx, dy, dx * dx + dy * dy);
            }
            return;
        }
        let s = self.side as isize;
        let (cx, cy) = (self.axis_cell(x) as isize, self.axis_cell(y) as isize);
        for oy in -1..=1 {
            let (ny, shift_y) = wrapped(cy + oy, s, t.size);
            let row = ny * self.side;
            for ox in -1..=1 {
                let (nx, shift_x) = wrapped(cx + ox, s, t.size);
                // A neighbour cell across the edge is seen through the
                // boundary: shift its agents by a box side instead of
                // testing every displacement for the minimum image.
                let (qx, qy) = (x - shift_x, y - shift_y);
                let range = self.cell_range(row + nx);
                for (k, (&xk, &yk)) in self.x[range.clone()].iter().zip(&self.y[range.clone()]).enumerate() {
                    let (dx, dy) = (xk - qx, yk - qy);
                    visit(range.start + k, dx, dy, dx * dx + dy * dy);
                }
            }
        }
    }
}

/// A cell index wrapped into `0..s`, and the shift of the box side that
/// brings that cell's points next to the unwrapped one.
#[inline(always)]
fn wrapped(c: isize, s: isize, size: f64) -> (usize, f64) {
    if c < 0 {
        ((c + s) as usize, -size)
    } else if c >= s {
        ((c - s) as usize, size)
    } else {
        (c as usize, 0.0)
    }
}

/// Sum `f(i)` over `0..n` in fixed chunks, each summed in order and the
/// chunk sums added in order: the same bits on any number of threads.
pub fn ordered_sum<const K: usize>(n: usize, f: impl Fn(usize) -> [f64; K] + Sync) -> [f64; K] {
    const CHUNK: usize = 8192;
    let parts: Vec<[f64; K]> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut s = [0.0; K];
            for i in c * CHUNK..((c + 1) * CHUNK).min(n) {
                let v = f(i);
                for k in 0..K {
                    s[k] += v[k];
                }
            }
            s
        })
        .collect();
    let mut s = [0.0; K];
    for p in parts {
        for k in 0..K {
            s[k] += p[k];
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brute(t: Torus, r: f64, xs: &[f64], ys: &[f64], i: usize) -> Vec<u32> {
        let mut v: Vec<u32> = (0..xs.len())
            .filter(|&j| {
                let (dx, dy) = (t.delta(xs[i], xs[j]), t.delta(ys[i], ys[j]));
                dx * dx + dy * dy <= r * r
            })
            .map(|j| j as u32)
            .collect();
        v.sort();
        v
    }

    proptest! {
        #[test]
        fn finds_exactly_the_agents_within_the_radius(
            size in 1.0f64..20.0, frac in 0.01f64..0.5,
            pts in prop::collection::vec((0.0f64..1.0, 0.0f64..1.0), 1..200)
        ) {
            let t = Torus { size };
            let r = frac * size;
            let xs: Vec<f64> = pts.iter().map(|p| t.wrap(p.0 * size)).collect();
            let ys: Vec<f64> = pts.iter().map(|p| t.wrap(p.1 * size)).collect();
            let mut cl = CellList::new(t, r, xs.len()).unwrap();
            cl.rebuild(&xs, &ys, |_| [0.0; 2]);
            for i in 0..xs.len() {
                let mut got = Vec::new();
                cl.for_each_within(xs[i], ys[i], |k, _, _, _| got.push(cl.order[k]));
                got.sort();
                prop_assert_eq!(got, brute(t, r, &xs, &ys, i));
            }
        }
    }

    #[test]
    fn refuses_a_radius_larger_than_half_the_box() {
        let e = CellList::new(Torus { size: 4.0 }, 2.5, 10).unwrap_err();
        assert!(e.to_string().contains("larger than half the box"));
        assert!(CellList::new(Torus { size: 4.0 }, 0.0, 10).is_err());
        assert!(CellList::new(Torus { size: f64::NAN }, 1.0, 10).is_err());
        // A tiny radius does not ask for a grid of billions of cells.
        assert!(CellList::new(Torus { size: 100.0 }, 1e-9, 100).unwrap().side() <= 14);
    }

    #[test]
    fn ordered_sums_do_not_depend_on_threads() {
        let f = |i: usize| [((i as f64) * 0.37).sin(), 1e-3 * i as f64];
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let three = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let a = one.install(|| ordered_sum(100_003, f));
        let b = three.install(|| ordered_sum(100_003, f));
        assert_eq!(a.map(f64::to_bits), b.map(f64::to_bits));
    }

    #[test]
    fn wrap_and_delta() {
        let t = Torus { size: 10.0 };
        assert_eq!(t.wrap(-0.5), 9.5);
        assert_eq!(t.wrap(10.0), 0.0);
        assert_eq!(t.delta(9.5, 0.5), 1.0);
        assert_eq!(t.delta(0.5, 9.5), -1.0);
    }
}
