#!/usr/bin/env bash
# One prepared GPU check (issue 10): every result lands in one folder, every step is independent
# (its own timeout; a failure is recorded and the script goes on), within a total time budget.
#
#   bench/gpu_check.sh OUT_DIR            # or OUT=dir / GPU_CHECK_OUT=dir; `make gpu-check OUT=dir`
#   DEVICE=cpu bench/gpu_check.sh OUT_DIR # the same steps on the tiny config, about a minute on 2 cores
#
# Environment: DEVICE (cuda | cpu, default cuda), PYTHON (default .venv/bin/python, else python3;
# nothing is installed), BUDGET_S (total seconds, default 285), COMPILE (1: also measure
# torch.compile and CUDA graphs, default 1 on CUDA), MODELS (inference sizes, default demo,paper).
# Writes OUT_DIR/<step>.log, <step>.json, steps.tsv and summary.json; exit status 1 if a step failed.
set -u
cd "$(dirname "$0")/.." || exit 2
REPO=$(pwd)
OUT_DIR=${1:-${OUT:-${GPU_CHECK_OUT:-gpu-check}}}
DEVICE=${DEVICE:-cuda}
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=$REPO/.venv/bin/python; else PYTHON=python3; fi
fi
mkdir -p "$OUT_DIR" && OUT_DIR=$(cd "$OUT_DIR" && pwd) || exit 2
BUDGET_S=${BUDGET_S:-285}
if [ "$DEVICE" = cpu ]; then
  MODELS=${MODELS:-tiny}; BIG=tiny; DDP_MODEL=tiny; COMPILE=${COMPILE:-0}; CASES=8
else
  MODELS=${MODELS:-demo,paper}; BIG=paper; DDP_MODEL=demo; COMPILE=${COMPILE:-1}; CASES=8
fi
STEPS="$OUT_DIR/steps.tsv"
printf 'step\tstatus\trc\tseconds\n' > "$STEPS"
START=$(date +%s)
WORK="$OUT_DIR/work"
export PYTHONPATH="$REPO/project:$REPO/bench${PYTHONPATH:+:$PYTHONPATH}"

seconds_since() {  # seconds since a `date +%s%N` stamp, with three decimals (no bc needed)
  local ms=$(( ($(date +%s%N) - $1) / 1000000 ))
  printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

# step NAME LIMIT_S COMMAND...: run with the smaller of LIMIT_S and the time left; log to NAME.log
step() {
  local name=$1 limit=$2; shift 2
  local left=$((BUDGET_S - ($(date +%s) - START)))
  if [ "$left" -lt 10 ]; then
    printf '%s\tskipped\t-\t0\n' "$name" >> "$STEPS"; echo "[$name] skipped: time budget spent"; return 1
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local t0; t0=$(date +%s%N)
  if declare -F "$1" > /dev/null; then set -- bash -c "$*"; fi  # a function of this script (exported below)
  timeout --kill-after=10 "$limit" "$@" > "$OUT_DIR/$name.log" 2>&1
  local rc=$? status=ok
  [ $rc -ne 0 ] && status=failed
  { [ $rc -eq 124 ] || [ $rc -eq 137 ]; } && status=timeout
  local secs; secs=$(seconds_since "$t0")
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$secs" >> "$STEPS"
  echo "[$name] $status ($secs s): $(grep -v '^\s*$' "$OUT_DIR/$name.log" | tail -n 1 | cut -c1-160)"
  [ $rc -eq 0 ]
}

cube() {  # 8 synthetic cases end to end through the MLCube entrypoint, wall time measured here
  "$PYTHON" bench/gpu_steps.py cube-inputs --device "$DEVICE" --model "$BIG" --cases $CASES --root "$WORK/cube" || return 1
  local t0; t0=$(date +%s%N)
  "$PYTHON" project/mlcube.py infer --data_path="$WORK/cube/data" --output_path="$OUT_DIR/cube_predictions" \
    --parameters_file="$WORK/cube/parameters.yaml" --weights="$WORK/cube/weights" 2>&1 | tee "$OUT_DIR/cube_infer.log"
  local rc=${PIPESTATUS[0]} wall; wall=$(seconds_since "$t0")
  "$PYTHON" bench/gpu_steps.py cube-timings --log "$OUT_DIR/cube_infer.log" --cases $CASES \
    --wall "$wall" --out "$OUT_DIR/cube.json" || return 1
  [ "$(ls "$OUT_DIR/cube_predictions" | wc -l)" -eq $CASES ] || { echo "expected $CASES predictions"; return 1; }
  return "$rc"
}

ddp() {
  local n=1
  if [ "$DEVICE" != cpu ]; then
    n=$("$PYTHON" -c 'import torch; print(min(2, torch.cuda.device_count()))') || return 1
  fi
  echo "processes: $n"
  "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node "$n" bench/ddp_check.py \
    --device "$DEVICE" --model "$DDP_MODEL" --out "$OUT_DIR/ddp.json"
}

export -f cube ddp seconds_since
export PYTHON DEVICE BIG DDP_MODEL CASES WORK OUT_DIR
echo "gpu_check: device $DEVICE, python $PYTHON, results in $OUT_DIR, budget ${BUDGET_S} s"
step env 60 bash -c "nvidia-smi 2>&1; \"$PYTHON\" -c 'import json, common; print(json.dumps(common.machine()))' | tee \"$OUT_DIR/env.json\""
# the torch build (CUDA release, compiled architectures), the driver, and whether this GPU is among them
REQUIRE_GPU=""; [ "$DEVICE" != cpu ] && REQUIRE_GPU="--require-gpu"
step gpu_support 30 bash -c "nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv 2>&1; \
  \"$PYTHON\" -m brasyn.gpu --json \"$OUT_DIR/gpu_support.json\" $REQUIRE_GPU"
step pytest_gpu 90 "$PYTHON" -m pytest -q -m gpu -p no:cacheprovider tests --junitxml="$OUT_DIR/pytest_gpu.xml"
step inference 120 "$PYTHON" bench/gpu_steps.py inference --device "$DEVICE" --models "$MODELS" --out "$OUT_DIR/inference.json"
step cube 120 cube
step ssim 60 "$PYTHON" bench/gpu_steps.py ssim --device "$DEVICE" --model "$BIG" --out "$OUT_DIR/ssim.json"
TRAIN_STEPS="--warmup 2 --steps 3"; [ "$DEVICE" = cpu ] && TRAIN_STEPS="--warmup 1 --steps 1"
step train_step 90 "$PYTHON" bench/gpu_steps.py train-step --device "$DEVICE" --model "$BIG" $TRAIN_STEPS --out "$OUT_DIR/train_step.json"
step ddp 90 ddp
if [ "$COMPILE" = 1 ]; then
  step inference_compiled 150 "$PYTHON" bench/gpu_steps.py inference --device "$DEVICE" --models "$MODELS" \
    --compile --cudagraphs --repeats 2 --out "$OUT_DIR/inference_compiled.json"
fi
rm -rf "$WORK"

if ! "$PYTHON" bench/check_summary.py "$OUT_DIR" --elapsed $(( $(date +%s) - START )); then
  echo "summary script failed: summary.json written from steps.tsv only"
  awk -F'\t' 'NR > 1 { printf "%s\"%s\": \"%s\"", (n++ ? ", " : "{\"steps\": {"), $1, $2 } END { print "}}" }' \
    "$STEPS" > "$OUT_DIR/summary.json"
  column -t "$STEPS" 2>/dev/null || cat "$STEPS"
fi
awk -F'\t' 'NR > 1 && $2 != "ok" { bad = 1 } END { exit bad }' "$STEPS"
