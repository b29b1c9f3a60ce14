#!/bin/sh
# bench.sh -- runs `octav bench` (all solver and fake-quant cases on every
# core, and the per-tensor solver on one thread for the thread-scaling view),
# the NumPy / PyTorch peers, and the training-step comparison with PyTorch
# (bench/train_compare.py: octav and PyTorch runs interleaved, 1 and 2
# threads, plus the cnn batch-size series), then rewrites the generated
# parts of docs/BENCHMARKS.md and its scaling plot docs/img/bench_scaling.png.
#   scripts/bench.sh [BUILD_DIR [all|kernels|train]]
# `kernels` skips the training comparison, `train` runs only it (and
# rewrites only its section), `transformer` only the transformer's. OCTAV_TRAIN_ARGS adds options to
# train_compare.py (e.g. "--quick" to check the harness, "--threads 1,2,4").
set -eu
build=${1:-build}
what=${2:-all}
case "$what" in all|kernels|train|transformer) ;; *) echo "usage: $0 [BUILD_DIR [all|kernels|train|transformer]]" >&2; exit 2 ;; esac
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
train=""
if [ "$what" = all ] || [ "$what" = transformer ]; then
    # the transformer against bench/peers/train_peer_transformer.py: its own section
    /usr/bin/python3 bench/train_compare.py --octav "$build/octav" --models transformer --scaling '' \
        ${OCTAV_TRAIN_ARGS:-} >"$dir/train_tf.json"
    /usr/bin/python3 scripts/bench_report.py --train "$dir/train_tf.json" docs/BENCHMARKS.md --section train-transformer
    [ "$what" = transformer ] && { echo "bench: docs/BENCHMARKS.md (transformer section) updated" >&2; exit 0; }
fi
if [ "$what" != kernels ]; then
    # shellcheck disable=SC2086
    /usr/bin/python3 bench/train_compare.py --octav "$build/octav" ${OCTAV_TRAIN_ARGS:-} >"$dir/train.json"
    train="--train $dir/train.json"
fi
if [ "$what" = train ]; then
    /usr/bin/python3 scripts/bench_report.py --train "$dir/train.json" docs/BENCHMARKS.md
    echo "bench: docs/BENCHMARKS.md (training section) updated" >&2
    exit 0
fi
"$build/octav" bench kernels --json >"$dir/octav.json"
"$build/octav" bench solver --threads 1 --case solver/per-tensor --json >"$dir/octav1.json"
# the solver against DRAM: the tensor flushed from every cache before each run
"$build/octav" bench solver --uncached --case solver/per- --json >"$dir/uncached.json"
/usr/bin/python3 bench/peers/peers.py >"$dir/peers.json"
# shellcheck disable=SC2086
/usr/bin/python3 scripts/bench_report.py --uncached "$dir/uncached.json" "$dir/octav.json" "$dir/peers.json" \
    docs/BENCHMARKS.md "$dir/octav1.json" "$dir/scaling.tsv" $train
mkdir -p docs/img
gnuplot -e "f='$dir/scaling.tsv'; out='docs/img/bench_scaling.png'" scripts/bench_scaling.gp
echo "bench: docs/BENCHMARKS.md and docs/img/bench_scaling.png updated" >&2
