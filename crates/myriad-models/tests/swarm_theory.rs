//! The swarm models against theory: Vicsek's order against noise, the
//! Kuramoto order parameter against Kuramoto's self-consistency solution,
//! and aggregation's conservation and control hooks.

use myriad_core::model::{step_by_rule, Model};
use myriad_core::params::{ParamSet, ParamValue};
use myriad_core::population::Population;
use myriad_models::{find, ModelInput};

fn build(model: &str, n: u32, seed: u64, set: &[(&str, ParamValue)]) -> (Box<dyn Model>, ParamSet) {
    let spec = find(model).unwrap();
    let mut params = ParamSet::defaults((spec.params)());
    for (k, v) in set {
        params.set(k, v.clone()).unwrap();
    }
    let m = (spec.build)(ModelInput {
        population: Population::synthetic(n),
        layers: vec![],
        params: params.clone(),
        seed,
        split: myriad_core::comm::Split::single(),
    })
    .unwrap();
    (m, params)
}

fn num(x: f64) -> ParamValue {
    ParamValue::Number(x)
}

/// Mean of metric `col` over steps `from..to`, stepping by the rule.
fn time_mean(m: &mut dyn Model, p: &ParamSet, col: usize, from: u32, to: u32) -> (f64, Vec<f64>) {
    let mut row = vec![0.0; m.metrics().len()];
    let mut xs = Vec::new();
    for step in 1..=to {
        step_by_rule(m, step, p, &[], &mut row);
        if step > from {
            xs.push(row[col]);
        }
    }
    (xs.iter().sum::<f64>() / xs.len() as f64, xs)
}

fn word(s: &str) -> ParamValue {
    ParamValue::Choice(s.into())
}

/// Mean and batch-means standard error of an autocorrelated series (20
/// batches, each much longer than the correlation time at these settings).
fn mean_and_se(xs: &[f64]) -> (f64, f64) {
    let b = 20;
    let len = xs.len() / b;
    let means: Vec<f64> = (0..b)
        .map(|k| xs[k * len..(k + 1) * len].iter().sum::<f64>() / len as f64)
        .collect();
    let m = means.iter().sum::<f64>() / b as f64;
    let var = means.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (b - 1) as f64;
    (m, (var / b as f64).sqrt())
}

#[test]
fn vicsek_without_noise_stays_exactly_aligned() {
    let (mut m, p) = build("vicsek", 1000, 5, &[("noise", num(0.0)), ("initial", word("aligned"))]);
    let mut row = vec![0.0; 4];
    for step in 1..=200 {
        step_by_rule(m.as_mut(), step, &p, &[], &mut row);
        assert_eq!(row[0], 1.0, "step {step}");
    }
}

#[test]
fn vicsek_at_full_noise_matches_the_random_limit() {
    // With eta = 2 pi every new heading is uniform and independent of the
    // past, so each step's v_a sqrt(N) is Rayleigh with sigma² = 1/2:
    // mean sqrt(pi) / 2, variance (4 - pi) / 4; steps are independent.
    let n = 400u32;
    let (mut m, p) = build("vicsek", n, 7, &[("noise", num(2.0 * std::f64::consts::PI))]);
    let steps = 2000;
    let (mean, _) = time_mean(m.as_mut(), &p, 0, 0, steps);
    let expect = std::f64::consts::PI.sqrt() / (2.0 * (n as f64).sqrt());
    let se = ((4.0 - std::f64::consts::PI) / 4.0 / (n as f64 * steps as f64)).sqrt();
    assert!(
        (mean - expect).abs() < 4.0 * se,
        "v_a {mean:.5}, random limit {expect:.5} +- {se:.5}"
    );
}

#[test]
fn vicsek_order_falls_with_noise_as_in_the_paper() {
    // The setting of Vicsek et al.'s Fig. 2a: N = 400, rho = 4, v = 0.03,
    // r = 1. Each agent's new heading is its neighbourhood's mean plus an
    // independent uniform noise, so E[v_a] <= sqrt(s² + (1 - s²) / N) with
    // s = sin(eta/2) / (eta/2) (the mean of e^{i xi}, and the variance of N
    // independent rotations). Averages over 4,000 steps after 2,000 of
    // relaxation; tolerances are 3 batch-means standard errors.
    let n = 400u32;
    let mut last: Option<(f64, f64, f64)> = None;
    for eta in [0.5, 1.0, 2.0, 3.0, 4.0, 5.0] {
        let (mut m, p) = build("vicsek", n, 1, &[("noise", num(eta))]);
        let (_, xs) = time_mean(m.as_mut(), &p, 0, 2000, 6000);
        let (v, se) = mean_and_se(&xs);
        let s = (eta / 2.0f64).sin() / (eta / 2.0);
        let bound = (s * s + (1.0 - s * s) / n as f64).sqrt();
        assert!(
            v <= bound + 3.0 * se,
            "eta {eta}: v_a {v:.3} above the bound {bound:.3}"
        );
        if let Some((e0, v0, se0)) = last {
            assert!(
                v0 - v > 3.0 * (se0 * se0 + se * se).sqrt(),
                "v_a did not fall from eta {e0} ({v0:.3}) to {eta} ({v:.3})"
            );
        }
        // The paper's ordered and disordered ends at this size.
        if eta <= 1.0 {
            assert!(v > 0.9, "eta {eta}: v_a {v:.3}, ordered in the paper");
        }
        if eta >= 5.0 {
            assert!(v < 0.15, "eta {eta}: v_a {v:.3}, disordered in the paper");
        }
        last = Some((eta, v, se));
    }
}

#[test]
fn kuramoto_order_matches_kuramotos_solution() {
    // Lorentzian frequencies of half-width gamma = 0.5 (K_c = 2 gamma = 1):
    // above K_c, R = sqrt(1 - 2 gamma / K); below, the incoherent state's
    // finite-N level E[R²] = 1 / (N (1 - K / K_c)). Frequencies at their
    // quantiles; N = 10,000, so finite-N deviations are O(1 / sqrt(N)) =
    // 0.01: tolerance 3 / sqrt(N). Euler's fixed points for locked
    // oscillators are exact, so dt = 0.02 adds little.
    let n = 10_000u32;
    let tol = 3.0 / (n as f64).sqrt();
    for k in [1.5, 2.0, 4.0] {
        let (mut m, p) = build(
            "kuramoto",
            n,
            3,
            &[
                ("coupling", num(k)),
                ("width", num(0.5)),
                ("sampling", word("quantiles")),
                ("dt", num(0.02)),
            ],
        );
        let (r, _) = time_mean(m.as_mut(), &p, 0, 2000, 4000);
        let theory = (1.0 - 1.0 / k).sqrt();
        assert!(
            (r - theory).abs() < tol,
            "K {k}: R {r:.4}, theory {theory:.4} +- {tol:.4}"
        );
    }
    for sampling in ["random", "quantiles"] {
        let k = 0.5;
        let (mut m, p) = build(
            "kuramoto",
            n,
            3,
            &[
                ("coupling", num(k)),
                ("width", num(0.5)),
                ("sampling", word(sampling)),
                ("dt", num(0.02)),
            ],
        );
        let (_, xs) = time_mean(m.as_mut(), &p, 0, 1000, 4000);
        let rms = (xs.iter().map(|x| x * x).sum::<f64>() / xs.len() as f64).sqrt();
        let theory = (1.0 / (n as f64 * (1.0 - k))).sqrt();
        // R² averaged over a window a few relaxation times long: within a
        // factor 1.5 of the linear theory's level.
        assert!(
            rms > theory / 1.5 && rms < theory * 1.5,
            "{sampling}: R rms {rms:.4}, theory {theory:.4}"
        );
    }
}

#[test]
fn identical_kuramoto_oscillators_synchronise_fully() {
    let (mut m, p) = build(
        "kuramoto",
        2000,
        9,
        &[
            ("coupling", num(1.0)),
            ("frequencies", word("identical")),
            ("mean_frequency", num(0.7)),
        ],
    );
    let mut row = vec![0.0; 3];
    for step in 1..=3000 {
        step_by_rule(m.as_mut(), step, &p, &[], &mut row);
    }
    assert!(row[0] > 1.0 - 1e-9, "R {}", row[0]);
}

#[test]
fn uncontrolled_aggregation_stays_uniform() {
    // Standing agents with jitter stay uniformly spread: each sees
    // (N - 1) pi r² / L² others on average, is alone with probability
    // (1 - pi r² / L²)^(N - 1) ~ e^{-pi rho r²}, and points uniform in a disc
    // lie 2r/3 from its centre on average. N = 20,000, rho = 1, r = 1.
    let n = 20_000u32;
    let (mut m, p) = build("aggregation", n, 4, &[]);
    let mut row = vec![0.0; 5];
    let mut acc = [0.0; 3];
    let steps = 50;
    for step in 1..=steps {
        step_by_rule(m.as_mut(), step, &p, &[], &mut row);
        acc[0] += row[0];
        acc[1] += row[1];
        acc[2] += row[2];
    }
    let [dist, alone, neighbours] = acc.map(|x| x / steps as f64);
    let area = std::f64::consts::PI / n as f64; // pi r² / L² with L² = N / rho
    let exp_neighbours = (n - 1) as f64 * area;
    let exp_alone = (1.0 - area).powi(n as i32 - 1);
    // Per step, agents' counts are nearly Poisson: the mean of N counts has
    // sd sqrt(pi / N) = 0.0125; the share alone sd sqrt(p(1-p)/N) = 0.0014;
    // the mean distance, sd ~ 0.24 / sqrt(N pi)... all well inside these.
    assert!(
        (neighbours - exp_neighbours).abs() < 0.05,
        "neighbours {neighbours:.4} vs {exp_neighbours:.4}"
    );
    assert!((alone - exp_alone).abs() < 0.006, "alone {alone:.4} vs {exp_alone:.4}");
    assert!((dist - 2.0 / 3.0).abs() < 0.01, "distance {dist:.4} vs 2/3");
}

#[test]
fn swarms_are_identical_on_any_thread_count() {
    for model in ["vicsek", "kuramoto", "aggregation"] {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let (mut m, p) = build(model, 30_000, 11, &[("noise", num(0.5))]);
                let mut rows = Vec::new();
                let mut row = vec![0.0; m.metrics().len()];
                for step in 1..=20 {
                    step_by_rule(m.as_mut(), step, &p, &[], &mut row);
                    rows.extend(row.iter().map(|x| x.to_bits()));
                }
                let mut h = myriad_core::hash::StateHasher::new();
                for (_, c) in m.agent_columns() {
                    c.hash_into(&mut h);
                }
                (rows, h.finish())
            })
        };
        assert_eq!(run(1), run(3), "{model}");
    }
}

#[test]
fn bad_swarm_settings_are_refused() {
    let spec = find("vicsek").unwrap();
    let mut params = ParamSet::defaults((spec.params)());
    params.set("radius", num(30.0)).unwrap();
    let err = (spec.build)(ModelInput {
        population: Population::synthetic(400),
        layers: vec![],
        params,
        seed: 1,
        split: myriad_core::comm::Split::single(),
    })
    .err()
    .unwrap();
    assert!(
        err.to_string().contains("params.radius") && err.to_string().contains("larger than half"),
        "{err}"
    );
    for model in ["vicsek", "kuramoto", "aggregation"] {
        let spec = find(model).unwrap();
        let err = (spec.build)(ModelInput {
            population: Population::synthetic(0),
            layers: vec![],
            params: ParamSet::defaults((spec.params)()),
            seed: 1,
            split: myriad_core::comm::Split::single(),
        })
        .err()
        .unwrap();
        assert!(err.to_string().contains("at least one agent"), "{model}: {err}");
    }
}

#[test]
fn kuramoto_on_a_network_layer_synchronises_identical_oscillators() {
    // On a connected random regular graph (degree 12), identical
    // oscillators coupled to their neighbours reach full synchrony from
    // random phases (Taylor's bound: dense enough graphs have sync as their
    // only stable state), and the all-to-all mean field is not used: a
    // network of isolated pairs does not synchronise the whole.
    use myriad_core::generators::random_regular;
    use myriad_core::model::{Contacts, Layer};
    use myriad_core::rng::{CounterRng, Stream};
    use myriad_core::Csr;
    let n = 2000u32;
    let spec = find("kuramoto").unwrap();
    let mut params = ParamSet::defaults((spec.params)());
    params.set("coupling", num(1.0)).unwrap();
    params.set("frequencies", word("identical")).unwrap();
    let run = |edges: myriad_core::EdgeList| {
        let (csr, _) = Csr::from_edges(n, edges).unwrap();
        let mut m = (spec.build)(ModelInput {
            population: Population::synthetic(n),
            layers: vec![Layer {
                name: "net".into(),
                contacts: Contacts::Network(csr),
                weight: 1.0,
            }],
            params: params.clone(),
            seed: 2,
            split: myriad_core::comm::Split::single(),
        })
        .unwrap();
        let mut row = vec![0.0; 3];
        for step in 1..=3000 {
            step_by_rule(m.as_mut(), step, &params, &[1.0], &mut row);
        }
        row[0]
    };
    let (edges, _) = random_regular(n, 12, &CounterRng::new(1, Stream::NETWORK));
    let r = run(edges);
    assert!(r > 0.999, "random regular: R {r}");
    let pairs = myriad_core::EdgeList::from_flat((0..n).collect());
    let r = run(pairs);
    // Each pair locks, the pairs' phases stay independent: R ~ 1/sqrt(N/2).
    assert!(r < 0.15, "isolated pairs: R {r}");
}
