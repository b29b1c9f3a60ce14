#!/bin/sh
# qat.sh -- the QAT training runs of the study (docs/RESULTS.md). Each run
# is one `octav train` command; its full JSONL log and checkpoint go to
# results/qat/ (not committed) and its final line, tagged with the run's
# name, the command and the commit, is appended to experiments/results/qat.jsonl
# (committed), so that finished runs are skipped and the study can be built
# up over several sittings; a run stopped part-way (the sitting ended)
# continues from the checkpoint of its last finished epoch.
#   experiments/qat.sh [BUILD_DIR] [NAME_PATTERN]
# THREADS=N passes --threads N to every run (default: all cores); with
# THREADS=1, one copy of the script per core shares the list. While the
# file results/.pause exists no new run starts (a benchmark can then have the
# machine to itself without distorting the runs' wall times).
# QUICK=1 runs a small version (2000 images, 1 epoch) into
# results/qat-quick/ without touching the committed results.
set -eu
build=${1:-build}
pattern=${2:-}
octav="$build/octav"
if [ "${QUICK:-0}" = 1 ]; then
  dir=results/qat-quick; db=$dir/qat.jsonl; extra="--limit 2000 --val 500"; quick=1
else
  dir=results/qat; db=experiments/results/qat.jsonl; extra=""; quick=0
fi
mkdir -p "$dir" "$(dirname "$db")"
touch "$db"
# the commit of the binary: BUILD_DIR/COMMIT when a frozen copy runs the study
commit=$(cat "$build/COMMIT" 2>/dev/null || git rev-parse --short HEAD 2>/dev/null || echo unknown)

# recorded NAME: NAME has a line in the results file
recorded() { grep -q "\"run\":\"$1\"" "$db"; }

# run NAME ARGS...: the run NAME (when it matches NAME_PATTERN), skipped
# when NAME is already in the results file
run() {
  case "$1" in *"$pattern"*) ;; *) return 0 ;; esac
  run_any "$@"
}

# run_any NAME ARGS...: as run, whatever NAME_PATTERN
run_any() {
  name=$1; shift
  if recorded "$name"; then echo "skip $name (done)" >&2; return 0; fi
  while [ -f results/.pause ]; do sleep 5; done
  # several copies of this script may share the list (one core each): a run
  # is taken by creating its lock directory, which holds the worker's PID; a
  # lock whose worker is gone (killed, or the machine stopped) is taken over
  lock="$dir/$name.lock"
  if ! mkdir "$lock" 2>/dev/null; then
    owner=$(cat "$lock/pid" 2>/dev/null || true)
    if [ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null; then
      echo "retaking $name (its worker $owner is gone)" >&2
      rm -rf "$lock"
      mkdir "$lock" 2>/dev/null || { echo "skip $name (taken by another worker)" >&2; return 0; }
    else
      echo "skip $name (taken by another worker)" >&2; return 0
    fi
  fi
  echo $$ > "$lock/pid"
  if recorded "$name"; then rm -rf "$lock"; return 0; fi
  if [ -n "${THREADS:-}" ]; then set -- "$@" --threads "$THREADS"; fi
  if [ "$quick" = 1 ]; then set -- "$@" --epochs 1; fi
  log="$dir/$name.jsonl"; ckpt="$dir/$name.safetensors"
  # a run stopped part-way (the sitting ended, the machine went away) has
  # the checkpoint of its last finished epoch and a log without a final
  # line: it continues from there, with the thread count it started with
  # (bit for bit the run it would have been); a run that finished but was
  # not recorded is recorded from its log
  if [ -f "$ckpt" ] && [ -f "$log" ] && grep -q '"event":"final"' "$log"; then
    echo "== $name: finished but not recorded; recording it from $log" >&2
  elif [ -f "$ckpt" ] && [ -f "$log" ] && grep -q '"event":"epoch"' "$log" &&
       rs_threads=$(grep -m 1 '"event":"start"' "$log" | grep -o '"threads":[0-9]*' | head -n 1 | cut -d: -f2) &&
       [ -n "$rs_threads" ]; then
    rs_qe=""; rs_prev=""   # --log-quant-every is not in the checkpoint
    for rs_a in "$@"; do
      if [ "$rs_prev" = --log-quant-every ]; then rs_qe="--log-quant-every $rs_a"; fi
      rs_prev=$rs_a
    done
    echo "== $name: resuming from $ckpt (octav train $*; $rs_threads threads as it started)" >&2
    # shellcheck disable=SC2086
    if ! "$octav" train --resume "$ckpt" --threads "$rs_threads" $rs_qe --out "$ckpt" --log "$log" --quiet; then
      # kept for a look; the next sitting starts the run afresh
      mv "$log" "$log.failed"; mv "$ckpt" "$ckpt.failed"
      echo "run $name failed (resuming; see $log.failed)" >&2
      rm -rf "$lock"
      return 0
    fi
  else
    rm -f "$ckpt"   # not this run's (its log has no finished epoch)
    echo "== $name: octav train $* $extra" >&2
    # shellcheck disable=SC2086
    if ! "$octav" train "$@" $extra --out "$ckpt" --log "$log" --quiet; then
      echo "run $name failed (see $log)" >&2
      rm -rf "$lock"
      return 0
    fi
  fi
  /usr/bin/python3 experiments/qat_record.py "$db" "$name" "$commit" "octav train $*" "$log"
  rm -rf "$lock"
}

# float_model MODEL SEED "FARGS": sets fl to the checkpoint of MODEL's float
# model for SEED, trained first (octav train --model MODEL --seed SEED FARGS)
# when it is not there; fl is empty while another worker trains it or when
# its run failed. results/ is not kept between machines: when the recorded
# float run's checkpoint is gone, the float model is trained again as
# MODEL_float_sSEED_r2 (then _r3, ...). That model is not the recorded one
# bit for bit (another machine or thread count), so qat_report.py measures
# each retrained run against the float run whose checkpoint its --init names.
float_model() {
  fm_name=${1}_float_s$2; fm_k=1
  while recorded "$fm_name" && [ ! -f "$dir/$fm_name.safetensors" ]; do
    fm_k=$((fm_k + 1)); fm_name=${1}_float_s${2}_r$fm_k
  done
  # shellcheck disable=SC2086
  run_any "$fm_name" --model "$1" --seed "$2" $3
  fl=""
  if recorded "$fm_name" && [ -f "$dir/$fm_name.safetensors" ]; then fl="$dir/$fm_name.safetensors"; fi
}

# retrain NAME MODEL SEED "FARGS" ARGS...: the run NAME, retrained from
# MODEL's float model for SEED (float_model) with octav train ARGS; the
# float model is trained only when NAME still has to run
retrain() {
  rt_name=$1; rt_model=$2; rt_seed=$3; rt_fargs=$4; shift 4
  case "$rt_name" in *"$pattern"*) ;; *) return 0 ;; esac
  recorded "$rt_name" && return 0
  float_model "$rt_model" "$rt_seed" "$rt_fargs"
  [ -n "$fl" ] || return 0
  run "$rt_name" --model "$rt_model" --seed "$rt_seed" "$@" --init "$fl"
}

seeds=${SEEDS:-1}
for s in $seeds; do
  # 1. float baseline, from scratch
  run "cnn_float_s$s" --model cnn --seed "$s"
  # 2. 4-bit dynamic OCTAV + MAD/PWL, from scratch and retrained from float
  retrain "cnn_w4_octav_madpwl_retrain_s$s" cnn "$s" "" --bits 4 --clip octav --grad mad-pwl
  run "cnn_w4_octav_madpwl_scratch_s$s" --model cnn --seed "$s" --bits 4 --clip octav --grad mad-pwl
  # 3. low bits: clipping method and gradient estimator, retrained from float
  for b in 3 2; do
    for c in octav max; do
      retrain "cnn_w${b}_${c}_madpwl_retrain_s$s" cnn "$s" "" --bits "$b" --clip "$c" --grad mad-pwl
    done
    for g in pwl ste mad; do
      retrain "cnn_w${b}_octav_${g}_retrain_s$s" cnn "$s" "" --bits "$b" --clip octav --grad "$g"
    done
  done
done
# 4a. scalar trajectories: 4-bit retraining with dynamic and static OCTAV,
#    every quantizer's scalar logged every 20 steps
for c in octav static-octav; do
  retrain "cnn_w4_${c}_traj_s1" cnn 1 "" --bits 4 --clip "$c" --grad mad-pwl --log-quant-every 20
done
# grid MODEL SEED "METHODS" "FLOAT_ARGS" "RETRAIN_ARGS" ["BITS"]: the float
# run, then retraining from its checkpoint at each of BITS (default 4 and 3)
# with each clipping method (MAD weight / PWL input gradients)
grid() {
  g_model=$1; g_seed=$2; g_methods=$3; g_fargs=$4; g_rargs=$5; g_bits=${6:-4 3}
  # shellcheck disable=SC2086
  run "${g_model}_float_s$g_seed" --model "$g_model" --seed "$g_seed" $g_fargs
  for g_b in $g_bits; do
    for g_c in $g_methods; do
      # shellcheck disable=SC2086
      retrain "${g_model}_w${g_b}_${g_c}_madpwl_retrain_s$g_seed" "$g_model" "$g_seed" "$g_fargs" \
          --bits "$g_b" --clip "$g_c" --grad mad-pwl $g_rargs
    done
  done
}
# 4. the rest of the clipping grid, retrained from the seed-1 float model
#    (2 epochs each): every method at 8, 6, 4, 3 and 2 bits
grid cnn 1 "max static-octav percentile mse-sweep pact lsq" "" "" "4 3 2"
grid cnn 1 "octav max static-octav percentile mse-sweep pact lsq" "" "" "8 6"
# 5. resnet20: float (5 epochs), then 4- and 3-bit retraining with dynamic
#    OCTAV, static OCTAV, max and LSQ (2 epochs)
grid resnet20 1 "octav static-octav max lsq" "--epochs 5" ""
# 6. three seeds for the 4- and 3-bit cells of the cnn grid: seeds 2 and 3
#    train their own float model, then every clipping method is retrained
#    from it (2 epochs), as for seed 1 in step 4
for s in ${CELL_SEEDS:-2 3}; do
  grid cnn "$s" "octav static-octav max percentile mse-sweep pact lsq" "" ""
done
# 7. mobilenetv2 (width 1.0): float, 2 epochs (about 10 minutes an epoch on
#    2 cores), then 4- and 3-bit retraining, 1 epoch each, with dynamic OCTAV,
#    max, static OCTAV and LSQ
grid mobilenetv2 1 "octav max static-octav lsq" "--epochs 2" "--epochs 1"
# 8. the 2-bit column of the cnn grid over seeds 2 and 3 (as step 6)
for s in ${CELL_SEEDS:-2 3}; do
  grid cnn "$s" "octav static-octav max percentile mse-sweep pact lsq" "" "" 2
done
# 9. from scratch at low bits (10 epochs, as the float model): dynamic OCTAV
#    against max-scaling, MAD weight / PWL input gradients
for b in 4 3 2; do
  for c in octav max; do
    run "cnn_w${b}_${c}_madpwl_scratch_s1" --model cnn --seed 1 --bits "$b" --clip "$c" --grad mad-pwl
  done
done
# 10. seeds 2 and 3 for resnet20's 4- and 3-bit cells (as step 5; the two
#    float runs first when two workers share the list)
for s in ${CELL_SEEDS:-2 3}; do
  grid resnet20 "$s" "octav static-octav max lsq" "--epochs 5" ""
done
# 11. seeds 2 and 3 for mobilenetv2's 4- and 3-bit cells (as step 7)
for s in ${CELL_SEEDS:-2 3}; do
  grid mobilenetv2 "$s" "octav max static-octav lsq" "--epochs 2" "--epochs 1"
done
# 12. from scratch, the other clipping methods (cnn, seed 1, 10 epochs as
#    the float model; step 9 has OCTAV and max). Static OCTAV and the MSE
#    sweep (always static) calibrate their scalars before the first step,
#    on the initial weights, and keep them: the paper uses static scalars
#    for retraining, not from scratch
for b in 4 3 2; do
  for c in percentile mse-sweep lsq pact static-octav; do
    run "cnn_w${b}_${c}_madpwl_scratch_s1" --model cnn --seed 1 --bits "$b" --clip "$c" --grad mad-pwl
  done
done
# 12b. the gradient estimators over seeds (the paper's Figure 3 question at
#    4 and 3 bits): STE, PWL and MAD for weights with dynamic OCTAV,
#    retrained from each seed's float model as step 3 (which has seed 1 at 3
#    and 2 bits; MAD/PWL is in steps 2 and 6)
for b in 4 3; do
  for s in 1 2 3; do
    for g in pwl ste mad; do
      retrain "cnn_w${b}_octav_${g}_retrain_s$s" cnn "$s" "" --bits "$b" --clip octav --grad "$g"
    done
  done
done
# 13. the rest of the method grid for resnet20 and mobilenetv2 (seed 1, 4 and
#    3 bits, as steps 5 and 7): the percentile, the MSE sweep and PACT
grid resnet20 1 "percentile mse-sweep pact" "--epochs 5" ""
grid mobilenetv2 1 "percentile mse-sweep pact" "--epochs 2" "--epochs 1"
# 14. resnet20 beyond 4 and 3 bits (seed 1, retrained 2 epochs as step 5):
#    2 bits with the four methods of step 5, then 8 and 6 bits with dynamic
#    OCTAV and max
grid resnet20 1 "octav max static-octav lsq" "--epochs 5" "" 2
grid resnet20 1 "octav max" "--epochs 5" "" "8 6"
# 15. resnet20 from scratch (seed 1, 5 epochs as its float model): dynamic
#    OCTAV against max-scaling at 4 and 3 bits, as step 9 for cnn
for b in 4 3; do
  for c in octav max; do
    run "resnet20_w${b}_${c}_madpwl_scratch_s1" --model resnet20 --seed 1 --epochs 5 --bits "$b" --clip "$c" --grad mad-pwl
  done
done
# 16. the gradient estimators from scratch (cnn, seed 1, 10 epochs as step
#    9): STE, PWL and MAD for weights with dynamic OCTAV at 4 and 3 bits,
#    against MAD/PWL (step 9); the paper's stuck-weight and gradient-growth
#    arguments are about training from scratch
for b in 4 3; do
  for g in ste pwl mad; do
    run "cnn_w${b}_octav_${g}_scratch_s1" --model cnn --seed 1 --bits "$b" --clip octav --grad "$g"
  done
done
# 17. cnn from scratch at 8 and 6 bits (seed 1, 10 epochs as step 9):
#    dynamic OCTAV against max-scaling, the from-scratch column of the cnn
#    grid beyond the low bit widths
for b in 8 6; do
  for c in octav max; do
    run "cnn_w${b}_${c}_madpwl_scratch_s1" --model cnn --seed 1 --bits "$b" --clip "$c" --grad mad-pwl
  done
done
# 18. resnet20 from scratch beyond OCTAV and max (seed 1, 5 epochs as step
#    15): LSQ, then static OCTAV, at 4 and 3 bits
for c in lsq static-octav; do
  for b in 4 3; do
    run "resnet20_w${b}_${c}_madpwl_scratch_s1" --model resnet20 --seed 1 --epochs 5 --bits "$b" --clip "$c" --grad mad-pwl
  done
done
# 19. resnet20 from scratch with the remaining clipping methods (seed 1, 5
#    epochs as step 15): the percentile, the MSE sweep and PACT at 4 and 3
#    bits, so that its from-scratch column has every method as cnn's has
for c in percentile mse-sweep pact; do
  for b in 4 3; do
    run "resnet20_w${b}_${c}_madpwl_scratch_s1" --model resnet20 --seed 1 --epochs 5 --bits "$b" --clip "$c" --grad mad-pwl
  done
done
# 20. cnn from scratch at 8 and 6 bits with the other clipping methods
#    (seed 1, 10 epochs as step 17, which has OCTAV and max): the percentile,
#    the MSE sweep, PACT, LSQ and static OCTAV
for b in 8 6; do
  for c in percentile mse-sweep pact lsq static-octav; do
    run "cnn_w${b}_${c}_madpwl_scratch_s1" --model cnn --seed 1 --bits "$b" --clip "$c" --grad mad-pwl
  done
done
echo "results: $db" >&2
