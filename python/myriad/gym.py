"""Gymnasium environments over controllable myriad scenarios (the swarm
tasks, and any model that declares observations, actions and rewards).

:class:`VectorEnv` is a ``gymnasium.vector.VectorEnv`` whose entries are
the scenario's agents: ``num_envs`` is the number of agents, all stepped
together by one Rust step (the GIL released), observations and rewards
written into preallocated numpy buffers. The arrays returned by ``reset``
and ``step`` are those buffers: they are overwritten by the next call
(copy them to keep them).

Autoreset: ``AutoresetMode.NEXT_STEP`` (Gymnasium 1.x's default). All
agents' episodes end together at the scenario's ``steps`` (truncation); the
``step`` after that resets every entry (seed: the last reset's seed plus
the number of episodes since) and returns the first observations with zero
rewards, ignoring its actions.

:class:`SingleAgentEnv` is a ``gymnasium.Env`` over a one-agent scenario,
for tools that want a single agent; it passes
``gymnasium.utils.env_checker.check_env``. Episodes of both use the seeds
``seed, seed + 1, ...`` from the last ``reset(seed=...)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Optional

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from . import _myriad


def _open(scenario, seed, threads, set) -> _myriad.Env:
    if isinstance(scenario, _myriad.Env):
        return scenario
    given = {"scenario": dict(scenario)} if isinstance(scenario, Mapping) else {"file": Path(scenario)}
    return _myriad.Env(**given, seed=seed, threads=threads, set=dict(set or {}))


class _Episodes:
    """Seeds of successive episodes: ``seed, seed + 1, ...`` from the last
    ``reset(seed=...)`` (the scenario's seed before any)."""

    def __init__(self, env: _myriad.Env):
        self.base, self.episode, self.started = env.seed, 0, False

    def reset(self, seed: Optional[int]) -> int:
        """The seed of the episode a ``reset(seed=seed)`` starts."""
        if seed is not None:
            self.base, self.episode = int(seed), 0
        elif self.started:
            self.episode += 1
        self.started = True
        return self.base + self.episode


def _spaces(env: _myriad.Env):
    obs = spaces.Box(-np.inf, np.inf, shape=(env.obs_dim,), dtype=np.float32)
    lo = np.array([b[0] for b in env.action_bounds], dtype=np.float32)
    hi = np.array([b[1] for b in env.action_bounds], dtype=np.float32)
    act = spaces.Box(lo, hi, dtype=np.float32)
    return obs, act


class VectorEnv(gym.vector.VectorEnv):
    """A controllable scenario's agents as a Gymnasium vector environment.

    ``scenario`` is a scenario file, a dict, or a ``myriad.Env``; ``seed``,
    ``threads`` and ``set`` are as for ``myriad.Simulation``.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        scenario: str | os.PathLike | Mapping[str, Any],
        *,
        seed: Optional[int] = None,
        threads: Optional[int] = None,
        set: Optional[Mapping[str, Any]] = None,
    ):
        self.env = _open(scenario, seed, threads, set)
        self.num_envs = self.env.agents
        self.single_observation_space, self.single_action_space = _spaces(self.env)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = None
        self._obs = np.zeros((self.num_envs, self.env.obs_dim), np.float32)
        self._rewards = np.zeros(self.num_envs, np.float32)
        self._terminated = np.zeros(self.num_envs, bool)
        self._truncated = np.zeros(self.num_envs, bool)
        self._episodes = _Episodes(self.env)
        self._needs_reset = True

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        """Start every entry's episode; with ``seed``, from the initial
        state drawn with it."""
        self.env.reset(self._episodes.reset(seed), self._obs)
        self._needs_reset = False
        return self._obs, {}

    def step(self, actions):
        """One step of every agent; returns (obs, rewards, terminated,
        truncated, infos) as numpy arrays of ``num_envs`` entries."""
        if self._needs_reset:
            # NEXT_STEP autoreset: this step only resets.
            self.env.reset(self._episodes.reset(None), self._obs)
            self._needs_reset = False
            self._rewards[:] = 0.0
            self._terminated[:] = False
            self._truncated[:] = False
            return self._obs, self._rewards, self._terminated, self._truncated, {}
        term, trunc = self.env.step(actions, self._obs, self._rewards)
        self._terminated[:] = term
        self._truncated[:] = trunc
        self._needs_reset = term or trunc
        return self._obs, self._rewards, self._terminated, self._truncated, {}

    def close_extras(self, **kwargs):
        self.env = None


class SingleAgentEnv(gym.Env):
    """A one-agent controllable scenario as a ``gymnasium.Env``."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        scenario: str | os.PathLike | Mapping[str, Any],
        *,
        seed: Optional[int] = None,
        threads: Optional[int] = None,
        set: Optional[Mapping[str, Any]] = None,
    ):
        self.env = _open(scenario, seed, threads, set)
        if self.env.agents != 1:
            raise _myriad.InputError(
                f"SingleAgentEnv needs a scenario with one agent; this one has {self.env.agents} "
                "(use myriad.gym.VectorEnv, or set population.size = 1)"
            )
        self.observation_space, self.action_space = _spaces(self.env)
        self._obs = np.zeros((1, self.env.obs_dim), np.float32)
        self._reward = np.zeros(1, np.float32)
        self._episodes = _Episodes(self.env)

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        self.env.reset(self._episodes.reset(seed), self._obs)
        return self._obs[0].copy(), {}

    def step(self, action):
        term, trunc = self.env.step(np.asarray(action, np.float32).reshape(1, -1), self._obs, self._reward)
        return self._obs[0].copy(), float(self._reward[0]), bool(term), bool(trunc), {}
