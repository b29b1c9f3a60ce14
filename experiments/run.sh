#!/bin/sh
# run.sh -- `make results`: the parts of the paper study that need only the
# core library (cost curves, clipping ratios, convergence). Writes the TSVs
# to results/ (not committed), the figures to docs/img/ and the generated
# section of docs/RESULTS.md; then the QAT runs of experiments/qat.sh
# (finished runs are skipped: experiments/results/qat.jsonl records them;
# QUICK=1 runs a small version that does not touch the record) and the QAT
# section and figure (experiments/qat_report.py, plot_qat.gp); then the
# transformer study (experiments/transformer.sh, transformer_report.py).
#   experiments/run.sh [BUILD_DIR]
set -eu
build=${1:-build}
mkdir -p results/curves docs/img
start=$(date +%s)
"$build/octav_exp_curve" results/curves examples/fashion_cnn.safetensors
gnuplot -e "dir='results/curves'; out='docs/img'" experiments/plot_curves.gp
/usr/bin/python3 experiments/report.py results/curves docs/RESULTS.md
experiments/qat.sh "$build"
if [ "${QUICK:-0}" = 1 ]; then db=results/qat-quick/qat.jsonl; else db=experiments/results/qat.jsonl; fi
/usr/bin/python3 experiments/qat_report.py "$db" docs/RESULTS.md results/qat_report
gnuplot -e "dir='results/qat_report'; out='docs/img'" experiments/plot_qat.gp
[ -s results/qat_report/traj_index.txt ] && gnuplot -e "dir='results/qat_report'; out='docs/img'" experiments/plot_traj.gp
[ -s results/qat_report/seeds_models.txt ] && gnuplot -e "dir='results/qat_report'; out='docs/img'" experiments/plot_seeds.gp
[ -s results/qat_report/grid_models.txt ] && gnuplot -e "dir='results/qat_report'; out='docs/img'" experiments/plot_grid.gp
/usr/bin/python3 experiments/qat_report.py "$db" docs/RESULTS.md results/qat_report
# calibration quality of every method on octav-trained float models
# (the checkpoints of the runs above; models without one are left out)
/usr/bin/python3 experiments/calib.py "$build" docs/RESULTS.md cnn=results/qat/cnn_float_s1.safetensors \
    resnet20=results/qat/resnet20_float_s1.safetensors mobilenetv2=results/qat/mobilenetv2_float_s1.safetensors \
    transformer=results/transformer/tf_float.safetensors
# the transformer study (issue 6): pretraining, fine-tuning, QAT grid
experiments/transformer.sh "$build"
if [ "${QUICK:-0}" = 1 ]; then tdb=results/transformer-quick/transformer.jsonl; else tdb=experiments/results/transformer.jsonl; fi
/usr/bin/python3 experiments/transformer_report.py "$tdb" docs/RESULTS.md
echo "results: docs/RESULTS.md and docs/img updated in $(( $(date +%s) - start )) s" >&2
