"""The examples run (shortened where they take options)."""

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(name, *args, cwd):
    r = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=cwd, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_epidemic_ensemble_example(tmp_path):
    out = run("epidemic_ensemble.py", "--runs", "4", "--out", str(tmp_path / "e.png"), cwd=tmp_path)
    assert (tmp_path / "e.png").stat().st_size > 10_000
    assert "share ever infected" in out


def test_ppo_example(tmp_path):
    out = run("train_vicsek_ppo.py", "--iterations", "3", "--eval-seeds", "2", cwd=tmp_path)
    assert "iteration   3" in out and "10,000 agents under the learned policy" in out


def test_mesa_example(tmp_path):
    out = run("mesa_batch_run.py", cwd=tmp_path)
    assert "share ever infected by beta" in out and "stage counts at step 40" in out
