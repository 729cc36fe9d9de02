#!/usr/bin/env bash
# Issue 17: judge a T1-ce model retrained on the varied site (scripts/train_checkpoints.sh with
# TARGETS=t1c CONFIG=synthetic_robust PHANTOM_ARGS="--site varied" RUN=$RUN INSTALL=0) against the
# polynomial baseline fitted on its own training cohort (the varied cohort's, fitted by the same
# run), with the inference defaults:
#   1. the FLAIR counterfactual on the four post-contrast-FLAIR cases of the shifted site
#   2. every case of both section-9 cohorts as a T1-ce target (scripts/ab_probe.py); from it,
#      scripts/ab_table.py writes table.md: the section-9 table's T1-ce cells (the cases missing
#      T1-ce) and the every-case view, beside the bundled model's probe (BUNDLED_JSON);
#   3. t1c_cases.png: the cases missing T1-ce, truth beside the bundled model, the new one and the
#      new one's baseline (scripts/compare_picture.py).
#
#   docs/study/varied-robust/eval.sh [RUN (runs/varied-robust)] [OUT (runs/varied-robust/eval)]
# Earlier runs to show beside it: COMPARE="NAME=RUN ..." (each RUN's train/ in the picture and its
# eval/ab_t1c.json in the table), e.g. COMPARE="robust=runs/varied-robust". PICTURE=0 skips step 3
# (about a third of the time), e.g. to judge two runs side by side and draw one picture of both.
# Needs the section-9 cohorts in runs/issue17/{indist,shifted}/{data,labels} (docs, Reproduce).
set -euo pipefail
cd "$(dirname "$0")/../../.."
RUN=${1:-runs/varied-robust}
OUT=${2:-$RUN/eval}
PY=${PYTHON:-.venv/bin/python}
log() { echo "[$(date +%H:%M:%S)] $*"; }
mkdir -p "$OUT"

log "counterfactual"
"$PY" scripts/flair_counterfactual.py --weights "$RUN/train" --json "$OUT/flair.json" | tee "$OUT/flair.txt"

log "all cases as T1-ce targets"
"$PY" scripts/ab_probe.py t1c --run new="$RUN/train" --baseline "$RUN/baseline" \
    --cohort indist=runs/issue17/indist/labels/original_data \
    --cohort shifted=runs/issue17/shifted/labels/original_data \
    --json "$OUT/ab_t1c.json" | tee "$OUT/ab_t1c.txt"
compare_json=() compare_runs=()
for pair in ${COMPARE:-}; do
    compare_json+=(--json "${pair%%=*}=${pair#*=}/eval/ab_t1c.json")
    compare_runs+=(--run "${pair%%=*}=${pair#*=}/train")
done
"$PY" scripts/ab_table.py --json new="$OUT/ab_t1c.json" "${compare_json[@]}" \
    --json bundled="${BUNDLED_JSON:-docs/study/robust-probe/bundled/ab_t1c.json}" \
    --cohort indist=runs/issue17/indist/labels --cohort shifted=runs/issue17/shifted/labels | tee "$OUT/table.md"
[[ ${PICTURE:-1} == 1 ]] || { log done; exit 0; }
log "picture"
"$PY" scripts/compare_picture.py t1c --run bundled=workspace/additional_files "${compare_runs[@]}" --run new="$RUN/train" \
    --baseline "$RUN/baseline" \
    --missing-in runs/issue17/indist/labels --missing-in runs/issue17/shifted/labels --out "$OUT/t1c_cases.png"
log done
