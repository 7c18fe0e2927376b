//! The cooperation games with scripted rule players, whose outcomes follow
//! from the rules: GovSim commons, the Donor Game, guess-2/3-of-the-average.

use myriad_core::model::{step_by_rule, Model};
use myriad_core::params::{ParamSet, ParamValue};
use myriad_core::population::Population;
use myriad_models::games::donor::max_average;
use myriad_models::{find, ModelInput};

/// A parameter value: a number, or a word for choices.
enum V {
    N(f64),
    W(&'static str),
}

/// Run `model` with `n` agents for `steps` steps; the header and the rows
/// (step 0 first).
fn run(model: &str, n: u32, steps: u32, seed: u64, set: &[(&str, V)]) -> (Vec<String>, Vec<Vec<f64>>) {
    let info = find(model).unwrap();
    let mut params = ParamSet::defaults((info.params)());
    for (k, v) in set {
        let v = match v {
            V::N(x) => ParamValue::Number(*x),
            V::W(w) => ParamValue::Choice(w.to_string()),
        };
        params.set(k, v).unwrap();
    }
    let mut m: Box<dyn Model> = (info.build)(ModelInput {
        population: Population::synthetic(n),
        layers: vec![],
        params: params.clone(),
        seed,
        split: myriad_core::comm::Split::single(),
    })
    .unwrap();
    let header: Vec<String> = m.metrics().into_iter().map(|s| s.name).collect();
    let mut rows = vec![vec![0.0; header.len()]];
    m.observe(&mut rows[0]);
    for step in 1..=steps {
        let mut row = vec![0.0; header.len()];
        step_by_rule(m.as_mut(), step, &params, &[], &mut row);
        rows.push(row);
    }
    (header, rows)
}

fn col(header: &[String], rows: &[Vec<f64>], name: &str) -> Vec<f64> {
    let j = header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no metric {name}"));
    rows.iter().map(|r| r[j]).collect()
}

fn constant(request: f64) -> Vec<(&'static str, V)> {
    vec![("players", V::W("constant")), ("request", V::N(request))]
}

#[test]
fn commons_ten_each_keeps_the_lake_full_with_full_efficiency() {
    let (h, rows) = run("commons", 5, 12, 1, &constant(10.0));
    assert!(col(&h, &rows, "stock").iter().all(|&s| s == 100.0));
    assert_eq!(col(&h, &rows, "harvest")[1..], [50.0; 12]);
    let last = |name| *col(&h, &rows, name).last().unwrap();
    assert_eq!(last("collapsed"), 0.0);
    assert_eq!(last("survival_time"), 12.0);
    assert_eq!(last("efficiency"), 1.0);
    assert_eq!(last("equality"), 1.0);
    assert_eq!(last("mean_gain"), 120.0);
    assert_eq!(last("over_usage"), 0.0);
}

#[test]
fn commons_eleven_each_collapses_in_month_four() {
    let (h, rows) = run("commons", 5, 12, 1, &constant(11.0));
    // 100 -55-> 45 -> 90 -55-> 35 -> 70 -55-> 15 -> 30, then 55 > 30 asked:
    // all 30 handed out, 0 < 5 left.
    assert_eq!(col(&h, &rows, "stock")[..5], [100.0, 90.0, 70.0, 30.0, 0.0]);
    assert_eq!(col(&h, &rows, "harvest")[1..6], [55.0, 55.0, 55.0, 30.0, 0.0]);
    let collapsed = col(&h, &rows, "collapsed");
    assert_eq!(collapsed[3], 0.0);
    assert!(collapsed[4..].iter().all(|&c| c == 1.0));
    assert_eq!(*col(&h, &rows, "survival_time").last().unwrap(), 4.0);
    // Every request is above the threshold floor(floor(stock/2)/5) <= 10.
    assert_eq!(*col(&h, &rows, "over_usage").last().unwrap(), 1.0);
    // Efficiency after 12 months: 195 of the 600 the full pool sustains.
    assert!((col(&h, &rows, "efficiency").last().unwrap() - 195.0 / 600.0).abs() < 1e-12);
}

#[test]
fn commons_twenty_each_collapses_in_month_one() {
    let (h, rows) = run("commons", 5, 12, 1, &constant(20.0));
    assert_eq!(col(&h, &rows, "collapsed")[1], 1.0);
    assert_eq!(*col(&h, &rows, "survival_time").last().unwrap(), 1.0);
    assert_eq!(col(&h, &rows, "harvest")[1], 100.0);
}

#[test]
fn commons_sustainable_players_never_collapse_and_a_greedy_newcomer_does_it() {
    let (h, rows) = run("commons", 5, 12, 1, &[("players", V::W("sustainable"))]);
    assert_eq!(*col(&h, &rows, "collapsed").last().unwrap(), 0.0);
    // 5 x 10 sustainable, then a newcomer asking 50 from month 3: the 100
    // asked fit the 100 in the lake, which is emptied.
    let (h, rows) = run(
        "commons",
        5,
        12,
        1,
        &[
            ("players", V::W("constant")),
            ("newcomer_month", V::N(3.0)),
            ("newcomer_request", V::N(50.0)),
        ],
    );
    assert_eq!(col(&h, &rows, "agents")[1..4], [5.0, 5.0, 6.0]);
    assert_eq!(col(&h, &rows, "harvest")[3], 100.0);
    assert_eq!(*col(&h, &rows, "survival_time").last().unwrap(), 3.0);
    // Gains: 30 each for the five, 50 for the newcomer: 1 - Gini.
    let gains = [30.0, 30.0, 30.0, 30.0, 30.0, 50.0];
    let expected = 1.0 - myriad_models::games::gini(&gains);
    assert!((col(&h, &rows, "equality")[3] - expected).abs() < 1e-12);
}

#[test]
fn commons_scarce_units_go_to_random_askers_and_never_beyond_the_request() {
    // Five greedy agents ask 100 each from 100: every unit goes to one of
    // them, uniformly, so each agent's share is Binomial(100, 1/5) per run;
    // over 400 seeds the spread of gains (1 - equality) matches that.
    let mut gini_sum = 0.0;
    let runs = 400;
    for seed in 0..runs {
        let (h, rows) = run("commons", 5, 1, seed, &[("players", V::W("greedy"))]);
        assert_eq!(col(&h, &rows, "harvest")[1], 100.0);
        assert_eq!(col(&h, &rows, "collapsed")[1], 1.0);
        gini_sum += 1.0 - col(&h, &rows, "equality")[1];
    }
    // The expected Gini of Multinomial(100; 1/5 x 5) shares, by simulation
    // of the textbook draw (independent of the model's code).
    let mut state = 12345u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let reps = 20_000;
    let (mut sum, mut sum2) = (0.0, 0.0);
    for _ in 0..reps {
        let mut shares = [0.0; 5];
        for _ in 0..100 {
            shares[(next() >> 32) as usize % 5] += 1.0;
        }
        let g = myriad_models::games::gini(&shares);
        sum += g;
        sum2 += g * g;
    }
    let expected = sum / reps as f64;
    let sd = (sum2 / reps as f64 - expected * expected).sqrt();
    // 5 standard errors of the 400-run mean (the reference's own error is
    // 7 times smaller).
    let mean = gini_sum / runs as f64;
    assert!(
        (mean - expected).abs() < 5.0 * sd / (runs as f64).sqrt(),
        "{mean} vs {expected} (sd {sd})"
    );
}

#[test]
fn donor_nobody_giving_leaves_everyone_at_the_endowment() {
    let (h, rows) = run(
        "donor",
        12,
        10,
        1,
        &[("players", V::W("fixed")), ("generosity", V::N(0.0))],
    );
    for name in ["mean_resources", "min_resources", "max_resources"] {
        assert!(col(&h, &rows, name)[1..].iter().all(|&x| x == 10.0), "{name}");
    }
}

#[test]
fn donor_everyone_giving_everything_reaches_the_stated_maximum() {
    for m in [1.5, 2.0, 3.0] {
        let (h, rows) = run(
            "donor",
            12,
            3,
            1,
            &[
                ("players", V::W("fixed")),
                ("generosity", V::N(1.0)),
                ("multiplier", V::N(m)),
            ],
        );
        let best = max_average(10.0, m, 24);
        for g in 1..=3 {
            let got = col(&h, &rows, "mean_resources")[g];
            assert!((got - best).abs() <= 1e-12 * best, "m = {m}: {got} vs {best}");
            assert_eq!(col(&h, &rows, "max_reachable")[g], best);
        }
    }
    assert_eq!(max_average(10.0, 2.0, 24), 10.0 * 3.0 * 2f64.powi(23) / 2.0);
}

#[test]
fn donor_no_strategy_beats_the_maximum_and_multiplier_one_conserves_resources() {
    for seed in 0..40 {
        let (h, rows) = run("donor", 12, 10, seed, &[("punishment", V::W("on"))]);
        let mean = col(&h, &rows, "mean_resources");
        let best = col(&h, &rows, "max_reachable");
        assert!(mean[1..].iter().zip(&best[1..]).all(|(m, b)| m <= b));
        // A multiplier of 1 only moves resources: the average stays 10.
        let (h, rows) = run("donor", 12, 5, seed, &[("multiplier", V::N(1.0))]);
        for x in &col(&h, &rows, "mean_resources")[1..] {
            assert!((x - 10.0).abs() < 1e-9, "seed {seed}: {x}");
        }
    }
}

#[test]
fn donor_needs_an_even_population() {
    let info = find("donor").unwrap();
    let err = (info.build)(ModelInput {
        population: Population::synthetic(7),
        layers: vec![],
        params: ParamSet::defaults((info.params)()),
        seed: 1,
        split: myriad_core::comm::Split::single(),
    })
    .err()
    .unwrap();
    assert!(err.to_string().contains("even number"), "{err}");
}

#[test]
fn guess_uniform_players_match_the_uniform_distribution() {
    let n = 200_000u32;
    let (h, rows) = run("guess", n, 2, 9, &[("players", V::W("uniform"))]);
    let nf = f64::from(n);
    let sd = 100.0 / 12f64.sqrt();
    for r in 1..=2 {
        let get = |name| col(&h, &rows, name)[r];
        assert_eq!(get("valid"), nf);
        // Mean: 50 within 5 standard errors; sd and median likewise.
        assert!((get("mean") - 50.0).abs() < 5.0 * sd / nf.sqrt());
        assert!((get("sd") - sd).abs() < 0.1);
        // The sample median's sd is 1/(2 f sqrt(n)) = 50/sqrt(n).
        assert!((get("median") - 50.0).abs() < 5.0 * 50.0 / nf.sqrt());
        assert_eq!(get("target"), 2.0 / 3.0 * get("mean"));
        let bins: Vec<f64> = h
            .iter()
            .zip(&rows[r])
            .filter(|(name, _)| name.starts_with("reports_"))
            .map(|(_, &x)| x)
            .collect();
        assert_eq!(bins.len(), 10);
        assert_eq!(bins.iter().sum::<f64>(), nf);
        // Each bin is Binomial(n, 1/10).
        let bin_sd = (nf * 0.1 * 0.9).sqrt();
        assert!(bins.iter().all(|b| (b - nf / 10.0).abs() < 5.0 * bin_sd), "{bins:?}");
        // Winners: those within 0.5 of the target, a share of 1/100 on average.
        let w = get("winners");
        assert!((w - nf / 100.0).abs() < 5.0 * (nf * 0.01 * 0.99).sqrt(), "{w}");
    }
}

#[test]
fn guess_level_k_mean_follows_the_level_mixture() {
    let n = 200_000u32;
    let ratio: f64 = 2.0 / 3.0;
    let (h, rows) = run(
        "guess",
        n,
        1,
        4,
        &[("players", V::W("level-k")), ("max_level", V::N(3.0))],
    );
    // Levels 0..=3 equally likely: level 0 uniform (mean 50, variance
    // 10000/12), level k reports 50 ratio^k.
    let values: Vec<f64> = (1..=3).map(|k| 50.0 * ratio.powi(k)).collect();
    let mean = (50.0 + values.iter().sum::<f64>()) / 4.0;
    let second = (10000.0 / 3.0 + values.iter().map(|v| v * v).sum::<f64>()) / 4.0;
    let sd = (second - mean * mean).sqrt();
    let got = col(&h, &rows, "mean")[1];
    assert!((got - mean).abs() < 5.0 * sd / f64::from(n).sqrt(), "{got} vs {mean}");
    assert!((col(&h, &rows, "sd")[1] - sd).abs() < 0.1);
}

#[test]
fn guess_best_responders_repeat_the_target_until_everyone_wins() {
    let n = 10_000u32;
    let rounds = 14;
    let (h, rows) = run("guess", n, rounds, 2, &[("players", V::W("best-response"))]);
    let target = col(&h, &rows, "target");
    let winners = col(&h, &rows, "winners");
    for r in 2..=rounds as usize {
        // Everyone reports the previous target: no spread (up to the
        // rounding of summing 10,000 equal numbers), mean = it.
        assert!(col(&h, &rows, "sd")[r] < 1e-9 * target[r - 1]);
        assert!((col(&h, &rows, "mean")[r] - target[r - 1]).abs() < 1e-12 * target[r - 1]);
        assert_eq!(col(&h, &rows, "median")[r], target[r - 1]);
        assert!((target[r] - 2.0 / 3.0 * target[r - 1]).abs() < 1e-12 * target[r - 1]);
        // All win once the previous target is within 1.5 (|t - 2t/3| <= 0.5).
        let all = target[r - 1] - target[r] <= 0.5;
        assert_eq!(winners[r], if all { f64::from(n) } else { 0.0 }, "round {r}");
    }
    assert_eq!(*winners.last().unwrap(), f64::from(n));
}

#[test]
fn guess_statistics_do_not_depend_on_the_thread_count() {
    let go = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| run("guess", 300_000, 3, 8, &[("players", V::W("uniform"))]).1)
    };
    let one = go(1);
    let two = go(2);
    let bits = |rows: &Vec<Vec<f64>>| -> Vec<u64> { rows.iter().flatten().map(|x| x.to_bits()).collect() };
    assert_eq!(bits(&one), bits(&two));
}
