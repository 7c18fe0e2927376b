//! The `Simulation` value in one process: identical results on 1, 2 and 7
//! threads side by side, snapshot and restore (with an LLM provider
//! attached too), and an external controller setting every agent's action.

use myriad_sim::scenario::{parse, Overrides};
use myriad_sim::{Decisions, SimOptions, Simulation};
use std::path::{Path, PathBuf};

fn scenario(text: &str) -> myriad_sim::Scenario {
    parse(Path::new("test.toml"), text, &Overrides::default()).unwrap()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shipped(name: &str, set: &[&str]) -> myriad_sim::Scenario {
    myriad_sim::load(
        &repo().join("scenarios").join(name),
        &Overrides {
            set: set.iter().map(|s| s.to_string()).collect(),
            seed: None,
        },
    )
    .unwrap()
}

fn build(s: &myriad_sim::Scenario, threads: usize, decisions: Decisions) -> Simulation {
    Simulation::build(
        s,
        SimOptions {
            threads: Some(threads),
            decisions,
            ..SimOptions::default()
        },
    )
    .unwrap()
}

/// Every row and the final state hash.
fn run_all(sim: &mut Simulation) -> (Vec<Vec<f64>>, u64) {
    let mut rows = vec![sim.row().to_vec()];
    for _ in 0..sim.scenario().steps {
        sim.step().unwrap();
        rows.push(sim.row().to_vec());
    }
    (rows, sim.state_hash())
}

const SEIR: &str = r#"
model = "seir"
seed = 4
steps = 40
[population]
size = 30000
[params]
beta = 0.05
latent_distribution = "geometric"
infectious_distribution = "geometric"
initial_infected = 30
[[layers]]
name = "household"
type = "groups"
sizes = [0.3, 0.3, 0.2, 0.2]
weight = 2.0
[[layers]]
name = "community"
type = "configuration"
distribution = "negative_binomial"
mean = 6
dispersion = 0.5
[[layers]]
name = "city"
type = "well_mixed"
weight = 0.00001
"#;

#[test]
fn the_same_seed_gives_identical_results_on_1_2_and_7_threads_in_one_process() {
    for s in [
        scenario(SEIR),
        shipped("covid-staten-island.toml", &["population.scale=0.02", "steps=30"]),
    ] {
        let mut sims: Vec<Simulation> = [1, 2, 7].iter().map(|&t| build(&s, t, Decisions::Rule)).collect();
        assert_eq!(sims.iter().map(|x| x.threads()).collect::<Vec<_>>(), [1, 2, 7]);
        let results: Vec<_> = sims.iter_mut().map(run_all).collect();
        assert!(
            results[0].0.iter().any(|r| r != &results[0].0[0]),
            "the run must do something"
        );
        assert_eq!(results[0], results[1], "{}: 1 vs 2 threads", s.model.name);
        assert_eq!(results[0], results[2], "{}: 1 vs 7 threads", s.model.name);
    }
}

/// Run `k` steps, snapshot, run `k` more, restore, run `k` again: the two
/// stretches after the snapshot must agree row for row and in state.
fn snapshot_restore_repeats(mut sim: Simulation, k: u32) {
    let step = |sim: &mut Simulation| {
        sim.step().unwrap();
        assert!(sim.error().is_none(), "{:?}", sim.error());
    };
    for _ in 0..k {
        step(&mut sim);
    }
    let snap = sim.snapshot();
    let hash_at_snapshot = sim.state_hash();
    let mut first = Vec::new();
    for _ in 0..k {
        step(&mut sim);
        first.push(sim.row().to_vec());
    }
    let hash_after = sim.state_hash();
    sim.restore(&snap);
    assert_eq!(sim.state_hash(), hash_at_snapshot);
    let mut second = Vec::new();
    for _ in 0..k {
        step(&mut sim);
        second.push(sim.row().to_vec());
    }
    assert_eq!(first, second);
    assert_eq!(sim.state_hash(), hash_after);
    assert_ne!(hash_after, hash_at_snapshot);
}

#[test]
fn snapshot_and_restore_repeat_a_run_exactly() {
    snapshot_restore_repeats(build(&scenario(SEIR), 2, Decisions::Rule), 10);
    let covid = shipped("covid-staten-island.toml", &["population.scale=0.02", "steps=40"]);
    snapshot_restore_repeats(build(&covid, 2, Decisions::Rule), 14);
    for game in ["commons-fishery.toml", "donor-game.toml"] {
        snapshot_restore_repeats(build(&shipped(game, &[]), 2, Decisions::Rule), 3);
    }
}

#[test]
fn snapshot_and_restore_repeat_a_run_with_an_llm_provider_attached() {
    // Answers replayed from the cache the golden test records, with the
    // smoothing history and memories restored with the model.
    let cache = repo().join("crates/myriad/tests/golden/llm-cache/covid-llm.jsonl");
    let set = [
        "population.scale=0.02".to_string(),
        "steps=21".to_string(),
        "llm.mode=replay".to_string(),
        format!("llm.cache={}", cache.display()),
        "llm.backend=http".to_string(),
        "llm.endpoint=http://127.0.0.1:9/v1".to_string(),
        // The model the golden caches were recorded under.
        "llm.model=meta-llama/Llama-3.1-8B-Instruct".to_string(),
    ];
    let set: Vec<&str> = set.iter().map(|s| s.as_str()).collect();
    let s = shipped("covid-llm-staten-island.toml", &set);
    let sim = build(&s, 2, Decisions::Scenario);
    assert!(sim.provider_report().is_some(), "an LLM provider is attached");
    snapshot_restore_repeats(sim, 7);

    let cache = repo().join("crates/myriad/tests/golden/llm-cache/commons-llm.jsonl");
    let set = [
        "llm.mode=replay".to_string(),
        format!("llm.cache={}", cache.display()),
        "llm.backend=http".to_string(),
        "llm.endpoint=http://127.0.0.1:9/v1".to_string(),
        // The model the golden caches were recorded under.
        "llm.model=meta-llama/Llama-3.1-8B-Instruct".to_string(),
    ];
    let set: Vec<&str> = set.iter().map(|s| s.as_str()).collect();
    let sim = build(&shipped("commons-llm.toml", &set), 2, Decisions::Scenario);
    snapshot_restore_repeats(sim, 3);
}

#[test]
fn an_external_controller_decides_every_agents_action() {
    // The guess game: the caller sets every player's report.
    let s = scenario("model = \"guess\"\nsteps = 3\n[population]\nsize = 1000\n");
    let mut sim = build(&s, 2, Decisions::External);
    let col = |sim: &Simulation, name: &str| sim.metrics().iter().position(|m| m.name == name).unwrap();
    for round in 0..3u32 {
        let reports: Vec<f64> = (0..1000).map(|i| ((i + round as usize) % 101) as f64).collect();
        let mean = reports.iter().sum::<f64>() / 1000.0;
        sim.controller().unwrap().set("guess", reports);
        sim.step().unwrap();
        let row = sim.row();
        assert_eq!(row[col(&sim, "valid")], 1000.0);
        assert!((row[col(&sim, "mean")] - mean).abs() < 1e-9, "round {round}");
        assert!((row[col(&sim, "target")] - 2.0 / 3.0 * mean).abs() < 1e-9);
    }

    // The covid model: everyone told to stay home the first week, nobody the second.
    let covid = shipped("covid-staten-island.toml", &["population.scale=0.02", "steps=14"]);
    let mut sim = build(&covid, 2, Decisions::External);
    let n = sim.agents() as usize;
    sim.controller().unwrap().set("isolate", vec![1.0; n]);
    sim.step().unwrap();
    assert_eq!(sim.row()[col(&sim, "isolating_fraction")], 1.0);
    assert_eq!(sim.row()[col(&sim, "working_fraction")], 0.0);
    for _ in 0..6 {
        sim.step().unwrap();
    }
    sim.controller().unwrap().set("isolate", vec![0.0; n]);
    sim.controller().unwrap().set("work", vec![1.0; n]);
    sim.step().unwrap();
    assert_eq!(sim.row()[col(&sim, "isolating_fraction")], 0.0);
    assert_eq!(sim.row()[col(&sim, "working_fraction")], 1.0);
}

#[test]
fn two_simulations_with_different_pools_run_side_by_side() {
    let s = scenario(SEIR);
    let (mut a, mut b) = (build(&s, 1, Decisions::Rule), build(&s, 3, Decisions::Rule));
    std::thread::scope(|scope| {
        let ha = scope.spawn(|| run_all(&mut a));
        let hb = scope.spawn(|| run_all(&mut b));
        assert_eq!(ha.join().unwrap(), hb.join().unwrap());
    });
}

#[test]
fn a_raw_scenario_is_changed_then_validated() {
    use myriad_sim::scenario::{PopulationSource, RawScenario};
    let mut raw = RawScenario::from_text(Path::new("t.toml"), SEIR, &Overrides::default()).unwrap();
    raw.set("population.size=500").unwrap();
    let s = raw.validate().unwrap();
    assert!(matches!(s.population, PopulationSource::Synthetic(500)));
    raw.set("params.betta=0.1").unwrap();
    let e = raw.validate().err().unwrap().to_string();
    assert!(
        e.contains("did you mean 'beta'") && e.contains("(value given with --set)"),
        "{e}"
    );
}

#[test]
fn a_run_feeds_its_sinks_every_row_and_stops_when_asked() {
    use myriad_sim::sinks::MemorySink;
    use std::sync::atomic::AtomicBool;
    let s = scenario(SEIR);
    let mut sim = build(&s, 2, Decisions::Rule);
    let mut memory = MemorySink::new(sim.metrics());
    let end = sim.run(10, &mut [&mut memory], &AtomicBool::new(false)).unwrap();
    assert_eq!((end.done, memory.recorder.len()), (10, 11));
    let mut again = build(&s, 1, Decisions::Rule);
    for _ in 0..10 {
        again.step().unwrap();
    }
    assert_eq!(memory.recorder.last().unwrap(), again.row());
    let end = sim.run(40, &mut [], &AtomicBool::new(true)).unwrap();
    assert_eq!(end.done, 10, "a set stop flag runs no step");
}
