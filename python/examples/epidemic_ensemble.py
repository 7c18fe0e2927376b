"""An epidemic ensemble from Python, plotted with matplotlib.

The well-mixed SEIR model of scenarios/seir-well-mixed.toml (100,000
agents, R0 = 2.5) over 20 seeds: every
run's daily new infections, their median and 5-95% band, and the share
ever infected per run. Run from the repository root:

    python python/examples/epidemic_ensemble.py [--runs 20] [--out ensemble.png]   (Python 3.11+: tomllib)
"""

import argparse
import math
import tomllib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import myriad  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--out", default="ensemble.png")
    args = ap.parse_args()

    scenario = ROOT / "scenarios" / "seir-well-mixed.toml"
    runs = myriad.ensemble(scenario, runs=args.runs)
    bands = myriad.ensemble(scenario, runs=args.runs, bands=True)
    agents = int(runs[runs["step"] == 0][["S", "E", "I", "R"]].sum(axis=1).iloc[0])

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    for _, run in runs.groupby("seed"):
        ax.plot(run["step"], run["new_infections"], color="0.8", lw=0.7)
    ax.fill_between(bands["step"], bands["new_infections_p05"], bands["new_infections_p95"],
                    alpha=0.3, label="5-95% band")
    ax.plot(bands["step"], bands["new_infections_median"], lw=2, label="median")
    ax.set_xlabel("day")
    ax.set_ylabel("new infections")
    ax.set_title(f"SEIR, {agents:,} agents, {args.runs} seeds")
    ax.legend()

    ax.set_xlim(0, 100)

    # Well mixed: R0 = beta x N x infectious period, and the final size z
    # solves z = 1 - exp(-R0 z) (Kermack-McKendrick).
    params = tomllib.loads(scenario.read_text())["params"]
    r0 = params["beta"] * agents * params["infectious_period"]
    z = 0.5
    for _ in range(200):
        z = 1 - math.exp(-r0 * z)
    last = runs.groupby("seed").last()
    attack = last["R"] / agents
    bx.hist(attack, bins=10)
    bx.axvline(z, color="k", ls="--", label=f"theory, R0 = {r0:.2f}: {z:.4f}")
    bx.legend()
    bx.set_xlabel("share ever infected (final R / N)")
    bx.set_ylabel("runs")
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"{args.runs} runs; share ever infected {attack.median():.4f} "
          f"(range {attack.min():.4f}-{attack.max():.4f}; final-size theory {z:.4f}); plot in {args.out}")


if __name__ == "__main__":
    main()
