#!/bin/sh
# demo_text.sh -- the transformer pipeline on the built-in text corpus
# (Debian's word lists): masked-character pretraining, fine-tuning for
# word-level language identification (12 languages), then 6-bit QAT with
# dynamic OCTAV on every linear layer and both attention matmuls, and the
# per-quantizer table. A few minutes on 2 cores.
#   scripts/demo_text.sh [OCTAV] [OUTDIR]
# DEMO_WORDS (words per language, default 4000) and DEMO_EPOCHS (per
# phase, default 2) shorten or lengthen it.
set -eu
octav=${1:-build/octav}
out=${2:-runs/demo-text}
words=${DEMO_WORDS:-4000}
ep=${DEMO_EPOCHS:-2}
mkdir -p "$out"
common="--data langid --words-per-lang $words"
echo "== 1/4 masked-character pretraining, $ep epochs =="
"$octav" pretrain $common --dim 64 --heads 4 --layers 2 --epochs "$ep" --lr 2e-3 \
    --out "$out/mlm.safetensors" --log "$out/mlm.jsonl"
echo
echo "== 2/4 fine-tuning for language identification, $ep epochs =="
"$octav" train --model transformer $common --init "$out/mlm.safetensors" --epochs "$ep" --lr 1e-3 \
    --out "$out/float.safetensors" --log "$out/float.jsonl"
echo
echo "== 3/4 6-bit OCTAV QAT retraining, 1 epoch =="
"$octav" train --model transformer $common --init "$out/float.safetensors" --bits 6 --clip octav --epochs 1 \
    --out "$out/w6_octav.safetensors" --log "$out/w6_octav.jsonl"
echo
echo "== 4/4 the 6-bit model, quantizer by quantizer =="
"$octav" eval "$out/w6_octav.safetensors"
echo "checkpoints and JSONL logs: $out/"
