#!/bin/sh
# bench.sh -- runs the solver benchmark and the NumPy / PyTorch peers, and
# rewrites the generated part of docs/BENCHMARKS.md (between the BEGIN/END
# markers) from their JSON.      scripts/bench.sh [BUILD_DIR]   (make bench)
set -eu
build=${1:-build}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$build/octav" bench --json >"$dir/octav.json"
/usr/bin/python3 bench/peers/peers.py >"$dir/peers.json"
/usr/bin/python3 scripts/bench_report.py "$dir/octav.json" "$dir/peers.json" docs/BENCHMARKS.md
echo "bench: docs/BENCHMARKS.md updated" >&2
