//! The swarm tasks end to end: runs under the rule, the controller and the
//! shipped policies (identical on 1 and 2 threads), the environment
//! interface, `myriad train` reproducing each shipped policy byte for byte,
//! resuming from a checkpoint, `myriad evaluate`, and bad input.

mod common;
use common::{myriad, run_quietly, stderr, write};
use myriad_sim::control::Env;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../scenarios/{name}.toml"))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn runs_are_identical_on_one_and_two_threads_under_every_provider() {
    let d = tempfile::tempdir().unwrap();
    for (name, extra) in [
        ("vicsek-task", vec![]),
        ("vicsek-task", vec!["--set", "behaviour.provider=\"controller\""]),
        ("vicsek-policy", vec![]),
        ("kuramoto-policy", vec![]),
        ("aggregation-policy", vec!["--set", "population.size=3000"]),
        (
            "vicsek-policy",
            vec!["--set", "population.size=20000", "--set", "steps=20"],
        ),
    ] {
        let mut outs = Vec::new();
        for threads in ["1", "2"] {
            let out = d.path().join(format!("{name}-{}-{threads}", extra.len()));
            let mut args = extra.clone();
            args.extend(["--threads", threads]);
            let o = run_quietly(&scenario(name), &out, &args);
            assert!(o.status.success(), "{name} {extra:?}: {}", stderr(&o));
            outs.push(read(&out.join("timeseries.csv")));
        }
        assert_eq!(outs[0], outs[1], "{name} {extra:?}");
    }
}

#[test]
fn the_policy_is_what_acts_and_reports_itself() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("p");
    let o = run_quietly(&scenario("kuramoto-policy"), &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_str(&read(&out.join("summary.json"))).unwrap();
    let text = summary.to_string();
    assert!(
        text.contains("\"provider\":\"policy\"") && text.contains("kuramoto.safetensors"),
        "{text}"
    );
    // The uncontrolled run of the same task applies no input; the policy does.
    let rule = d.path().join("r");
    let o = run_quietly(&scenario("kuramoto-task"), &rule, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let last_input = |p: &Path| -> f64 {
        let t = read(&p.join("timeseries.csv"));
        let header: Vec<&str> = t.lines().next().unwrap().split(',').collect();
        let k = header.iter().position(|h| *h == "input").unwrap();
        t.lines().last().unwrap().split(',').nth(k).unwrap().parse().unwrap()
    };
    assert_eq!(last_input(&rule), 0.0);
    assert!(last_input(&out) > 0.0);
}

fn env_of(name: &str, seed: u64) -> Env {
    let s = myriad_sim::load(&scenario(name), &myriad_sim::Overrides::default()).unwrap();
    let pool = Arc::new(rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap());
    Env::new(&s, seed, pool).unwrap()
}

#[test]
fn the_environment_interface_steps_flat_buffers() {
    let mut env = env_of("aggregation-task", 1);
    let (n, od, ad) = (env.agents(), env.obs_dim(), env.act_dim());
    assert_eq!((n, od, ad), (100, 11, 2));
    let first = env.reset(7).unwrap().to_vec();
    assert_eq!(first.len(), n * od);
    assert_eq!(env.reset(7).unwrap(), &first[..], "same seed, same observations");
    assert_ne!(env.reset(8).unwrap(), &first[..]);
    env.reset(7).unwrap();
    let bounds = env.action_bounds();
    assert_eq!(bounds, vec![(-0.1, 0.1), (-0.1, 0.1)]);
    let actions = vec![0.05f32; n * ad];
    let steps = env.simulation().scenario().steps;
    for t in 1..=steps {
        let tr = env.step(&actions).unwrap();
        assert_eq!((tr.obs.len(), tr.rewards.len(), tr.truncated.len()), (n * od, n, n));
        assert!(tr.terminated.iter().all(|&x| !x));
        assert_eq!(tr.truncated.iter().all(|&x| x), t == steps, "step {t}");
        assert!(tr.rewards.iter().all(|r| r.is_finite() && *r <= 0.0));
    }
    // Bad actions are refused, naming the agent, and nothing is stepped.
    env.reset(7).unwrap();
    let mut bad = vec![0.0f32; n * ad];
    bad[2 * 17 + 1] = f32::NAN;
    let e = env.step(&bad).err().unwrap().to_string();
    assert!(e.contains("agent 17") && e.contains("vy"), "{e}");
    let e = env.step(&[0.0; 3]).err().unwrap().to_string();
    assert!(e.contains("3 actions given for 100 agents x 2"), "{e}");
    assert_eq!(env.step_index(), 0);
    // Agents moving apart see something else than agents standing still
    // (a common velocity would only translate the swarm: the same view).
    env.reset(7).unwrap();
    let a = env.step(&vec![0.0; n * ad]).unwrap().obs.to_vec();
    env.reset(7).unwrap();
    let apart: Vec<f32> = (0..n * ad).map(|k| if (k / 2) % 2 == 0 { 0.1 } else { -0.1 }).collect();
    let b = env.step(&apart).unwrap().obs.to_vec();
    assert_ne!(a, b, "actions move the agents");
}

/// The shipped policy's tensors and specification equal what `myriad train`
/// writes from its scenario with 2 threads.
fn retrain_equals_shipped(task: &str) {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("train");
    let o = myriad(&[
        "train",
        scenario(&format!("{task}-task")).to_str().unwrap(),
        "--threads",
        "2",
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../scenarios/policies/{task}.safetensors"));
    assert_eq!(
        std::fs::read(out.join("policy.safetensors")).unwrap(),
        std::fs::read(&shipped).unwrap(),
        "{task}: retrained policy differs from {}",
        shipped.display()
    );
    // The learning curve and the evaluation are written.
    let curve = read(&out.join("training.csv"));
    assert_eq!(curve.lines().count(), 61, "{task}");
    assert!(out.join("training.png").exists());
    let eval = read(&out.join("evaluation.csv"));
    for who in ["rule", "controller", "policy", "policy - controller"] {
        assert!(
            eval.lines().any(|l| l.starts_with(&format!("{who},"))),
            "{task}: {eval}"
        );
    }
}

#[test]
fn train_reproduces_the_shipped_vicsek_policy() {
    retrain_equals_shipped("vicsek");
}

#[test]
fn train_reproduces_the_shipped_kuramoto_policy() {
    retrain_equals_shipped("kuramoto");
}

#[test]
fn train_reproduces_the_shipped_aggregation_policy() {
    retrain_equals_shipped("aggregation");
}

#[test]
fn training_resumes_from_its_checkpoint() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("t");
    let s = scenario("kuramoto-task");
    let args = |iterations: &str| -> Vec<String> {
        vec![
            "train".into(),
            s.to_str().unwrap().into(),
            "--threads".into(),
            "2".into(),
            "-q".into(),
            "--set".into(),
            format!("train.iterations={iterations}"),
            "--set".into(),
            "train.checkpoint_every=2".into(),
            "--set".into(),
            "train.eval_seeds=2".into(),
        ]
    };
    let mut first = args("2");
    first.extend(["--out".into(), out.to_str().unwrap().into()]);
    let o = myriad(&first.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    let two = read(&out.join("training.csv"));
    assert!(out.join("checkpoints/policy-00002.safetensors").exists());
    let mut more = args("4");
    more.extend(["--resume".into(), out.to_str().unwrap().into()]);
    let o = myriad(&more.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    let four = read(&out.join("training.csv"));
    assert_eq!(four.lines().count(), 5);
    // The first two iterations are kept as they were (timing aside).
    let strip = |t: &str| -> Vec<String> {
        t.lines()
            .take(3)
            .map(|l| l.rsplit_once(',').unwrap().0.to_string())
            .collect()
    };
    assert_eq!(strip(&two), strip(&four));
    assert!(out.join("checkpoints/policy-00004.safetensors").exists());
    let e = myriad(&[
        "train",
        s.to_str().unwrap(),
        "--resume",
        d.path().join("nothing").to_str().unwrap(),
    ]);
    assert_eq!(e.status.code(), Some(2), "{}", stderr(&e));
}

#[test]
fn evaluate_compares_sizes() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("e");
    let o = myriad(&[
        "evaluate",
        scenario("aggregation-policy").to_str().unwrap(),
        "--agents",
        "10,100",
        "--seeds",
        "3",
        "--set",
        "steps=20",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = read(&out.join("evaluation.csv"));
    // Three estimates and two paired differences per size.
    assert_eq!(csv.lines().count(), 1 + 2 * 5, "{csv}");
    assert!(out.join("evaluation.png").exists());
}

#[test]
fn bad_control_input_is_refused_with_its_name() {
    let d = tempfile::tempdir().unwrap();
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/policies");
    let task = read(&scenario("vicsek-task"));
    let with_behaviour = |extra: &str| format!("{task}\n[behaviour]\n{extra}\n");
    // A policy trained for another model.
    let p = write(
        d.path(),
        "wrong.toml",
        &with_behaviour(&format!(
            "provider = \"policy\"\npolicy = \"{}\"",
            policies.join("kuramoto.safetensors").display()
        )),
    );
    let o = myriad(&["validate", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("kuramoto.safetensors") && e.contains("trained for model 'kuramoto'"),
        "{e}"
    );
    // A corrupt file.
    let junk = write(d.path(), "junk.safetensors", "this is not a policy");
    let p = write(
        d.path(),
        "junk.toml",
        &with_behaviour("provider = \"policy\"\npolicy = \"junk.safetensors\""),
    );
    let e = stderr(&myriad(&[
        "run",
        p.to_str().unwrap(),
        "-q",
        "--out",
        d.path().join("o").to_str().unwrap(),
    ]));
    assert!(
        e.contains("junk.safetensors") && e.contains("not a valid myriad policy"),
        "{e}"
    );
    let _ = junk;
    // No policy named; unknown sampling; a model without actions.
    let p = write(d.path(), "none.toml", &with_behaviour("provider = \"policy\""));
    assert!(stderr(&myriad(&["validate", p.to_str().unwrap()])).contains("needs policy = "));
    let p = write(
        d.path(),
        "mode.toml",
        &with_behaviour("provider = \"controller\"\nactions = \"greedy\""),
    );
    assert_eq!(myriad(&["validate", p.to_str().unwrap()]).status.code(), Some(2));
    let sir = read(&scenario("sir-erdos-renyi"));
    let p = write(
        d.path(),
        "sir.toml",
        &format!("{sir}\n[behaviour]\nprovider = \"policy\"\npolicy = \"x.safetensors\"\n"),
    );
    let e = stderr(&myriad(&["validate", p.to_str().unwrap()]));
    assert!(e.contains("declares no actions") && e.contains("vicsek"), "{e}");
    let o = myriad(&[
        "train",
        scenario("sir-erdos-renyi").to_str().unwrap(),
        "--out",
        d.path().join("t").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // A radius larger than half the box, and no agents.
    let o = run_quietly(&scenario("vicsek"), &d.path().join("r"), &["--set", "params.radius=50"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("params.radius"), "{}", stderr(&o));
    let o = run_quietly(
        &scenario("vicsek"),
        &d.path().join("z"),
        &["--set", "population.size=0"],
    );
    assert!(
        !o.status.success() && !stderr(&o).contains("panicked"),
        "{}",
        stderr(&o)
    );
}
