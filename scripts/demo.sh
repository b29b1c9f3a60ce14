#!/bin/sh
# demo.sh -- the main job on the built-in default data: train the `cnn`
# model on Fashion-MNIST in float, retrain it with 4-bit quantization-aware
# training (dynamic OCTAV clipping, MAD weight / PWL input gradients) from
# the float checkpoint, then compare the two on the test set.
#   scripts/demo.sh [OCTAV] [OUTDIR]
# DEMO_EPOCHS (float epochs, default 2) and DEMO_QAT_EPOCHS (default 1)
# shorten or lengthen it.
set -eu
octav=${1:-build/octav}
out=${2:-runs/demo}
fe=${DEMO_EPOCHS:-2}
qe=${DEMO_QAT_EPOCHS:-1}
mkdir -p "$out"
echo "== 1/3 float training: cnn on Fashion-MNIST, $fe epochs =="
"$octav" train --model cnn --epochs "$fe" --out "$out/cnn_float.safetensors" --log "$out/cnn_float.jsonl"
echo
echo "== 2/3 4-bit OCTAV QAT retraining from the float model, $qe epoch(s) =="
"$octav" train --model cnn --init "$out/cnn_float.safetensors" --epochs "$qe" --bits 4 --clip octav \
    --grad mad-pwl --out "$out/cnn_w4a4_octav.safetensors" --log "$out/cnn_w4a4_octav.jsonl"
echo
echo "== 3/3 the 4-bit model, layer by layer =="
"$octav" eval "$out/cnn_w4a4_octav.safetensors"
echo
float=$(tail -n 1 "$out/cnn_float.jsonl" | sed 's/.*"test_accuracy":\([0-9.e-]*\).*/\1/')
quant=$(tail -n 1 "$out/cnn_w4a4_octav.jsonl" | sed 's/.*"test_accuracy":\([0-9.e-]*\).*/\1/')
awk -v f="$float" -v q="$quant" 'BEGIN { printf "float test accuracy  %.2f%%\n4-bit OCTAV QAT      %.2f%%  (%+.2f points)\n", 100*f, 100*q, 100*(q-f) }'
echo "checkpoints and JSONL logs: $out/"
