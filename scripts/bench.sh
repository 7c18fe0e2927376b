#!/usr/bin/env bash
# Benchmarks of BENCHMARKS.md: SEIR on an Erdos-Renyi network of mean degree 10,
# 1M and 10M agents, 1 and 2 threads, one process per configuration (so that
# the peak memory reported is that configuration's own).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p myriad
days="${DAYS:-30}"
echo "| model | agents | mean degree | threads | network build (s) | s per day | M agent-steps/s | peak memory (MiB) | ever infected |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for agents in 1000000 10000000; do
  for threads in 1 2; do
    ./target/release/myriad bench --agents "$agents" --degree 10 --days "$days" --threads "$threads" | grep "^|"
  done
done
# The reference implementation's 37,518-agent setup (issue 3).
for threads in 1 2; do
  ./target/release/myriad bench --model covid --agents 37518 --degree 7 --days 180 --threads "$threads" | grep "^|"
done
