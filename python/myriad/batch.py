"""Mesa-style use: :func:`batch_run` and :class:`DataCollector`, with Mesa's
argument names and method names, over myriad scenarios.

=====================================  ==========================================
Mesa                                   myriad
=====================================  ==========================================
``batch_run(MyModel, parameters=...)`` ``myriad.batch_run("scenario.toml", parameters=...)``
``parameters={"beta": [0.2, 0.3]}``    ``parameters={"params.beta": [0.2, 0.3]}`` (key paths)
``iterations=5``                       ``iterations=5`` (seeds: scenario seed + iteration)
``max_steps=100``                      ``max_steps=100`` (the scenario's ``steps``)
``number_processes=4``                 ``number_processes=4`` (threads: the GIL is released)
``data_collection_period=-1``          ``data_collection_period=-1`` (last step only)
list of dicts                          a pandas DataFrame
``DataCollector(model_reporters=...)`` ``DataCollector(model_reporters={"I": "infectious"})``
``agent_reporters={"w": "wealth"}``    ``agent_reporters={"s": "state"}`` (agent columns)
``self.datacollector.collect(self)``   ``dc.collect(sim)`` or ``sim.run(collector=dc)``
``get_model_vars_dataframe()``         ``get_model_vars_dataframe()``
``get_agent_vars_dataframe()``         ``get_agent_vars_dataframe()``; ``agent_table()`` (Arrow)
=====================================  ==========================================
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union

import numpy as np
import pandas as pd

Reporter = Union[str, Callable[[Any], Any]]


class DataCollector:
    """Model and agent reporters sampled from a running simulation.

    ``model_reporters`` maps a name to a metric name (``"infectious"``) or to
    a callable taking the simulation. ``agent_reporters`` maps a name to an
    agent column (``"state"``) or a callable returning one value per agent;
    they are sampled every ``agent_every`` steps (copies of the columns, so
    that later steps do not change them).
    """

    def __init__(
        self,
        model_reporters: Optional[Mapping[str, Reporter]] = None,
        agent_reporters: Optional[Mapping[str, Reporter]] = None,
        agent_every: int = 1,
    ):
        if agent_every < 1:
            raise ValueError("agent_every must be at least 1")
        self.model_reporters = dict(model_reporters or {})
        self.agent_reporters = dict(agent_reporters or {})
        self.agent_every = agent_every
        self._model_rows: list[dict] = []
        self._agent_steps: list[int] = []
        self._agent_cols: dict[str, list[np.ndarray]] = {k: [] for k in self.agent_reporters}

    def collect(self, sim) -> None:
        """Record the reporters at the simulation's current step."""
        step = sim.step_index
        row = {"Step": step}
        if self.model_reporters:
            current = dict(sim.row())
            for name, rep in self.model_reporters.items():
                if callable(rep):
                    row[name] = rep(sim)
                elif rep in current:
                    row[name] = current[rep]
                else:
                    raise KeyError(f"model reporter '{name}': no metric '{rep}' (metrics: {', '.join(current)})")
        self._model_rows.append(row)
        if self.agent_reporters and step % self.agent_every == 0:
            self._agent_steps.append(step)
            for name, rep in self.agent_reporters.items():
                values = rep(sim) if callable(rep) else sim.column(rep)
                self._agent_cols[name].append(np.array(values, copy=True))

    def get_model_vars_dataframe(self) -> pd.DataFrame:
        """One row per collected step, indexed by step (as Mesa's)."""
        return pd.DataFrame(self._model_rows).set_index("Step")

    def _agent_columns(self) -> dict:
        if not self._agent_steps:
            return {"Step": np.zeros(0, np.int64), "AgentID": np.zeros(0, np.int64)}
        n = [len(next(iter(self._agent_cols.values()))[i]) for i in range(len(self._agent_steps))]
        cols = {
            "Step": np.repeat(np.asarray(self._agent_steps, np.int64), n),
            "AgentID": np.concatenate([np.arange(k, dtype=np.int64) for k in n]),
        }
        for name, parts in self._agent_cols.items():
            cols[name] = np.concatenate(parts)
        return cols

    def get_agent_vars_dataframe(self) -> pd.DataFrame:
        """One row per agent and sampled step, indexed by (Step, AgentID) as
        Mesa's."""
        return pd.DataFrame(self._agent_columns()).set_index(["Step", "AgentID"])

    def agent_table(self):
        """The agent samples as a ``pyarrow.Table`` (``Step``, ``AgentID``,
        reporters), built from the sampled arrays without a Python loop."""
        import pyarrow as pa

        return pa.table(self._agent_columns())


def _values(v) -> list:
    if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
        return [v]
    return list(v)


def batch_run(
    scenario: Union[str, os.PathLike],
    parameters: Optional[Mapping[str, Any]] = None,
    number_processes: Optional[int] = 1,
    iterations: int = 1,
    data_collection_period: int = -1,
    max_steps: Optional[int] = None,
    display_progress: bool = False,
    *,
    model_reporters: Optional[Mapping[str, Reporter]] = None,
    agent_reporters: Optional[Mapping[str, Reporter]] = None,
    seed: Optional[int] = None,
) -> pd.DataFrame:
    """Mesa's ``batch_run`` over a scenario file.

    Every combination of ``parameters`` (key paths; a list is a set of
    values, anything else one value) runs ``iterations`` times with seeds
    ``seed, seed + 1, ...`` (default: the scenario's seed), each for
    ``max_steps`` steps (default: the scenario's ``steps``), on
    ``number_processes`` worker threads (``None``: all cores; each run
    single-threaded, the GIL released). Rows are collected every
    ``data_collection_period`` steps (``-1``: the last step only), with
    ``RunId``, ``iteration``, ``Step``, the parameters and every metric (or
    ``model_reporters``); with ``agent_reporters`` there is one row per
    agent (``AgentID``). The result does not depend on
    ``number_processes``: every run is deterministic.
    """
    from . import Simulation

    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    if data_collection_period == 0 or data_collection_period < -1:
        raise ValueError("data_collection_period must be -1 (last step) or a positive number of steps")
    params = dict(parameters or {})
    keys = list(params)
    combos = list(itertools.product(*[_values(params[k]) for k in keys])) if keys else [()]
    jobs = []
    for combo in combos:
        for it in range(iterations):
            jobs.append((len(jobs), it, dict(zip(keys, combo))))
    workers = number_processes or os.cpu_count() or 1
    threads = 1 if workers > 1 else None

    def one(job):
        run_id, it, values = job
        overrides = dict(values)
        if max_steps is not None:
            overrides["steps"] = int(max_steps)
        probe = Simulation.from_file(scenario, threads=threads, set=overrides, seed=seed)
        sim = probe
        if it:
            sim.reset(probe.seed + it)
        dc = DataCollector(model_reporters, agent_reporters,
                           agent_every=data_collection_period if data_collection_period > 0 else 1)
        period = data_collection_period
        last = sim.steps

        def wanted(step):
            return step == last or (period > 0 and step % period == 0)

        if wanted(0):
            dc.collect(sim)
        while sim.step_index < last:
            sim.step()
            if wanted(sim.step_index):
                dc.collect(sim)
        if model_reporters:
            rows = dc.get_model_vars_dataframe().reset_index()
        else:
            full = sim.timeseries()
            rows = full[full["step"].map(wanted)].rename(columns={"step": "Step"})
        if agent_reporters:
            agents = dc.get_agent_vars_dataframe().reset_index()
            rows = agents.merge(rows, on="Step", how="left")
        rows.insert(0, "RunId", run_id)
        rows.insert(1, "iteration", it)
        for j, (k, v) in enumerate(values.items()):
            rows.insert(2 + j, k, v)
        sim.close()
        return rows

    if workers == 1:
        frames = [one(j) for j in jobs]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            frames = list(pool.map(one, jobs))
    if display_progress:
        print(f"batch_run: {len(jobs)} runs of {Path(scenario).name}")
    df = pd.concat(frames, ignore_index=True)
    cols = ["RunId", "iteration", "Step"] + keys
    return df[cols + [c for c in df.columns if c not in cols]]
