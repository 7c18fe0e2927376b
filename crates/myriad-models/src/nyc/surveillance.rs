//! The Health Department's dated daily surveillance table
//! (`data/nyc/dohmh_data_by_day.csv`: cases, probable cases,
//! hospitalisations and deaths per day and borough, by date of event),
//! read and checked: dates consecutive, counts whole and not negative.

use super::data::BOROUGHS;
use myriad_core::calendar::NaiveDate;

/// The bundled table.
pub const BUNDLED: &str = include_str!("../../../../data/nyc/dohmh_data_by_day.csv");
/// Its name in messages.
pub const BUNDLED_NAME: &str = "data/nyc/dohmh_data_by_day.csv";

/// What is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// Confirmed cases (`CASE_COUNT`).
    Confirmed,
    /// Probable cases (`PROBABLE_CASE_COUNT`).
    Probable,
    /// Hospital admissions (`HOSPITALIZED_COUNT`).
    Hospitalised,
    /// Confirmed deaths (`DEATH_COUNT`).
    Deaths,
}

impl Measure {
    fn column(self) -> &'static str {
        match self {
            Measure::Confirmed => "CASE_COUNT",
            Measure::Probable => "PROBABLE_CASE_COUNT",
            Measure::Hospitalised => "HOSPITALIZED_COUNT",
            Measure::Deaths => "DEATH_COUNT",
        }
    }
}

/// The daily counts per borough (in [`BOROUGHS`] order) from `first` on.
#[derive(Clone, Debug, PartialEq)]
pub struct Daily {
    /// The first day.
    pub first: NaiveDate,
    /// Per measure (in [`Measure`] order), per borough, one value per day.
    pub counts: [[Vec<f64>; 5]; 4],
}

const MEASURES: [Measure; 4] = [
    Measure::Confirmed,
    Measure::Probable,
    Measure::Hospitalised,
    Measure::Deaths,
];

impl Daily {
    /// The series of `measure` in borough `b`.
    pub fn series(&self, measure: Measure, b: usize) -> &[f64] {
        &self.counts[MEASURES
            .iter()
            .position(|m| *m == measure)
            .expect("every measure is kept")][b]
    }

    /// The last day.
    pub fn last(&self) -> NaiveDate {
        self.first + chrono::Days::new(self.counts[0][0].len().saturating_sub(1) as u64)
    }
}

/// Parse a table in the Health Department's `data-by-day` format. Errors
/// name the file (`name`), the line and the column.
pub fn parse(text: &str, name: &str) -> Result<Daily, String> {
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("{name}: cannot read the header: {e}"))?
        .clone();
    let find = |col: &str| {
        headers
            .iter()
            .position(|h| h == col)
            .ok_or_else(|| format!("{name}: no column '{col}' (is it the Health Department's data-by-day table?)"))
    };
    let date_col = find("date_of_interest")?;
    let mut cols = [[0usize; 5]; 4];
    for (m, measure) in MEASURES.iter().enumerate() {
        for (b, code) in BOROUGHS.iter().enumerate() {
            cols[m][b] = find(&format!("{code}_{}", measure.column()))?;
        }
    }
    let mut first = None;
    let mut previous: Option<NaiveDate> = None;
    let mut counts: [[Vec<f64>; 5]; 4] = Default::default();
    for (k, record) in reader.records().enumerate() {
        let line = k + 2;
        let record = record.map_err(|e| format!("{name}: line {line}: {e}"))?;
        let cell = |c: usize| record.get(c).unwrap_or("").trim();
        let text = cell(date_col);
        let date = NaiveDate::parse_from_str(text, "%m/%d/%Y")
            .map_err(|_| format!("{name}: line {line}: date_of_interest '{text}' is not a date MM/DD/YYYY"))?;
        if let Some(p) = previous {
            if date != p + chrono::Days::new(1) {
                return Err(format!(
                    "{name}: line {line}: {date} does not follow {p} (the days must be consecutive, without gaps)"
                ));
            }
        }
        previous = Some(date);
        first.get_or_insert(date);
        for (m, measure) in MEASURES.iter().enumerate() {
            for (b, code) in BOROUGHS.iter().enumerate() {
                let raw = cell(cols[m][b]);
                let value: f64 = raw.parse().map_err(|_| {
                    format!(
                        "{name}: line {line}: {code}_{} '{raw}' is not a number",
                        measure.column()
                    )
                })?;
                if !(value >= 0.0 && value.is_finite() && value.fract() == 0.0) {
                    return Err(format!(
                        "{name}: line {line}: {code}_{} is {raw}; counts must be whole numbers >= 0",
                        measure.column()
                    ));
                }
                counts[m][b].push(value);
            }
        }
    }
    let first = first.ok_or_else(|| format!("{name}: no data rows"))?;
    Ok(Daily { first, counts })
}

/// The bundled table, parsed once (checked by the tests).
pub fn bundled() -> &'static Daily {
    static DAILY: std::sync::OnceLock<Daily> = std::sync::OnceLock::new();
    DAILY.get_or_init(|| parse(BUNDLED, BUNDLED_NAME).expect("the bundled surveillance table is valid (tested)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum_to(d: &Daily, m: Measure, last: &str) -> f64 {
        let last = myriad_core::calendar::parse_date(last).unwrap();
        let n = (last - d.first).num_days() as usize + 1;
        (0..5).map(|b| d.series(m, b)[..n].iter().sum::<f64>()).sum()
    }

    /// The reference sums the data README gives, from the per-borough columns
    /// (the citywide column also holds cases of unknown borough).
    #[test]
    fn bundled_table_parses_and_borough_sums_are_near_the_reference_figures() {
        let d = bundled();
        assert_eq!(d.first.to_string(), "2020-02-29");
        // Citywide confirmed cases / hospitalisations / deaths to 2020-08-31:
        // 230,968 / 53,997 / 23,754 (a few per cent have no borough).
        for (m, reference) in [
            (Measure::Confirmed, 230_968.0),
            (Measure::Hospitalised, 53_997.0),
            (Measure::Deaths, 23_754.0),
        ] {
            let s = sum_to(d, m, "2020-08-31");
            assert!(s <= reference && s > 0.95 * reference, "{m:?}: {s} vs {reference}");
        }
    }

    #[test]
    fn gaps_negative_counts_and_bad_dates_are_named() {
        let header = BUNDLED.lines().next().unwrap();
        let row = |date: &str, v: &str| {
            let n = header.split(',').count();
            std::iter::once(date.to_string())
                .chain((1..n).map(|_| v.to_string()))
                .collect::<Vec<_>>()
                .join(",")
        };
        let table = |rows: &[String]| format!("{header}\n{}\n", rows.join("\n"));
        let gap = parse(&table(&[row("03/01/2020", "1"), row("03/03/2020", "1")]), "x.csv").unwrap_err();
        assert!(gap.contains("x.csv: line 3") && gap.contains("consecutive"), "{gap}");
        let neg = parse(&table(&[row("03/01/2020", "-4")]), "x.csv").unwrap_err();
        assert!(neg.contains("line 2") && neg.contains(">= 0"), "{neg}");
        let date = parse(&table(&[row("2020-03-01", "1")]), "x.csv").unwrap_err();
        assert!(date.contains("date_of_interest"), "{date}");
        let cols = parse("date_of_interest,CASE_COUNT\n03/01/2020,1\n", "x.csv").unwrap_err();
        assert!(cols.contains("no column 'BK_CASE_COUNT'"), "{cols}");
    }
}
