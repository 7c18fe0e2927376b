"""Training a policy for the Vicsek alignment task from Python: a small PPO
loop in numpy over myriad's Gymnasium vector environment, then the learned
policy driving a 10,000-agent swarm as a Python callable.

Each agent sees how many neighbours it has within radius 1, their mean
heading relative to its own (cosine and sine) and a histogram of their
relative headings, and chooses a turn of at most 45 degrees; its reward is
its alignment with the neighbours minus 0.5 x turn² (scenarios/vicsek-task.toml).
The policy is linear-Gaussian (one weight per observation component): small
enough to train in seconds on a laptop, and any PyTorch or JAX policy plugs
in the same way (a function from a batch of observations to a batch of
actions).

    python python/examples/train_vicsek_ppo.py [--iterations 30]
"""

import argparse
from pathlib import Path

import numpy as np

import myriad
from myriad.gym import VectorEnv

ROOT = Path(__file__).resolve().parents[2]
TASK = ROOT / "scenarios" / "vicsek-task.toml"


class Adam:
    def __init__(self, shapes, lr):
        self.lr, self.t = lr, 0
        self.m = [np.zeros(s) for s in shapes]
        self.v = [np.zeros(s) for s in shapes]

    def step(self, params, grads):
        self.t += 1
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m[:] = 0.9 * m + 0.1 * g
            v[:] = 0.999 * v + 0.001 * g * g
            mh, vh = m / (1 - 0.9 ** self.t), v / (1 - 0.999 ** self.t)
            p += self.lr * mh / (np.sqrt(vh) + 1e-8)  # ascent


def rollout(env, w, b, log_std, rng, seed):
    obs, _ = env.reset(seed=seed)
    lo, hi = env.single_action_space.low, env.single_action_space.high
    O, A, R = [], [], []
    while True:
        mean = obs @ w + b
        a = mean + np.exp(log_std) * rng.standard_normal(mean.shape)
        O.append(obs.copy())
        A.append(a)
        obs, rew, term, trunc, _ = env.step(np.clip(a, lo, hi).astype(np.float32))
        R.append(rew.copy())
        if trunc.all() or term.all():
            return np.array(O), np.array(A), np.array(R)


def advantages(R, gamma):
    G = np.zeros_like(R)
    acc = np.zeros(R.shape[1])
    for t in range(len(R) - 1, -1, -1):
        acc = R[t] + gamma * acc
        G[t] = acc
    adv = G - G.mean(axis=1, keepdims=True)  # baseline: the swarm's mean at each step
    return adv / (adv.std() + 1e-8)


def evaluate(policy, seeds, agents=100):
    """Mean return per agent over an episode, acting with `policy`, on held-out seeds."""
    returns = []
    for seed in seeds:
        env = VectorEnv(TASK, set={"population.size": agents})
        obs, _ = env.reset(seed=seed)
        lo, hi = env.single_action_space.low, env.single_action_space.high
        total = np.zeros(env.num_envs)
        while True:
            obs, rew, term, trunc, _ = env.step(np.clip(policy(obs), lo, hi).astype(np.float32))
            total += rew
            if trunc.all():
                break
        returns.append(total.mean())
    return float(np.mean(returns)), float(np.std(returns, ddof=1) / np.sqrt(len(returns)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--eval-seeds", type=int, default=8)
    args = ap.parse_args()

    env = VectorEnv(TASK, threads=2)
    d = env.single_observation_space.shape[0]
    rng = np.random.default_rng(0)
    w, b, log_std = np.zeros((d, 1)), np.zeros(1), np.full(1, np.log(0.3))
    opt = Adam([w.shape, b.shape, log_std.shape], lr=0.02)
    eps, gamma = 0.2, 0.9
    for it in range(args.iterations):
        O, A, R = rollout(env, w, b, log_std, rng, seed=it)
        adv = advantages(R, gamma).reshape(-1, 1)
        O, A = O.reshape(-1, d), A.reshape(-1, 1)
        old = -0.5 * ((A - (O @ w + b)) / np.exp(log_std)) ** 2 - log_std
        for _ in range(4):
            std = np.exp(log_std)
            mean = O @ w + b
            z = (A - mean) / std
            logp = -0.5 * z ** 2 - log_std
            ratio = np.exp(logp - old)
            live = ~(((adv > 0) & (ratio > 1 + eps)) | ((adv < 0) & (ratio < 1 - eps)))
            coef = (live * adv * ratio) / len(A)
            g_mean = coef * z / std
            grads = [O.T @ g_mean, g_mean.sum(axis=0), (coef * (z ** 2 - 1)).sum(axis=0)]
            opt.step([w, b, log_std], grads)
        print(f"iteration {it + 1:3d}: return per agent {R.sum(axis=0).mean():7.2f}, std {np.exp(log_std)[0]:.3f}")

    held_out = range(1_000_000, 1_000_000 + args.eval_seeds)
    learned = evaluate(lambda o: o @ w + b, held_out)
    straight = evaluate(lambda o: np.zeros((len(o), 1)), held_out)
    # The model's hand-written controller: turn toward the neighbours' mean heading.
    toward = evaluate(lambda o: np.arctan2(o[:, 2:3], o[:, 1:2]) * (o[:, 1:3] != 0).any(axis=1, keepdims=True),
                      held_out)
    print(f"held-out return per agent ({args.eval_seeds} seeds, ± standard error): "
          f"learned {learned[0]:.2f} ± {learned[1]:.2f}, controller {toward[0]:.2f} ± {toward[1]:.2f}, "
          f"no turning {straight[0]:.2f} ± {straight[1]:.2f}")

    # The learned policy as a Python callable driving a larger swarm.
    sim = myriad.Simulation.from_file(TASK, set={"population.size": 10_000}, policy=lambda o: o @ w + b)
    sim.run()
    last = sim.timeseries().iloc[-1].drop("step")
    print("10,000 agents under the learned policy, last step: " + ", ".join(f"{k} {v:.3f}" for k, v in last.items()))


if __name__ == "__main__":
    main()
