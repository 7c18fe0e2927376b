"""Benchmarks of the Python package (figures in BENCHMARKS.md).

1. Python overhead per step of a Vicsek swarm driven from Python through
   the environment (numpy buffers): wall time of `Env.step` from Python
   against the time the same call spent inside the engine's step.
2. Environment steps per second of myriad's vector environment against a
   vectorised numpy/scipy implementation of the same task (neighbours from
   scipy's periodic cKDTree), same density, noise and observation.
3. Time to hand an agent column of 1M and 10M rows to numpy (zero-copy:
   should not grow with the size).

    python python/benchmarks/bench.py [--repeat 3] [--sizes 1000,10000,100000]
"""

import argparse
import time

import numpy as np

import myriad
from myriad.gym import VectorEnv

PARAMS = {"density": 4.0, "noise": 2.0, "max_turn": np.pi / 4, "turn_cost": 0.5}


def task(n, steps=100):
    return {"model": "vicsek", "seed": 1, "steps": steps, "population": {"size": n}, "params": dict(PARAMS)}


def overhead(n, steps, repeat):
    env = myriad.Env(scenario=task(n, steps=steps + 1), threads=2)
    obs = np.zeros((n, env.obs_dim), np.float32)
    rew = np.zeros(n, np.float32)
    actions = np.zeros((n, 1), np.float32)
    out = []
    for _ in range(repeat):
        env.reset(1, obs)
        wall = inside = 0.0
        for _ in range(steps):
            t = time.perf_counter()
            env.step(actions, obs, rew)
            wall += time.perf_counter() - t
            inside += env.last_step_seconds
        out.append((wall / steps, inside / steps))
    return out


class NumpyVicsek:
    """The Vicsek task in numpy + scipy: periodic box, radius 1, heading noise
    uniform in [-eta/2, eta/2], bounded turn, the same 11 observation
    components (count, mean cos/sin of relative headings, 8 sectors) and the
    reward mean cos - cost x turn²."""

    def __init__(self, n, seed):
        from scipy.spatial import cKDTree  # noqa: F401

        self.n = n
        self.L = np.sqrt(n / PARAMS["density"])
        self.rng = np.random.default_rng(seed)
        self.pos = self.rng.uniform(0, self.L, size=(n, 2))
        self.theta = self.rng.uniform(-np.pi, np.pi, size=n)

    def observe(self):
        from scipy.spatial import cKDTree

        tree = cKDTree(self.pos, boxsize=self.L)
        pairs = tree.query_pairs(1.0, output_type="ndarray")
        i = np.concatenate([pairs[:, 0], pairs[:, 1]])
        j = np.concatenate([pairs[:, 1], pairs[:, 0]])
        rel = np.angle(np.exp(1j * (self.theta[j] - self.theta[i])))
        count = np.bincount(i, minlength=self.n).astype(np.float64)
        c = np.bincount(i, np.cos(rel), minlength=self.n)
        s = np.bincount(i, np.sin(rel), minlength=self.n)
        k = np.maximum(count, 1)
        sector = ((rel + np.pi) / (2 * np.pi) * 8).astype(int) % 8
        hist = np.zeros((self.n, 8))
        np.add.at(hist, (i, sector), 1)
        obs = np.column_stack([count / 10, c / k, s / k, hist / k[:, None]]).astype(np.float32)
        return obs, c / k

    def step(self, turn):
        turn = np.clip(turn.reshape(-1), -PARAMS["max_turn"], PARAMS["max_turn"])
        noise = self.rng.uniform(-PARAMS["noise"] / 2, PARAMS["noise"] / 2, size=self.n)
        self.theta = np.angle(np.exp(1j * (self.theta + turn + noise)))
        self.pos = (self.pos + 0.03 * np.column_stack([np.cos(self.theta), np.sin(self.theta)])) % self.L
        obs, align = self.observe()
        return obs, (align - PARAMS["turn_cost"] * turn ** 2).astype(np.float32)


def steps_per_second(n, steps, repeat):
    mine, ref = [], []
    for _ in range(repeat):
        env = VectorEnv(task(n, steps=steps + 1), threads=2)
        env.reset(seed=1)
        a = np.zeros((n, 1), np.float32)
        t = time.perf_counter()
        for _ in range(steps):
            env.step(a)
        mine.append(n * steps / (time.perf_counter() - t))
        sim = NumpyVicsek(n, 1)
        sim.observe()
        t = time.perf_counter()
        for _ in range(steps):
            sim.step(a)
        ref.append(n * steps / (time.perf_counter() - t))
    return mine, ref


def handover(n, repeat):
    sim = myriad.Simulation.from_dict(task(n, steps=1), threads=2)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        col = sim.column("x")
        times.append(time.perf_counter() - t)
        assert len(col) == n and not col.flags.owndata
        del col
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sizes", default="1000,10000,100000")
    args = ap.parse_args()

    print("1. Python overhead per step, Vicsek, 1,000,000 agents, 2 threads (20 steps):")
    for wall, inside in overhead(1_000_000, 20, args.repeat):
        print(f"   step from Python {wall * 1e3:8.2f} ms, inside the engine {inside * 1e3:8.2f} ms, "
              f"overhead {(wall - inside) * 1e3:6.2f} ms ({(wall - inside) / wall:.1%})")

    print("2. Vector environment vs numpy/scipy reference, agent-steps per second (50 steps):")
    for n in [int(x) for x in args.sizes.split(",")]:
        mine, ref = steps_per_second(n, 50, args.repeat)
        print(f"   N = {n:>9,}: myriad {min(mine):>12,.0f} - {max(mine):>12,.0f}   "
              f"numpy {min(ref):>12,.0f} - {max(ref):>12,.0f}   ratio {min(mine) / max(ref):.0f}-{max(mine) / min(ref):.0f}x")

    print("3. Handing the column 'x' (float64) to numpy:")
    for n in (1_000_000, 10_000_000):
        t = handover(n, max(args.repeat, 7))
        print(f"   {n:>11,} rows: first call {t[0] * 1e6:6.1f} us, then {min(t[1:]) * 1e6:5.1f} - {max(t[1:]) * 1e6:5.1f} us")


if __name__ == "__main__":
    main()
