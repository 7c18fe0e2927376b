//! A synthetic population of New York City built from public tables.
//!
//! What is matched, and what is assumed (the assumptions are ours; the
//! tables are described in `data/nyc/README.md`):
//!
//! - **Residents and households per area** are matched exactly (after
//!   scaling by `scale`): each area gets `round(people x scale)` agents in
//!   `round(households x scale)` households. Household sizes are
//!   `1 + Poisson(mean - 1)`, then adjusted one person at a time (at random
//!   households, never below 1) until they sum to the area's residents.
//! - **Age group, gender, ethnicity**: Brooklyn areas with person counts use
//!   their own (age x gender x ethnicity) counts; every other area uses the
//!   Brooklyn-wide shares (the only person-level marginals in the data). Counts
//!   per cell are apportioned exactly (largest remainder), then shuffled.
//! - Every household gets an adult (20+) first, when the area has enough; the
//!   other members are drawn at random from the rest of the area's residents.
//! - **Employment**: in each borough, `labour force x (1 - unemployment rate)`
//!   agents aged 20-64 are employed and `labour force x rate` are unemployed,
//!   using July 2020 figures, scaled by the borough's synthetic-to-real
//!   population ratio; the rest are outside the labour force. Agents are
//!   chosen uniformly among those aged 20-64.
//! - **Schools**: agents under 20 are placed in classes of `class_size`
//!   within their area (neighbourhood schools), after shuffling so siblings
//!   are not systematically together.
//! - **Workplaces**: employed agents are placed in work teams within their
//!   borough (commuting within the borough), team sizes drawn from
//!   [`TEAM_SIZE_WEIGHTS`]. A team is the set of coworkers met daily, not the
//!   whole firm.
//!
//! Agents are numbered area by area and household by household, so members
//! of a household are contiguous in memory.

pub mod data;
mod source;
pub mod surveillance;

pub use source::NYC;

use data::{Tables, BOROUGHS};
use myriad_core::model::ModelError;
use myriad_core::population::{Column, ColumnData, Population};
use myriad_core::rng::{CounterRng, Stream};
use rand_distr::{Distribution, Poisson};
use rayon::prelude::*;

/// Relative frequency of work-team sizes 1, 2, ..., 20: most people work
/// with a handful of close colleagues. Mean size about 6.
pub const TEAM_SIZE_WEIGHTS: [f64; 20] = [
    3.0, 6.0, 8.0, 9.0, 9.0, 8.0, 7.0, 6.0, 5.0, 5.0, 4.0, 3.5, 3.0, 2.5, 2.0, 2.0, 1.5, 1.5, 1.0, 1.0,
];

/// Options of the synthetic city.
#[derive(Clone, Debug, PartialEq)]
pub struct CityOptions {
    /// Boroughs to include (codes BK, BX, MN, QN, SI); empty means all.
    pub boroughs: Vec<String>,
    /// Fraction of residents and households to create, in (0, 1].
    pub scale: f64,
    /// Pupils per class.
    pub class_size: u32,
    /// Observed cases include the Health Department's probable cases.
    pub probable_cases: bool,
}

impl Default for CityOptions {
    fn default() -> Self {
        CityOptions {
            boroughs: Vec::new(),
            scale: 1.0,
            class_size: 25,
            probable_cases: false,
        }
    }
}

/// Labels of the synthetic city's whole-number code columns, so that
/// prompts show `U19` or `female`, not `0`.
pub fn code_labels(column: &str) -> Option<&'static [&'static str]> {
    match column {
        columns::AGE_GROUP => Some(&data::AGE_GROUPS),
        columns::GENDER => Some(&data::GENDERS),
        columns::ETHNICITY => Some(&data::ETHNICITIES),
        columns::EMPLOYMENT => Some(&["outside the labour force", "employed", "unemployed"]),
        _ => None,
    }
}

/// An upper bound on the synthetic city's residents at scale 1 (8,550,333
/// in the tables): for estimating a scenario's size before it is built.
pub const MAX_RESIDENTS: u64 = 8_600_000;

/// Column names of the synthetic population.
pub mod columns {
    /// Area code (text).
    pub const AREA: &str = "area";
    /// Borough code (text: BK, BX, MN, QN, SI).
    pub const BOROUGH: &str = "borough";
    /// Age group 0..=5 (U19, 20t29, 30t39, 40t49, 50t64, 65A).
    pub const AGE_GROUP: &str = "age_group";
    /// Gender 0 = female, 1 = male.
    pub const GENDER: &str = "gender";
    /// Ethnicity 0..=5 (asian, black, hispanic, native, other, white).
    pub const ETHNICITY: &str = "ethnicity";
    /// Household id.
    pub const HOUSEHOLD: &str = "household";
    /// 0 outside the labour force, 1 employed, 2 unemployed.
    pub const EMPLOYMENT: &str = "employment";
    /// School class id, -1 for agents aged 20+.
    pub const CLASS: &str = "class";
    /// Work team id, -1 for agents not employed.
    pub const WORK_TEAM: &str = "work_team";
}

/// One area's agents before numbering across the city.
struct AreaPeople {
    borough: u8,
    area: u32,
    cells: Vec<u8>,
    household_sizes: Vec<u32>,
}

/// Split `total` into integer parts proportional to `weights` (largest
/// remainder; ties to the lower index), summing exactly to `total`.
pub fn apportion(total: u64, weights: &[f64]) -> Vec<u64> {
    let sum: f64 = weights.iter().sum();
    if sum <= 0.0 || total == 0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<f64> = weights.iter().map(|w| w / sum * total as f64).collect();
    let mut parts: Vec<u64> = exact.iter().map(|x| x.floor() as u64).collect();
    let mut rest = total - parts.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    for &i in order.iter().cycle() {
        if rest == 0 {
            break;
        }
        parts[i] += 1;
        rest -= 1;
    }
    parts
}

fn shuffle<T>(v: &mut [T], rng: &CounterRng, key: u64) {
    for i in (1..v.len()).rev() {
        let j = rng.below(key, i as u64, i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

/// Build the synthetic city.
pub fn build_city(opts: &CityOptions, seed: u64) -> Result<Population, ModelError> {
    if !(opts.scale > 0.0 && opts.scale <= 1.0) {
        return Err(ModelError::Infeasible(format!(
            "scale must be in (0, 1], got {}",
            opts.scale
        )));
    }
    let mut include = [opts.boroughs.is_empty(); 5];
    for b in &opts.boroughs {
        let i = BOROUGHS
            .iter()
            .position(|x| x.eq_ignore_ascii_case(b))
            .ok_or_else(|| ModelError::Infeasible(format!("unknown borough '{b}' (known: {})", BOROUGHS.join(", "))))?;
        include[i] = true;
    }
    let t = data::tables();
    let rng = CounterRng::new(seed, Stream::custom(100));
    let chosen: Vec<(u32, &data::Area)> = t
        .areas
        .iter()
        .enumerate()
        .filter(|(_, a)| include[a.borough as usize] && a.people > 0)
        .map(|(i, a)| (i as u32, a))
        .collect();
    let people: Vec<AreaPeople> = chosen
        .par_iter()
        .map(|&(i, a)| area_people(&t, i, a, opts.scale, &rng))
        .collect();
    let n: u64 = people.iter().map(|p| p.cells.len() as u64).sum();
    u32::try_from(n).map_err(|_| ModelError::Infeasible("population too large".into()))?;
    let residents = Residents::number(&people);
    let employment = employment(&t, &residents, &rng);
    let class = school_classes(&people, &residents.age, opts.class_size, &rng);
    let team = work_teams(&residents.borough, &employment, &rng);
    let cols = residents.columns(&chosen, employment, class, team);
    Population::from_columns(n, cols).map_err(|e| ModelError::Infeasible(e.to_string()))
}

/// The residents numbered area by area and household by household.
struct Residents {
    area: Vec<u32>,
    borough: Vec<u32>,
    age: Vec<i64>,
    gender: Vec<i64>,
    ethnicity: Vec<i64>,
    household: Vec<i64>,
}

impl Residents {
    fn number(people: &[AreaPeople]) -> Residents {
        let n: usize = people.iter().map(|p| p.cells.len()).sum();
        let mut r = Residents {
            area: Vec::with_capacity(n),
            borough: Vec::with_capacity(n),
            age: Vec::with_capacity(n),
            gender: Vec::with_capacity(n),
            ethnicity: Vec::with_capacity(n),
            household: Vec::with_capacity(n),
        };
        let mut next_household = 0i64;
        for p in people {
            for &c in &p.cells {
                r.area.push(p.area);
                r.borough.push(p.borough as u32);
                r.age.push((c / 12) as i64);
                r.gender.push(((c / 6) % 2) as i64);
                r.ethnicity.push((c % 6) as i64);
            }
            for &s in &p.household_sizes {
                r.household.extend(std::iter::repeat_n(next_household, s as usize));
                next_household += 1;
            }
        }
        r
    }

    /// The population's columns.
    fn columns(
        self,
        chosen: &[(u32, &data::Area)],
        employment: Vec<i64>,
        class: Vec<i64>,
        team: Vec<i64>,
    ) -> Vec<Column> {
        let area_labels: Vec<String> = chosen.iter().map(|(_, a)| a.code.clone()).collect();
        let area_index: std::collections::HashMap<u32, u32> =
            chosen.iter().enumerate().map(|(k, (i, _))| (*i, k as u32)).collect();
        let int = |name: &str, v: Vec<i64>| Column {
            name: name.into(),
            data: ColumnData::Int(v),
        };
        vec![
            Column {
                name: columns::AREA.into(),
                data: ColumnData::Text {
                    codes: self.area.iter().map(|a| area_index[a]).collect(),
                    labels: area_labels,
                },
            },
            Column {
                name: columns::BOROUGH.into(),
                data: ColumnData::Text {
                    codes: self.borough,
                    labels: BOROUGHS.iter().map(|s| s.to_string()).collect(),
                },
            },
            int(columns::AGE_GROUP, self.age),
            int(columns::GENDER, self.gender),
            int(columns::ETHNICITY, self.ethnicity),
            int(columns::HOUSEHOLD, self.household),
            int(columns::EMPLOYMENT, employment),
            int(columns::CLASS, class),
            int(columns::WORK_TEAM, team),
        ]
    }
}

/// Employment per borough, from the July 2020 labour force scaled to the
/// synthetic population: 1 employed, 2 unemployed, 0 outside.
fn employment(t: &Tables, r: &Residents, rng: &CounterRng) -> Vec<i64> {
    let n = r.age.len();
    let mut employment = vec![0i64; n];
    for b in 0..5u8 {
        let members: Vec<usize> = (0..n).filter(|&i| r.borough[i] == b as u32).collect();
        if members.is_empty() {
            continue;
        }
        let real: u64 = t.areas.iter().filter(|a| a.borough == b).map(|a| a.people).sum();
        let ratio = members.len() as f64 / real as f64;
        let (force, rate) = t.labour[b as usize];
        let mut candidates: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| (1..=4).contains(&r.age[i]))
            .collect();
        let employed = ((force * (1.0 - rate / 100.0) * ratio).round() as usize).min(candidates.len());
        let unemployed = ((force * rate / 100.0 * ratio).round() as usize).min(candidates.len() - employed);
        shuffle(&mut candidates, rng, 1_000_000 + b as u64);
        for (k, &i) in candidates.iter().enumerate().take(employed + unemployed) {
            employment[i] = if k < employed { 1 } else { 2 };
        }
    }
    employment
}

/// School classes of `class_size` within each area; -1 for adults.
fn school_classes(people: &[AreaPeople], age: &[i64], class_size: u32, rng: &CounterRng) -> Vec<i64> {
    let mut class = vec![-1i64; age.len()];
    let mut next_class = 0i64;
    let mut start = 0usize;
    for (k, p) in people.iter().enumerate() {
        let end = start + p.cells.len();
        let mut kids: Vec<usize> = (start..end).filter(|&i| age[i] == 0).collect();
        shuffle(&mut kids, rng, 2_000_000 + k as u64);
        for chunk in kids.chunks(class_size.max(1) as usize) {
            for &i in chunk {
                class[i] = next_class;
            }
            next_class += 1;
        }
        start = end;
    }
    class
}

/// Work teams of the employed within each borough, sizes drawn from
/// [`TEAM_SIZE_WEIGHTS`]; -1 for everyone else.
fn work_teams(borough: &[u32], employment: &[i64], rng: &CounterRng) -> Vec<i64> {
    let n = borough.len();
    let mut team = vec![-1i64; n];
    let mut next_team = 0i64;
    let total_w: f64 = TEAM_SIZE_WEIGHTS.iter().sum();
    for b in 0..5u32 {
        let mut workers: Vec<usize> = (0..n).filter(|&i| borough[i] == b && employment[i] == 1).collect();
        shuffle(&mut workers, rng, 3_000_000 + b as u64);
        let mut k = 0usize;
        let mut draw = 0u64;
        while k < workers.len() {
            let mut u = rng.uniform(4_000_000 + b as u64, draw) * total_w;
            draw += 1;
            let mut size = TEAM_SIZE_WEIGHTS.len();
            for (s, w) in TEAM_SIZE_WEIGHTS.iter().enumerate() {
                if u < *w {
                    size = s + 1;
                    break;
                }
                u -= w;
            }
            for &i in &workers[k..(k + size).min(workers.len())] {
                team[i] = next_team;
            }
            next_team += 1;
            k += size;
        }
    }
    team
}

/// Demographic cells and household sizes of one area, with household
/// members in order (adult first).
fn area_people(t: &Tables, index: u32, a: &data::Area, scale: f64, rng: &CounterRng) -> AreaPeople {
    let n = ((a.people as f64 * scale).round() as u64).max(1);
    let h = ((a.households as f64 * scale).round() as u64).clamp(1, n);
    let weights = t.brooklyn_cells.get(&a.code).unwrap_or(&t.brooklyn_total);
    let counts = apportion(n, weights);
    let mut cells: Vec<u8> = counts
        .iter()
        .enumerate()
        .flat_map(|(c, &k)| std::iter::repeat_n(c as u8, k as usize))
        .collect();
    let key = index as u64;
    shuffle(&mut cells, rng, 10_000_000 + key);

    // Household sizes: 1 + Poisson(mean - 1), then adjusted to sum to n.
    let mean = n as f64 / h as f64;
    let mut seq = rng.sequence(20_000_000 + key);
    let poisson = Poisson::new((mean - 1.0).max(1e-9)).ok();
    let mut sizes: Vec<u32> = (0..h)
        .map(|_| 1 + poisson.as_ref().map_or(0, |p| p.sample(&mut seq) as u32))
        .collect();
    let mut total: u64 = sizes.iter().map(|&s| s as u64).sum();
    let mut draw = 0u64;
    while total != n {
        let k = rng.below(30_000_000 + key, draw, h) as usize;
        draw += 1;
        if total > n && sizes[k] > 1 {
            sizes[k] -= 1;
            total -= 1;
        } else if total < n {
            sizes[k] += 1;
            total += 1;
        }
    }
    // An adult heads each household while adults last; the rest fill in.
    let (adults, kids): (Vec<u8>, Vec<u8>) = cells.iter().partition(|&&c| c >= 12);
    let heads = adults.len().min(h as usize);
    let mut rest: Vec<u8> = adults[heads..].iter().chain(kids.iter()).copied().collect();
    shuffle(&mut rest, rng, 40_000_000 + key);
    let mut ordered = Vec::with_capacity(n as usize);
    let mut rest_iter = rest.into_iter();
    let mut head_iter = adults[..heads].iter().copied();
    for &s in &sizes {
        let mut members = s;
        if let Some(head) = head_iter.next() {
            ordered.push(head);
            members -= 1;
        }
        ordered.extend(rest_iter.by_ref().take(members as usize));
    }
    // Households without an adult head (more households than adults) were
    // filled entirely from the rest; anything left joins the last household.
    ordered.extend(rest_iter);
    debug_assert_eq!(ordered.len() as u64, n);
    AreaPeople {
        borough: a.borough,
        area: index,
        cells: ordered,
        household_sizes: sizes,
    }
}
