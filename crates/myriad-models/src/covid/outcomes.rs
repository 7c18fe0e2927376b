//! What becomes of an infection: whether and when it is reported, whether
//! and when the agent is admitted to hospital, whether and when it dies.
//! All three are drawn once, on the day of infection, from the agent's age
//! group and the reporting probability in force that day, each with its
//! own delay; the events then wait in a calendar of pending days.
//!
//! Severity defaults come from the literature, mapped onto myriad's age
//! groups (U19, 20t29, 30t39, 40t49, 50t64, 65A) by averaging the published
//! curve over single years of age, uniformly within a band; for 65A the
//! bands 65-74, 75-84 and 85+ are weighted 55%, 30% and 15%, New York
//! City's shares of its residents aged 65 and over (American Community
//! Survey 2019, rounded).
//!
//! - Infection fatality ratio: Levin et al. 2020, "Assessing the age
//!   specificity of infection fatality rates for COVID-19: systematic
//!   review, meta-analysis, and public policy implications", Eur. J.
//!   Epidemiol. 35:1123-1138: log10(IFR%) = -3.27 + 0.0524 x age. For 85+
//!   the curve is held at its value at 85 (15%), where the meta-analysis
//!   had few data. Group values: 0.0023%, 0.012%, 0.039%, 0.13%, 0.63%, 6.4%.
//! - Infection hospitalisation ratio: Lapidus et al. 2021, "Do not neglect
//!   SARS-CoV-2 hospitalization and fatality risks in the middle-aged adult
//!   population", Infect. Dis. Now 51:380-382 (French serosurvey, first
//!   wave): 0.98% at ages 40-50, times 2.1 per 10 years of age. Group
//!   values: 0.080%, 0.23%, 0.48%, 1.0%, 2.6%, 11.8%; about 2.5% over the
//!   city's ages (the study: 2.7% over France's).
//! - Delays from infection (gamma distributions, rounded to days): to
//!   hospital admission mean 12, sd 5 (incubation period, median 5.1 days,
//!   Lauer et al. 2020, Ann. Intern. Med. 172:577; onset to admission about
//!   7 days, Wang et al. 2020, JAMA 323:1061); to death mean 23, sd 8
//!   (incubation plus onset to death, mean 17.8 days, Verity et al. 2020,
//!   Lancet Infect. Dis. 20:669), and never before the infectious stages
//!   end (an agent dies from the recovered stage); to the report (the
//!   Health Department dates cases by specimen collection) mean 8, sd 3:
//!   incubation plus a few days to a test, an assumption.
//!
//! Death and admission are drawn independently (deaths outside hospital,
//! in nursing homes and at home, were common in New York in spring 2020).
//! Reported cases are what is compared with the Health Department's
//! confirmed cases; infections are not observed.

use myriad_core::rng::{to_unit, CounterRng};
use rand_distr::{Distribution, Gamma};
use std::collections::VecDeque;

/// Age groups and boroughs the tallies are kept by.
pub const AGES: usize = 6;
/// See [`AGES`].
pub const BOROUGHS: usize = 5;

/// Levin et al. 2020 mapped onto the age groups (see the module docs).
pub const IFR: [f64; AGES] = [0.0000226, 0.0001165, 0.0003893, 0.001301, 0.006321, 0.06414];
/// Lapidus et al. 2021 mapped onto the age groups (see the module docs).
pub const IHR: [f64; AGES] = [0.000799, 0.002274, 0.004776, 0.01003, 0.02607, 0.1180];

/// Longest delay kept: a draw beyond it is cut to it.
pub const MAX_DELAY: u32 = 120;

/// A delay distribution in days: a gamma of this mean and standard
/// deviation, rounded to whole days, at least `min`.
#[derive(Clone, Copy, Debug)]
pub struct Delay {
    /// Mean, days.
    pub mean: f64,
    /// Standard deviation, days.
    pub sd: f64,
    /// Shortest delay, days.
    pub min: u32,
}

impl Delay {
    fn sample(&self, rng: &CounterRng, key: u64) -> u32 {
        let shape = (self.mean / self.sd).powi(2);
        let scale = self.sd * self.sd / self.mean;
        let mut seq = rng.sequence(key);
        let x = Gamma::new(shape, scale).map_or(self.mean, |g| g.sample(&mut seq));
        (x.round().max(0.0) as u32).clamp(self.min, MAX_DELAY)
    }
}

/// The rules an infection's outcomes are drawn by.
#[derive(Clone, Copy, Debug)]
pub struct Severity {
    /// Probability of death per age group.
    pub ifr: [f64; AGES],
    /// Probability of hospital admission per age group.
    pub ihr: [f64; AGES],
    /// Infection to admission.
    pub admission: Delay,
    /// Infection to death.
    pub death: Delay,
    /// Infection to report.
    pub report: Delay,
}

/// Events falling on one day.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DayEvents {
    /// Cases reported, per borough.
    pub reported: [u64; BOROUGHS],
    /// Hospital admissions per borough and age group.
    pub admitted: [[u64; AGES]; BOROUGHS],
    /// Agents who die, in the order their infections happened.
    pub deaths: Vec<u32>,
}

/// Events drawn but not yet due, by day.
#[derive(Clone, Debug, Default)]
pub struct Pending {
    /// The day of `days[0]`.
    first: i64,
    days: VecDeque<DayEvents>,
}

impl Pending {
    /// No events; the next day taken is day 1.
    pub fn new() -> Pending {
        Pending {
            first: 1,
            days: VecDeque::new(),
        }
    }

    fn at(&mut self, day: i64) -> Option<&mut DayEvents> {
        if day < self.first {
            // Due before the run began (an agent infected before day 1).
            return None;
        }
        let k = (day - self.first) as usize;
        if self.days.len() <= k {
            self.days.resize_with(k + 1, DayEvents::default);
        }
        Some(&mut self.days[k])
    }

    /// Remove and return the events of `day` (the next day not yet taken).
    pub fn take(&mut self, day: i64) -> DayEvents {
        debug_assert_eq!(day, self.first);
        self.first = day + 1;
        self.days.pop_front().unwrap_or_default()
    }

    /// Draw the outcomes of agent `agent` (age group `age`, borough
    /// `borough`) infected on day `day`, reported with probability
    /// `report_p`; draws are keyed by (agent, day of infection).
    #[allow(clippy::too_many_arguments)]
    pub fn infect(
        &mut self,
        s: &Severity,
        rng: &CounterRng,
        agent: u32,
        day: i64,
        age: u8,
        borough: u8,
        report_p: f64,
    ) {
        let key = |slot: u64| ((agent as u64) << 24) ^ ((day + (1 << 20)) as u64) ^ (slot << 56);
        let (a, b) = (age as usize, borough as usize);
        let u = |slot: u64| to_unit(rng.draw(key(slot), 0));
        if u(1) < report_p {
            let d = s.report.sample(rng, key(4));
            if let Some(e) = self.at(day + d as i64) {
                e.reported[b] += 1;
            }
        }
        if u(2) < s.ihr[a] {
            let d = s.admission.sample(rng, key(5));
            if let Some(e) = self.at(day + d as i64) {
                e.admitted[b][a] += 1;
            }
        }
        if u(3) < s.ifr[a] {
            let d = s.death.sample(rng, key(6));
            if let Some(e) = self.at(day + d as i64) {
                e.deaths.push(agent);
            }
        }
    }

    /// Agent `agent` dies on day `day` (a death put off).
    pub fn die_on(&mut self, agent: u32, day: i64) {
        if let Some(e) = self.at(day) {
            e.deaths.push(agent);
        }
    }

    /// Append the pending events to `out` (a checkpoint).
    pub(super) fn save(&self, out: &mut Vec<u8>) {
        use super::state::put_u64;
        put_u64(out, self.first as u64);
        put_u64(out, self.days.len() as u64);
        for d in &self.days {
            d.reported.iter().for_each(|&x| put_u64(out, x));
            d.admitted.iter().flatten().for_each(|&x| put_u64(out, x));
            put_u64(out, d.deaths.len() as u64);
            d.deaths.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        }
    }

    /// Read what [`Self::save`] wrote; the deaths must be of agents
    /// `lo..hi` (those of the process reading it).
    pub(super) fn load(r: &mut super::state::Reader, lo: u32, hi: u32) -> Result<Pending, String> {
        let first = r.u64("the pending outcomes")? as i64;
        let days = r.count(8 * (BOROUGHS + BOROUGHS * AGES + 1), "the pending days")?;
        let mut p = Pending {
            first,
            days: VecDeque::with_capacity(days),
        };
        for _ in 0..days {
            let mut e = DayEvents::default();
            for x in e.reported.iter_mut().chain(e.admitted.iter_mut().flatten()) {
                *x = r.u64("the pending outcomes")?;
            }
            let deaths = r.count(4, "the pending deaths")?;
            for _ in 0..deaths {
                let a = r.u32("the pending deaths")?;
                if !(lo..hi).contains(&a) {
                    return Err(format!("a pending death of agent {a}, not one of agents {lo}..{hi}"));
                }
                e.deaths.push(a);
            }
            p.days.push_back(e);
        }
        Ok(p)
    }

    /// Feed the pending events to a hasher (for reproducibility checks).
    pub fn hash_into(&self, h: &mut myriad_core::hash::StateHasher) {
        h.u64(self.first as u64);
        for d in &self.days {
            d.reported.iter().for_each(|&x| h.u64(x));
            d.admitted.iter().flatten().for_each(|&x| h.u64(x));
            h.u64(d.deaths.len() as u64);
            d.deaths.iter().for_each(|&x| h.u64(x as u64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use myriad_core::rng::Stream;

    fn severity() -> Severity {
        Severity {
            ifr: [0.5; AGES],
            ihr: [0.2; AGES],
            admission: Delay {
                mean: 12.0,
                sd: 5.0,
                min: 1,
            },
            death: Delay {
                mean: 23.0,
                sd: 8.0,
                min: 10,
            },
            report: Delay {
                mean: 8.0,
                sd: 3.0,
                min: 1,
            },
        }
    }

    /// Over many infections the shares and mean delays match the rules:
    /// binomial shares within 4 standard errors, mean delays within 0.3 days
    /// (sd / sqrt(n) is under 0.1 day here; rounding and the minimum add
    /// under 0.2).
    #[test]
    fn outcomes_follow_their_probabilities_and_delays() {
        let s = severity();
        let rng = CounterRng::new(7, Stream::custom(2));
        let mut p = Pending::new();
        let n = 20_000u32;
        for agent in 0..n {
            p.infect(&s, &rng, agent, 1, 3, 0, 0.3);
        }
        let (mut rep, mut adm, mut dead) = (vec![], vec![], vec![]);
        for day in 1..=200 {
            let e = p.take(day);
            rep.push(e.reported[0]);
            adm.push(e.admitted[0][3]);
            dead.push(e.deaths.len() as u64);
        }
        let check = |counts: &[u64], share: f64, mean_delay: f64| {
            let total: u64 = counts.iter().sum();
            let se = (share * (1.0 - share) / n as f64).sqrt();
            assert!(
                ((total as f64 / n as f64) - share).abs() < 4.0 * se,
                "share {total}/{n} vs {share}"
            );
            let mean = counts
                .iter()
                .enumerate()
                .map(|(k, &c)| k as f64 * c as f64)
                .sum::<f64>()
                / total as f64;
            assert!((mean - mean_delay).abs() < 0.3, "mean delay {mean} vs {mean_delay}");
        };
        check(&rep, 0.3, 8.0);
        check(&adm, 0.2, 12.0);
        check(&dead, 0.5, 23.0);
    }

    #[test]
    fn events_due_before_the_run_are_dropped() {
        let s = severity();
        let rng = CounterRng::new(1, Stream::custom(2));
        let mut p = Pending::new();
        for agent in 0..1000 {
            p.infect(&s, &rng, agent, -200, 5, 1, 1.0);
        }
        assert_eq!(p.take(1), DayEvents::default());
    }
}
