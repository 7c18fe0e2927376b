#!/usr/bin/env bash
# Partitioned runs on this machine (BENCHMARKS.md, "Issue 17"): SEIR on an
# Erdős–Rényi network (scripts/scale/seir-er.toml) at N agents on R ranks,
# or any other scenario (SCENARIO=scenarios/seir-nyc.toml, or
# scenarios/covid-nyc-fitted.toml, with N given as "-" to keep its size).
# Needs a myriad built with --features mpi. Prints one JSON line per run:
# wall time, build and stepping time, exchange volume and time, peak memory
# per rank, then the MD5 of timeseries.csv (the same on every rank count).
# Usage: [SCENARIO=FILE] scripts/bench-mpi.sh [N|-] [RANKS...]   (default 10000000 1 2 4)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${MYRIAD:-target/release/myriad}
scenario=${SCENARIO:-scripts/scale/seir-er.toml}
n=${1:-10000000}
shift || true
size=()
[ "$n" = "-" ] || size=(--set population.size="$n")
ranks=("${@:-1 2 4}")
out=$(mktemp -d)
for r in ${ranks[@]}; do
    # One worker thread per rank once ranks fill the cores (2 here).
    threads=$(( r >= 2 ? 1 : 2 ))
    start=$(date +%s.%N)
    # --bind-to none: OpenMPI binds each rank to one core by default, which
    # would put a single rank's two threads on one core.
    mpirun --allow-run-as-root --oversubscribe --bind-to none -n "$r" "$bin" run "$scenario" \
        "${size[@]}" --set limits.memory_gb=22 --threads "$threads" -q --out "$out/r$r"
    end=$(date +%s.%N)
    python3 - "$out/r$r/summary.json" "$r" "$start" "$end" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); r = int(sys.argv[2])
p = s.get("partition") or {}
t = s["timing"]
print(json.dumps({
    "agents": s["agents"], "ranks": r, "threads_per_rank": s["threads"],
    "wall_s": round(float(sys.argv[4]) - float(sys.argv[3]), 2),
    "build_s": round(t["build_seconds"], 2), "run_s": round(t["run_seconds"], 2),
    "s_per_day": round(t["seconds_per_step"], 4),
    "bytes_per_step": p.get("bytes_sent_per_step", 0),
    "exchange_s_per_rank": [x["seconds_exchanging"] for x in p.get("per_rank", [])],
    "peak_mib_per_rank": [round(x["peak_memory_bytes"] / 2**20) for x in p.get("per_rank", [])] or [round(s["peak_memory_bytes"] / 2**20)],
    "crossing_share": {l["name"]: l.get("crossing_share") for l in s["layers"]},
    "ever_infected": 1 - s["final_metrics"]["S"] / s["agents"],
}))
PY
    md5sum "$out/r$r/timeseries.csv" | cut -c1-32
done
rm -rf "$out"
