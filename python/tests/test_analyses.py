"""The analyses from Python return DataFrames with the command line's
numbers."""

import numpy as np
import pandas as pd
import pytest

import myriad
from conftest import SMALL_SIR


def test_ensemble_rows_and_bands_agree(small_sir_file, myriad_bin, tmp_path):
    import subprocess

    runs = myriad.ensemble(small_sir_file, runs=5, threads=2)
    assert sorted(runs["seed"].unique()) == [3, 4, 5, 6, 7]
    assert len(runs) == 5 * 61
    # Every run is the run a Simulation with that seed gives.
    sim = myriad.Simulation.from_file(small_sir_file, seed=5)
    sim.run()
    one = runs[runs["seed"] == 5].drop(columns="seed").reset_index(drop=True)
    pd.testing.assert_frame_equal(one, sim.timeseries())
    bands = myriad.ensemble(small_sir_file, runs=5, threads=2, bands=True)
    # The median and the 5-95% band are NumPy's default quantiles (type 7).
    by_step = runs.groupby("step")["I"]
    assert np.allclose(bands["I_median"], by_step.median())
    assert np.allclose(bands["I_p05"], by_step.quantile(0.05))
    assert np.allclose(bands["I_p95"], by_step.quantile(0.95))
    # And the numbers of `myriad ensemble`'s ensemble.csv.
    out = tmp_path / "ens"
    subprocess.run([myriad_bin, "ensemble", str(small_sir_file), "--runs", "5", "--out", str(out)],
                   check=True, capture_output=True)
    cli = pd.read_csv(out / "ensemble.csv")
    pd.testing.assert_frame_equal(bands.astype(float), cli.astype(float))


def test_ensemble_of_a_dict_and_bad_runs():
    df = myriad.ensemble(SMALL_SIR, runs=2)
    assert len(df) == 2 * 61
    with pytest.raises(myriad.InputError, match="at least 1"):
        myriad.ensemble(SMALL_SIR, runs=0)


def test_sweep_covers_the_grid(small_sir_file):
    df = myriad.sweep(small_sir_file, {"params.beta": [0.0, 0.1], "params.infectious_period": [3, 6]}, seeds=2)
    assert len(df) == 2 * 2 * 2
    assert set(df["params.beta"]) == {0.0, 0.1}
    no_spread = df[df["params.beta"] == 0.0]
    spread = df[df["params.beta"] == 0.1]
    outcome = [c for c in df.columns if "new_infections" in c][0]
    assert (no_spread[outcome] <= spread[outcome].min()).all()
    with pytest.raises(myriad.ScenarioError, match="nonsense"):
        myriad.sweep(small_sir_file, {"params.nonsense": [1, 2]})


def test_counterfactual_returns_the_difference_table(small_sir_file, tmp_path):
    df = myriad.counterfactual(small_sir_file, {"params.beta": 0.02}, runs=4, out=tmp_path / "cf", threads=2)
    assert len(df) > 0
    assert (tmp_path / "cf" / "summary.json").is_file()
    assert df.attrs["out"] == str(tmp_path / "cf")
    with pytest.raises(myriad.InputError, match="change"):
        myriad.counterfactual(small_sir_file, {}, runs=2, out=tmp_path / "cf2")


def test_calibrate_recovers_a_known_series(small_sir_file, tmp_path):
    # Observations made by the model itself at beta = 0.05: weekly new infections.
    sim = myriad.Simulation.from_file(small_sir_file)
    sim.run()
    daily = sim.timeseries()["new_infections"].iloc[1:].to_numpy()
    weekly = daily[: (len(daily) // 7) * 7].reshape(-1, 7).sum(axis=1)
    observed = tmp_path / "observed.csv"
    pd.DataFrame({"cases": weekly}).to_csv(observed, index=False)
    df = myriad.calibrate(small_sir_file, observed=observed, param="beta", param_max=0.3, initial="none",
                          out=tmp_path / "cal", threads=2)
    assert len(df) == len(weekly)
    assert (tmp_path / "cal" / "calibration.json").is_file()
    # Same seed (common random numbers): the true beta reproduces the series,
    # so in every week with enough cases to inform it the fit lands within
    # 10% of 0.05 and the fitted counts match the observed within 5%.
    busy = df[df["observed"] >= 50]
    assert len(busy) >= 3
    assert ((busy["beta"] - 0.05).abs() < 0.005).all(), busy
    assert ((busy["fitted"] - busy["observed"]).abs() <= 0.05 * busy["observed"]).all()
