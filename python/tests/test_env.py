"""Learning environments: Gymnasium's check_env on the single-agent
wrapper, the vector environment's spaces, buffers and autoreset, PettingZoo's
parallel_api_test, seeded determinism on 1 and 2 threads, bad actions."""

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")
pytest.importorskip("pettingzoo")

import myriad  # noqa: E402
from myriad.gym import SingleAgentEnv, VectorEnv  # noqa: E402
from myriad.pettingzoo import ParallelEnvironment  # noqa: E402
from conftest import SCENARIOS, vicsek  # noqa: E402


def kuramoto(size=50, steps=20):
    return {"model": "kuramoto", "seed": 2, "steps": steps, "population": {"size": size},
            "layers": [{"name": "all", "type": "well_mixed"}],
            "params": {"coupling": 1.0, "width": 0.5, "dt": 0.1, "max_input": 1.0, "input_cost": 0.2}}


def test_single_agent_env_passes_gymnasiums_check_env():
    from gymnasium.utils.env_checker import check_env

    env = SingleAgentEnv(vicsek(size=1, steps=20, density=0.05))
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=4)
    assert env.observation_space.contains(obs)
    with pytest.raises(myriad.InputError, match="one agent"):
        SingleAgentEnv(vicsek(size=3, density=0.05))


def test_vector_env_spaces_buffers_and_autoreset():
    env = VectorEnv(SCENARIOS / "vicsek-task.toml", set={"steps": 5})
    assert env.num_envs == 100
    assert env.single_action_space.shape == (1,)
    assert np.isclose(env.single_action_space.high[0], np.pi / 4)
    obs, info = env.reset(seed=11)
    assert obs.shape == (100, env.single_observation_space.shape[0]) and obs.dtype == np.float32
    assert env.observation_space.contains(obs)
    first = obs.copy()
    for k in range(5):
        obs, rew, term, trunc, info = env.step(env.action_space.sample())
        assert rew.shape == (100,) and rew.dtype == np.float32
        assert not term.any()
        assert trunc.all() == (k == 4)
    # NEXT_STEP autoreset: the next step starts episode 2 (seed 12), rewards 0.
    obs, rew, term, trunc, _ = env.step(env.action_space.sample())
    assert (rew == 0).all() and not trunc.any()
    again = VectorEnv(SCENARIOS / "vicsek-task.toml", set={"steps": 5})
    o12, _ = again.reset(seed=12)
    assert np.array_equal(obs, o12)
    o11, _ = again.reset(seed=11)
    assert np.array_equal(o11, first)


def rollout(threads, seed):
    env = VectorEnv(kuramoto(size=300, steps=15), threads=threads)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(0)
    trace = [obs.copy()]
    for _ in range(15):
        a = rng.uniform(-1, 1, size=(300, env.single_action_space.shape[0])).astype(np.float32)
        obs, rew, *_ = env.step(np.clip(a, env.single_action_space.low, env.single_action_space.high))
        trace.append(obs.copy())
        trace.append(rew.copy())
    return trace


def test_seeded_runs_are_identical_on_one_and_two_threads():
    a, b = rollout(1, 7), rollout(2, 7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    c = rollout(2, 8)
    assert not np.array_equal(a[0], c[0])


def test_pettingzoo_parallel_api_test():
    from pettingzoo.test import parallel_api_test

    env = ParallelEnvironment(vicsek(size=6, steps=30, density=0.5))
    parallel_api_test(env, num_cycles=40)
    obs, infos = env.reset(seed=3)
    assert set(obs) == {f"agent_{i}" for i in range(6)}
    for _ in range(30):
        obs, rewards, terms, truncs, infos = env.step({a: env.action_space(a).sample() for a in env.agents})
    assert all(truncs.values()) and env.agents == []
    with pytest.raises(myriad.RunError, match="reset"):
        env.step({})


def test_pettingzoo_bad_actions():
    env = ParallelEnvironment(vicsek(size=3, steps=5, density=0.2))
    env.reset(seed=1)
    with pytest.raises(myriad.InputError, match="no action for agent_2"):
        env.step({"agent_0": [0.0], "agent_1": [0.0]})
    with pytest.raises(myriad.InputError, match="action of agent_1"):
        env.step({"agent_0": [0.0], "agent_1": [0.0, 1.0, 2.0], "agent_2": [0.0]})


@pytest.mark.parametrize(
    "actions, message",
    [
        (np.zeros((99, 1), np.float32), r"expected shape \(100, 1\)"),
        (np.zeros((100, 2), np.float32), r"expected shape \(100, 1\)"),
        (np.array([["a"]] * 100), "expected numbers"),
        (np.full((100, 1), np.inf, np.float32), "action of agent 0 is not a finite number"),
    ],
)
def test_bad_actions_are_errors_and_nothing_is_stepped(actions, message):
    env = myriad.Env(file=SCENARIOS / "vicsek-task.toml")
    obs = np.zeros((100, env.obs_dim), np.float32)
    rew = np.zeros(100, np.float32)
    env.reset(1, obs)
    with pytest.raises(myriad.InputError, match=message):
        env.step(actions, obs, rew)
    assert env.step_index == 0
    # float64 and int actions are converted; wrong output buffers refused.
    env.step(np.zeros(100), obs, rew)
    with pytest.raises(myriad.InputError, match="obs"):
        env.step(np.zeros(100), np.zeros((100, env.obs_dim)), rew)


def test_env_on_a_model_without_actions_is_refused():
    with pytest.raises(myriad.InputError, match="declares no observations"):
        myriad.Env(file=SCENARIOS / "sir-erdos-renyi.toml")


def test_guess_game_as_pettingzoo_players():
    from pettingzoo.test import parallel_api_test

    spec = {"model": "guess", "seed": 1, "steps": 10, "population": {"size": 5}, "params": {"margin": 2.0}}
    parallel_api_test(ParallelEnvironment(spec), num_cycles=20)
    env = ParallelEnvironment(spec)
    obs, _ = env.reset(seed=2)
    assert env.observation_space("agent_0").shape == (5,)
    assert env.action_space("agent_0").low[0] == 0 and env.action_space("agent_0").high[0] == 100
    # Four players say 30 and one 20: mean 28, target 18.67; only the 20 is
    # within the margin of 2, so only agent_4 is rewarded.
    actions = {f"agent_{i}": np.array([30.0], np.float32) for i in range(4)}
    actions["agent_4"] = np.array([20.0], np.float32)
    obs, rewards, *_ = env.step(actions)
    assert rewards == {"agent_0": 0.0, "agent_1": 0.0, "agent_2": 0.0, "agent_3": 0.0, "agent_4": 1.0}
    ratio, played, previous, own, won = obs["agent_4"]
    assert played == 1 and won == 1 and abs(previous - 0.18667) < 1e-4 and abs(own - 0.2) < 1e-6
    assert obs["agent_0"][4] == 0 and abs(obs["agent_0"][3] - 0.3) < 1e-6
