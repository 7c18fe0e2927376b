//! The public New York City tables (see `data/nyc/README.md` for their
//! provenance), compiled into the binary and parsed on demand.

use std::collections::HashMap;

const AREAS: &str = include_str!("../../../../data/nyc/area_households.csv");
const BROOKLYN_PEOPLE: &str = include_str!("../../../../data/nyc/brooklyn_person_counts.csv");
const UNEMPLOYMENT: &str = include_str!("../../../../data/nyc/borough_unemployment.csv");
const WEEKLY_CASES: &str = include_str!("../../../../data/nyc/borough_weekly_cases.csv");

/// Observed weekly confirmed cases, one entry per week (`week_index` 0..):
/// per borough in [`BOROUGHS`] order, and the city total.
pub fn observed_weekly_cases() -> Vec<([f64; 5], f64)> {
    // Columns: week_index, bronx, brooklyn, manhattan, queens, staten_island, nyc_total.
    let order = [2usize, 1, 3, 4, 5]; // BK, BX, MN, QN, SI
    rows(WEEKLY_CASES)
        .map(|r| {
            let v = |k: usize| r[k].parse::<f64>().expect("weekly cases are numbers");
            (std::array::from_fn(|b| v(order[b])), v(6))
        })
        .collect()
}

/// Observed unemployment rate (percent) per month, from the first month of
/// the table (year 1, month 7) on, per borough in [`BOROUGHS`] order. Rows
/// are taken in (year, month) order: the table's months run 7..11 in year 1
/// and 0..11 afterwards, so they are consecutive.
pub fn observed_unemployment() -> Vec<[f64; 5]> {
    let mut by_month: Vec<((u32, u32), [f64; 5])> = Vec::new();
    for r in rows(UNEMPLOYMENT) {
        let b = index(&BOROUGH_NAMES, &r[0]);
        let key = (
            r[2].parse().expect("year is an index"),
            r[3].parse().expect("month is an index"),
        );
        let rate: f64 = r[5].parse().expect("rate is a number");
        match by_month.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v[b] = rate,
            None => {
                let mut v = [f64::NAN; 5];
                v[b] = rate;
                by_month.push((key, v));
            }
        }
    }
    by_month.sort_by_key(|(k, _)| *k);
    by_month.into_iter().map(|(_, v)| v).collect()
}

/// The five boroughs, in the order used for borough codes.
pub const BOROUGHS: [&str; 5] = ["BK", "BX", "MN", "QN", "SI"];
/// Borough names as in the unemployment table.
pub const BOROUGH_NAMES: [&str; 5] = ["brooklyn", "bronx", "manhattan", "queens", "staten_island"];
/// Age groups, in code order 0..=5.
pub const AGE_GROUPS: [&str; 6] = ["U19", "20t29", "30t39", "40t49", "50t64", "65A"];
/// Genders in code order.
pub const GENDERS: [&str; 2] = ["female", "male"];
/// Ethnicities in code order.
pub const ETHNICITIES: [&str; 6] = ["asian", "black", "hispanic", "native", "other", "white"];

/// One neighbourhood area.
#[derive(Clone, Debug, PartialEq)]
pub struct Area {
    /// Area code, e.g. `BK0101`.
    pub code: String,
    /// Borough index into [`BOROUGHS`].
    pub borough: u8,
    /// Residents.
    pub people: u64,
    /// Households.
    pub households: u64,
}

/// A count of people per (age group, gender, ethnicity) cell:
/// index `(age * 2 + gender) * 6 + ethnicity`.
pub type Cells = [f64; 72];

/// Index of a demographic cell.
pub fn cell(age: usize, gender: usize, ethnicity: usize) -> usize {
    (age * 2 + gender) * 6 + ethnicity
}

/// Parsed tables.
pub struct Tables {
    /// All 262 areas (including the 53 with no residents: parks, airports).
    pub areas: Vec<Area>,
    /// Brooklyn person counts by area code.
    pub brooklyn_cells: HashMap<String, Cells>,
    /// Brooklyn-wide person counts.
    pub brooklyn_total: Cells,
    /// Labour force and unemployment rate (percent) per borough at July 2020.
    pub labour: [(f64, f64); 5],
}

fn rows(text: &str) -> impl Iterator<Item = csv::StringRecord> + '_ {
    csv::Reader::from_reader(text.as_bytes())
        .into_records()
        .map(|r| r.expect("the bundled NYC tables are valid CSV (checked by tests)"))
}

fn index(names: &[&str], value: &str) -> usize {
    names
        .iter()
        .position(|n| *n == value)
        .unwrap_or_else(|| panic!("bundled NYC table has unexpected value '{value}'"))
}

/// Parse the bundled tables. They are part of the program, not user input,
/// so a malformed table is a build defect and panics (a test parses them).
pub fn tables() -> Tables {
    let areas = rows(AREAS)
        .map(|r| Area {
            code: r[0].to_string(),
            borough: index(&BOROUGHS, &r[1]) as u8,
            people: r[2].parse().expect("people_num is a count"),
            households: r[21].parse().expect("household_num is a count"),
        })
        .collect();
    let mut brooklyn_cells: HashMap<String, Cells> = HashMap::new();
    let mut brooklyn_total = [0.0; 72];
    for r in rows(BROOKLYN_PEOPLE) {
        let c = cell(
            index(&AGE_GROUPS, &r[1]),
            index(&GENDERS, &r[2]),
            index(&ETHNICITIES, &r[3]),
        );
        let n: f64 = r[4].parse().expect("persons is a count");
        brooklyn_cells.entry(r[0].to_string()).or_insert([0.0; 72])[c] += n;
        brooklyn_total[c] += n;
    }
    let mut labour = [(0.0, 0.0); 5];
    for r in rows(UNEMPLOYMENT) {
        if &r[2] == "1" && &r[3] == "7" {
            let b = index(&BOROUGH_NAMES, &r[0]);
            labour[b] = (r[4].parse().expect("labor_force"), r[5].parse().expect("rate"));
        }
    }
    Tables {
        areas,
        brooklyn_cells,
        brooklyn_total,
        labour,
    }
}
