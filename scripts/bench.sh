#!/bin/sh
# bench.sh -- runs the solver benchmark and rewrites the generated part of
# docs/BENCHMARKS.md (between the BEGIN/END markers) from its JSON.
#   scripts/bench.sh [BUILD_DIR]      (make bench)
set -eu
build=${1:-build}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$build/octav_bench_solver" --json >"$out"
/usr/bin/python3 scripts/bench_report.py "$out" docs/BENCHMARKS.md
echo "bench: docs/BENCHMARKS.md updated" >&2
