#!/usr/bin/env bash
# Bytes per agent of each model, measured (BENCHMARKS.md, "Issue 17"): the
# peak resident memory of a one-step run at two population sizes; the
# difference over the difference in agents is what one more agent costs
# (its columns and its share of the contact layers, build included), free
# of the binary's fixed cost.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${MYRIAD:-target/release/myriad}
out=$(mktemp -d)
peak() { # scenario, size setting, label
    local dir="$out/$3"
    # One step, but for dated scenarios whose interventions must fall
    # inside the run (STEPS= keeps the scenario's own).
    local steps=(--set steps="${STEPS-1}")
    [ -n "${STEPS-1}" ] || steps=()
    "$bin" run "scenarios/$1.toml" "${steps[@]}" --set "$2" --threads 2 -q --out "$dir"
    python3 -c "import json,sys; s=json.load(open('$dir/summary.json')); print(s['agents'], s['peak_memory_bytes'])"
}
slope() { # model, scenario, small setting, large setting
    read -r n1 p1 < <(peak "$2" "$3" "$1-small")
    read -r n2 p2 < <(peak "$2" "$4" "$1-large")
    python3 -c "print('$1 ($2): %d -> %d agents, peak %.0f -> %.0f MiB: %.0f bytes per agent' % ($n1, $n2, $p1/2**20, $p2/2**20, ($p2-$p1)/($n2-$n1)))"
}
slope seir seir-city population.size=1000000 population.size=4000000
slope sir sir-erdos-renyi population.size=1000000 population.size=4000000
STEPS= slope covid covid-nyc population.scale=0.25 population.scale=1.0
slope guess guess-million population.size=1000000 population.size=4000000
slope kuramoto kuramoto population.size=1000000 population.size=4000000
slope vicsek vicsek population.size=100000 population.size=400000
slope aggregation aggregation-task population.size=100000 population.size=400000
rm -rf "$out"
