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

# the stand-in: float models score 0.90, OCTAV 0.89, max 0.86, the other
# quantized ones 0.88; every call is
# listed in calls.txt. With FAKE_STOP set it stops part-way as when the
# sitting ends: epoch 1 checkpointed, epoch 2 logged but not checkpointed,
# and the worker killed. With --resume it continues from the checkpoint
# (0.87, 2 epochs).
cat > fake/octav <<'EOF'
#!/bin/sh
shift   # "train"
echo "$*" >> "$FAKE_CALLS"
model=cnn; bits=32; clip=float; grad=float; out=; log=; resume=; threads=2
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2 ;; --bits) bits=$2 ;; --clip) clip=$2 ;; --grad) grad=$2 ;;
    --out) out=$2 ;; --log) log=$2 ;; --resume) resume=$2 ;; --threads) threads=$2 ;;
  esac
  shift
done
final() {   # final ACC EPOCHS WALL
  echo "{\"event\":\"final\",\"model\":\"$model\",\"bits\":$bits,\"clip\":\"$clip\",\"grad\":\"$grad\",\"test_accuracy\":$1,\"test_loss\":0.3,\"epochs\":$2,\"wall_seconds\":$3,\"images_per_second\":1,\"checkpoint\":\"$out\"}"
}
if [ -n "$resume" ]; then
  read -r model bits clip grad < "$resume"
  {
    echo "{\"event\":\"resume\",\"threads\":$threads,\"start_epoch\":1}"
    echo '{"event":"epoch","epoch":2,"val_accuracy":0.6,"train_loss":0.5,"seconds":10}'
    final 0.87 2 5
  } >> "$log"
  exit 0
fi
case "$clip" in float) acc=0.90 ;; octav) acc=0.89 ;; max) acc=0.86 ;; *) acc=0.88 ;; esac
# the quantizers of the epoch line: static OCTAV's scalars 1.1x dynamic's,
# its SQNR 1 dB (weights) and 3 dB (inputs) lower; an 8-bit first layer
case "$clip" in static-octav) qs=1.1 qw=19 qi=7 ;; *) qs=1.0 qw=20 qi=10 ;; esac
quant="[{\"layer\":\"c0\",\"tensor\":\"weight\",\"bits\":8,\"scale\":5,\"sqnr_db\":40,\"clipped_fraction\":0},"
quant="$quant{\"layer\":\"c1\",\"tensor\":\"weight\",\"bits\":$bits,\"scale\":$qs,\"sqnr_db\":$qw,\"clipped_fraction\":0.02},"
quant="$quant{\"layer\":\"c1\",\"tensor\":\"input\",\"bits\":$bits,\"scale\":2,\"sqnr_db\":$qi}]"
echo "$model $bits $clip $grad" > "$out"
{
  echo "{\"event\":\"start\",\"threads\":$threads,\"start_epoch\":0}"
  echo '{"event":"step","epoch":1,"step":1,"loss":1.2,"grad_norm":1.5}'
  echo '{"event":"step","epoch":1,"step":2,"loss":1.1,"grad_norm":4.5}'
  echo "{\"event\":\"epoch\",\"epoch\":1,\"val_accuracy\":0.5,\"train_loss\":1.0,\"seconds\":10,\"quantizers\":$quant}"
} > "$log"
if [ -n "${FAKE_STOP:-}" ]; then
  echo '{"event":"epoch","epoch":2,"val_accuracy":0.55,"train_loss":0.7,"seconds":10}' >> "$log"
  kill -KILL $PPID
  exit 1
fi
final $acc 1 1 >> "$log"
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

# a run stopped part-way continues from its checkpoint with the thread
# count it started with
: > calls.txt
THREADS=1 FAKE_STOP=1 sh experiments/qat.sh fake cnn_w4_static-octav_traj_s1 2> log4.txt || true
check "a stopped run is not recorded and keeps its checkpoint and its worker's lock" \
  "$(! grep -q '"run":"cnn_w4_static-octav_traj_s1"' $db && test -f results/qat-quick/cnn_w4_static-octav_traj_s1.safetensors &&
    test -d results/qat-quick/cnn_w4_static-octav_traj_s1.lock; echo $?)"
: > calls.txt
THREADS=2 sh experiments/qat.sh fake cnn_w4_static-octav_traj_s1 2> log5.txt
check "the next sitting takes the lock over and resumes the run with its first thread count (and its quantizer logging)" \
  "$(grep -qx -- '--resume results/qat-quick/cnn_w4_static-octav_traj_s1.safetensors --threads 1 --log-quant-every 20 --out results/qat-quick/cnn_w4_static-octav_traj_s1.safetensors --log results/qat-quick/cnn_w4_static-octav_traj_s1.jsonl --quiet' calls.txt && wc -l < calls.txt | grep -qx 1; echo $?)"
check "its record keeps epoch 1, the resumed epoch 2, the time of both, and quantizers of the last epoch only" \
  "$(/usr/bin/python3 -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if "cnn_w4_static-octav_traj_s1" in l]
f = r[0]["final"]
ok = (len(r) == 1 and [e["val_accuracy"] for e in r[0]["epochs"]] == [0.5, 0.6] and f["wall_seconds"] == 15
      and f["resumed_after_epochs"] == [1] and f["test_accuracy"] == 0.87
      and not any("quantizers" in e for e in r[0]["epochs"]))   # the last epoch logged none
sys.exit(0 if ok else 1)' $db; echo $?)"

sh experiments/qat.sh fake cnn_w2_octav_madpwl_retrain_s1 2> log6.txt
sh experiments/qat.sh fake cnn_w2_max_madpwl_retrain_s1 2> log7.txt
sh experiments/qat.sh fake cnn_w3_octav_pwl_retrain_s 2> log8.txt
sh experiments/qat.sh fake cnn_w2_static-octav_madpwl_retrain_s1 2> log9.txt
sh experiments/qat.sh fake cnn_w4_octav_ste_scratch_s1 2> log10.txt
# seed 2's float checkpoint lost too: trained again, the stand-in gives the same run to the last digit
rm -f results/qat-quick/cnn_float_s2.safetensors
sh experiments/qat.sh fake cnn_w3_octav_ste_retrain_s2 2> log11.txt

printf '# results\n<!-- BEGIN qat -->\n<!-- END qat -->\n' > docs/RESULTS.md
/usr/bin/python3 experiments/qat_report.py "$db" docs/RESULTS.md report
# against cnn_float_s1_r2 (0.90), not cnn_float_s1 (0.95)
check "the grid measures a run against the float model it retrained from" \
  "$(grep -q '^| pact | .*88.00 (-2.00)†' docs/RESULTS.md; echo $?)"
check "the runs table too" "$(grep -q '^| `cnn_w4_pact_madpwl_retrain_s1` | retrain | 4 | .* | 88.00 | -2.00 |' docs/RESULTS.md; echo $?)"
check "a float run trained again is measured against the first" \
  "$(grep -q '^| `cnn_float_s1_r2` | scratch | float | .* | 90.00 | -5.00 |' docs/RESULTS.md; echo $?)"
check "the note names both float runs" "$(grep -q '`cnn_float_s1_r2` (90.00%; the first run `cnn_float_s1` gave 95.00%)' docs/RESULTS.md; echo $?)"
check "the runs table marks the resumed run's wall time" \
  "$(grep -q '^| `cnn_w4_static-octav_traj_s1` | retrain | 4 | static-octav | .* | 87.00 | .* | 15‡ |' docs/RESULTS.md; echo $?)"
check "the glance table sets OCTAV against float and max" \
  "$(grep -qx '| cnn | 2 | retrain | 1 | 89.00 (-1.00) | 86.00 (-4.00) | +3.00 | 1/1 | octav (89.00; of 4) |' docs/RESULTS.md; echo $?)"
check "the estimators table has PWL over seeds 1-3" \
  "$(grep -qx '| pwl | 89.00 ± 0.00 | 3 | -1.00 (-1.00..-1.00)† |' docs/RESULTS.md; echo $?)"
check "the static/dynamic table compares the 2-bit pair's SQNR and scalars (not the 8-bit layer)" \
  "$(grep -qx '| cnn | 2 | retrain | 1 | 1 | 89.00 / 88.00 | 20.00 / 19.00 (-1.00, `c1.weight`) | 10.00 / 7.00 (-3.00, `c1.input`) | 1.050 (1.000..1.100) |' docs/RESULTS.md; echo $?)"
check "the per-epoch estimator table has the from-scratch run, measured against the seed's first float model" \
  "$(grep -qx '| scratch | 4 | ste | 89.00 | -6.00 | 3.000 | 3.000 | 4.500 | 1.000 |' docs/RESULTS.md; echo $?)"
check "the curves figure puts it in the from-scratch row (STE red, 4 bits solid), the 2-bit retraining in the other (dotted)" \
  "$(grep -qx 'cnn_w4_octav_ste_scratch_s1 #d7191c 1' report/curves_scratch.txt &&
     grep -qx 'cnn_w2_octav_madpwl_retrain_s1 #1a9641 3' report/curves_retrain.txt &&
     ! grep -q scratch report/curves_retrain.txt &&
     grep -q 'grad_norm_mean' report/cnn_w4_octav_ste_scratch_s1.tsv; echo $?)"
check "a float model trained again that equals the first to the last digit is said to be reproduced" \
  "$(grep -q '`cnn_float_s2_r2` (90.00%; the test loss and every epoch.s training loss and validation accuracy equal those of the first run `cnn_float_s2` to the last digit' docs/RESULTS.md &&
     grep -q '`cnn_float_s1_r2` (90.00%; the first run `cnn_float_s1` gave 95.00%)' docs/RESULTS.md; echo $?)"
echo "$fails failed"
[ "$fails" = 0 ]
