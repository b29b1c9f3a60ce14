#!/bin/sh
# test_qat_study.sh SOURCE_DIR -- the bookkeeping of experiments/qat.sh and
# qat_report.py, with a stand-in for `octav train` that writes a checkpoint
# and a two-line log at once: runs are recorded and skipped once done; a
# recorded float model whose checkpoint is gone (results/ is not kept
# between machines) is trained again as MODEL_float_sSEED_r2, _r3, ... only
# when a run still has to be retrained from it; the report measures such
# runs against the float run named by their --init.
set -eu
src=$(cd "$1" && pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
cd "$t"
mkdir -p experiments scripts fake results/qat-quick docs
cp "$src/experiments/qat.sh" "$src/experiments/qat_record.py" "$src/experiments/qat_report.py" experiments/
cp "$src/scripts/docsection.py" scripts/
fails=0
check() {   # check NAME CONDITION-EXIT-STATUS
  if [ "$2" = 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi
}

# the stand-in: float models score 0.90, quantized ones 0.88; every call is
# listed in calls.txt
cat > fake/octav <<'EOF'
#!/bin/sh
shift   # "train"
echo "$*" >> "$FAKE_CALLS"
model=cnn; bits=32; clip=float; grad=float; out=; log=
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2 ;; --bits) bits=$2 ;; --clip) clip=$2 ;; --grad) grad=$2 ;;
    --out) out=$2 ;; --log) log=$2 ;;
  esac
  shift
done
acc=0.88; [ "$clip" = float ] && acc=0.90
echo "checkpoint" > "$out"
{
  echo '{"event":"epoch","epoch":1,"val_accuracy":0.5,"train_loss":1.0}'
  echo "{\"event\":\"final\",\"model\":\"$model\",\"bits\":$bits,\"clip\":\"$clip\",\"grad\":\"$grad\",\"test_accuracy\":$acc,\"epochs\":1,\"wall_seconds\":1,\"images_per_second\":1,\"checkpoint\":\"$out\"}"
} > "$log"
EOF
chmod +x fake/octav
export FAKE_CALLS="$t/calls.txt" QUICK=1
unset THREADS
db=results/qat-quick/qat.jsonl
# a float run recorded on another machine (0.95): its checkpoint is not here
echo '{"run":"cnn_float_s1","commit":"x","command":"octav train --model cnn --seed 1","final":{"event":"final","model":"cnn","bits":32,"clip":"float","grad":"float","test_accuracy":0.95,"epochs":1,"wall_seconds":1,"images_per_second":1,"checkpoint":"results/qat-quick/cnn_float_s1.safetensors"},"epochs":[]}' > "$db"

sh experiments/qat.sh fake pact_madpwl_retrain_s1 2> log1.txt
check "the lost float model is trained again as cnn_float_s1_r2, once" \
  "$(grep -v -- '--clip' calls.txt | grep -c -- '^--model cnn --seed 1 .*--out results/qat-quick/cnn_float_s1_r2.safetensors' | grep -qx 1; echo $?)"
check "the five seed-1 PACT runs retrain from cnn_float_s1_r2" \
  "$(grep -c -- '--clip pact .*--init results/qat-quick/cnn_float_s1_r2.safetensors' calls.txt | grep -qx 5; echo $?)"
check "six cnn runs in all" "$(grep -c -- '^--model cnn ' calls.txt | grep -qx 6; echo $?)"
check "each is recorded" "$(grep -c '"run":"cnn_w[0-9]_pact_madpwl_retrain_s1"' $db | grep -qx 5; echo $?)"

: > calls.txt
rm -f results/qat-quick/cnn_float_s1_r2.safetensors
sh experiments/qat.sh fake pact_madpwl_retrain_s1 2> log2.txt
check "done runs are skipped and no float model is trained for them" "$(test ! -s calls.txt; echo $?)"

sh experiments/qat.sh fake cnn_w4_lsq_madpwl_retrain_s1 2> log3.txt
check "a pending run trains the float model again as _r3" \
  "$(grep -q -- '--clip lsq .*--init results/qat-quick/cnn_float_s1_r3.safetensors' calls.txt && wc -l < calls.txt | grep -qx 2; echo $?)"

printf '# results\n<!-- BEGIN qat -->\n<!-- END qat -->\n' > docs/RESULTS.md
/usr/bin/python3 experiments/qat_report.py "$db" docs/RESULTS.md report
# against cnn_float_s1_r2 (0.90), not cnn_float_s1 (0.95)
check "the grid measures a run against the float model it retrained from" \
  "$(grep -q '^| pact | .*88.00 (-2.00)†' docs/RESULTS.md; echo $?)"
check "the runs table too" "$(grep -q '^| `cnn_w4_pact_madpwl_retrain_s1` | retrain | 4 | .* | 88.00 | -2.00 |' docs/RESULTS.md; echo $?)"
check "a float run trained again is measured against the first" \
  "$(grep -q '^| `cnn_float_s1_r2` | scratch | float | .* | 90.00 | -5.00 |' docs/RESULTS.md; echo $?)"
check "the note names both float runs" "$(grep -q '`cnn_float_s1_r2` (90.00%; the first run `cnn_float_s1` gave 95.00%)' docs/RESULTS.md; echo $?)"
echo "$fails failed"
[ "$fails" = 0 ]
