//! Mechanics of the COVID-19 model: stage durations, age susceptibility on a
//! controlled network, isolation removing the right contacts, conservation,
//! determinism across thread counts, and the infectiousness profile.

use myriad_core::generators::groups_from_ids;
use myriad_core::model::{step_by_rule, Contacts, Layer, Model};
use myriad_core::params::{ParamSet, ParamValue};
use myriad_core::population::{Column, ColumnData, Population};
use myriad_core::{Csr, EdgeList};
use myriad_models::covid::{infectiousness_profile, Covid};
use myriad_models::nyc::{build_city, CityOptions};
use myriad_models::{find, ModelInput};

fn params(set: &[(&str, f64)]) -> ParamSet {
    let mut p = ParamSet::defaults((find("covid").unwrap().params)());
    p.set("initial_infected", ParamValue::Number(0.0)).unwrap();
    for name in [
        "community_mean_u19",
        "community_mean_adult",
        "community_mean_65a",
        "isolation_base",
        "isolation_sensitivity",
    ] {
        p.set(name, ParamValue::Number(0.0)).unwrap();
    }
    for (k, v) in set {
        p.set(k, ParamValue::Number(*v)).unwrap();
    }
    p
}

fn population(age: Vec<i64>, stage: Vec<i64>, employment: Vec<i64>) -> Population {
    let n = age.len() as u64;
    Population::from_columns(
        n,
        vec![
            Column {
                name: "age_group".into(),
                data: ColumnData::Int(age),
            },
            Column {
                name: "stage".into(),
                data: ColumnData::Int(stage),
            },
            Column {
                name: "employment".into(),
                data: ColumnData::Int(employment),
            },
        ],
    )
    .unwrap()
}

fn layer(name: &str, n: u32, ends: Vec<u32>) -> Layer {
    Layer {
        name: name.into(),
        contacts: Contacts::Network(Csr::from_edges(n, EdgeList::from_flat(ends)).unwrap().0),
        weight: 1.0,
    }
}

fn step(m: &mut Covid, p: &ParamSet, step: u32, weights: &[f64]) -> Vec<f64> {
    let mut row = vec![0.0; m.metrics().len()];
    step_by_rule(m, step, p, weights, &mut row);
    row
}

/// The covid model on Staten Island at `scale` (city seed 7, model seed
/// 11), with its household, school and work layers and `infected` initial
/// infections; also its parameters and number of agents.
fn staten_island(scale: f64, infected: f64) -> (Covid, ParamSet, usize) {
    let opts = CityOptions {
        boroughs: vec!["SI".into()],
        scale,
        ..CityOptions::default()
    };
    let pop = build_city(&opts, 7).unwrap();
    let n = pop.size();
    let col = |name: &str| match &pop.column(name).unwrap().data {
        ColumnData::Int(v) => v.clone(),
        _ => unreachable!(),
    };
    let layers: Vec<Layer> = ["household", "school", "work"]
        .iter()
        .zip(["household", "class", "work_team"])
        .map(|(name, c)| Layer {
            name: name.to_string(),
            contacts: Contacts::Network(Csr::from_edges(n, groups_from_ids(&col(c))).unwrap().0),
            weight: 1.0,
        })
        .collect();
    let mut p = ParamSet::defaults((find("covid").unwrap().params)());
    p.set("initial_infected", ParamValue::Number(infected)).unwrap();
    let m = Covid::new(ModelInput {
        population: pop,
        layers,
        params: p.clone(),
        seed: 11,
        split: myriad_core::comm::Split::single(),
    })
    .unwrap();
    (m, p, n as usize)
}

#[test]
fn infectiousness_profile_is_a_discretised_gamma() {
    let g = infectiousness_profile(5.5, 2.4);
    assert_eq!(g.len(), 22);
    assert_eq!(g[0], 0.0);
    assert!((g.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    // Bin d covers (d-1, d]: the mean of the bin midpoints is the gamma mean
    // (up to the mass beyond day 21, about 1e-5) within the binning error.
    let mean: f64 = g.iter().enumerate().map(|(d, w)| (d as f64 - 0.5) * w).sum();
    assert!((mean - 5.5).abs() < 0.02, "{mean}");
}

#[test]
fn stages_last_exactly_latent_then_infectious_days() {
    // Agent 0 starts exposed, agent 1 infected; nobody meets anybody.
    let pop = population(vec![2, 2], vec![1, 2], vec![0, 0]);
    let p = params(&[("latent_days", 4.0), ("infectious_days", 3.0), ("ifr_30t39", 0.0)]);
    let mut m = Covid::new(ModelInput {
        population: pop,
        layers: vec![],
        params: p.clone(),
        seed: 1,
        split: myriad_core::comm::Split::single(),
    })
    .unwrap();
    let mut history = vec![];
    for t in 1..=9 {
        step(&mut m, &p, t, &[]);
        history.push(m.stages().to_vec());
    }
    let of = |a: usize| history.iter().map(|s| s[a]).collect::<Vec<u8>>();
    // E for days 0..3 (4 days), I for days 4..6, then R (3).
    assert_eq!(of(0), vec![1, 1, 1, 2, 2, 2, 3, 3, 3]);
    assert_eq!(of(1), vec![2, 2, 3, 3, 3, 3, 3, 3, 3]);
}

#[test]
fn infection_probability_follows_age_susceptibility() {
    // One infected hub (age 65A) linked to k targets in each of the age groups
    // U19, 20t29 and 30t39, each with exactly one contact, so mean_contacts is
    // 1 for them. Day-1 infection probability: 1 - exp(-R x inf_I x G(d) x susc[age]).
    let k = 30_000usize;
    let n = 1 + 3 * k;
    let mut age = vec![5i64];
    for a in 0..3 {
        age.extend(std::iter::repeat_n(a, k));
    }
    let mut stage = vec![0i64; n];
    stage[0] = 2;
    let ends: Vec<u32> = (1..n as u32).flat_map(|i| [0, i]).collect();
    let p = params(&[("r_week", 0.6)]);
    let mut m = Covid::new(ModelInput {
        population: population(age.clone(), stage, vec![0; n]),
        layers: vec![layer("household", n as u32, ends)],
        params: p.clone(),
        seed: 3,
        split: myriad_core::comm::Split::single(),
    })
    .unwrap();
    assert_eq!(&m.mean_contacts()[..3], &[1.0, 1.0, 1.0]);
    step(&mut m, &p, 1, &[1.0]);
    let g = infectiousness_profile(5.5, 2.4);
    // The hub was seeded as if infected latent_days (5) before day 0: d = 6 on day 1.
    let h = 0.6 * 0.72 * g[6];
    for (a, susc) in [(0, 0.35), (1, 0.69), (2, 1.03)] {
        let got = (1..n).filter(|&i| age[i] == a && m.stages()[i] == 1).count() as f64 / k as f64;
        let expected = 1.0 - (-h * susc).exp();
        let se = (expected * (1.0 - expected) / k as f64).sqrt();
        assert!(
            (got - expected).abs() < 5.0 * se,
            "age {a}: {got} vs {expected} (se {se})"
        );
    }
}

#[test]
fn isolation_removes_school_work_and_community_contacts_but_not_household() {
    // Hub 0 infected; targets 1..=k via household, k+1..=2k via school,
    // 2k+1..=3k via work (all employed). Everyone works when not isolating.
    let k = 20_000usize;
    let n = 1 + 3 * k;
    let mut stage = vec![0i64; n];
    stage[0] = 2;
    let targets = |from: usize| -> Vec<u32> { (from..from + k).flat_map(|i| [0, i as u32]).collect() };
    let run = |isolate: f64| {
        let p = params(&[
            ("r_week", 1.0),
            ("isolation_base", isolate),
            ("isolation_max", 1.0),
            ("isolation_age_slope", 0.0),
            ("work_probability", 1.0),
        ]);
        let mut m = Covid::new(ModelInput {
            population: population(vec![2; n], stage.clone(), vec![1; n]),
            layers: vec![
                layer("household", n as u32, targets(1)),
                layer("school", n as u32, targets(1 + k)),
                layer("work", n as u32, targets(1 + 2 * k)),
            ],
            params: p.clone(),
            seed: 5,
            split: myriad_core::comm::Split::single(),
        })
        .unwrap();
        step(&mut m, &p, 1, &[1.0, 1.0, 1.0]);
        let infected = |from: usize| (from..from + k).filter(|&i| m.stages()[i] == 1).count();
        (
            infected(1),
            infected(1 + k),
            infected(1 + 2 * k),
            m.isolating().iter().filter(|&&x| x).count(),
        )
    };
    let (home, school, work, isolating) = run(1.0);
    assert_eq!(isolating, n);
    assert!(home > 100, "household contacts continue: {home}");
    assert_eq!((school, work), (0, 0));
    let (home, school, work, isolating) = run(0.0);
    assert_eq!(isolating, 0);
    assert!(home > 100 && school > 100 && work > 100, "{home} {school} {work}");
}

#[test]
fn city_run_conserves_agents_and_is_identical_on_1_2_and_7_threads() {
    let go = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let (mut m, p, n) = staten_island(0.1, 50.0);
                let mut rows = vec![];
                for t in 1..=60 {
                    let row = step(&mut m, &p, t, &[1.0, 1.0, 1.0]);
                    assert_eq!(row[..5].iter().sum::<f64>(), n as f64, "conservation on day {t}");
                    rows.push(row);
                }
                rows
            })
    };
    let one = go(1);
    assert!(one.last().unwrap()[3] > 100.0, "an epidemic happened");
    assert_eq!(one, go(2));
    assert_eq!(one, go(7));
}

/// Unemployment rate (percent, borough BK: no borough column) after 30 days.
fn unemployment_after_a_month(set: &[(&str, f64)], stage: Vec<i64>, work_weight: f64) -> f64 {
    // 6,000 employed, 1,000 unemployed, 3,000 outside the labour force.
    let n = 10_000usize;
    let employment: Vec<i64> = (0..n)
        .map(|i| {
            if i < 6000 {
                1
            } else if i < 7000 {
                2
            } else {
                0
            }
        })
        .collect();
    let p = params(set);
    let pairs: Vec<u32> = (0..n as u32 / 2).flat_map(|i| [2 * i, 2 * i + 1]).collect();
    let mut m = Covid::new(ModelInput {
        population: population(vec![2; n], stage, employment),
        layers: vec![layer("work", n as u32, pairs)],
        params: p.clone(),
        seed: 8,
        split: myriad_core::comm::Split::single(),
    })
    .unwrap();
    let column = m.metrics().iter().position(|s| s.name == "unemployment_BK").unwrap();
    let mut row = Vec::new();
    for t in 1..=30 {
        row = step(&mut m, &p, t, &[work_weight]);
    }
    row[column]
}

#[test]
fn monthly_unemployment_counts_those_who_did_not_work_most_weeks() {
    let healthy = vec![0i64; 10_000];
    // Everyone works every week: only the initially unemployed.
    let all_work = unemployment_after_a_month(&[("work_probability", 1.0)], healthy.clone(), 1.0);
    assert!((all_work - 100.0 * 1000.0 / 7000.0).abs() < 1e-9, "{all_work}");
    // Nobody works, or the workplaces are closed: the whole labour force.
    let none = unemployment_after_a_month(&[("work_probability", 0.0)], healthy.clone(), 1.0);
    assert!((none - 100.0).abs() < 1e-9, "{none}");
    let closed = unemployment_after_a_month(&[("work_probability", 1.0)], healthy.clone(), 0.0);
    assert!((closed - 100.0).abs() < 1e-9, "{closed}");
    // Half the weeks on average: decisions on days 1, 8, 15, 22, 29, so an
    // agent loses income when it works at most 2 of 5 weeks: P = 1/2 for
    // work_probability 1/2. Expected 1000 + 3000 unemployed of 7000; the
    // binomial sd of the 6000 is sqrt(6000/4) = 38.7 agents; allow 5 sd.
    let half = unemployment_after_a_month(&[("work_probability", 0.5)], healthy, 1.0);
    let expected = 100.0 * 4000.0 / 7000.0;
    assert!(
        (half - expected).abs() < 100.0 * 5.0 * 38.73 / 7000.0,
        "{half} vs {expected}"
    );
    // 600 employed agents start infected (on day -5) and all die on day 5
    // (fatality 1, the shortest death delay, 10 days): they leave the
    // labour force instead of counting as unemployed.
    let mut stage = vec![0i64; 10_000];
    stage[..600].iter_mut().for_each(|s| *s = 2);
    let after_deaths = unemployment_after_a_month(
        &[
            ("work_probability", 1.0),
            ("ifr_30t39", 1.0),
            ("death_delay_mean", 10.0),
            ("death_delay_sd", 0.1),
            ("r_week", 0.0),
        ],
        stage,
        1.0,
    );
    assert!((after_deaths - 100.0 * 1000.0 / 6400.0).abs() < 1e-9, "{after_deaths}");
}

/// Outcomes over a whole epidemic: every agent counted once in S..D on
/// every day; cumulative deaths, admissions and reports equal the sums of
/// their daily flows and of their parts (borough, age group); and per age
/// group the deaths among the infected match `ifr` within four binomial
/// standard errors, reports and admissions overall likewise.
#[test]
fn outcomes_follow_their_probabilities_and_are_conserved() {
    let n = 30_000usize;
    let age: Vec<i64> = (0..n as i64).map(|i| i % 6).collect();
    let ifr = [0.02, 0.05, 0.1, 0.2, 0.3, 0.5];
    let mut set = vec![
        ("r_week", 6.0),
        ("community_mean_u19", 6.0),
        ("community_mean_adult", 6.0),
        ("community_mean_65a", 6.0),
        ("initial_infected", 30.0),
        ("report_probability", 0.4),
        ("report_delay_mean", 5.0),
        ("report_delay_sd", 2.0),
        ("admission_delay_mean", 8.0),
        ("admission_delay_sd", 3.0),
        ("death_delay_mean", 15.0),
        ("death_delay_sd", 3.0),
    ];
    let names = ["u19", "20t29", "30t39", "40t49", "50t64", "65a"];
    let ifr_keys: Vec<String> = names.iter().map(|a| format!("ifr_{a}")).collect();
    let ihr_keys: Vec<String> = names.iter().map(|a| format!("ihr_{a}")).collect();
    for k in 0..6 {
        set.push((ifr_keys[k].as_str(), ifr[k]));
        set.push((ihr_keys[k].as_str(), 0.25));
    }
    let p = params(&set);
    let mut m = Covid::new(ModelInput {
        population: population(age.clone(), vec![0; n], vec![0; n]),
        layers: vec![],
        params: p.clone(),
        seed: 11,
        split: myriad_core::comm::Split::single(),
    })
    .unwrap();
    let specs = m.metrics();
    let at = |name: &str| specs.iter().position(|s| s.name == name).unwrap();
    let labels = ["U19", "20t29", "30t39", "40t49", "50t64", "65A"];
    let (mut reported, mut admitted, mut died) = (0.0, 0.0, 0.0);
    let mut row = vec![];
    for t in 1..=250 {
        row = step(&mut m, &p, t, &[]);
        let stocks: f64 = ["S", "E", "I", "R", "D"].iter().map(|s| row[at(s)]).sum();
        assert_eq!(stocks, n as f64, "day {t}");
        reported += row[at("new_reported_cases")];
        admitted += row[at("new_hospitalisations")];
        died += row[at("new_deaths")];
        let by_age: f64 = labels.iter().map(|a| row[at(&format!("new_deaths_{a}"))]).sum();
        let by_borough: f64 = ["BK", "BX", "MN", "QN", "SI"]
            .iter()
            .map(|b| row[at(&format!("new_deaths_{b}"))])
            .sum();
        assert_eq!(
            (by_age, by_borough),
            (row[at("new_deaths")], row[at("new_deaths")]),
            "day {t}"
        );
    }
    assert_eq!(reported, row[at("reported_cases")]);
    assert_eq!(admitted, row[at("hospitalisations")]);
    assert_eq!(died, row[at("D")]);
    let deaths_by_age: f64 = labels.iter().map(|a| row[at(&format!("deaths_{a}"))]).sum();
    assert_eq!(deaths_by_age, row[at("D")]);
    assert_eq!(row[at("E")] + row[at("I")], 0.0, "the epidemic is over");
    let stages = m.stages();
    let infected_total = stages.iter().filter(|&&s| s != 0).count() as f64;
    assert!(infected_total > 0.5 * n as f64, "a large epidemic: {infected_total}");
    let within = |got: f64, trials: f64, p: f64, what: &str| {
        let sd = (trials * p * (1.0 - p)).sqrt();
        assert!(
            (got - trials * p).abs() < 4.0 * sd + 1.0,
            "{what}: {got} vs {} (sd {sd})",
            trials * p
        );
    };
    for (k, label) in labels.iter().enumerate() {
        let infected = (0..n).filter(|&i| age[i] == k as i64 && stages[i] != 0).count() as f64;
        within(
            row[at(&format!("deaths_{label}"))],
            infected,
            ifr[k],
            &format!("deaths {label}"),
        );
    }
    // The initial infections' reports and admissions due before day 1 are
    // not counted: at most 30 agents, inside the tolerance.
    within(reported, infected_total, 0.4, "reported");
    within(admitted, infected_total, 0.25, "admitted");
}

/// A state saved mid-run (after weekly decisions and a month's close)
/// restores to the same agents and hash and continues to the same rows;
/// a cut state, a flag that is not its agent's, tallies that are not its
/// agents' and another model's state are refused, leaving the model as it
/// was.
#[test]
fn saved_states_restore_the_run_and_bad_ones_are_refused() {
    let make = || staten_island(0.05, 30.0);
    let hash = |m: &Covid| {
        let mut h = myriad_core::hash::StateHasher::new();
        m.agent_columns().iter().for_each(|(_, c)| c.hash_into(&mut h));
        m.hash_extra(&mut h);
        h.finish()
    };
    let w = [1.0, 1.0, 1.0];
    let (mut a, p, n) = make();
    assert!(a.saves_state());
    for t in 1..=40 {
        step(&mut a, &p, t, &w);
    }
    let mut saved = Vec::new();
    a.save_state(&mut saved);
    let (mut b, _, _) = make();
    b.load_state(&saved).unwrap();
    assert_eq!(hash(&b), hash(&a));
    let (mut observed_a, mut observed_b) = (vec![0.0; a.metrics().len()], vec![0.0; b.metrics().len()]);
    a.observe(&mut observed_a);
    b.observe(&mut observed_b);
    assert_eq!(observed_a, observed_b);
    for t in 41..=100 {
        assert_eq!(step(&mut a, &p, t, &w), step(&mut b, &p, t, &w), "day {t}");
    }
    assert!(
        a.stages().iter().filter(|&&s| s == 3).count() > 50,
        "an epidemic happened"
    );

    // The layout: 40 header bytes, then per agent the stage, timer, four
    // bytes of infection day, isolation, work and weeks worked, then the
    // flag byte of every agent.
    let (iso, flags) = (40 + 6 * n, 40 + 9 * n);
    let stages = &saved[40..40 + n];
    let living = (0..n)
        .find(|&x| stages[x] != 4 && saved[iso + x] == 0)
        .expect("someone living at home");
    let mut wrong_flag = saved.clone();
    wrong_flag[flags + living] ^= 1 << 3;
    let mut wrong_tally = saved.clone();
    wrong_tally[iso + living] = 1;
    wrong_tally[flags + living] |= 1 << 3;
    let mut other = saved.clone();
    other[..5].copy_from_slice(b"seir\0");
    let cut = saved[..saved.len() - 1].to_vec();
    let (fresh, _, _) = make();
    let before = hash(&fresh);
    for (what, bytes, says) in [
        ("flag", wrong_flag, "flags do not match"),
        ("tally", wrong_tally, "tallies are not those of its agents"),
        ("model", other, "not the covid model's"),
        ("cut", cut, "cut short"),
    ] {
        let (mut m, _, _) = make();
        let err = m.load_state(&bytes).unwrap_err();
        assert!(err.contains(says), "{what}: {err}");
        assert_eq!(hash(&m), before, "{what}: the model is unchanged");
    }
}
