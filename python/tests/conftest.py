"""Shared fixtures: the repository's scenarios and the command-line binary
(built by `cargo test` before the Python tests in scripts/test)."""

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"

# A small SIR epidemic: 2,000 agents, 60 days (fast enough for many runs).
SMALL_SIR = {
    "model": "sir",
    "seed": 3,
    "steps": 60,
    "population": {"size": 2000},
    "params": {"beta": 0.05, "infectious_period": 5, "initial_infected": 10},
    "layers": [{"name": "contacts", "type": "erdos_renyi", "mean_degree": 8}],
}


def vicsek(size=100, steps=100, **params):
    """The Vicsek alignment task of scenarios/vicsek-task.toml, resized."""
    p = {"density": 4.0, "noise": 2.0, "max_turn": 0.7853981633974483, "turn_cost": 0.5}
    p.update(params)
    return {"model": "vicsek", "seed": 1, "steps": steps, "population": {"size": size}, "params": p}


@pytest.fixture
def small_sir_file(tmp_path):
    text = """model = "sir"
seed = 3
steps = 60

[population]
size = 2000

[params]
beta = 0.05
infectious_period = 5
initial_infected = 10

[[layers]]
name = "contacts"
type = "erdos_renyi"
mean_degree = 8
"""
    path = tmp_path / "small-sir.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def myriad_bin():
    """The `myriad` binary of this checkout, or skip."""
    for candidate in [os.environ.get("MYRIAD_BIN"), ROOT / "target/debug/myriad", shutil.which("myriad")]:
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.skip("the myriad binary is not built (cargo build) and MYRIAD_BIN is not set")
