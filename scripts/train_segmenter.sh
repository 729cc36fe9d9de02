#!/usr/bin/env bash
# The bundled segmenter (workspace/segmenter/), reproducibly: the bundled checkpoints' synthetic
# training cohort (32 cases, seed 1; reused from runs/checkpoints/cohort when present) -> the
# validation cohort of the README (16 cases, seed 2024; never trained on) -> `brasyn segmenter fit`
# on the training cohort's four REAL sequences and labels, one torch thread -> its Dice on the
# validation cohort's real sequences -> segmenter.pt + record.json copied into workspace/segmenter/.
#
#   scripts/train_segmenter.sh                       # about 25 min on one core of the 2-core VM
#   MINUTES=5 RUN=/tmp/seg INSTALL=0 scripts/train_segmenter.sh
#
# Environment (defaults): PYTHON (.venv/bin/python), RUN (runs/segmenter), CASES (32), SEED (1),
# VALIDATION_CASES (16), MINUTES (18: the optimisation's wall-time budget), STEPS (2500),
# INSTALL (1: copy the result into WORKSPACE/segmenter/), WORKSPACE (workspace), PHANTOM_ARGS (extra
# `brasyn phantom` options for both cohorts, e.g. --small), FIT_ARGS (extra `brasyn segmenter fit` options).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
RUN=${RUN:-runs/segmenter}
CASES=${CASES:-32}
SEED=${SEED:-1}
VALIDATION_CASES=${VALIDATION_CASES:-16}
MINUTES=${MINUTES:-18}
STEPS=${STEPS:-2500}
INSTALL=${INSTALL:-1}
WORKSPACE=${WORKSPACE:-workspace}
export OMP_NUM_THREADS=1
brasyn() { "$PYTHON" -m brasyn.cli "$@"; }
log() { echo "[$(date +%H:%M:%S)] $*"; }
mkdir -p "$RUN"

cohort=$RUN/cohort
if [[ -f runs/checkpoints/cohort/.complete && $CASES == 32 && $SEED == 1 ]]; then
    cohort=runs/checkpoints/cohort
elif [[ ! -f $cohort/.complete ]]; then
    log "training cohort: $CASES cases, seed $SEED"
    rm -rf "$cohort"
    # shellcheck disable=SC2086  # PHANTOM_ARGS is a list of options
    brasyn phantom train "$cohort" --cases "$CASES" --seed "$SEED" --no-progress ${PHANTOM_ARGS:-} >/dev/null
    touch "$cohort/.complete"
fi
if [[ ! -f $RUN/validation-labels/.complete ]]; then
    log "validation cohort: $VALIDATION_CASES cases, seed 2024"
    rm -rf "$RUN/validation-data" "$RUN/validation-labels"
    # shellcheck disable=SC2086
    brasyn phantom validation "$RUN/validation-data" "$RUN/validation-labels" --cases "$VALIDATION_CASES" \
        --seed 2024 --no-progress ${PHANTOM_ARGS:-} >/dev/null
    touch "$RUN/validation-labels/.complete"
fi
log "fit: $STEPS steps at most, $MINUTES min budget, one thread"
# shellcheck disable=SC2086  # FIT_ARGS is a list of options
brasyn segmenter fit "$cohort" "$RUN/model" --validation "$RUN/validation-labels" --steps "$STEPS" \
    --max-minutes "$MINUTES" --threads 1 ${FIT_ARGS:-}
if [[ $INSTALL == 1 ]]; then
    mkdir -p "$WORKSPACE/segmenter"
    cp "$RUN/model/segmenter.pt" "$RUN/model/record.json" "$WORKSPACE/segmenter/"
    log "installed into $WORKSPACE/segmenter/"
fi
log "done"
