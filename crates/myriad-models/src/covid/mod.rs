//! COVID-19 with behaviour: the New York City case study of "On the limits
//! of agency in agent-based models" (AgentTorch), on any population with an
//! age-group column.
//!
//! Disease (reference parameters as defaults). A susceptible agent `i` is
//! infected on a day with probability `1 - exp(-sum_j h_ji)` over its
//! infectious contacts `j` that day, where
//! `h_ji = R x w_layer x susceptibility[age_i] x infectiousness[stage_j] x G(d_j) / mean_contacts[age_i]`,
//! `d_j` is the number of days since `j` was infected and `G` a gamma profile
//! (mean `g_mean`, sd `g_sd`) discretised over 21 days: `G(d)` is the mass
//! between `d - 1` and `d`. Because `exp(-sum h) = prod exp(-h)`, each contact
//! transmits independently with probability `1 - exp(-h_ji)`, which is how it
//! is computed (infectious agents push along their contacts). Infected agents
//! spend `latent_days` in E (infectious at `infectiousness_e`), then
//! `infectious_days` in I, then recover (R).
//!
//! Outcomes ([`outcomes`]). On the day of its infection an agent's fate is
//! drawn: reported with probability `report_probability` (in force that
//! day; change it over time with interventions) after a delay, admitted
//! to hospital with probability `ihr_<age>` after a delay, and dead with
//! probability `ifr_<age>` after a delay (moving from R to D that day).
//! Defaults come from the literature, cited in [`outcomes`]. The model's
//! reported cases, not its infections, are what the Health Department's
//! confirmed cases measure.
//! `mean_contacts[age]` is measured on the built population: the mean daily
//! number of contacts of the age group (household every day, school and work
//! on 5 days of 7, community).
//!
//! Calendar. On a dated run (`start_date`) weekdays are Monday to Friday,
//! weeks begin on Sunday and months are calendar months; undated, steps
//! 1-5 of each 7 are weekdays, weeks begin on steps 1, 8, ... and months
//! end every 30 steps.
//!
//! Contacts. Network layers come from the scenario; by name, `household` is
//! met every day, `school` and `work` on weekdays and
//! only by agents who go (work: agents who decided to work that week), and
//! any other layer every day. Community contacts are drawn afresh each day:
//! an infectious agent who is not isolating meets `NB(mean[age], dispersion)`
//! random agents, a share `community_area_share` in its own area and the rest
//! in its borough (columns `area` and `borough`; without them, anywhere).
//!
//! Behaviour, weekly (on the first day of each week). Each agent isolates with
//! probability `P_b x (1 + isolation_age_slope x (age - 2))` (clamped to
//! [0, 1]), where its borough's propensity `P_b = isolation_memory x P_b(last
//! week) + (1 - isolation_memory) x min(isolation_max, isolation_base +
//! isolation_sensitivity x g_b)` (starting at `isolation_base`) and `g_b` is
//! the relative growth of reported cases in the borough over the last two
//! weeks (0 if falling): people respond to the cases they hear of, not to
//! infections nobody sees. The memory term stands for habit: without it the
//! response chases its own effect and swings week to week. An isolating agent has no school, work or community
//! contacts that week. Each employed agent who does not isolate goes to work
//! with probability `work_probability`.
//!
//! Economy, monthly (at each month's end). An employed agent who did not work in
//! most of the month's weeks, or whose work layer was closed (weight 0) in
//! most of them, has lost income and counts as unemployed that month. A
//! borough's unemployment rate is (initially unemployed + those) / labour
//! force, with employment from the `employment` column (1 employed, 2
//! unemployed, 0 outside the labour force); members of the labour force who
//! died have left it.

pub mod outcomes;
mod state;

use crate::setup::{check_layer_sizes, initial_stages, seed_infections};
use myriad_core::behaviour::{AgentState, Observations};
use myriad_core::calendar::PeriodKind;
use myriad_core::comm::{f64_from_words, f64_words, Comm, Part};
use myriad_core::cross::Marks;
use myriad_core::hash::StateHasher;
use myriad_core::metrics::{Combine, MetricSpec};
use myriad_core::model::{
    ColumnDoc, ColumnView, Contacts, Decide, DecisionAnswer, DecisionDoc, Layer, Model, ModelError, ModelInput,
    ModelSpec, PeriodicTable, PlotPanel, Step, TableKind,
};
use myriad_core::params::{Limit::Inclusive, ParamSpec};
use myriad_core::population::{ColumnData, Population};
use myriad_core::rng::{to_unit, CounterRng, Stream};
use outcomes::{Delay, Pending, Severity, AGES};
use rand_distr::{Distribution, Gamma, Poisson};
use rayon::prelude::*;
use std::sync::Arc;

use crate::setup::{E, I, R, S};
/// Draws of the day's community contacts.
const COMMUNITY: Stream = Stream::custom(1);
/// Draws of an infection's outcomes (report, admission, death, delays).
const OUTCOMES: Stream = Stream::custom(2);
/// Dead: a stage only this model has.
const D: u8 = 4;
/// Names of the stages by code (S, E, I, R, then D).
const COVID_STAGES: [&str; 5] = ["susceptible", "exposed", "infectious", "recovered", "dead"];

/// Age-group labels accepted in an `age_group` text column.
pub const AGE_LABELS: [&str; 6] = ["U19", "20t29", "30t39", "40t49", "50t64", "65A"];
/// How prompts show the `employment` codes 0, 1, 2.
pub const EMPLOYMENT_LABELS: [&str; 3] = ["outside the labour force", "employed", "unemployed"];
const BOROUGH_CODES: [&str; 5] = ["BK", "BX", "MN", "QN", "SI"];
/// The boroughs' names, for prompts (`{borough_name}`).
const BOROUGH_NAMES: [&str; 5] = ["Brooklyn", "the Bronx", "Manhattan", "Queens", "Staten Island"];

myriad_core::params! {
    /// The covid model's parameters (reference values of the AgentTorch NYC model).
    pub struct CovidParams {
        /// R in the hazard formula; change it per week with interventions on param r_week.
        r_week: real(4.75, Inclusive(0.0), Inclusive(100.0)), "transmission scale";
        /// Susceptibility of age group U19.
        susceptibility_u19: real(0.35, Inclusive(0.0), Inclusive(10.0)), "relative";
        /// Susceptibility of age group 20t29.
        susceptibility_20t29: real(0.69, Inclusive(0.0), Inclusive(10.0)), "relative";
        /// Susceptibility of age groups 30t39 and older.
        susceptibility_other: real(1.03, Inclusive(0.0), Inclusive(10.0)), "relative";
        /// Infectiousness while exposed (E).
        infectiousness_e: real(0.33, Inclusive(0.0), Inclusive(10.0)), "relative";
        /// Infectiousness while infected (I).
        infectiousness_i: real(0.72, Inclusive(0.0), Inclusive(10.0)), "relative";
        /// Mean of the gamma infectiousness profile G over days since infection.
        g_mean: real(5.5, Inclusive(0.1), Inclusive(21.0)), "days";
        /// Standard deviation of G.
        g_sd: real(2.4, Inclusive(0.1), Inclusive(21.0)), "days";
        /// Days in E.
        latent_days: whole(5.0, Inclusive(1.0), Inclusive(21.0)), "days";
        /// Days in I.
        infectious_days: whole(5.0, Inclusive(1.0), Inclusive(21.0)), "days";
        /// Infection fatality ratio, ages under 20 (Levin et al. 2020).
        ifr_u19: real(outcomes::IFR[0], Inclusive(0.0), Inclusive(1.0)), "probability";
        /// Infection fatality ratio, ages 20-29.
        ifr_20t29: real(outcomes::IFR[1], Inclusive(0.0), Inclusive(1.0)), "probability";
        /// Infection fatality ratio, ages 30-39.
        ifr_30t39: real(outcomes::IFR[2], Inclusive(0.0), Inclusive(1.0)), "probability";
        /// Infection fatality ratio, ages 40-49.
        ifr_40t49: real(outcomes::IFR[3], Inclusive(0.0), Inclusive(1.0)), "probability";
        /// Infection fatality ratio, ages 50-64.
        ifr_50t64: real(outcomes::IFR[4], Inclusive(0.0), Inclusive(1.0)), "probability";
        /// Infection fatality ratio, ages 65 and over.
        ifr_65a: real(outcomes::IFR[5], Inclusive(0.0), Inclusive(1.0)), "probability";
        /// Infection hospitalisation ratio, ages under 20 (Lapidus et al. 2021).
        ihr_u19: real(outcomes::IHR[0], Inclusive(0.0), Inclusive(1.0)), "probability";
        /// Infection hospitalisation ratio, ages 20-29.
        ihr_20t29: real(outcomes::IHR[1], Inclusive(0.0), Inclusive(1.0)), "probability";
        /// Infection hospitalisation ratio, ages 30-39.
        ihr_30t39: real(outcomes::IHR[2], Inclusive(0.0), Inclusive(1.0)), "probability";
        /// Infection hospitalisation ratio, ages 40-49.
        ihr_40t49: real(outcomes::IHR[3], Inclusive(0.0), Inclusive(1.0)), "probability";
        /// Infection hospitalisation ratio, ages 50-64.
        ihr_50t64: real(outcomes::IHR[4], Inclusive(0.0), Inclusive(1.0)), "probability";
        /// Infection hospitalisation ratio, ages 65 and over.
        ihr_65a: real(outcomes::IHR[5], Inclusive(0.0), Inclusive(1.0)), "probability";
        /// Mean days from infection to hospital admission.
        admission_delay_mean: real(12.0, Inclusive(1.0), Inclusive(60.0)), "days";
        /// Standard deviation of that delay.
        admission_delay_sd: real(5.0, Inclusive(0.1), Inclusive(60.0)), "days";
        /// Mean days from infection to death (never before the infectious stages end).
        death_delay_mean: real(23.0, Inclusive(1.0), Inclusive(90.0)), "days";
        /// Standard deviation of that delay.
        death_delay_sd: real(8.0, Inclusive(0.1), Inclusive(90.0)), "days";
        /// Chance that an infection is reported as a case (drawn on the day of infection; change it over time with interventions).
        report_probability: real(0.1, Inclusive(0.0), Inclusive(1.0)), "probability";
        /// Mean days from infection to the report (the date of the test).
        report_delay_mean: real(8.0, Inclusive(1.0), Inclusive(60.0)), "days";
        /// Standard deviation of that delay.
        report_delay_sd: real(3.0, Inclusive(0.1), Inclusive(60.0)), "days";
        /// Agents in I on day 0, among the susceptible (uniformly, or by the borough weights).
        initial_infected: whole(1000.0, Inclusive(0.0), Inclusive(4e9)), "agents";
        /// Relative chance per resident of Brooklyn to be among the initial infections.
        seed_weight_bk: real(1.0, Inclusive(0.0), Inclusive(1e6)), "relative";
        /// The same for the Bronx.
        seed_weight_bx: real(1.0, Inclusive(0.0), Inclusive(1e6)), "relative";
        /// The same for Manhattan.
        seed_weight_mn: real(1.0, Inclusive(0.0), Inclusive(1e6)), "relative";
        /// The same for Queens.
        seed_weight_qn: real(1.0, Inclusive(0.0), Inclusive(1e6)), "relative";
        /// The same for Staten Island.
        seed_weight_si: real(1.0, Inclusive(0.0), Inclusive(1e6)), "relative";
        /// Mean daily community contacts of an agent under 20.
        community_mean_u19: real(3.0, Inclusive(0.0), Inclusive(1000.0)), "contacts per day";
        /// Mean daily community contacts of an agent aged 20-64.
        community_mean_adult: real(5.0, Inclusive(0.0), Inclusive(1000.0)), "contacts per day";
        /// Mean daily community contacts of an agent aged 65+.
        community_mean_65a: real(2.0, Inclusive(0.0), Inclusive(1000.0)), "contacts per day";
        /// Dispersion of the daily community contact count (variance = mean + mean^2 / k).
        community_dispersion: real(1.0, Inclusive(0.01), Inclusive(1000.0)), "NB k";
        /// Weight of community contacts in the hazard (0 closes the community).
        community_weight: real(1.0, Inclusive(0.0), Inclusive(100.0)), "relative";
        /// Share of community contacts within the agent's own area (the rest: its borough).
        community_area_share: real(0.7, Inclusive(0.0), Inclusive(1.0)), "fraction";
        /// Isolation probability when cases are not growing.
        isolation_base: real(0.05, Inclusive(0.0), Inclusive(1.0)), "probability per week";
        /// Added isolation probability per unit of relative weekly case growth in the borough.
        isolation_sensitivity: real(0.5, Inclusive(0.0), Inclusive(100.0)), "per unit growth";
        /// Cap on the growth-driven isolation probability.
        isolation_max: real(0.8, Inclusive(0.0), Inclusive(1.0)), "probability per week";
        /// Weight of last week's isolation propensity in this week's (habit; damps week-to-week swings).
        isolation_memory: real(0.5, Inclusive(0.0), Inclusive(0.99)), "fraction";
        /// Relative change of isolation probability per age group above 30t39.
        isolation_age_slope: real(0.1, Inclusive(-1.0), Inclusive(1.0)), "per age group";
        /// Chance an employed, non-isolating agent goes to work that week.
        work_probability: real(0.95, Inclusive(0.0), Inclusive(1.0)), "probability per week";
    }
}

fn params() -> Vec<ParamSpec> {
    CovidParams::specs()
}

/// Metric names: city totals, then per borough.
fn metric_specs() -> Vec<MetricSpec> {
    let mut v = vec![
        MetricSpec::stock("S", "susceptible agents"),
        MetricSpec::stock("E", "exposed agents"),
        MetricSpec::stock("I", "infected (symptomatic stage) agents"),
        MetricSpec::stock("R", "recovered agents"),
        MetricSpec::stock("D", "deaths (cumulative)"),
        MetricSpec::flow("new_infections", "agents infected during the day"),
        MetricSpec::flow("new_reported_cases", "infections reported as cases on the day"),
        MetricSpec::flow("new_hospitalisations", "hospital admissions on the day"),
        MetricSpec::flow("new_deaths", "deaths on the day"),
        MetricSpec::stock("reported_cases", "reported cases (cumulative)"),
        MetricSpec::stock("hospitalisations", "hospital admissions (cumulative)"),
        MetricSpec::fraction(
            "isolating_fraction",
            "living agents",
            "share of living agents isolating this week",
        ),
        MetricSpec::fraction(
            "working_fraction",
            "employed agents",
            "share of employed agents working this week",
        ),
    ];
    for b in BOROUGH_CODES {
        v.push(MetricSpec::flow(
            &format!("new_infections_{b}"),
            "agents infected during the day in the borough",
        ));
        v.push(MetricSpec::fraction(
            &format!("prevalence_{b}"),
            &format!("agents of {b}"),
            "share of the borough's agents in E or I",
        ));
        v.push(MetricSpec::stock(
            &format!("deaths_{b}"),
            "cumulative deaths in the borough",
        ));
        v.push(MetricSpec::flow(
            &format!("new_reported_cases_{b}"),
            "cases reported on the day in the borough",
        ));
        v.push(MetricSpec::flow(
            &format!("new_hospitalisations_{b}"),
            "hospital admissions on the day in the borough",
        ));
        v.push(MetricSpec::flow(
            &format!("new_deaths_{b}"),
            "deaths on the day in the borough",
        ));
        v.push(MetricSpec::fraction(
            &format!("isolating_{b}"),
            &format!("living agents of {b}"),
            "share of the borough's living agents isolating",
        ));
        v.push(MetricSpec::fraction(
            &format!("working_{b}"),
            &format!("employed agents of {b}"),
            "share of the borough's employed agents working",
        ));
        v.push(MetricSpec::value(
            &format!("unemployment_{b}"),
            Combine::Mean {
                weight: format!("labour force of {b}"),
            },
            "unemployment rate of the last month (percent)",
        ));
    }
    for a in AGE_LABELS {
        v.push(MetricSpec::flow(
            &format!("new_hospitalisations_{a}"),
            "hospital admissions on the day in the age group",
        ));
        v.push(MetricSpec::flow(
            &format!("new_deaths_{a}"),
            "deaths on the day in the age group",
        ));
        v.push(MetricSpec::stock(
            &format!("deaths_{a}"),
            "cumulative deaths in the age group",
        ));
    }
    v
}

const COLUMNS: &[ColumnDoc] = &[
    ColumnDoc {
        name: "age_group",
        doc: "required: 0-5 or U19, 20t29, 30t39, 40t49, 50t64, 65A",
        labels: &AGE_LABELS,
    },
    ColumnDoc {
        name: "borough",
        doc: "BK, BX, MN, QN, SI (per-borough metrics and community mixing; else all in BK)",
        labels: &[],
    },
    ColumnDoc {
        name: "area",
        doc: "neighbourhood (community mixing); else the borough",
        labels: &[],
    },
    ColumnDoc {
        name: "employment",
        doc: "0 outside labour force, 1 employed, 2 unemployed (default 0)",
        labels: &EMPLOYMENT_LABELS,
    },
    ColumnDoc {
        name: "stage",
        doc: "initial stage 0/S, 1/E, 2/I, 3/R",
        labels: &[],
    },
];

/// Monthly unemployment per borough, beside the observed rates where the
/// population source has them.
pub const MONTHLY: PeriodicTable = PeriodicTable {
    file: "monthly.csv",
    period: "month",
    every: PeriodKind::Month,
    kind: TableKind::Readings {
        prefix: "unemployment_",
    },
    observed: &[("unemployment_", "unemployment")],
};

/// Weekly counts, beside the Health Department's where the population
/// source offers them: reported cases against confirmed cases, admissions,
/// deaths (dated runs), or the undated weekly cases (undated runs).
pub const WEEKLY: PeriodicTable = PeriodicTable {
    file: "weekly.csv",
    period: "week",
    every: PeriodKind::Week,
    kind: TableKind::FlowSums,
    observed: &[
        ("new_reported_cases", "cases"),
        ("new_hospitalisations", "hospitalisations"),
        ("new_deaths", "deaths"),
        ("new_reported_cases", "weekly_cases"),
    ],
};

/// The registry entry.
pub static COVID: ModelSpec = ModelSpec {
    name: "covid",
    summary: "COVID-19 with weekly isolation and work decisions and a monthly labour market (NYC case study)",
    description: "SEIR-D with the AgentTorch NYC reference parameters: infection hazard R x susceptibility[age] x infectiousness[stage] x G(days since infection) / mean_contacts[age] per contact; household, school, work and other layers from the scenario plus daily random community contacts; each infection reported (report_probability, after a delay), admitted to hospital (ihr by age) and fatal (ifr by age, Levin et al. 2020) with delays drawn on the day of infection; heuristic weekly isolation (responding to reported cases) and go-to-work decisions; monthly unemployment per borough; on a dated run, calendar weekdays, Sunday-Saturday weeks and calendar months.",
    params,
    metrics: metric_specs,
    columns: COLUMNS,
    exclusive: &[],
    uses_layers: true,
    decisions: &[
        DecisionDoc {
            name: "isolate",
            doc: "each week, does the agent stay home (no school, work or community contacts)? yes/no; placeholders: agent columns (e.g. {age_group}, {borough}) and {week}, {borough_name} (e.g. Staten Island, with {borough} in the prompt), {cases}, {cases_change} (new reported cases in the agent's borough last week, as a number or \"an unknown number of\" before the first week ends; the change on the week before, e.g. +35%, \"up from none\" or \"not known\"); agent states {health} and {isolated_last_week} (see below), by which archetypes are then also grouped",
            answer: DecisionAnswer::YesNo,
        },
        DecisionDoc {
            name: "work",
            doc: "each week, does an employed agent who is not isolating go to work? yes/no; same placeholders",
            answer: DecisionAnswer::YesNo,
        },
    ],
    states: &[
        ("health", "well, or unwell while infectious"),
        ("isolated_last_week", "yes if the agent stayed home last week, else no"),
    ],
    control: None,
    plots: &[
        PlotPanel {
            ylabel: "agents",
            metrics: &["S", "E", "I", "R", "D"],
            bars: false,
        },
        PlotPanel {
            ylabel: "per step",
            metrics: &["new_infections"],
            bars: false,
        },
    ],
    tables: &[WEEKLY, MONTHLY],
    splits: true,
    build: |input| Covid::new(input).map(|m| Box::new(m) as Box<dyn Model>),
};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Role {
    Household,
    School,
    Work,
    Other,
}

/// Members of each group (area or borough), for drawing a uniformly random
/// member. When every group's members are consecutive ids (the synthetic
/// city numbers its residents area by area) only where each group starts
/// is kept, instead of a list of every agent.
struct Groups {
    /// Group `g` has `offsets[g + 1] - offsets[g]` members.
    offsets: Vec<u32>,
    /// Members in group order (CSR with `offsets`); empty when every group
    /// is a run of consecutive ids.
    members: Vec<u32>,
    /// The first member of each group, when every group is a run.
    first: Vec<u32>,
}

impl Groups {
    fn new(of: &[u32], count: usize) -> Groups {
        let mut offsets = vec![0u32; count + 1];
        for &g in of {
            offsets[g as usize + 1] += 1;
        }
        for k in 0..count {
            offsets[k + 1] += offsets[k];
        }
        // Runs: no group appears again once another has begun after it.
        let mut first = vec![u32::MAX; count];
        let mut runs = true;
        for (i, &g) in of.iter().enumerate() {
            if first[g as usize] == u32::MAX {
                first[g as usize] = i as u32;
            } else if of[i - 1] != g {
                runs = false;
                break;
            }
        }
        if runs {
            return Groups {
                offsets,
                members: Vec::new(),
                first,
            };
        }
        let mut cursor = offsets.clone();
        let mut members = vec![0u32; of.len()];
        for (i, &g) in of.iter().enumerate() {
            members[cursor[g as usize] as usize] = i as u32;
            cursor[g as usize] += 1;
        }
        Groups {
            offsets,
            members,
            first: Vec::new(),
        }
    }

    /// Members of group `g`.
    fn len(&self, g: u32) -> u64 {
        u64::from(self.offsets[g as usize + 1] - self.offsets[g as usize])
    }

    /// Member `k` of group `g` (in id order).
    #[inline]
    fn member(&self, g: u32, k: u64) -> u32 {
        if self.members.is_empty() {
            self.first[g as usize] + k as u32
        } else {
            self.members[self.offsets[g as usize] as usize + k as usize]
        }
    }
}

/// Per-chunk tallies, summed in a fixed order (integers: exact).
#[derive(Clone, Copy, Default)]
struct Tally {
    stages: [u64; 5],
    new_inf: [u64; 5],
    deaths: [u64; 5],
    active: [u64; 5],
    living: [u64; 5],
    isolating: [u64; 5],
    working: [u64; 5],
    employed: [u64; 5],
    agents: [u64; 5],
}

impl Tally {
    /// Count one agent (stage `s`, borough `b`) into the row's tallies.
    #[inline]
    fn count(&mut self, s: u8, b: usize, isolating: bool, employed: bool, working: bool) {
        self.stages[s as usize] += 1;
        self.agents[b] += 1;
        self.active[b] += (s == E || s == I) as u64;
        if s == D {
            self.deaths[b] += 1;
        } else {
            self.living[b] += 1;
            self.isolating[b] += isolating as u64;
            if employed {
                self.employed[b] += 1;
                self.working[b] += working as u64;
            }
        }
    }

    fn add(mut self, o: Tally) -> Tally {
        for k in 0..5 {
            self.stages[k] += o.stages[k];
            self.new_inf[k] += o.new_inf[k];
            self.deaths[k] += o.deaths[k];
            self.active[k] += o.active[k];
            self.living[k] += o.living[k];
            self.isolating[k] += o.isolating[k];
            self.working[k] += o.working[k];
            self.employed[k] += o.employed[k];
            self.agents[k] += o.agents[k];
        }
        self
    }
}

/// Every count of `t` and `o`, in a fixed order.
fn each_count(t: &mut Tally, o: &mut Outcomes, f: &mut impl FnMut(&mut u64)) {
    for a in [
        &mut t.stages,
        &mut t.new_inf,
        &mut t.deaths,
        &mut t.active,
        &mut t.living,
        &mut t.isolating,
        &mut t.working,
        &mut t.employed,
        &mut t.agents,
        &mut o.reported,
    ] {
        a.iter_mut().for_each(&mut *f);
    }
    o.admitted
        .iter_mut()
        .chain(o.deaths.iter_mut())
        .flatten()
        .chain(o.deaths_by_age.iter_mut())
        .chain([&mut o.total_reported, &mut o.total_admitted])
        .for_each(f);
}

/// The whole population's tallies and outcomes from each rank's (integer
/// sums: exact, whatever the number of ranks). A collective call.
fn summed(comm: &dyn Comm, t: &Tally, o: &Outcomes) -> (Tally, Outcomes) {
    let (mut t, mut o) = (*t, *o);
    if comm.ranks() > 1 {
        let mut words = Vec::new();
        each_count(&mut t, &mut o, &mut |x| words.push(*x));
        comm.sum_u64(&mut words);
        let mut sums = words.into_iter();
        each_count(&mut t, &mut o, &mut |x| *x = sums.next().unwrap_or_default());
    }
    (t, o)
}

/// Where each metric sits in the row: city totals, then per borough.
struct Cols {
    /// S, E, I, R, D.
    stages: [usize; 5],
    new_infections: usize,
    new_reported: usize,
    new_hospitalisations: usize,
    new_deaths: usize,
    reported: usize,
    hospitalisations: usize,
    /// Per age group: admissions, deaths on the day, deaths so far.
    ages: [[usize; 3]; AGES],
    isolating_fraction: usize,
    working_fraction: usize,
    boroughs: [BoroughCols; 5],
}

/// A borough's metrics.
#[derive(Clone, Copy)]
struct BoroughCols {
    new_infections: usize,
    new_reported: usize,
    new_hospitalisations: usize,
    new_deaths: usize,
    prevalence: usize,
    deaths: usize,
    isolating: usize,
    working: usize,
    unemployment: usize,
}

impl Cols {
    fn new() -> Cols {
        let l = myriad_core::metrics::RowLayout::new(&metric_specs());
        let at = |name: &str| l.at(name);
        Cols {
            stages: ["S", "E", "I", "R", "D"].map(at),
            new_infections: at("new_infections"),
            new_reported: at("new_reported_cases"),
            new_hospitalisations: at("new_hospitalisations"),
            new_deaths: at("new_deaths"),
            reported: at("reported_cases"),
            hospitalisations: at("hospitalisations"),
            ages: AGE_LABELS.map(|a| {
                [
                    at(&format!("new_hospitalisations_{a}")),
                    at(&format!("new_deaths_{a}")),
                    at(&format!("deaths_{a}")),
                ]
            }),
            isolating_fraction: at("isolating_fraction"),
            working_fraction: at("working_fraction"),
            boroughs: BOROUGH_CODES.map(|b| BoroughCols {
                new_infections: at(&format!("new_infections_{b}")),
                new_reported: at(&format!("new_reported_cases_{b}")),
                new_hospitalisations: at(&format!("new_hospitalisations_{b}")),
                new_deaths: at(&format!("new_deaths_{b}")),
                prevalence: at(&format!("prevalence_{b}")),
                deaths: at(&format!("deaths_{b}")),
                isolating: at(&format!("isolating_{b}")),
                working: at(&format!("working_{b}")),
                unemployment: at(&format!("unemployment_{b}")),
            }),
        }
    }
}

/// What does not change during a run: shared between forks. Per-agent
/// columns hold this rank's agents (local index = global id - `lo`); the
/// areas' and boroughs' members, drawn from by community contacts, are
/// global ids of the whole population.
struct Fixed {
    cols: Cols,
    age: Vec<u8>,
    borough: Vec<u8>,
    area: Vec<u32>,
    areas: Groups,
    boroughs: Groups,
    employed: Vec<bool>,
    /// 0 outside the labour force, 1 employed, 2 unemployed (at the start).
    employment: Vec<u8>,
    /// The whole population's (all ranks).
    labour_force: [u64; 5],
    initially_unemployed: [u64; 5],
    layers: Vec<(Layer, Role)>,
    g: Vec<f64>,
    mean_contacts: [f64; 6],
}

/// The day's outcomes and their running totals.
#[derive(Clone, Copy, Default)]
struct Outcomes {
    reported: [u64; 5],
    admitted: [[u64; AGES]; 5],
    deaths: [[u64; AGES]; 5],
    total_reported: u64,
    total_admitted: u64,
    deaths_by_age: [u64; AGES],
}

impl Outcomes {
    fn hash_into(&self, h: &mut StateHasher) {
        self.reported.iter().for_each(|&x| h.u64(x));
        self.admitted
            .iter()
            .chain(&self.deaths)
            .flatten()
            .for_each(|&x| h.u64(x));
        h.u64(self.total_reported);
        h.u64(self.total_admitted);
        self.deaths_by_age.iter().for_each(|&x| h.u64(x));
    }
}

/// The COVID-19 model state. In a partitioned run it holds this rank's
/// agents (`part`) and the packed flags of every agent, which the day's
/// contacts read wherever their targets live.
pub struct Covid {
    fixed: Arc<Fixed>,
    part: Part,
    comm: Arc<dyn Comm>,
    /// Seed of the draws from now on: the run's, or another one set by
    /// [`Model::reseed`] (a forecast ensemble from one state).
    seed: u64,
    stage: Vec<u8>,
    timer: Vec<u8>,
    infected_at: Vec<i32>,
    isolating: Vec<bool>,
    working: Vec<bool>,
    weeks_worked: Vec<u8>,
    weeks_in_month: u8,
    /// This rank's agents infected today, set during the transmission pass.
    hit: Marks,
    /// Per agent of the whole population, by global id: stage (bits 0-2),
    /// isolating (bit 3), working (bit 4), age group (bits 5-7). The
    /// transmission pass reads this one byte per contact instead of four
    /// arrays: on the full city that keeps its random reads within the
    /// cache. Each rank renews its own agents' and receives the others'.
    flags: Vec<u8>,
    /// This rank's agents whose flags changed this step (partitioned runs).
    changed: Vec<u32>,
    /// Agents exposed or infectious, as global ids in order: the sources of
    /// the next day's transmission and the only agents whose timers run,
    /// so a day costs in proportion to the epidemic, not to the population.
    active: Vec<u32>,
    week_cases: [u64; 5],
    weekly: Vec<[u64; 5]>,
    /// Isolation propensity per borough before the age factor (smoothed).
    pressure: [f64; 5],
    weeks_decided: u32,
    unemployment: [f64; 5],
    /// This rank's agents' tallies.
    tally: Tally,
    /// Reports, admissions and deaths of this rank's agents drawn but not
    /// yet due.
    pending: Pending,
    /// This rank's outcomes today.
    today: Outcomes,
    /// The whole population's tallies and outcomes (summed over ranks):
    /// what the row shows.
    city: (Tally, Outcomes),
}

impl Clone for Covid {
    fn clone(&self) -> Covid {
        Covid {
            fixed: self.fixed.clone(),
            part: self.part.clone(),
            comm: self.comm.clone(),
            seed: self.seed,
            stage: self.stage.clone(),
            timer: self.timer.clone(),
            infected_at: self.infected_at.clone(),
            isolating: self.isolating.clone(),
            working: self.working.clone(),
            weeks_worked: self.weeks_worked.clone(),
            weeks_in_month: self.weeks_in_month,
            // Flags are clear between steps.
            hit: self.hit.clone(),
            flags: self.flags.clone(),
            changed: self.changed.clone(),
            active: self.active.clone(),
            week_cases: self.week_cases,
            weekly: self.weekly.clone(),
            pressure: self.pressure,
            weeks_decided: self.weeks_decided,
            unemployment: self.unemployment,
            tally: self.tally,
            pending: self.pending.clone(),
            today: self.today,
            city: self.city,
        }
    }
}

/// `G(d)` for d = 0..=21: gamma mass between d-1 and d (G(0) = 0), normalised
/// over 21 days. The gamma density's constant cancels in the normalisation.
pub fn infectiousness_profile(mean: f64, sd: f64) -> Vec<f64> {
    let shape = (mean / sd).powi(2);
    let scale = sd * sd / mean;
    let pdf = |x: f64| {
        if x <= 0.0 {
            0.0
        } else {
            ((shape - 1.0) * x.ln() - x / scale).exp()
        }
    };
    let steps = 2000;
    let mut g = [0.0; 22];
    for (d, gd) in g.iter_mut().enumerate().skip(1) {
        let h = 1.0 / steps as f64;
        // Simpson's rule on [d-1, d].
        let a = (d - 1) as f64;
        let mut acc = pdf(a) + pdf(a + 1.0);
        for k in 1..steps {
            acc += pdf(a + k as f64 * h) * if k % 2 == 1 { 4.0 } else { 2.0 };
        }
        *gd = acc * h / 3.0;
    }
    let total: f64 = g.iter().sum();
    g.iter().map(|x| x / total).collect()
}

fn text_codes(
    pop: &Population,
    name: &str,
    labels_known: Option<&[&str]>,
) -> Result<Option<(Vec<u32>, usize)>, ModelError> {
    let Some(col) = pop.column(name) else { return Ok(None) };
    match &col.data {
        ColumnData::Text { codes, labels } => match labels_known {
            None => Ok(Some((codes.clone(), labels.len()))),
            Some(known) => {
                let map: Vec<Option<u32>> = labels
                    .iter()
                    .map(|l| known.iter().position(|k| k == l).map(|p| p as u32))
                    .collect();
                codes
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| {
                        map[c as usize].ok_or_else(|| ModelError::BadColumn {
                            column: name.into(),
                            reason: format!(
                                "agent {i} has '{}'; expected one of {}",
                                labels[c as usize],
                                known.join(", ")
                            ),
                        })
                    })
                    .collect::<Result<Vec<u32>, _>>()
                    .map(|v| Some((v, known.len())))
            }
        },
        ColumnData::Int(v) => {
            let max = labels_known.map_or(i64::from(u32::MAX), |k| k.len() as i64 - 1);
            v.iter()
                .enumerate()
                .map(|(i, &x)| {
                    if (0..=max).contains(&x) {
                        Ok(x as u32)
                    } else {
                        Err(ModelError::BadColumn {
                            column: name.into(),
                            reason: format!("agent {i} has {x}; expected a code in 0..={max}"),
                        })
                    }
                })
                .collect::<Result<Vec<u32>, _>>()
                .map(|v| {
                    let count = v.iter().copied().max().map_or(0, |m| m as usize + 1);
                    Some((v, labels_known.map_or(count, |k| k.len())))
                })
        }
        ColumnData::Float(_) => Err(ModelError::BadColumn {
            column: name.into(),
            reason: "holds decimal numbers; expected codes or labels".into(),
        }),
    }
}

/// The population columns the model reads, as codes.
struct AgentColumns {
    age: Vec<u8>,
    borough: Vec<u8>,
    area: Vec<u32>,
    n_areas: usize,
    /// 0 outside the labour force, 1 employed, 2 unemployed.
    employment: Vec<u8>,
}

impl AgentColumns {
    fn read(population: &Population) -> Result<AgentColumns, ModelError> {
        let n = population.size() as usize;
        let age: Vec<u8> = text_codes(population, "age_group", Some(&AGE_LABELS))?
            .ok_or_else(|| ModelError::BadColumn {
                column: "age_group".into(),
                reason: "is required: 0-5 or U19, 20t29, 30t39, 40t49, 50t64, 65A".into(),
            })?
            .0
            .into_iter()
            .map(|x| x as u8)
            .collect();
        let borough: Vec<u8> = text_codes(population, "borough", Some(&BOROUGH_CODES))?
            .map_or(vec![0; n], |(v, _)| v.into_iter().map(|x| x as u8).collect());
        let (area, n_areas) = match text_codes(population, "area", None)? {
            Some((v, k)) => (v, k),
            None => (borough.iter().map(|&b| b as u32).collect(), 5),
        };
        let bad = |reason: String| ModelError::BadColumn {
            column: "employment".into(),
            reason,
        };
        let employment: Vec<u8> = match population.column("employment").map(|c| &c.data) {
            None => vec![0; n],
            Some(ColumnData::Int(v)) => v
                .iter()
                .enumerate()
                .map(|(i, &x)| {
                    u8::try_from(x)
                        .ok()
                        .filter(|&x| x <= 2)
                        .ok_or_else(|| bad(format!("agent {i} has {x}; expected 0, 1 or 2")))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad("must hold 0, 1 or 2".into())),
        };
        Ok(AgentColumns {
            age,
            borough,
            area,
            n_areas,
            employment,
        })
    }

    /// Per borough: the labour force and the unemployed among it.
    fn labour_force(&self) -> ([u64; 5], [u64; 5]) {
        let (mut force, mut unemployed) = ([0u64; 5], [0u64; 5]);
        for (e, &b) in self.employment.iter().zip(&self.borough) {
            force[b as usize] += (*e > 0) as u64;
            unemployed[b as usize] += (*e == 2) as u64;
        }
        (force, unemployed)
    }
}

/// The outcome rules from the parameters. Death never comes before the
/// infectious stages end.
fn severity(p: &CovidParams) -> Severity {
    Severity {
        ifr: [p.ifr_u19, p.ifr_20t29, p.ifr_30t39, p.ifr_40t49, p.ifr_50t64, p.ifr_65a],
        ihr: [p.ihr_u19, p.ihr_20t29, p.ihr_30t39, p.ihr_40t49, p.ihr_50t64, p.ihr_65a],
        admission: Delay {
            mean: p.admission_delay_mean,
            sd: p.admission_delay_sd,
            min: 1,
        },
        death: Delay {
            mean: p.death_delay_mean,
            sd: p.death_delay_sd,
            min: (p.latent_days + p.infectious_days) as u32,
        },
        report: Delay {
            mean: p.report_delay_mean,
            sd: p.report_delay_sd,
            min: 1,
        },
    }
}

/// Mean daily contacts per age group on the population as built: the
/// community mean plus the layer degrees (school and work on 5 days of 7).
/// `age` is the whole population's; the layers hold this rank's rows. In a
/// partitioned run rank 0 sums every agent's contacts in id order, as one
/// process does, so the means (and every hazard after them) are the same
/// bits on any number of ranks. A collective call.
fn mean_contacts(age: &[u8], layers: &[(Layer, Role)], p: &CovidParams, part: &Part, comm: &dyn Comm) -> [f64; 6] {
    let community_mean = |a: u8| match a {
        0 => p.community_mean_u19,
        5 => p.community_mean_65a,
        _ => p.community_mean_adult,
    };
    let lo = part.lo() as usize;
    let contacts = |x: usize| {
        let mut c = community_mean(age[lo + x]);
        for (l, role) in layers {
            if let Contacts::Network(csr) = &l.contacts {
                let d = csr.degree(x as u32) as f64;
                c += match role {
                    Role::School | Role::Work => d * 5.0 / 7.0,
                    _ => d,
                };
            }
        }
        c
    };
    let mean_of = |each: &mut dyn Iterator<Item = (u8, f64)>| {
        let mut sum = [0.0f64; 6];
        let mut count = [0u64; 6];
        for (a, c) in each {
            sum[a as usize] += c;
            count[a as usize] += 1;
        }
        let mut mean = [1.0; 6];
        for a in 0..6 {
            if count[a] > 0 && sum[a] > 0.0 {
                mean[a] = sum[a] / count[a] as f64;
            }
        }
        mean
    };
    if comm.ranks() == 1 {
        return mean_of(&mut (0..age.len()).map(|i| (age[i], contacts(i))));
    }
    let mut out = vec![Vec::new(); comm.ranks()];
    out[0] = (0..part.len()).flat_map(|x| f64_words(contacts(x))).collect();
    let all = comm.exchange_u32(&out);
    let mut bytes = Vec::new();
    if comm.rank() == 0 {
        let each = all
            .chunks_exact(2)
            .enumerate()
            .map(|(i, w)| (age[i], f64_from_words(w)));
        bytes = mean_of(&mut { each }).iter().flat_map(|m| m.to_le_bytes()).collect();
    }
    comm.broadcast_bytes(0, &mut bytes);
    std::array::from_fn(|a| f64::from_le_bytes(bytes[8 * a..8 * a + 8].try_into().expect("8 bytes per mean")))
}

/// Initial stages (the `stage` column, then the seeded infections) with
/// their timers and infection days.
#[allow(clippy::type_complexity)]
fn initial_state(
    population: &Population,
    borough: &[u8],
    p: &CovidParams,
    seed: u64,
) -> Result<(Vec<u8>, Vec<u8>, Vec<i32>), ModelError> {
    let n = population.size() as usize;
    let mut stage = initial_stages(population, true)?;
    let weights = [
        p.seed_weight_bk,
        p.seed_weight_bx,
        p.seed_weight_mn,
        p.seed_weight_qn,
        p.seed_weight_si,
    ];
    if weights.iter().all(|&w| w == weights[0]) {
        seed_infections(&mut stage, p.initial_infected as u64, seed)?;
    } else {
        seed_by_borough(&mut stage, borough, &weights, p.initial_infected as u64, seed)?;
    }
    let latent = p.latent_days as i32;
    let infectious = p.infectious_days as u8;
    let mut timer = vec![0u8; n];
    let mut infected_at = vec![i32::MIN / 2; n];
    for i in 0..n {
        match stage[i] {
            E => {
                timer[i] = latent as u8;
                infected_at[i] = 0;
            }
            I => {
                timer[i] = infectious;
                infected_at[i] = -latent;
            }
            _ => {}
        }
    }
    Ok((stage, timer, infected_at))
}

/// Seed `wanted` infections with per-resident weights by borough: each
/// borough gets its share of `wanted` in proportion to weight x susceptible
/// residents (largest remainders), drawn uniformly within it.
fn seed_by_borough(
    stage: &mut [u8],
    borough: &[u8],
    weights: &[f64; 5],
    wanted: u64,
    seed: u64,
) -> Result<(), ModelError> {
    let mut members: [Vec<u32>; 5] = Default::default();
    for (i, &b) in borough.iter().enumerate() {
        if stage[i] == S {
            members[b as usize].push(i as u32);
        }
    }
    let mass: Vec<f64> = (0..5).map(|b| weights[b] * members[b].len() as f64).collect();
    let total: f64 = mass.iter().sum();
    if total <= 0.0 {
        return Err(ModelError::Infeasible(
            "initial infections: every susceptible agent lives in a borough whose seed_weight is 0".into(),
        ));
    }
    let exact: Vec<f64> = mass.iter().map(|m| wanted as f64 * m / total).collect();
    let mut count: Vec<u64> = exact.iter().map(|x| x.floor() as u64).collect();
    let mut order: Vec<usize> = (0..5).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    let short = wanted - count.iter().sum::<u64>();
    for &b in order.iter().take(short as usize) {
        count[b] += 1;
    }
    for b in 0..5 {
        let mut local = vec![S; members[b].len()];
        seed_infections(&mut local, count[b], seed ^ ((b as u64 + 1) << 40))?;
        for (k, &i) in members[b].iter().enumerate() {
            stage[i as usize] = local[k];
        }
    }
    Ok(())
}

impl Covid {
    /// Build from a population with an `age_group` column. In a
    /// partitioned run the layers hold this rank's rows, and the model
    /// keeps its agents' state; the initial state is drawn over the whole
    /// population on every rank, so that it is the same on any number of
    /// ranks.
    pub fn new(input: ModelInput) -> Result<Covid, ModelError> {
        let ModelInput {
            population,
            layers,
            params,
            seed,
            split,
        } = input;
        let n = population.size() as usize;
        let part = split.part_of(n as u32);
        let comm = split.comm;
        check_layer_sizes(&layers, part.len() as u32)?;
        let cols = AgentColumns::read(&population)?;
        let layers: Vec<(Layer, Role)> = layers
            .into_iter()
            .map(|l| {
                let role = match l.name.as_str() {
                    "household" => Role::Household,
                    "school" => Role::School,
                    "work" => Role::Work,
                    _ => Role::Other,
                };
                (l, role)
            })
            .collect();
        let cp = CovidParams::read(&params);
        let mean_contacts = mean_contacts(&cols.age, &layers, &cp, &part, &*comm);
        let (stage, timer, infected_at) = initial_state(&population, &cols.borough, &cp, seed)?;
        drop(population);
        let (labour_force, initially_unemployed) = cols.labour_force();
        // Nobody isolates or works before the first week's decisions.
        let flags: Vec<u8> = stage
            .par_iter()
            .zip(cols.age.par_iter())
            .with_min_len(1 << 14)
            .map(|(&s, &a)| s | a << 5)
            .collect();
        let AgentColumns {
            age,
            borough,
            area,
            n_areas,
            employment,
        } = cols;
        let areas = Groups::new(&area, n_areas);
        let boroughs = Groups::new(&borough.iter().map(|&b| b as u32).collect::<Vec<_>>(), 5);
        let (lo, hi) = (part.lo() as usize, part.hi() as usize);
        let mine = |v: Vec<u8>| if v.len() == hi - lo { v } else { v[lo..hi].to_vec() };
        let employment = mine(employment);
        let local = hi - lo;
        let mut m = Covid {
            seed,
            fixed: Arc::new(Fixed {
                cols: Cols::new(),
                areas,
                boroughs,
                employed: employment.iter().map(|&e| e == 1).collect(),
                age: mine(age),
                borough: mine(borough),
                area: area[lo..hi].to_vec(),
                employment,
                labour_force,
                initially_unemployed,
                layers,
                g: infectiousness_profile(cp.g_mean, cp.g_sd),
                mean_contacts,
            }),
            part,
            comm,
            stage: mine(stage),
            timer: mine(timer),
            infected_at: infected_at[lo..hi].to_vec(),
            isolating: vec![false; local],
            working: vec![false; local],
            weeks_worked: vec![0; local],
            weeks_in_month: 0,
            hit: Marks::new(local),
            flags,
            changed: Vec::new(),
            active: Vec::new(),
            week_cases: [0; 5],
            weekly: Vec::new(),
            pressure: [0.0; 5],
            weeks_decided: 0,
            unemployment: [0.0; 5],
            tally: Tally::default(),
            pending: Pending::new(),
            today: Outcomes::default(),
            city: Default::default(),
        };
        m.update_unemployment(&[0; 5], &[0; 5], &[0; 5]);
        m.active = (0..local)
            .filter(|&x| matches!(m.stage[x], E | I))
            .map(|x| (lo + x) as u32)
            .collect();
        // Infections before day 1 have outcomes too (those due later).
        let rng = CounterRng::new(seed, OUTCOMES);
        let rules = severity(&cp);
        for &a in &m.active {
            let x = a as usize - lo;
            let (age, b) = (m.fixed.age[x], m.fixed.borough[x]);
            m.pending
                .infect(&rules, &rng, a, m.infected_at[x] as i64, age, b, cp.report_probability);
        }
        m.tally = m.count(Tally::default());
        m.city = summed(&*m.comm, &m.tally, &m.today);
        Ok(m)
    }

    /// Unemployment rate (percent) per borough: the initially unemployed plus
    /// `lost` (employed agents who lost income this month) over the labour force.
    /// `dead` (members of the labour force who died) have left it.
    fn update_unemployment(&mut self, lost: &[u64; 5], dead: &[u64; 5], dead_unemployed: &[u64; 5]) {
        for (b, rate) in self.unemployment.iter_mut().enumerate() {
            let force = self.fixed.labour_force[b] - dead[b];
            if force > 0 {
                let unemployed = self.fixed.initially_unemployed[b] - dead_unemployed[b] + lost[b];
                *rate = 100.0 * unemployed as f64 / force as f64;
            }
        }
    }

    /// Mean daily contacts per age group used in the hazard.
    pub fn mean_contacts(&self) -> [f64; 6] {
        self.fixed.mean_contacts
    }

    /// Current stages (0 S, 1 E, 2 I, 3 R, 4 D) of this rank's agents.
    pub fn stages(&self) -> &[u8] {
        &self.stage
    }

    /// This rank's agents isolating this week.
    pub fn isolating(&self) -> &[bool] {
        &self.isolating
    }

    fn susceptibility(p: &CovidParams, age: u8) -> f64 {
        match age {
            0 => p.susceptibility_u19,
            1 => p.susceptibility_20t29,
            _ => p.susceptibility_other,
        }
    }

    /// Weekly decisions: isolation and going to work.
    fn decide(&mut self, ctx: &mut Step) {
        let p = &CovidParams::read(ctx.params);
        let growth: [f64; 5] = std::array::from_fn(|b| {
            let k = self.weekly.len();
            if k < 2 {
                return 0.0;
            }
            let (w0, w1) = (self.weekly[k - 2][b] as f64, self.weekly[k - 1][b] as f64);
            ((w1 - w0) / w0.max(1.0)).max(0.0)
        });
        let base = p.isolation_base;
        let sens = p.isolation_sensitivity;
        let cap = p.isolation_max;
        let memory = p.isolation_memory;
        if self.weeks_decided == 0 {
            self.pressure = [base; 5];
        }
        for (b, pressure) in self.pressure.iter_mut().enumerate() {
            *pressure = memory * *pressure + (1.0 - memory) * (base + sens * growth[b]).min(cap);
        }
        self.weeks_decided += 1;
        let pressure = self.pressure;
        let slope = p.isolation_age_slope;
        let work_p = p.work_probability;
        let rng = CounterRng::new(self.seed, Stream::DECISION);
        let step = ctx.step;
        let work_open = self
            .fixed
            .layers
            .iter()
            .enumerate()
            .all(|(l, (_, role))| *role != Role::Work || ctx.layer_weights[l] > 0.0);
        let (iso_llm, work_llm) = self.ask_behaviour(&mut ctx.decide);
        let (iso_llm, work_llm) = (iso_llm.as_deref(), work_llm.as_deref());
        let fixed = &self.fixed;
        let stage = &self.stage;
        let (lo, hi) = (self.part.lo() as usize, self.part.hi() as usize);
        // Chunks large enough that a small population is one task (no
        // thread hand-off), small enough to spread a city over the pool.
        const CHUNK: usize = 1 << 16;
        // One pass: each agent decides, and its packed flags and the row's
        // tallies (which isolation and work enter) are renewed with it.
        self.tally = self
            .isolating
            .par_chunks_mut(CHUNK)
            .zip(self.working.par_chunks_mut(CHUNK))
            .zip(self.weeks_worked.par_chunks_mut(CHUNK))
            .zip(self.flags[lo..hi].par_chunks_mut(CHUNK))
            .enumerate()
            .map(|(c, (((iso, work), worked), flags))| {
                let mut t = Tally::default();
                for k in 0..iso.len() {
                    // Local index; draws are keyed by the global id.
                    let i = c * CHUNK + k;
                    let id = (lo + i) as u32;
                    let (age, b) = (fixed.age[i], fixed.borough[i] as usize);
                    if stage[i] == D {
                        iso[k] = false;
                        work[k] = false;
                    } else {
                        // A provider's probability where it has one, else the heuristic.
                        let q = iso_llm
                            .map(|v| v[i])
                            .filter(|x| !x.is_nan())
                            .unwrap_or_else(|| pressure[b] * (1.0 + slope * (age as f64 - 2.0)));
                        let w = work_llm.map(|v| v[i]).filter(|x| !x.is_nan()).unwrap_or(work_p);
                        iso[k] = to_unit(rng.at(step, id, 0)) < q.clamp(0.0, 1.0);
                        work[k] = fixed.employed[i] && !iso[k] && to_unit(rng.at(step, id, 1)) < w;
                        if work[k] && work_open {
                            worked[k] += 1;
                        }
                    }
                    flags[k] = stage[i] | (iso[k] as u8) << 3 | (work[k] as u8) << 4 | age << 5;
                    t.count(stage[i], b, iso[k], fixed.employed[i], work[k]);
                }
                t
            })
            .reduce(Tally::default, Tally::add);
        if self.comm.ranks() > 1 {
            self.flags = self.comm.all_gather_bytes(&self.flags[lo..hi]);
        }
        self.weeks_in_month += 1;
    }

    /// Isolation and work probabilities from the behaviour provider, if one
    /// is attached. Observations: `week`, and per borough `borough_name`,
    /// `cases` (new reported cases last week) and `cases_change` (against
    /// the week before).
    /// A provider error is kept for the run to report; this week falls back
    /// to the heuristic.
    ///
    /// In a partitioned run only rank 0 holds the provider: it asks once
    /// for the whole population (the states its prompts mention gathered
    /// from every rank) and sends each rank its agents' values, so the run
    /// makes the calls one process makes. Collective calls.
    fn ask_behaviour(&self, decide: &mut Decide) -> (Option<Vec<f64>>, Option<Vec<f64>>) {
        let split = self.comm.ranks() > 1;
        // Whether a provider asks, and which states its prompts mention:
        // rank 0 knows.
        let mut asks = vec![
            decide.attached() as u8,
            decide.mentions("health") as u8,
            decide.mentions("isolated_last_week") as u8,
        ];
        if split {
            self.comm.broadcast_bytes(0, &mut asks);
        }
        if asks[0] == 0 {
            return (None, None);
        }
        let weekly = &self.weekly;
        let cases = move |b: Option<usize>, back: usize| -> Option<u64> {
            let k = weekly.len().checked_sub(back)?;
            Some(match b {
                Some(b) => weekly[k][b],
                None => weekly[k].iter().sum(),
            })
        };
        let by_group = move |attrs: &std::collections::BTreeMap<String, String>| {
            let b = attrs
                .get("borough")
                .and_then(|code| BOROUGH_CODES.iter().position(|c| c == code));
            let last = cases(b, 1);
            let change = match (last, cases(b, 2)) {
                (Some(l), Some(p)) if p > 0 => format!("{:+.0}%", 100.0 * (l as f64 - p as f64) / p as f64),
                (Some(_), Some(_)) => "up from none".to_string(),
                _ => "not known".to_string(),
            };
            // Both read as part of a sentence: "there were {cases} new
            // infections", "change on the week before: {cases_change}".
            let mut values = std::collections::BTreeMap::from([
                (
                    "cases".to_string(),
                    last.map_or("an unknown number of".into(), |c| c.to_string()),
                ),
                ("cases_change".to_string(), change),
            ]);
            if let Some(b) = b {
                values.insert("borough_name".to_string(), BOROUGH_NAMES[b].to_string());
            }
            values
        };
        // States a prompt may mention (archetypes then group by them too),
        // built only when one does: each is a code per agent.
        let mut states = Vec::new();
        if asks[1] == 1 {
            states.push(AgentState {
                name: "health".into(),
                codes: self.gathered_on_rank_0(self.stage.par_iter().map(|&s| u32::from(s == I)).collect()),
                labels: vec!["well".into(), "unwell".into()],
            });
        }
        if asks[2] == 1 {
            states.push(AgentState {
                name: "isolated_last_week".into(),
                codes: self.gathered_on_rank_0(self.isolating.par_iter().map(|&x| u32::from(x)).collect()),
                labels: vec!["no".into(), "yes".into()],
            });
        }
        let obs = Observations {
            common: std::collections::BTreeMap::from([("week".to_string(), self.weekly.len().to_string())]),
            by_group: &by_group,
            askers: None,
            states: &states,
        };
        let when = format!("week {}", obs.common["week"]);
        let iso = decide.values("isolate", &when, &obs);
        let work = decide.values("work", &when, &obs);
        if split {
            (self.sent_by_rank_0(iso), self.sent_by_rank_0(work))
        } else {
            (iso, work)
        }
    }

    /// Every rank's `codes` (one per agent) on rank 0, in id order; empty
    /// elsewhere. A collective call.
    fn gathered_on_rank_0(&self, codes: Vec<u32>) -> Vec<u32> {
        if self.comm.ranks() == 1 {
            return codes;
        }
        let mut out = vec![Vec::new(); self.comm.ranks()];
        out[0] = codes;
        self.comm.exchange_u32(&out)
    }

    /// Rank 0's `values` (one per agent of the whole population, or none),
    /// each rank receiving its agents' (bit for bit). A collective call.
    fn sent_by_rank_0(&self, values: Option<Vec<f64>>) -> Option<Vec<f64>> {
        let ranks = self.comm.ranks();
        let mut out = vec![Vec::new(); ranks];
        if self.comm.rank() == 0 {
            let bounds = &self.part.bounds;
            for (r, o) in out.iter_mut().enumerate() {
                *o = match &values {
                    None => vec![0],
                    Some(v) => std::iter::once(1)
                        .chain(
                            v[bounds[r] as usize..bounds[r + 1] as usize]
                                .iter()
                                .flat_map(|&x| f64_words(x)),
                        )
                        .collect(),
                };
            }
        }
        let got = self.comm.exchange_u32(&out);
        (got.first() == Some(&1)).then(|| got[1..].chunks_exact(2).map(f64_from_words).collect())
    }

    fn count(&self, t: Tally) -> Tally {
        const CHUNK: usize = 1 << 14;
        self.stage
            .par_chunks(CHUNK)
            .enumerate()
            .map(|(c, stages)| {
                let mut t = Tally::default();
                for (k, &s) in stages.iter().enumerate() {
                    let i = c * CHUNK + k;
                    let b = self.fixed.borough[i] as usize;
                    t.count(s, b, self.isolating[i], self.fixed.employed[i], self.working[i]);
                }
                t
            })
            .reduce(Tally::default, Tally::add)
            .add(Tally {
                new_inf: t.new_inf,
                ..Tally::default()
            })
    }

    fn write_row(&self, row: &mut [f64]) {
        let ((t, o), c) = (&self.city, &self.fixed.cols);
        let frac = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let sum = |x: &[u64; 5]| x.iter().sum::<u64>();
        for (k, &col) in c.stages.iter().enumerate() {
            row[col] = t.stages[k] as f64;
        }
        row[c.new_infections] = sum(&t.new_inf) as f64;
        row[c.new_reported] = sum(&o.reported) as f64;
        row[c.new_hospitalisations] = o.admitted.iter().flatten().sum::<u64>() as f64;
        row[c.new_deaths] = o.deaths.iter().flatten().sum::<u64>() as f64;
        row[c.reported] = o.total_reported as f64;
        row[c.hospitalisations] = o.total_admitted as f64;
        for (a, cols) in c.ages.iter().enumerate() {
            row[cols[0]] = o.admitted.iter().map(|x| x[a]).sum::<u64>() as f64;
            row[cols[1]] = o.deaths.iter().map(|x| x[a]).sum::<u64>() as f64;
            row[cols[2]] = o.deaths_by_age[a] as f64;
        }
        row[c.isolating_fraction] = frac(sum(&t.isolating), sum(&t.living));
        row[c.working_fraction] = frac(sum(&t.working), sum(&t.employed));
        for (b, bc) in c.boroughs.iter().enumerate() {
            row[bc.new_infections] = t.new_inf[b] as f64;
            row[bc.new_reported] = o.reported[b] as f64;
            row[bc.new_hospitalisations] = o.admitted[b].iter().sum::<u64>() as f64;
            row[bc.new_deaths] = o.deaths[b].iter().sum::<u64>() as f64;
            row[bc.prevalence] = frac(t.active[b], t.agents[b]);
            row[bc.deaths] = t.deaths[b] as f64;
            row[bc.isolating] = frac(t.isolating[b], t.living[b]);
            row[bc.working] = frac(t.working[b], t.employed[b]);
            row[bc.unemployment] = self.unemployment[b];
        }
    }
}

impl Model for Covid {
    fn metrics(&self) -> Vec<MetricSpec> {
        metric_specs()
    }

    fn agent_count(&self) -> u32 {
        self.part.total()
    }

    fn observe(&self, row: &mut [f64]) {
        self.write_row(row);
    }

    fn snapshot(&self) -> Box<dyn Model> {
        Box::new(self.clone())
    }

    fn column_labels(&self, column: &str) -> Option<&'static [&'static str]> {
        match column {
            "stage" => Some(&COVID_STAGES),
            "age_group" => Some(&AGE_LABELS),
            "borough" => Some(&BOROUGH_CODES),
            _ => None,
        }
    }

    fn agent_columns(&self) -> Vec<(&'static str, ColumnView<'_>)> {
        vec![
            ("stage", ColumnView::U8(&self.stage)),
            ("timer", ColumnView::U8(&self.timer)),
            ("isolating", ColumnView::Bool(&self.isolating)),
            ("working", ColumnView::Bool(&self.working)),
            ("weeks_worked", ColumnView::U8(&self.weeks_worked)),
            ("age_group", ColumnView::U8(&self.fixed.age)),
            ("borough", ColumnView::U8(&self.fixed.borough)),
        ]
    }

    fn reseed(&mut self, seed: u64) -> bool {
        self.seed = seed;
        true
    }

    fn saves_state(&self) -> bool {
        true
    }

    fn save_state(&self, out: &mut Vec<u8>) {
        self.save(out);
    }

    fn load_state(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.load(bytes)
    }

    fn hash_extra(&self, h: &mut StateHasher) {
        h.u64(self.seed);
        self.infected_at.iter().for_each(|&x| h.u64(x as u64));
        h.u64(self.weeks_in_month as u64);
        h.u64(self.weeks_decided as u64);
        self.week_cases.iter().for_each(|&x| h.u64(x));
        self.weekly.iter().flatten().for_each(|&x| h.u64(x));
        self.pressure.iter().chain(&self.unemployment).for_each(|&x| h.f64(x));
        self.pending.hash_into(h);
        self.today.hash_into(h);
    }

    /// One day, in phases: the weekly decisions (on the first day of a
    /// week), the packed flags, transmission (the contact layers, then the
    /// day's community contacts, in one pass over the infectious), the stage
    /// transitions, the week's case count, the monthly economy, the row.
    fn step(&mut self, ctx: &mut Step, row: &mut [f64]) {
        let step = ctx.step;
        let calendar = *ctx.calendar;
        if calendar.starts_week(step) {
            // Isolation and work change for everyone: the decisions renew
            // every agent's flags and the tallies (on other days the stage
            // changes keep both current).
            self.decide(ctx);
        }
        let p = CovidParams::read(ctx.params);
        let day = Day::new(self, &p, ctx.layer_weights, step, calendar.is_weekday(step));
        let mut infected: Vec<u32> = self
            .active
            .par_iter()
            .with_min_len(2048)
            .fold(Vec::new, |mut out, &j| {
                day.spread_from(j as usize, &mut out);
                out
            })
            .reduce(Vec::new, |mut a, mut b| {
                a.append(&mut b);
                a
            });
        // Two sources may infect one target at the same moment.
        infected.sort_unstable();
        infected.dedup();
        if self.comm.ranks() > 1 {
            infected = self.exchange_infected(infected);
        }
        self.advance_stages(&p, step, &infected);
        if self.comm.ranks() > 1 {
            self.share_flags();
        }
        self.city = summed(&*self.comm, &self.tally, &self.today);
        self.count_week(calendar.ends_week(step), self.city.1.reported);
        if calendar.ends_month(step) && self.weeks_in_month > 0 {
            self.close_month();
        }
        self.write_row(row);
    }
}

const ISOLATING: u8 = 1 << 3;
const WORKING: u8 = 1 << 4;

/// Per-contact infection probability `1 - exp(-h x susceptibility)` for the
/// hazard `h` a source applies to all its contacts of one layer: computed
/// once per age group met, not once per contact (the same arithmetic, so the
/// same bits).
struct Chance<'a> {
    h: f64,
    susc: &'a [f64; 6],
    p: [f64; 6],
}

impl Chance<'_> {
    fn of(&mut self, age: u8) -> f64 {
        let a = age as usize;
        if self.p[a].is_nan() {
            self.p[a] = 1.0 - (-(self.h * self.susc[a])).exp();
        }
        self.p[a]
    }
}

/// What one day's transmission reads: the state before the day (through the
/// packed flags), the day's hazard constants and the layers open today.
/// Its only write is the "infected today" flag of a susceptible target, the
/// one place where an agent's step writes to another agent. Sources are
/// this rank's agents (per-agent columns and layer rows are indexed by
/// global id - `lo`); targets are global ids.
struct Day<'a> {
    step: u32,
    lo: usize,
    stage: &'a [u8],
    iso: &'a [bool],
    working: &'a [bool],
    flags: &'a [u8],
    hit: &'a Marks,
    infected_at: &'a [i32],
    fixed: &'a Fixed,
    layers: Vec<(&'a myriad_core::Csr, Role, f64)>,
    r: f64,
    inf: [f64; 3],
    susc: [f64; 6],
    community_weight: f64,
    area_share: f64,
    community_mean: [f64; 6],
    gammas: [Option<Gamma<f64>>; 6],
    tx: CounterRng,
    comm: CounterRng,
}

impl<'a> Day<'a> {
    fn new(m: &'a Covid, p: &CovidParams, weights: &[f64], step: u32, weekday: bool) -> Day<'a> {
        let community_mean: [f64; 6] = std::array::from_fn(|a| match a {
            0 => p.community_mean_u19,
            5 => p.community_mean_65a,
            _ => p.community_mean_adult,
        });
        let dispersion = p.community_dispersion;
        let layers = m
            .fixed
            .layers
            .iter()
            .enumerate()
            .filter_map(|(l, (layer, role))| match &layer.contacts {
                Contacts::Network(csr) if weights[l] > 0.0 => Some((csr, *role, weights[l])),
                _ => None,
            })
            .filter(|(_, role, _)| weekday || !matches!(role, Role::School | Role::Work))
            .collect();
        Day {
            step,
            lo: m.part.lo() as usize,
            stage: &m.stage,
            iso: &m.isolating,
            working: &m.working,
            flags: &m.flags,
            hit: &m.hit,
            infected_at: &m.infected_at,
            fixed: &m.fixed,
            layers,
            r: p.r_week,
            inf: [0.0, p.infectiousness_e, p.infectiousness_i],
            susc: std::array::from_fn(|a| Covid::susceptibility(p, a as u8) / m.fixed.mean_contacts[a]),
            community_weight: p.community_weight,
            area_share: p.community_area_share,
            community_mean,
            gammas: std::array::from_fn(|a| Gamma::new(dispersion, community_mean[a] / dispersion).ok()),
            tx: CounterRng::new(m.seed, Stream::TRANSMISSION),
            comm: CounterRng::new(m.seed, COMMUNITY),
        }
    }

    fn chance(&self, h: f64) -> Chance<'_> {
        Chance {
            h,
            susc: &self.susc,
            p: [f64::NAN; 6],
        }
    }

    /// Source `j` (a global id; exposed or infectious) tries to infect
    /// each contact; those it infects are added to `out`.
    fn spread_from(&self, j: usize, out: &mut Vec<u32>) {
        let x = j - self.lo;
        let s = self.stage[x];
        if s != E && s != I {
            return;
        }
        let d = (self.step as i32 - self.infected_at[x]).clamp(0, 21) as usize;
        let base = self.r * self.inf[s as usize] * self.fixed.g[d];
        if base <= 0.0 {
            return;
        }
        self.layer_contacts(j, base, out);
        if !self.iso[x] && self.community_weight > 0.0 {
            self.community_contacts(j, base, out);
        }
    }

    /// Target `i` (flags `f`) is infected by source `j` with chance `c`
    /// unless it is not susceptible or already infected today; the draw is
    /// keyed by (step, source, slot), so the order of attempts changes nothing.
    /// Marks are kept for this rank's agents only: another rank's target
    /// may be pushed twice, and the list is sorted without repeats.
    fn try_infect(&self, i: usize, f: u8, c: &mut Chance, j: u32, slot: u64, out: &mut Vec<u32>) {
        let local = i.wrapping_sub(self.lo);
        let mine = local < self.hit.len();
        if f & 7 == S && !(mine && self.hit.is_marked(local)) && to_unit(self.tx.at(self.step, j, slot)) < c.of(f >> 5)
        {
            if mine {
                self.hit.mark(local);
            }
            out.push(i as u32);
        }
    }

    /// Household, school, work and other layers: who goes where today
    /// (isolating agents stay home; only workers meet at work).
    fn layer_contacts(&self, j: usize, base: f64, out: &mut Vec<u32>) {
        let x = (j - self.lo) as u32;
        for (l, &(csr, role, w)) in self.layers.iter().enumerate() {
            let source_goes = match role {
                Role::Household => true,
                Role::Work => self.working[x as usize],
                Role::School | Role::Other => !self.iso[x as usize],
            };
            if !source_goes {
                continue;
            }
            // Edge slots are the whole layer's, wherever its rows are held.
            let start = csr.first_slot() as usize + csr.range(x).0;
            let weights = csr.edge_weights(x);
            let mut unweighted = self.chance(base * w);
            for (k, &i) in csr.neighbours(x).iter().enumerate() {
                let i = i as usize;
                let f = self.flags[i];
                let target_goes = match role {
                    Role::Household => true,
                    Role::Work => f & WORKING != 0,
                    Role::School | Role::Other => f & ISOLATING == 0,
                };
                if target_goes {
                    let slot = ((l as u64) << 48) | (start + k) as u64;
                    match weights {
                        None => self.try_infect(i, f, &mut unweighted, j as u32, slot, out),
                        Some(x) => self.try_infect(i, f, &mut self.chance(base * w * x[k] as f64), j as u32, slot, out),
                    }
                }
            }
        }
    }

    /// The day's community contacts: NB(mean[age], k) of them, as a
    /// gamma-Poisson mixture, drawn from the source's area or borough.
    fn community_contacts(&self, j: usize, base: f64, out: &mut Vec<u32>) {
        let x = j - self.lo;
        let age = self.fixed.age[x] as usize;
        let mean = self.community_mean[age];
        if mean <= 0.0 {
            return;
        }
        let key = ((self.step as u64) << 32) | j as u64;
        let mut seq = self.comm.sequence(key);
        let lambda = self.gammas[age].as_ref().map_or(mean, |gm| gm.sample(&mut seq));
        let k = if lambda > 0.0 {
            Poisson::new(lambda).map_or(0.0, |ps| ps.sample(&mut seq)) as u64
        } else {
            0
        };
        let mut community = self.chance(base * self.community_weight);
        for c in 0..k {
            let u = to_unit(self.comm.draw(key, (1 << 40) + 2 * c));
            let (pools, g) = if u < self.area_share {
                (&self.fixed.areas, self.fixed.area[x])
            } else {
                (&self.fixed.boroughs, self.fixed.borough[x] as u32)
            };
            let len = pools.len(g);
            if len == 0 {
                continue;
            }
            let i = pools.member(g, self.comm.below(key, (1 << 40) + 2 * c + 1, len)) as usize;
            let f = self.flags[i];
            if i != j && f & ISOLATING == 0 {
                self.try_infect(i, f, &mut community, j as u32, (7 << 48) | c, out);
            }
        }
    }
}

impl Covid {
    /// Stage transitions: today's infected enter E; the active agents' timers
    /// run, E ending in I and I in R or D. Only these agents are touched:
    /// their packed flags, the active list and the row's tallies change with
    /// them.
    fn advance_stages(&mut self, p: &CovidParams, step: u32, infected: &[u32]) {
        let latent = p.latent_days as u8;
        let infectious = p.infectious_days as u8;
        let fixed = self.fixed.clone();
        self.tally.new_inf = [0; 5];
        let lo = self.part.lo() as usize;
        let mut still = Vec::with_capacity(self.active.len() + infected.len());
        for &a in &std::mem::take(&mut self.active) {
            let i = a as usize - lo;
            self.timer[i] -= 1;
            if self.timer[i] > 0 {
                still.push(a);
                continue;
            }
            let (from, to) = match self.stage[i] {
                E => {
                    self.timer[i] = infectious;
                    still.push(a);
                    (E, I)
                }
                _ => (I, R),
            };
            self.set_stage(&fixed, i, from, to);
        }
        let rules = severity(p);
        let rng = CounterRng::new(self.seed, OUTCOMES);
        for &a in infected {
            let i = a as usize - lo;
            self.hit.take(i);
            self.timer[i] = latent;
            self.infected_at[i] = step as i32;
            self.tally.new_inf[fixed.borough[i] as usize] += 1;
            self.set_stage(&fixed, i, S, E);
            let (age, b) = (fixed.age[i], fixed.borough[i]);
            self.pending
                .infect(&rules, &rng, a, step as i64, age, b, p.report_probability);
        }
        self.apply_outcomes(&fixed, step);
        // Newly infected agents join in id order.
        let mut merged = Vec::with_capacity(still.len() + infected.len());
        let (mut x, mut y) = (still.iter().peekable(), infected.iter().peekable());
        while let (Some(&&a), Some(&&b)) = (x.peek(), y.peek()) {
            if a < b {
                merged.push(a);
                x.next();
            } else {
                merged.push(b);
                y.next();
            }
        }
        merged.extend(x);
        merged.extend(y);
        self.active = merged;
    }

    /// Today's reports, admissions and deaths (from R: the delay to death
    /// outlasts the infectious stages).
    fn apply_outcomes(&mut self, fixed: &Fixed, step: u32) {
        let due = self.pending.take(step as i64);
        let o = &mut self.today;
        o.reported = due.reported;
        o.admitted = due.admitted;
        o.deaths = [[0; AGES]; 5];
        o.total_reported += due.reported.iter().sum::<u64>();
        o.total_admitted += due.admitted.iter().flatten().sum::<u64>();
        let lo = self.part.lo() as usize;
        for &a in &due.deaths {
            let i = a as usize - lo;
            match self.stage[i] {
                R => {
                    let (age, b) = (fixed.age[i] as usize, fixed.borough[i] as usize);
                    self.today.deaths[b][age] += 1;
                    self.today.deaths_by_age[age] += 1;
                    self.set_stage(fixed, i, R, D);
                }
                // Still infectious (stage lengths changed during the run
                // after the delay was drawn): the death waits a day.
                E | I => self.pending.die_on(a, i64::from(step) + 1),
                _ => {}
            }
        }
    }

    /// Move agent `i` (local index) from stage `from` to `to`: its flags
    /// and the tallies.
    fn set_stage(&mut self, fixed: &Fixed, i: usize, from: u8, to: u8) {
        let b = fixed.borough[i] as usize;
        let t = &mut self.tally;
        self.stage[i] = to;
        let id = self.part.lo() as usize + i;
        self.flags[id] = (self.flags[id] & !7) | to;
        if self.comm.ranks() > 1 {
            self.changed.push(id as u32);
        }
        t.stages[from as usize] -= 1;
        t.stages[to as usize] += 1;
        let active = |s: u8| (s == E || s == I) as u64;
        t.active[b] = t.active[b] + active(to) - active(from);
        if to == D {
            t.deaths[b] += 1;
            t.living[b] -= 1;
            t.isolating[b] -= self.isolating[i] as u64;
            if fixed.employed[i] {
                t.employed[b] -= 1;
                t.working[b] -= self.working[i] as u64;
            }
        }
    }

    /// Today's infected (global ids, sorted, once each) sent to the ranks
    /// owning them; returns this rank's, from every rank, sorted and once
    /// each. Every target was susceptible when tried (the flags are the
    /// day's start on every rank), so the union is one process's list.
    /// A collective call.
    fn exchange_infected(&self, infected: Vec<u32>) -> Vec<u32> {
        let part = &self.part;
        let mut out = vec![Vec::new(); part.ranks()];
        for a in infected {
            out[part.owner(a)].push(a);
        }
        let mut mine = self.comm.exchange_u32(&out);
        mine.sort_unstable();
        mine.dedup();
        mine
    }

    /// Send every rank the flags of this rank's agents that changed this
    /// step, and take theirs: the next day's contacts read them. A
    /// collective call.
    fn share_flags(&mut self) {
        let mut bytes = Vec::with_capacity(5 * self.changed.len());
        for &id in &self.changed {
            bytes.extend_from_slice(&id.to_le_bytes());
            bytes.push(self.flags[id as usize]);
        }
        self.changed.clear();
        for c in self.comm.all_gather_bytes(&bytes).chunks_exact(5) {
            let id = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            self.flags[id as usize] = c[4];
        }
    }

    /// Add today's reported cases to the week's; at the week's end, keep
    /// its counts (the observation of next week's decisions).
    fn count_week(&mut self, week_ends: bool, reported: [u64; 5]) {
        for (week, new) in self.week_cases.iter_mut().zip(reported) {
            *week += new;
        }
        if week_ends {
            self.weekly.push(self.week_cases);
            self.week_cases = [0; 5];
        }
    }

    /// The monthly economy: an employed agent who worked fewer than half
    /// the month's weeks loses the job; the dead leave the labour force.
    fn close_month(&mut self) {
        let (mut lost, mut dead, mut dead_unemployed) = ([0u64; 5], [0u64; 5], [0u64; 5]);
        let fixed = &self.fixed;
        for i in 0..self.stage.len() {
            let b = fixed.borough[i] as usize;
            if self.stage[i] == D {
                dead[b] += (fixed.employment[i] > 0) as u64;
                dead_unemployed[b] += (fixed.employment[i] == 2) as u64;
            } else if fixed.employed[i] && (self.weeks_worked[i] as u32) * 2 < self.weeks_in_month as u32 {
                lost[b] += 1;
            }
        }
        let mut sums = [lost, dead, dead_unemployed].concat();
        self.comm.sum_u64(&mut sums);
        let by_borough = |k: usize| -> [u64; 5] { std::array::from_fn(|b| sums[5 * k + b]) };
        self.update_unemployment(&by_borough(0), &by_borough(1), &by_borough(2));
        self.weeks_worked.iter_mut().for_each(|w| *w = 0);
        self.weeks_in_month = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Groups;

    /// Members as a list of each group's, drawn the way community contacts
    /// draw them.
    fn listed(g: &Groups, count: u32) -> Vec<Vec<u32>> {
        (0..count)
            .map(|k| (0..g.len(k)).map(|i| g.member(k, i)).collect())
            .collect()
    }

    #[test]
    fn groups_of_consecutive_ids_keep_only_their_starts_and_give_the_same_members() {
        // Runs, with an empty group 2.
        let runs = [0, 0, 0, 1, 1, 3, 3, 3, 3];
        let g = Groups::new(&runs, 4);
        assert!(g.members.is_empty());
        assert_eq!(listed(&g, 4), vec![vec![0, 1, 2], vec![3, 4], vec![], vec![5, 6, 7, 8]]);
        // Group 0 comes back after group 1: a list.
        let mixed = [0, 0, 1, 0, 3];
        let g = Groups::new(&mixed, 4);
        assert_eq!(g.members.len(), 5);
        assert_eq!(listed(&g, 4), vec![vec![0, 1, 3], vec![2], vec![], vec![4]]);
    }
}
