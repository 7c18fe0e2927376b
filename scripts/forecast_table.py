#!/usr/bin/env python3
"""Print the scores of a `myriad forecast` run folder as a Markdown table.

    python3 scripts/forecast_table.py runs/<forecast folder>

One row per cut-off and horizon, one column per series and behaviour:
the mean absolute error over the forecast members (smallest-largest member
in brackets); whole-city weekly counts, and unemployment in percentage
points over the boroughs. Then the mean over cut-offs.
"""
import csv
import sys
from collections import defaultdict

SHORT = {
    "new_reported_cases": "cases",
    "new_hospitalisations": "admissions",
    "new_deaths": "deaths",
    "unemployment": "unemployment",
}


def short(series):
    return SHORT.get(series.split(" ")[0], series)


def main(folder):
    rows = list(csv.DictReader(open(f"{folder}/scores.csv")))
    arms = sorted({r["arm"] for r in rows}, key=lambda a: (a == "persistence", a))
    series = []
    for r in rows:
        s = short(r["series"])
        if s not in series:
            series.append(s)
    cell = {}
    for r in rows:
        key = (r["cutoff"], int(r["horizon_weeks"]), short(r["series"]), r["arm"])
        mean, lo, hi = float(r["mae_mean"]), float(r["mae_min"]), float(r["mae_max"])
        digits = 1 if short(r["series"]) == "unemployment" else 0
        text = f"{mean:,.{digits}f}"
        if int(r["members"]) > 1:
            text += f" ({lo:,.{digits}f}-{hi:,.{digits}f})"
        cell[key] = (mean, text)
    head = ["cut-off", "weeks"] + [f"{s}: {a}" for s in series for a in arms]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * 2 + "---:|" * (len(head) - 2))
    keys = sorted({(r["cutoff"], int(r["horizon_weeks"])) for r in rows})
    for c, h in keys:
        cells = [cell.get((c, h, s, a), (None, "-"))[1] for s in series for a in arms]
        print(f"| {c} | {h} | " + " | ".join(cells) + " |")
    means = defaultdict(list)
    for (c, h, s, a), (m, _) in cell.items():
        means[(h, s, a)].append(m)
    for h in sorted({k[1] for k in keys}):
        cells = []
        for s in series:
            for a in arms:
                v = means.get((h, s, a))
                digits = 1 if s == "unemployment" else 0
                cells.append(f"{sum(v) / len(v):,.{digits}f} ({len(v)})" if v else "-")
        print(f"| mean | {h} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
