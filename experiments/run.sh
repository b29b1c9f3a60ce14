#!/bin/sh
# run.sh -- `make results`: the parts of the paper study that need only the
# core library (cost curves, clipping ratios, convergence). Writes the TSVs
# to results/ (not committed), the figures to docs/img/ and the generated
# section of docs/RESULTS.md. The QAT accuracy study needs the training
# engine (issue 3) and is not here yet.
#   experiments/run.sh [BUILD_DIR]
set -eu
build=${1:-build}
mkdir -p results/curves docs/img
start=$(date +%s)
"$build/octav_exp_curve" results/curves examples/fashion_cnn.safetensors
gnuplot -e "dir='results/curves'; out='docs/img'" experiments/plot_curves.gp
/usr/bin/python3 experiments/report.py results/curves docs/RESULTS.md
echo "results: docs/RESULTS.md and docs/img updated in $(( $(date +%s) - start )) s" >&2
