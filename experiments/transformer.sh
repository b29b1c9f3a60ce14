#!/bin/sh
# transformer.sh -- the paper's BERT experiment at small scale (issue 6,
# docs/RESULTS.md "Transformer"): masked-character pretraining of a small
# encoder on the Debian word lists, float fine-tuning for word-level
# language identification, then QAT of every linear layer's weight and
# input and of both attention matmuls' operands, at 8, 6 and 4 bits with
# dynamic OCTAV, static OCTAV (10 calibration batches, as the paper does
# for BERT), max-scaling, percentile and the MSE sweep, retrained from the
# float fine-tuned model; and 4-bit QAT fine-tuned straight from the
# pretrained checkpoint. Runs are recorded like experiments/qat.sh does
# (full logs in results/transformer/, summaries appended to
# experiments/results/transformer.jsonl, finished runs skipped).
#   experiments/transformer.sh [BUILD_DIR] [NAME_PATTERN]
# QUICK=1: 1500 words per language, 1 epoch per phase, into
# results/transformer-quick/ (the committed results are untouched).
set -eu
build=${1:-build}
pattern=${2:-}
octav="$build/octav"
arch="--dim 64 --heads 4 --layers 2"
if [ "${QUICK:-0}" = 1 ]; then
  dir=results/transformer-quick; db=$dir/transformer.jsonl; wpl=1500; ep_pre=1; ep_ft=1
else
  dir=results/transformer; db=experiments/results/transformer.jsonl; wpl=8000; ep_pre=3; ep_ft=3
fi
mkdir -p "$dir" "$(dirname "$db")"
touch "$db"
# the commit of the binary: BUILD_DIR/COMMIT when a frozen copy runs the study
commit=$(cat "$build/COMMIT" 2>/dev/null || git rev-parse --short HEAD 2>/dev/null || echo unknown)
export OMP_WAIT_POLICY=PASSIVE

# run NAME ARGS...: one `octav train`, skipped when NAME is already recorded
run() {
  name=$1; shift
  case "$name" in *"$pattern"*) ;; *) return 0 ;; esac
  if grep -q "\"run\":\"$name\"" "$db"; then echo "skip $name (done)" >&2; return 0; fi
  echo "== $name: octav train $*" >&2
  log="$dir/$name.jsonl"
  if ! "$octav" train "$@" --out "$dir/$name.safetensors" --log "$log" --quiet; then
    echo "run $name failed (see $log)" >&2
    return 0
  fi
  /usr/bin/python3 experiments/qat_record.py "$db" "$name" "$commit" "octav train $*" "$log"
}

data="--model transformer --data langid --words-per-lang $wpl"
# 1. masked-character pretraining (BERT's phase one)
run tf_mlm $data --task mlm $arch --epochs $ep_pre --lr 2e-3
pre="$dir/tf_mlm.safetensors"
[ -f "$pre" ] || { echo "no pretrained checkpoint; stopping" >&2; exit 1; }
# 2. float fine-tuning for language identification
run tf_float $data --init "$pre" --epochs $ep_ft --lr 1e-3
flt="$dir/tf_float.safetensors"
[ -f "$flt" ] || { echo "no fine-tuned checkpoint; stopping" >&2; exit 1; }
# 3. QAT retraining from the float fine-tuned model (1 epoch, lr 1e-4), and
#    the float control: the same extra epoch without quantization
run tf_float_retrain $data --init "$flt" --epochs 1
for b in 8 6 4; do
  for c in octav static-octav max percentile mse-sweep; do
    run "tf_w${b}_${c}_retrain" $data --init "$flt" --bits "$b" --clip "$c" --epochs 1
  done
done
# 4. 4-bit QAT fine-tuning from the pretrained-only checkpoint
for c in octav max; do
  run "tf_w4_${c}_finetune" $data --init "$pre" --bits 4 --clip "$c" --epochs $ep_ft --lr 1e-3
done
echo "results: $db" >&2
