#!/usr/bin/env python3
"""Score a dated covid run of the whole city against the issue-13 targets.

Usage: python3 scripts/nyc_targets.py RUN_FOLDER
(RUN_FOLDER from `myriad run scenarios/covid-nyc-fitted.toml`). Reads
weekly.csv, timeseries.csv and monthly.csv; the observed columns are the
Health Department's (already in the run's files). Standard library only.
"""
import csv
import math
import sys
from pathlib import Path

BOROUGHS = ["BK", "BX", "MN", "QN", "SI"]
AGES = ["U19", "20t29", "30t39", "40t49", "50t64", "65A"]
# dohmh_totals_by_group.csv: deaths at 65-74 and 75+ over all deaths by age.
OBSERVED_65_SHARE = (10655 + 25604) / (67 + 83 + 434 + 1068 + 2667 + 6569 + 10655 + 25604)


def rmsle(pairs):
    pairs = list(pairs)
    return math.sqrt(sum((math.log1p(m) - math.log1p(o)) ** 2 for m, o in pairs) / len(pairs))


def main(run):
    run = Path(run)
    weeks = list(csv.DictReader(open(run / "weekly.csv")))
    print("weekly reported cases, RMSE of ln(1 + count) over", len(weeks), "weeks:")
    for b in BOROUGHS:
        e = rmsle((float(w[f"new_reported_cases_{b}"]), float(w[f"observed_cases_{b}"])) for w in weeks)
        print(f"  {b}: {e:.3f}")
    city = rmsle(
        (float(w["new_reported_cases"]), sum(float(w[f"observed_cases_{b}"]) for b in BOROUGHS)) for w in weeks
    )
    print(f"  city: {city:.3f}")
    days = {r["date"]: r for r in csv.DictReader(open(run / "timeseries.csv"))}
    for date, observed in [("2020-08-31", 23754), ("2021-02-28", 29932)]:
        d = float(days[date]["D"])
        print(f"deaths to {date}: {d:.0f} (observed {observed}, {100 * (d / observed - 1):+.1f}%)")
    last = days[max(days)]
    by_age = [float(last[f"deaths_{a}"]) for a in AGES]
    print(f"share of deaths at 65+: {100 * by_age[-1] / sum(by_age):.1f}% (observed {100 * OBSERVED_65_SHARE:.1f}%)")
    first = weeks[:20]
    model = max(first, key=lambda w: float(w["new_reported_cases"]))["week_start"]
    obs = max(first, key=lambda w: sum(float(w[f"observed_cases_{b}"]) for b in BOROUGHS))["week_start"]
    print(f"first-wave peak week: model {model}, observed {obs}")
    months = list(csv.DictReader(open(run / "monthly.csv")))
    print("monthly unemployment from July 2020, RMSE in points:")
    for b in BOROUGHS:
        pairs = [
            (float(m[f"unemployment_{b}"]), float(m[f"observed_unemployment_{b}"]))
            for m in months
            if m[f"observed_unemployment_{b}"]
        ]
        e = math.sqrt(sum((x - y) ** 2 for x, y in pairs) / len(pairs))
        print(f"  {b}: {e:.2f} ({len(pairs)} months)")


if __name__ == "__main__":
    main(sys.argv[1])
