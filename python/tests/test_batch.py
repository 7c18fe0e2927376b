"""Mesa-style batch_run and DataCollector."""

import numpy as np
import pandas as pd
import pytest

import myriad
from conftest import SMALL_SIR


def test_batch_run_has_meas_shape_and_does_not_depend_on_processes(small_sir_file):
    params = {"params.beta": [0.02, 0.08], "params.infectious_period": 5}
    one = myriad.batch_run(small_sir_file, parameters=params, iterations=3, number_processes=1)
    two = myriad.batch_run(small_sir_file, parameters=params, iterations=3, number_processes=2)
    pd.testing.assert_frame_equal(one, two)
    assert list(one.columns[:5]) == ["RunId", "iteration", "Step", "params.beta", "params.infectious_period"]
    assert len(one) == 2 * 3 and (one["Step"] == 60).all()
    assert sorted(one["RunId"]) == list(range(6))
    # Iteration k is seed scenario + k.
    sim = myriad.Simulation.from_file(small_sir_file, seed=3 + 2, set={"params.beta": 0.08})
    sim.run()
    row = one[(one["params.beta"] == 0.08) & (one["iteration"] == 2)].iloc[0]
    assert row["R"] == sim.timeseries()["R"].iloc[-1]


def test_batch_run_collection_period_and_max_steps(small_sir_file):
    df = myriad.batch_run(small_sir_file, parameters={"params.beta": 0.05}, max_steps=20,
                          data_collection_period=5)
    assert list(df["Step"]) == [0, 5, 10, 15, 20]
    with pytest.raises(ValueError):
        myriad.batch_run(small_sir_file, data_collection_period=0)


def test_batch_run_with_reporters(small_sir_file):
    df = myriad.batch_run(small_sir_file, parameters={"params.beta": [0.05]}, max_steps=10,
                          model_reporters={"infectious": "I", "share": lambda s: dict(s.row())["I"] / s.agents},
                          agent_reporters={"stage": "stage"})
    assert len(df) == 2000  # one row per agent at the last step
    assert set(df.columns) >= {"AgentID", "stage", "infectious", "share"}
    assert (df["stage"] == 2).sum() == df["infectious"].iloc[0]


def test_data_collector_like_mesas():
    sim = myriad.Simulation.from_dict(SMALL_SIR)
    dc = myriad.DataCollector(model_reporters={"I": "I"}, agent_reporters={"stage": "stage"}, agent_every=10)
    sim.run(collector=dc)
    model = dc.get_model_vars_dataframe()
    assert list(model.index) == list(range(61))
    assert (model["I"].to_numpy() == sim.timeseries()["I"].to_numpy()).all()
    agents = dc.get_agent_vars_dataframe()
    assert agents.index.names == ["Step", "AgentID"]
    assert len(agents) == 7 * 2000  # steps 0, 10, ..., 60
    infectious_at_10 = (agents.loc[10]["stage"] == 2).sum()
    assert infectious_at_10 == model.loc[10, "I"]
    t = dc.agent_table()
    assert t.num_rows == 7 * 2000 and t.column_names == ["Step", "AgentID", "stage"]
    with pytest.raises(KeyError, match="no metric 'nope'"):
        myriad.DataCollector(model_reporters={"x": "nope"}).collect(sim)
