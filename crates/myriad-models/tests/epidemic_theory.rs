//! The epidemic models against theory: percolation final sizes (Newman 2002),
//! the well-mixed final-size relation, conservation, extinction below
//! threshold, exact stage durations and determinism across thread counts.

use myriad_core::generators::{erdos_renyi, random_regular};
use myriad_core::model::{step_by_rule, Contacts, Layer};
use myriad_core::params::{ParamSet, ParamValue};
use myriad_core::population::Population;
use myriad_core::{CounterRng, Csr, EdgeList, Stream};
use myriad_models::{find, ModelInput};

fn params(model: &str, set: &[(&str, ParamValue)]) -> ParamSet {
    let mut p = ParamSet::defaults((find(model).unwrap().params)());
    for (k, v) in set {
        p.set(k, v.clone()).unwrap();
    }
    p
}

fn num(x: f64) -> ParamValue {
    ParamValue::Number(x)
}

fn word(s: &str) -> ParamValue {
    ParamValue::Choice(s.into())
}

fn network(csr: Csr) -> Vec<Layer> {
    vec![Layer {
        name: "net".into(),
        contacts: Contacts::Network(csr),
        weight: 1.0,
    }]
}

/// Run to extinction (or `max_steps`), returning every metric row.
fn run(model: &str, n: u32, layers: Vec<Layer>, p: ParamSet, seed: u64, max_steps: u32) -> Vec<Vec<f64>> {
    let weights: Vec<f64> = layers.iter().map(|l| l.weight).collect();
    let mut m = (find(model).unwrap().build)(ModelInput {
        population: Population::synthetic(n),
        layers,
        params: p.clone(),
        seed,
        split: myriad_core::comm::Split::single(),
    })
    .unwrap();
    let width = m.metrics().len();
    let names: Vec<String> = m.metrics().into_iter().map(|s| s.name).collect();
    let col = |name: &str| names.iter().position(|x| x == name);
    let mut rows = vec![vec![0.0; width]];
    m.observe(&mut rows[0]);
    for step in 1..=max_steps {
        let mut row = vec![0.0; width];
        step_by_rule(m.as_mut(), step, &p, &weights, &mut row);
        let active = row[col("I").unwrap()] + col("E").map_or(0.0, |e| row[e]);
        rows.push(row);
        if active == 0.0 {
            break;
        }
    }
    rows
}

fn final_attack_rate(rows: &[Vec<f64>], n: u32, r_col: usize) -> f64 {
    rows.last().unwrap()[r_col] / n as f64
}

/// Per-contact daily probability giving transmissibility `t` over `d` days.
fn beta_for(t: f64, d: f64) -> f64 {
    1.0 - (1.0 - t).powf(1.0 / d)
}

/// Smallest fixed point of `u = f(u)` on [0, 1], by monotone iteration from 0.
fn fixed_point(f: impl Fn(f64) -> f64) -> f64 {
    let mut u = 0.0;
    for _ in 0..100_000 {
        let next = f(u);
        if (next - u).abs() < 1e-15 {
            break;
        }
        u = next;
    }
    u
}

/// Tolerance for a final attack rate `z` on `n` agents: six standard
/// deviations of the central limit theorem for the final size of a major
/// outbreak, sd = sqrt(z (1 - z)) / (1 - R (1 - z)) / sqrt(n), with R the
/// mean number of secondary cases in the branching phase (Ball & Neal 2002;
/// Andersson & Britton 2000, ch. 4), plus 1/n for the O(1/n) finite-size bias.
fn tolerance(z: f64, r: f64, n: u32) -> f64 {
    6.0 * (z * (1.0 - z)).sqrt() / (1.0 - r * (1.0 - z)) / (n as f64).sqrt() + 1.0 / n as f64
}

#[test]
fn final_size_on_erdos_renyi_matches_bond_percolation() {
    let n = 200_000;
    let (d, t, rho) = (5.0, 0.2, 0.001);
    for seed in [1, 2, 3] {
        let net_rng = CounterRng::new(seed, Stream::NETWORK);
        let (csr, _) = Csr::from_edges(n, erdos_renyi(n, 10.0, &net_rng)).unwrap();
        let c = csr.mean_degree();
        // Message passing on a Poisson graph with seed fraction rho:
        // u = 1 - T + T (1 - rho) G1(u), z = 1 - (1 - rho) G0(u), G0 = G1 = exp(c (u - 1)).
        let u = fixed_point(|u| 1.0 - t + t * (1.0 - rho) * (c * (u - 1.0)).exp());
        let z = 1.0 - (1.0 - rho) * (c * (u - 1.0)).exp();
        let p = params(
            "sir",
            &[
                ("beta", num(beta_for(t, d))),
                ("infectious_period", num(d)),
                ("initial_fraction", num(rho)),
            ],
        );
        let rows = run("sir", n, network(csr), p, seed, 1000);
        let got = final_attack_rate(&rows, n, 2);
        let tol = tolerance(z, c * t, n);
        assert!(
            (got - z).abs() < tol,
            "seed {seed}: attack rate {got}, theory {z}, tolerance {tol}"
        );
    }
}

#[test]
fn final_size_on_random_regular_matches_bond_percolation() {
    let n = 200_000;
    let k = 6.0;
    let (d, t, rho) = (4.0, 0.4, 0.001);
    for seed in [4, 5] {
        let (edges, _) = random_regular(n, k as u32, &CounterRng::new(seed, Stream::NETWORK));
        let (csr, _) = Csr::from_edges(n, edges).unwrap();
        // G0(x) = x^k, G1(x) = x^(k-1).
        let u = fixed_point(|u| 1.0 - t + t * (1.0 - rho) * u.powf(k - 1.0));
        let z = 1.0 - (1.0 - rho) * u.powf(k);
        let p = params(
            "seir",
            &[
                ("beta", num(beta_for(t, d))),
                ("infectious_period", num(d)),
                ("latent_period", num(2.0)),
                ("initial_fraction", num(rho)),
            ],
        );
        let rows = run("seir", n, network(csr), p, seed, 1000);
        let got = final_attack_rate(&rows, n, 3);
        let tol = tolerance(z, (k - 1.0) * t, n);
        assert!(
            (got - z).abs() < tol,
            "seed {seed}: attack rate {got}, theory {z}, tolerance {tol}"
        );
    }
}

#[test]
fn well_mixed_final_size_solves_z_equals_1_minus_exp_minus_r0_z() {
    let n = 100_000;
    let d = 5.0;
    let rho = 0.001;
    for (r0, seed) in [(1.5, 7), (2.0, 8), (3.0, 9)] {
        let t = r0 / (n as f64 - 1.0);
        // With a seed fraction rho the relation becomes z = 1 - (1 - rho) exp(-R0 z),
        // which tends to z = 1 - exp(-R0 z) as rho -> 0.
        let z = 1.0 - (1.0 - rho) * fixed_point(|y| (-r0 * (1.0 - (1.0 - rho) * y)).exp());
        let z0 = 1.0 - fixed_point(|y| (-r0 * (1.0 - y)).exp());
        assert!((z - z0).abs() < 0.01);
        let p = params(
            "sir",
            &[
                ("beta", num(beta_for(t, d))),
                ("infectious_period", num(d)),
                ("initial_fraction", num(rho)),
            ],
        );
        let layers = vec![Layer {
            name: "all".into(),
            contacts: Contacts::WellMixed,
            weight: 1.0,
        }];
        let rows = run("sir", n, layers, p, seed, 2000);
        let got = final_attack_rate(&rows, n, 2);
        let tol = tolerance(z, r0, n);
        assert!(
            (got - z).abs() < tol,
            "R0 {r0}: attack rate {got}, theory {z}, tolerance {tol}"
        );
    }
}

#[test]
fn below_threshold_the_epidemic_dies_out() {
    let n = 100_000;
    let (csr, _) = Csr::from_edges(n, erdos_renyi(n, 10.0, &CounterRng::new(11, Stream::NETWORK))).unwrap();
    // Branching factor R = c T = 10 x 0.05 = 0.5: each seed causes on average
    // 1 / (1 - R) = 2 cases in all, so 100 seeds about 200 in all.
    let p = params(
        "sir",
        &[("beta", num(beta_for(0.05, 5.0))), ("initial_infected", num(100.0))],
    );
    let rows = run("sir", n, network(csr), p, 11, 1000);
    let last = rows.last().unwrap();
    assert_eq!(last[1], 0.0, "the epidemic should have ended");
    assert!(last[2] < 400.0, "{} recovered; about 200 expected", last[2]);
}

#[test]
fn agents_are_conserved_and_new_infections_balance_susceptibles() {
    let n = 50_000;
    let (csr, _) = Csr::from_edges(n, erdos_renyi(n, 8.0, &CounterRng::new(5, Stream::NETWORK))).unwrap();
    let p = params(
        "seir",
        &[
            ("beta", num(0.08)),
            ("latent_distribution", word("geometric")),
            ("infectious_distribution", word("geometric")),
        ],
    );
    let rows = run("seir", n, network(csr), p, 5, 400);
    assert!(rows.len() > 20);
    for w in rows.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        assert_eq!(b[0] + b[1] + b[2] + b[3], n as f64);
        assert_eq!(a[0] - b[0], b[4], "new infections must equal the drop in S");
        assert!(b[3] >= a[3], "R never decreases");
    }
}

#[test]
fn fixed_stage_durations_are_exact() {
    // Two agents joined by an edge with beta = 1: agent 1 is infected on day 1,
    // counted in E on days 1..=L and in I on days L+1..=L+D.
    let (l, d) = (3, 4);
    let (csr, _) = Csr::from_edges(2, EdgeList::from_flat(vec![0, 1])).unwrap();
    let pop = {
        let mut p = Population::synthetic(2);
        p.add_column(myriad_core::population::Column {
            name: "stage".into(),
            data: myriad_core::population::ColumnData::Int(vec![2, 0]),
        })
        .unwrap();
        p
    };
    let p = params(
        "seir",
        &[
            ("beta", num(1.0)),
            ("latent_period", num(l as f64)),
            ("infectious_period", num(d as f64)),
            ("initial_infected", num(0.0)),
        ],
    );
    let mut m = (find("seir").unwrap().build)(ModelInput {
        population: pop,
        layers: network(csr),
        params: p.clone(),
        seed: 1,
        split: myriad_core::comm::Split::single(),
    })
    .unwrap();
    // Agent 0 is infectious on days 0..D-1; agent 1 exposed on days 1..=L and
    // infectious on days L+1..=L+D.
    for step in 1..=12u32 {
        let mut row = vec![0.0; 5];
        step_by_rule(m.as_mut(), step, &p, &[1.0], &mut row);
        let e = (1..=l).contains(&step) as u32;
        let i = (step < d) as u32 + (l + 1..=l + d).contains(&step) as u32;
        assert_eq!((row[1], row[2]), (e as f64, i as f64), "day {step}");
    }
}

#[test]
fn geometric_infectious_period_has_the_right_mean() {
    // No contacts: seeds recover on their own; the mean number of days counted
    // in I per seed is the mean period. Standard error: sqrt((1-q)/q^2 / k).
    let n = 100_000;
    let mean = 6.0;
    let p = params(
        "sir",
        &[
            ("infectious_period", num(mean)),
            ("infectious_distribution", word("geometric")),
            ("initial_fraction", num(1.0)),
        ],
    );
    let rows = run("sir", n, network(Csr::empty(n)), p, 3, 10_000);
    let days: f64 = rows.iter().map(|r| r[1]).sum::<f64>() / n as f64;
    let q: f64 = 1.0 / mean;
    let se = ((1.0 - q) / (q * q) / n as f64).sqrt();
    assert!((days - mean).abs() < 5.0 * se, "mean days in I {days}");
}

#[test]
fn identical_results_on_1_2_and_7_threads() {
    let n = 60_000;
    let (csr, _) = Csr::from_edges(n, erdos_renyi(n, 6.0, &CounterRng::new(21, Stream::NETWORK))).unwrap();
    let mixed = Layer {
        name: "mixed".into(),
        contacts: Contacts::WellMixed,
        weight: 1e-6,
    };
    let go = |threads: usize| {
        let layers = vec![network(csr.clone()).remove(0), mixed.clone()];
        let p = params(
            "seir",
            &[("beta", num(0.1)), ("infectious_distribution", word("geometric"))],
        );
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| run("seir", n, layers, p, 21, 300))
    };
    let one = go(1);
    assert!(one.last().unwrap()[3] > 1000.0, "the test needs a real outbreak");
    assert_eq!(one, go(2));
    assert_eq!(one, go(7));
}

/// A saved state restores to the same run (the remaining rows and the
/// state's hash equal an uninterrupted run's); a state that would break
/// the model (a zero timer on an infected agent, counts that are not its
/// agents', a cut state) is refused and leaves the model as it was.
#[test]
fn saved_states_restore_the_run_and_bad_ones_are_refused() {
    let n = 5_000;
    let make = || {
        let csr = Csr::from_edges(n, random_regular(n, 6, &CounterRng::new(3, Stream(9))).0)
            .unwrap()
            .0;
        let p = params("seir", &[("beta", num(0.1)), ("initial_infected", num(20.0))]);
        let weights = vec![1.0];
        let m = (find("seir").unwrap().build)(ModelInput {
            population: Population::synthetic(n),
            layers: network(csr),
            params: p.clone(),
            seed: 4,
            split: myriad_core::comm::Split::single(),
        })
        .unwrap();
        (m, p, weights)
    };
    let hash = |m: &dyn myriad_core::model::Model| {
        let mut h = myriad_core::hash::StateHasher::new();
        m.agent_columns().iter().for_each(|(_, c)| c.hash_into(&mut h));
        m.hash_extra(&mut h);
        h.finish()
    };
    let (mut a, p, w) = make();
    assert!(a.saves_state());
    let mut row = vec![0.0; a.metrics().len()];
    for step in 1..=10 {
        step_by_rule(a.as_mut(), step, &p, &w, &mut row);
    }
    let mut saved = Vec::new();
    a.save_state(&mut saved);
    let (mut b, _, _) = make();
    b.load_state(&saved).unwrap();
    assert_eq!(hash(b.as_ref()), hash(a.as_ref()));
    let mut row_b = row.clone();
    for step in 11..=40 {
        step_by_rule(a.as_mut(), step, &p, &w, &mut row);
        step_by_rule(b.as_mut(), step, &p, &w, &mut row_b);
        assert_eq!(row, row_b, "step {step}");
    }

    // Layout of the SEIR state: 16 header bytes, n stages, n timers, 4 counts.
    let stages = &saved[16..16 + n as usize];
    let infected = stages
        .iter()
        .position(|&s| s == 2)
        .expect("someone infectious at step 10");
    let (fresh, _, _) = make();
    let before = hash(fresh.as_ref());
    let mut zero_timer = saved.clone();
    zero_timer[16 + n as usize + 2 * infected..][..2].copy_from_slice(&[0, 0]);
    let mut bad_counts = saved.clone();
    let last = bad_counts.len() - 8;
    bad_counts[last] ^= 1;
    let cut = saved[..saved.len() - 1].to_vec();
    for (what, bytes) in [("timer", zero_timer), ("counts", bad_counts), ("cut", cut)] {
        let (mut m, _, _) = make();
        let err = m.load_state(&bytes).unwrap_err();
        assert!(!err.is_empty(), "{what}");
        assert_eq!(hash(m.as_ref()), before, "{what}: the model is unchanged");
    }
}
