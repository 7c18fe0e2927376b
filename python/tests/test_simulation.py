"""myriad.Simulation: building, stepping, the data out, snapshots, threads,
the GIL and Ctrl-C, and bad input."""

import os
import signal
import subprocess
import threading
import time

import numpy as np
import pandas as pd
import pytest

import myriad
from conftest import SCENARIOS, SMALL_SIR, vicsek


def test_sir_conserves_agents_and_matches_the_command_line(small_sir_file, myriad_bin, tmp_path):
    sim = myriad.Simulation.from_file(small_sir_file, threads=2)
    assert sim.run() == 60
    df = sim.timeseries()
    assert list(df["step"]) == list(range(61))
    # S + I + R is every agent at every step; new infections are S's losses.
    assert ((df["S"] + df["I"] + df["R"]) == 2000).all()
    assert (df["new_infections"].iloc[1:].values == -np.diff(df["S"].values)).all()
    # The same library as `myriad run`: the same numbers as its timeseries.csv.
    out = tmp_path / "cli"
    subprocess.run([myriad_bin, "run", str(small_sir_file), "--out", str(out), "-q"], check=True)
    cli = pd.read_csv(out / "timeseries.csv")
    pd.testing.assert_frame_equal(df[cli.columns].astype(float), cli.astype(float))


def test_file_toml_and_dict_give_the_same_run(small_sir_file):
    a = myriad.Simulation.from_file(small_sir_file)
    b = myriad.Simulation.from_toml(small_sir_file.read_text())
    c = myriad.Simulation.from_dict(SMALL_SIR)
    for s in (a, b, c):
        s.run()
    assert a.state_hash() == b.state_hash() == c.state_hash()


def test_overrides_and_seed_change_the_run(small_sir_file):
    base = myriad.Simulation.from_file(small_sir_file)
    base.run()
    other_seed = myriad.Simulation.from_file(small_sir_file, seed=4)
    other_seed.run()
    no_spread = myriad.Simulation.from_file(small_sir_file, set={"params.beta": 0.0})
    no_spread.run()
    assert base.state_hash() != other_seed.state_hash()
    assert no_spread.timeseries()["R"].iloc[-1] == 10  # only the initial cases recover
    assert no_spread.seed == 3 and other_seed.seed == 4


def test_same_state_on_one_and_two_threads():
    hashes = []
    for threads in (1, 2):
        sim = myriad.Simulation.from_dict(SMALL_SIR, threads=threads)
        assert sim.threads == threads
        sim.run()
        hashes.append(sim.state_hash())
    assert hashes[0] == hashes[1]


def test_snapshot_restore_and_reset_reproduce():
    sim = myriad.Simulation.from_dict(SMALL_SIR)
    sim.step(20)
    snap = sim.snapshot()
    assert snap.step == 20
    sim.step(20)
    after = sim.state_hash()
    rows = len(sim.timeseries())
    sim.restore(snap)
    assert sim.step_index == 20 and len(sim.timeseries()) == 21
    sim.step(20)
    assert sim.state_hash() == after and len(sim.timeseries()) == rows
    # A snapshot restores into another simulation of the same scenario.
    twin = myriad.Simulation.from_dict(SMALL_SIR)
    twin.restore(snap)
    twin.step(20)
    assert twin.state_hash() == after
    # reset(seed) starts again: the same run as a fresh build.
    sim.reset(5)
    sim.run()
    fresh = myriad.Simulation.from_dict(SMALL_SIR, seed=5)
    fresh.run()
    assert sim.state_hash() == fresh.state_hash() and sim.seed == 5


def test_snapshot_of_another_scenario_is_refused():
    a = myriad.Simulation.from_dict(SMALL_SIR)
    b = myriad.Simulation.from_dict(SMALL_SIR, set={"params.beta": 0.2})
    with pytest.raises(myriad.InputError, match="another scenario"):
        b.restore(a.snapshot())


def test_columns_are_read_only_views_that_survive_reset():
    sim = myriad.Simulation.from_dict(SMALL_SIR)
    sim.step(30)
    names = sim.column_names()
    assert "stage" in names or len(names) > 0
    name = names[0]
    a, b = sim.column(name), sim.column(name)
    assert len(a) == 2000
    assert np.shares_memory(a, b)  # both over the engine's memory: no copy
    assert not a.flags.writeable
    with pytest.raises(ValueError):
        a[0] = 1
    kept = a.copy()
    sim.reset(9)
    sim.step(5)
    # The old array still reads the old state (kept alive), never freed memory.
    assert np.array_equal(a, kept)
    sim.close()
    assert np.array_equal(a, kept)
    with pytest.raises(myriad.InputError, match="no agent column 'nope'"):
        myriad.Simulation.from_dict(SMALL_SIR).column("nope")


def test_closed_simulation_raises():
    sim = myriad.Simulation.from_dict(SMALL_SIR)
    sim.close()
    assert sim.closed
    with pytest.raises(myriad.RunError, match="closed"):
        sim.step()
    with myriad.Simulation.from_dict(SMALL_SIR) as s:
        s.step()
    assert s.closed


def test_arrow_capsule_feeds_pyarrow_and_polars():
    pa = pytest.importorskip("pyarrow")
    pl = pytest.importorskip("polars")
    sim = myriad.Simulation.from_dict(SMALL_SIR)
    sim.run()
    t = pa.table(sim.table())
    assert t.num_rows == 61 and t.column_names[:4] == ["step", "S", "I", "R"]
    df = pl.DataFrame(sim.table())
    assert df.shape == (61, 5)
    assert df["I"].to_list() == list(sim.timeseries()["I"])


def test_dated_scenario_has_a_date_column():
    sim = myriad.Simulation.from_file(SCENARIOS / "covid-staten-island.toml", threads=2,
                                      set={"population.scale": 0.02})
    sim.step(3)
    df = sim.timeseries()
    if "date" in df.columns:
        assert df["date"].iloc[2] - df["date"].iloc[1] == pd.Timedelta(days=1)


def test_gil_is_released_while_rust_steps():
    sim = myriad.Simulation.from_dict(
        dict(SMALL_SIR, steps=400, population={"size": 200_000}), threads=1
    )
    ticks = 0
    done = threading.Event()

    def count():
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    start = time.perf_counter()
    sim.run()
    elapsed = time.perf_counter() - start
    done.set()
    t.join()
    # With the GIL held for the whole run the counter could not move; it
    # moves about once per millisecond otherwise.
    assert elapsed > 0.05
    assert ticks > 0.2 * elapsed * 1000


def test_ctrl_c_stops_between_steps_and_keeps_the_state():
    spec = dict(SMALL_SIR, steps=3000, population={"size": 100_000})
    sim = myriad.Simulation.from_dict(spec, threads=1)
    # A shell starts background jobs with SIGINT ignored, and Python then
    # installs no handler: put Python's own back for this test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            sim.run()
    finally:
        timer.join()
        signal.signal(signal.SIGINT, previous)
    stopped = sim.step_index
    assert 0 < stopped < 3000
    assert len(sim.timeseries()) == stopped + 1
    # It continues to the same end state as an uninterrupted run.
    sim.run(stopped + 50)
    ref = myriad.Simulation.from_dict(spec, threads=1)
    ref.run(stopped + 50)
    assert sim.state_hash() == ref.state_hash()


def test_scenario_errors_name_the_key():
    with pytest.raises(myriad.ScenarioError, match="nonsense"):
        myriad.Simulation.from_dict(SMALL_SIR, set={"params.nonsense": 1})
    with pytest.raises(myriad.ScenarioError, match="mean_degree"):
        myriad.Simulation.from_toml(
            'model = "sir"\nsteps = 3\n[population]\nsize = 10\n[[layers]]\nname = "c"\ntype = "erdos_renyi"\nmean_degree = "x"\n'
        )
    with pytest.raises(myriad.ScenarioError, match="no-such-file.toml"):
        myriad.Simulation.from_file("no-such-file.toml")
    with pytest.raises(myriad.InputError, match="threads"):
        myriad.Simulation.from_dict(SMALL_SIR, threads=0)
    with pytest.raises(myriad.InputError, match="cannot go into a scenario"):
        myriad.Simulation.from_dict(dict(SMALL_SIR, params={"beta": object()}))
    # ScenarioError and InputError are ValueErrors; RunError a RuntimeError.
    assert issubclass(myriad.ScenarioError, ValueError)
    assert issubclass(myriad.RunError, RuntimeError)


def test_python_policy_drives_a_swarm_once_per_step():
    calls = []

    def policy(obs):
        calls.append(obs.shape)
        # Turn towards the neighbours' mean heading (column 2 of the
        # observation, mean_sin, is the sine of their mean relative heading), bounded.
        return np.clip(obs[:, 2:3], -0.78, 0.78)

    sim = myriad.Simulation.from_dict(vicsek(size=200, steps=30), policy=policy, threads=2)
    obs_names = myriad.Env(scenario=vicsek(size=200, steps=30)).observation_names
    sim.run()
    assert len(calls) == 30 and calls[0] == (200, len(obs_names))
    assert sim.rewards().shape == (200,)
    # The same actions through the environment interface give the same state.
    env = myriad.Env(scenario=vicsek(size=200, steps=30), threads=1)
    obs = np.zeros((200, env.obs_dim), np.float32)
    rew = np.zeros(200, np.float32)
    env.reset(1, obs)
    for _ in range(30):
        env.step(np.clip(obs[:, 2:3], -0.78, 0.78), obs, rew)
    assert env.state_hash() == sim.state_hash()


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda obs: np.zeros((3, 1)), r"expected shape \(50, 1\)"),
        (lambda obs: np.full((50, 1), np.nan), "agent 0 is not a finite number"),
        (lambda obs: np.array(["left"] * 50), "expected numbers"),
        (lambda obs: None, "expected numbers|expected shape"),
    ],
)
def test_bad_policy_output_is_an_error_naming_the_problem(bad, message):
    sim = myriad.Simulation.from_dict(vicsek(size=50, steps=5), policy=bad)
    with pytest.raises(myriad.InputError, match=message):
        sim.step()
    assert sim.step_index == 0  # nothing was stepped


def test_policy_on_a_model_without_actions_is_refused():
    with pytest.raises(myriad.InputError, match="declares no observations"):
        myriad.Simulation.from_dict(SMALL_SIR, policy=lambda obs: obs)
    with pytest.raises(myriad.InputError, match="callable"):
        myriad.Simulation.from_dict(vicsek(), policy=3)


def test_models_lists_the_registry():
    m = myriad.models()
    assert {"sir", "seir", "covid", "vicsek", "kuramoto", "aggregation"} <= set(m["model"])


HOSTILE = [
    {},
    {"model": "nope"},
    {"model": "sir"},
    {"model": "sir", "steps": -1, "population": {"size": 10}},
    {"model": "sir", "steps": 3, "population": {"size": 0}, "layers": [{"name": "c", "type": "well_mixed"}]},
    {"model": "sir", "steps": 3, "population": {"size": 10**12}, "layers": [{"name": "c", "type": "well_mixed"}]},
    {"model": "sir", "steps": 3, "population": {"size": "many"}},
    {"model": "sir", "steps": 3, "population": {"size": 10}, "layers": [{"name": "c", "type": "erdos_renyi", "mean_degree": 50}]},
    {"model": "vicsek", "steps": 3, "population": {"size": 0}},
    {"model": "vicsek", "steps": 3, "population": {"size": 10}, "params": {"density": -1.0}},
    {"model": "kuramoto", "steps": 3, "population": {"size": 10}},
    {"model": "guess", "steps": 3, "population": {"size": 10}, "params": {"ratio": float("nan")}},
    {"model": "covid", "steps": 3, "population": {"file": "/no/such/people.csv"}},
]


@pytest.mark.parametrize("spec", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_scenarios_are_python_errors_never_a_crash(spec):
    # A Rust panic would surface as pyo3's PanicException, a BaseException
    # that these ValueError/RuntimeError classes do not catch.
    with pytest.raises((myriad.ScenarioError, myriad.InputError, myriad.RunError)):
        sim = myriad.Simulation.from_dict(spec, threads=1)
        sim.run()
    with pytest.raises((myriad.ScenarioError, myriad.InputError, myriad.RunError)):
        myriad.Env(scenario=spec, threads=1)


def test_bad_arguments_are_errors():
    sim = myriad.Simulation.from_dict(SMALL_SIR)
    with pytest.raises(OverflowError):
        sim.reset(-1)
    with pytest.raises(myriad.InputError, match="larger than"):
        sim.reset(2**63)
    with pytest.raises(TypeError):
        sim.restore("not a snapshot")
    with pytest.raises(myriad.InputError, match="exactly one"):
        myriad.Simulation(file="a.toml", toml="model = 'sir'")
    with pytest.raises(myriad.InputError, match="keys must be strings"):
        myriad.Simulation.from_dict(SMALL_SIR, set={1: 2})
