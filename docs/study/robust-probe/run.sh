#!/usr/bin/env bash
# Issue 17 probe: T1-ce trained with synthetic_wide (arm "wide") and synthetic_robust (arm "robust"),
# side by side at one thread each with the same wall-time budget, on a training cohort: by default
# the one of `make checkpoints` (runs/checkpoints/cohort, 32 cases, seed 1, default site).
#   docs/study/robust-probe/run.sh [RUN]
#   COHORT=runs/varied/cohort CACHE=runs/varied/cache docs/study/robust-probe/run.sh runs/robust-probe-varied
set -euo pipefail
cd "$(dirname "$0")/../../.."
PYTHON=${PYTHON:-.venv/bin/python}
RUN=${1:-runs/robust-probe}
COHORT=${COHORT:-runs/checkpoints/cohort}
CACHE=${CACHE:-runs/checkpoints/cache}
HERE=docs/study/robust-probe
mkdir -p "$RUN"
for arm in wide robust; do
    "$PYTHON" scripts/run_config.py "$HERE/$arm.yaml" "$RUN/$arm.yaml" cpu 0 "$(realpath -m "$CACHE")"
done
export OMP_NUM_THREADS=1
"$PYTHON" -m brasyn.cli train "$COHORT" "$RUN/prepare" --config "$RUN/wide.yaml" --prepare-only --no-progress
for arm in wide robust; do
    "$PYTHON" -m brasyn.cli train "$COHORT" "$RUN/$arm" --config "$RUN/$arm.yaml" --target t1c --no-progress \
        >"$RUN/$arm.log" 2>&1 &
done
wait
echo "probe done: $(date)"
