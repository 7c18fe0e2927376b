"""myriad: population models of millions of agents from Python.

The engine is Rust (the ``myriad._myriad`` extension); this package adds
pandas tables, learning environments (:mod:`myriad.gym`,
:mod:`myriad.pettingzoo`) and Mesa-style batch runs
(:func:`batch_run`, :class:`DataCollector`).

Quick start::

    import myriad
    sim = myriad.Simulation.from_file("scenarios/sir-erdos-renyi.toml", seed=1, threads=2)
    sim.run()
    df = sim.timeseries()            # pandas DataFrame, one row per step
    state = sim.column("state")      # numpy array over the engine's memory
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import pandas as pd

from . import _myriad
from ._myriad import Env, InputError, RunError, ScenarioError, Snapshot, Table, __version__
from .batch import DataCollector, batch_run

__all__ = [
    "Simulation",
    "Snapshot",
    "Table",
    "Env",
    "ScenarioError",
    "InputError",
    "RunError",
    "ensemble",
    "sweep",
    "counterfactual",
    "calibrate",
    "batch_run",
    "DataCollector",
    "models",
    "__version__",
]


def _table_frame(t: Table) -> pd.DataFrame:
    df = pd.DataFrame(t.to_dict())
    if "date" in df.columns:
        df["date"] = pd.to_datetime(df["date"], errors="coerce")
    return df


class Simulation(_myriad.Simulation):
    """A scenario built and stepped from Python.

    Build one with :meth:`from_file`, :meth:`from_toml` or :meth:`from_dict`.
    Steps run in Rust with the GIL released; Ctrl-C stops between steps and
    keeps what is done. Agent columns, observations and rewards are numpy
    arrays over the engine's memory (read-only, valid until the next step).
    """

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike,
        *,
        seed: Optional[int] = None,
        threads: Optional[int] = None,
        set: Optional[Mapping[str, Any]] = None,
        policy: Optional[Callable] = None,
        rule: bool = False,
    ) -> "Simulation":
        """A simulation of the scenario file ``path``; ``set`` holds
        ``--set``-style overrides such as ``{"params.beta": 0.3}``."""
        return cls(file=Path(path), seed=seed, threads=threads, set=dict(set or {}), policy=policy, rule=rule)

    @classmethod
    def from_toml(
        cls,
        text: str,
        *,
        base_dir: str | os.PathLike = ".",
        seed: Optional[int] = None,
        threads: Optional[int] = None,
        set: Optional[Mapping[str, Any]] = None,
        policy: Optional[Callable] = None,
        rule: bool = False,
    ) -> "Simulation":
        """A simulation of a scenario given as TOML text; relative paths
        in it are read from ``base_dir``."""
        return cls(
            toml=text, base_dir=Path(base_dir), seed=seed, threads=threads, set=dict(set or {}), policy=policy, rule=rule
        )

    @classmethod
    def from_dict(
        cls,
        scenario: Mapping[str, Any],
        *,
        base_dir: str | os.PathLike = ".",
        seed: Optional[int] = None,
        threads: Optional[int] = None,
        set: Optional[Mapping[str, Any]] = None,
        policy: Optional[Callable] = None,
        rule: bool = False,
    ) -> "Simulation":
        """A simulation of a scenario given as a dict (the TOML's tables as
        nested dicts)."""
        return cls(
            scenario=dict(scenario),
            base_dir=Path(base_dir),
            seed=seed,
            threads=threads,
            set=dict(set or {}),
            policy=policy,
            rule=rule,
        )

    def run(self, until: Optional[int] = None, *, collector: Optional[DataCollector] = None) -> int:
        """Step to step ``until`` (default: the scenario's ``steps``).
        With a :class:`DataCollector`, it collects at the current step and
        after every step (Mesa's ``datacollector.collect(model)``)."""
        if collector is None:
            return super().run(until)
        until = self.steps if until is None else until
        collector.collect(self)
        while self.step_index < until:
            self.step()
            collector.collect(self)
        return self.step_index

    def timeseries(self) -> pd.DataFrame:
        """Every step computed so far (step 0 first) as a DataFrame: ``step``,
        ``date`` for dated scenarios, then the metrics."""
        return _table_frame(self.table())

    def columns(self) -> dict:
        """Every per-agent column, as read-only numpy arrays over the
        engine's memory (see :meth:`column`)."""
        return {name: self.column(name) for name in self.column_names()}

    def report(self) -> Optional[dict]:
        """The decision provider's counters (LLM calls, cache hits, policy
        steps), or None under the model's rule."""
        text = self.provider_report()
        return None if text is None else json.loads(text)

    def __enter__(self) -> "Simulation":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _given(scenario) -> dict:
    if isinstance(scenario, Mapping):
        return {"scenario": dict(scenario)}
    return {"file": Path(scenario)}


def ensemble(
    scenario,
    *,
    runs: int = 10,
    seed: Optional[int] = None,
    threads: Optional[int] = None,
    set: Optional[Mapping[str, Any]] = None,
    bands: bool = False,
) -> pd.DataFrame:
    """The scenario over seeds ``seed, seed + 1, ...`` (``myriad ensemble``,
    in memory). Returns every run's rows (``seed``, ``step``, metrics), or
    with ``bands=True`` the median, 5-95% band and mean of every metric per
    step (the numbers of the command line's ensemble.csv)."""
    t = _myriad.ensemble(**_given(scenario), runs=runs, seed=seed, threads=threads, set=dict(set or {}), bands=bands)
    return _table_frame(t)


def sweep(
    scenario: str | os.PathLike,
    grid: Mapping[str, Any],
    *,
    seeds: int = 1,
    seed: Optional[int] = None,
    threads: Optional[int] = None,
    set: Optional[Mapping[str, Any]] = None,
) -> pd.DataFrame:
    """``myriad sweep``: every combination of ``grid`` (``{"params.beta":
    [0.2, 0.3]}``) times ``seeds`` seeds, the model's rule deciding; one row
    per run with the grid values, the seed and every outcome."""
    t = _myriad.sweep(Path(scenario), dict(grid), seeds=seeds, seed=seed, threads=threads, set=dict(set or {}))
    df = _table_frame(t)
    for key in grid:
        if key in df.columns:
            try:
                df[key] = pd.to_numeric(df[key])
            except (ValueError, TypeError):
                pass
    return df


def counterfactual(
    scenario: str | os.PathLike,
    change: Mapping[str, Any],
    *,
    runs: int = 10,
    seed: Optional[int] = None,
    threads: Optional[int] = None,
    set: Optional[Mapping[str, Any]] = None,
    out: Optional[str | os.PathLike] = None,
    force: bool = False,
) -> pd.DataFrame:
    """``myriad counterfactual``: paired runs with and without ``change``.
    Returns difference.csv (per outcome: baseline, counterfactual, mean
    paired difference and its 95% interval); the folder with the plots and
    summary is ``df.attrs["out"]``."""
    folder = _myriad.counterfactual(
        Path(scenario),
        dict(change),
        runs=runs,
        seed=seed,
        threads=threads,
        set=dict(set or {}),
        out=None if out is None else Path(out),
        force=force,
    )
    df = pd.read_csv(Path(folder) / "difference.csv")
    df.attrs["out"] = folder
    return df


def calibrate(scenario: str | os.PathLike, **options) -> pd.DataFrame:
    """``myriad calibrate``: fit a parameter week by week to an observed
    series. Options are the command line's (``target``, ``observed``,
    ``column``, ``metric``, ``param``, ``param_max``, ``smoothness``,
    ``initial``, ``weeks``, ``seeds``, ``seed``, ``threads``, ``set``,
    ``search_scale``, ``refine``, ``out``, ``force``). Returns
    calibration.csv (week, observed, fitted value, model); the folder with
    fitted.toml and the plots is ``df.attrs["out"]``."""
    if "set" in options:
        options["set"] = dict(options["set"] or {})
    for key in ("out", "observed"):
        if options.get(key) is not None:
            options[key] = Path(options[key])
    folder = _myriad.calibrate(Path(scenario), **options)
    df = pd.read_csv(Path(folder) / "calibration.csv")
    df.attrs["out"] = folder
    return df


def models() -> pd.DataFrame:
    """The models in this build, with one line each."""
    return pd.DataFrame(_myriad.models(), columns=["model", "summary"])
