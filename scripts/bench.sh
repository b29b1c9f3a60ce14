#!/bin/sh
# bench.sh -- runs `octav bench` (all cases on every core, and the per-tensor
# solver on one thread for the thread-scaling view), the NumPy / PyTorch
# peers, then rewrites the generated part of docs/BENCHMARKS.md and its
# scaling plot docs/img/bench_scaling.png.   scripts/bench.sh [BUILD_DIR]
set -eu
build=${1:-build}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$build/octav" bench --json >"$dir/octav.json"
"$build/octav" bench solver --threads 1 --case solver/per-tensor --json >"$dir/octav1.json"
/usr/bin/python3 bench/peers/peers.py >"$dir/peers.json"
/usr/bin/python3 scripts/bench_report.py "$dir/octav.json" "$dir/peers.json" docs/BENCHMARKS.md \
    "$dir/octav1.json" "$dir/scaling.tsv"
mkdir -p docs/img
gnuplot -e "f='$dir/scaling.tsv'; out='docs/img/bench_scaling.png'" scripts/bench_scaling.gp
echo "bench: docs/BENCHMARKS.md and docs/img/bench_scaling.png updated" >&2
