"""A PettingZoo ``ParallelEnv`` over a controllable myriad scenario, for
small games and swarms where each agent is a named player
(``agent_0``, ``agent_1``, ...). Every player acts at every step; all
episodes end together at the scenario's ``steps`` (truncation), after which
``agents`` is empty until ``reset``. For large swarms use
:class:`myriad.gym.VectorEnv` (arrays, no dicts).
"""

from __future__ import annotations

import functools
import os
from typing import Any, Mapping, Optional

import numpy as np
from pettingzoo import ParallelEnv

from . import _myriad
from .gym import _Episodes, _open, _spaces


class ParallelEnvironment(ParallelEnv):
    """The scenario's agents as PettingZoo players."""

    metadata = {"name": "myriad", "render_modes": [], "is_parallelizable": True}

    def __init__(
        self,
        scenario: str | os.PathLike | Mapping[str, Any],
        *,
        seed: Optional[int] = None,
        threads: Optional[int] = None,
        set: Optional[Mapping[str, Any]] = None,
    ):
        self.env = _open(scenario, seed, threads, set)
        self.possible_agents = [f"agent_{i}" for i in range(self.env.agents)]
        self.agents: list[str] = []
        self._obs_space, self._act_space = _spaces(self.env)
        self._obs = np.zeros((self.env.agents, self.env.obs_dim), np.float32)
        self._rewards = np.zeros(self.env.agents, np.float32)
        self._actions = np.zeros((self.env.agents, self.env.act_dim), np.float32)
        self._episodes = _Episodes(self.env)
        self.render_mode = None

    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent):
        return self._obs_space

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent):
        return self._act_space

    def reset(self, seed: Optional[int] = None, options: Optional[dict] = None):
        self.env.reset(self._episodes.reset(seed), self._obs)
        self.agents = list(self.possible_agents)
        obs = {a: self._obs[i].copy() for i, a in enumerate(self.agents)}
        return obs, {a: {} for a in self.agents}

    def step(self, actions: Mapping[str, Any]):
        if not self.agents:
            raise _myriad.RunError("the episode is over: call reset()")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise _myriad.InputError(f"no action for {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        for i, a in enumerate(self.possible_agents):
            try:
                self._actions[i] = np.asarray(actions[a], np.float32).reshape(-1)
            except (ValueError, TypeError) as e:
                raise _myriad.InputError(
                    f"action of {a}: expected {self.env.act_dim} number(s) ({', '.join(self.env.action_names)}): {e}"
                ) from None
        term, trunc = self.env.step(self._actions, self._obs, self._rewards)
        agents = self.agents
        obs = {a: self._obs[i].copy() for i, a in enumerate(agents)}
        rewards = {a: float(self._rewards[i]) for i, a in enumerate(agents)}
        terminations = {a: bool(term) for a in agents}
        truncations = {a: bool(trunc) for a in agents}
        infos = {a: {} for a in agents}
        if term or trunc:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def close(self):
        pass
