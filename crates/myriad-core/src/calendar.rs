//! The run's calendar: what day, week and month a step is.
//!
//! Without a start date a run is abstract: weeks are steps 1-7, 8-14, ...
//! (steps 1-5 of each are weekdays) and months are 30 steps, as models
//! always had. With `start_date`, step `k >= 1` is the day
//! `start_date + (k - 1)` (row 0 is the state before the first day), weekdays
//! are Monday to Friday, weeks run Sunday to Saturday like the New York City
//! Health Department's, and months are calendar months.

pub use chrono::NaiveDate;
use chrono::{Datelike, Days, Weekday};

/// Dates a scenario writes: `YYYY-MM-DD`.
pub const DATE_FORMAT: &str = "%Y-%m-%d";

/// Parse a `YYYY-MM-DD` date, with a message naming what is wrong.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, DATE_FORMAT)
        .map_err(|e| format!("'{text}' is not a date of the form YYYY-MM-DD ({e})"))
}

/// A span of steps making up one week or month of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Period {
    /// 0, 1, 2, ... in the run.
    pub index: u32,
    /// First step in it.
    pub first: u32,
    /// Last step in it.
    pub last: u32,
    /// Its first day, on a dated run.
    pub start: Option<NaiveDate>,
}

/// Which kind of period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeriodKind {
    /// Weeks (Sunday to Saturday on a dated run; steps 1-7, ... otherwise).
    Week,
    /// Months (calendar months on a dated run; 30 steps otherwise).
    Month,
}

/// The calendar of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Calendar {
    start: Option<NaiveDate>,
}

impl Calendar {
    /// An abstract calendar (no dates).
    pub fn undated() -> Calendar {
        Calendar { start: None }
    }

    /// Step 1 is `start`.
    pub fn starting(start: NaiveDate) -> Calendar {
        Calendar { start: Some(start) }
    }

    /// The first day, if dated.
    pub fn start(&self) -> Option<NaiveDate> {
        self.start
    }

    /// The date of step `step` (`step >= 1`; step 0 is the day before the first).
    pub fn date(&self, step: u32) -> Option<NaiveDate> {
        let s = self.start?;
        if step == 0 {
            s.checked_sub_days(Days::new(1))
        } else {
            s.checked_add_days(Days::new(u64::from(step) - 1))
        }
    }

    /// The step that falls on `date` (`None` before the start or undated).
    pub fn step_of(&self, date: NaiveDate) -> Option<u32> {
        let days = (date - self.start?).num_days();
        u32::try_from(days + 1).ok()
    }

    /// Is step `step` a weekday (school and work)?
    pub fn is_weekday(&self, step: u32) -> bool {
        match self.date(step) {
            Some(d) => !matches!(d.weekday(), Weekday::Sat | Weekday::Sun),
            None => (step.max(1) - 1) % 7 < 5,
        }
    }

    /// Does a week begin at step `step` (step 1 always does)?
    pub fn starts_week(&self, step: u32) -> bool {
        match self.date(step) {
            Some(d) => step == 1 || d.weekday() == Weekday::Sun,
            None => (step.max(1) - 1).is_multiple_of(7),
        }
    }

    /// Does a week end with step `step`?
    pub fn ends_week(&self, step: u32) -> bool {
        match self.date(step) {
            Some(d) => d.weekday() == Weekday::Sat,
            None => step > 0 && step.is_multiple_of(7),
        }
    }

    /// Does a month end with step `step`?
    pub fn ends_month(&self, step: u32) -> bool {
        match self.date(step) {
            Some(d) => d.succ_opt().is_none_or(|n| n.month() != d.month()),
            None => step > 0 && step.is_multiple_of(30),
        }
    }

    /// Does step `step` end a period of `kind`?
    pub fn ends(&self, kind: PeriodKind, step: u32) -> bool {
        match kind {
            PeriodKind::Week => self.ends_week(step),
            PeriodKind::Month => self.ends_month(step),
        }
    }

    /// The complete periods of `kind` within steps `1..=last`, in order. On
    /// a dated run a week or month cut by the start or the end is left out
    /// (it is not comparable with a whole one); undated, periods start at step 1.
    pub fn periods(&self, kind: PeriodKind, last: u32) -> Vec<Period> {
        let mut out = Vec::new();
        let mut first = 1;
        for step in 1..=last {
            if step > first && self.begins(kind, step) {
                first = step;
            }
            if self.ends(kind, step) {
                let whole = self.start.is_none() || first > 1 || self.begins_naturally(kind, first);
                if whole {
                    out.push(Period {
                        index: out.len() as u32,
                        first,
                        last: step,
                        start: self.date(first),
                    });
                }
                first = step + 1;
            }
        }
        out
    }

    fn begins(&self, kind: PeriodKind, step: u32) -> bool {
        match kind {
            PeriodKind::Week => self.starts_week(step),
            PeriodKind::Month => self.ends_month(step.saturating_sub(1)) && step > 1,
        }
    }

    /// Does step `step` begin a period of `kind` on the calendar (not only
    /// because the run starts there)?
    fn begins_naturally(&self, kind: PeriodKind, step: u32) -> bool {
        match (kind, self.date(step)) {
            (PeriodKind::Week, Some(d)) => d.weekday() == Weekday::Sun,
            (PeriodKind::Month, Some(d)) => d.day() == 1,
            (_, None) => true,
        }
    }

    /// Days from 1970-01-01 to the date of step `step` (Arrow's `date32`).
    pub fn epoch_day(&self, step: u32) -> Option<i32> {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
        i32::try_from((self.date(step)? - epoch).num_days()).ok()
    }

    /// `"YYYY-MM-DD"` of step `step`, or empty when undated.
    pub fn label(&self, step: u32) -> String {
        self.date(step)
            .map_or_else(String::new, |d| d.format(DATE_FORMAT).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    #[test]
    fn undated_weeks_and_months_are_the_old_fixed_spans() {
        let c = Calendar::undated();
        assert!(c.starts_week(1) && c.starts_week(8) && !c.starts_week(2));
        assert!(c.ends_week(7) && !c.ends_week(8));
        assert!(c.is_weekday(1) && c.is_weekday(5) && !c.is_weekday(6) && !c.is_weekday(7));
        assert!(c.ends_month(30) && !c.ends_month(31));
        let w = c.periods(PeriodKind::Week, 20);
        assert_eq!(w.len(), 2);
        assert_eq!((w[1].first, w[1].last), (8, 14));
    }

    #[test]
    fn dated_weeks_run_sunday_to_saturday_and_months_are_calendar_months() {
        // 2020-03-01 was a Sunday; 2020 is a leap year.
        let c = Calendar::starting(d("2020-03-01"));
        assert_eq!(c.date(1), Some(d("2020-03-01")));
        assert_eq!(c.date(0), Some(d("2020-02-29")));
        assert_eq!(c.step_of(d("2020-03-22")), Some(22));
        assert_eq!(c.step_of(d("2020-02-01")), None);
        assert!(c.starts_week(1) && c.ends_week(7) && c.starts_week(8));
        assert!(!c.is_weekday(1) && c.is_weekday(2) && c.is_weekday(6) && !c.is_weekday(7));
        assert!(c.ends_month(31) && !c.ends_month(30) && c.ends_month(61));
        let last = c.step_of(d("2021-02-28")).unwrap();
        assert_eq!(last, 365);
        let months = c.periods(PeriodKind::Month, last);
        assert_eq!(months.len(), 12);
        assert_eq!(months[1].start, Some(d("2020-04-01")));
        assert_eq!((months[1].first, months[1].last), (32, 61));
        let weeks = c.periods(PeriodKind::Week, last);
        // 52 whole weeks; the final Sunday begins a week the run does not finish.
        assert_eq!(weeks.len(), 52);
        assert_eq!(weeks[51].start, Some(d("2021-02-21")));
    }

    #[test]
    fn partial_first_week_and_month_are_left_out() {
        let c = Calendar::starting(d("2020-03-04")); // a Wednesday
        let weeks = c.periods(PeriodKind::Week, 30);
        assert_eq!(weeks[0].start, Some(d("2020-03-08")));
        assert!(c.starts_week(1));
        let months = c.periods(PeriodKind::Month, 60);
        assert_eq!(months.len(), 1);
        assert_eq!(months[0].start, Some(d("2020-04-01")));
    }

    #[test]
    fn bad_dates_are_named() {
        let e = parse_date("2020-02-30").unwrap_err();
        assert!(e.contains("2020-02-30"), "{e}");
        assert!(parse_date("03/01/2020").is_err());
    }
}
