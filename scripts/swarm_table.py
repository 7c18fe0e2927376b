#!/usr/bin/env python3
"""Markdown table of `myriad evaluate` results (evaluation.json files):
mean return per agent with its 95% interval for the rule, the controller
and the policy at each swarm size, and the paired difference of the policy
against the controller.

    python3 scripts/swarm_table.py runs/eval-vicsek/evaluation.json [more.json ...]
"""
import json
import sys


def main(paths):
    comparisons = []
    for p in paths:
        with open(p) as f:
            comparisons.extend(json.load(f))
    comparisons.sort(key=lambda c: c["agents"])
    print("| agents | seeds | uncontrolled (rule) | controller | policy | policy - controller (paired) | final order: rule / controller / policy |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    cell = lambda e: f"{e['mean']:.2f} [{e['mean'] - e['half_width']:.2f}, {e['mean'] + e['half_width']:.2f}]"
    for c in comparisons:
        by = {e["decisions"]: e for e in c["estimates"]}
        diff = {d["label"]: d for d in c["differences"]}
        metric = by["rule"]["metric"]
        print(
            f"| {c['agents']:,} | {len(c['seeds'])} | {cell(by['rule'])} | {cell(by['controller'])} | "
            f"{cell(by['policy'])} | {cell(diff['policy - controller'])} | "
            f"{metric} {by['rule']['final_metric']:.3f} / {by['controller']['final_metric']:.3f} / {by['policy']['final_metric']:.3f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
