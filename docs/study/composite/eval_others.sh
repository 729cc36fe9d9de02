#!/usr/bin/env bash
# Judge the composite-background T1, T2 and FLAIR models (docs/study/composite/rule_others.md)
# against the baseline they are judged against (workspace/baseline), with the inference defaults,
# all four composite checkpoints of the run installed together (WEIGHTS; the T1-ce one is a probe):
#   1. section 9: `brasyn infer` + `brasyn evaluate` on both cohorts, scripts/site_shift_table.py
#      -> section9.md (the bundled models' table is docs/training-study.md, section 9);
#   2. the README's 16-case validation table -> validation.txt;
#   3. beside them (one thread each), the outermost-ring mechanism check (where_probe.py) of T2 and T1
#      -> where_<target>.txt (the bundled ones: docs/study/medperf-where/bundled_<target>.txt).
#
#   docs/study/composite/eval_others.sh [RUN (runs/comp4)] [WEIGHTS (runs/ws-comp4/additional_files)] [OUT (RUN/eval)]
# Needs runs/issue17/{indist,shifted} and runs/eval (16 cases, seed 2024), docs, Reproduce.
set -euo pipefail
cd "$(dirname "$0")/../../.."
RUN=${1:-runs/comp4}
WEIGHTS=${2:-runs/ws-comp4/additional_files}
OUT=${3:-$RUN/eval}
PY=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=1
log() { echo "[$(date +%H:%M:%S)] $*"; }
brasyn() { "$PY" -m brasyn.cli "$@"; }
mkdir -p "$OUT"

judge() {  # cohort name, cohort folder (data/, labels/): infer, evaluate
    local dir=$OUT/$1
    rm -rf "$dir"; mkdir -p "$dir"
    ln -s "$(realpath "$2/labels")" "$dir/labels"
    brasyn infer "$2/data" "$dir/model" --weights "$WEIGHTS" --segmentation-dir "$dir/seg" --no-progress
    brasyn infer "$2/data" "$dir/baseline" --weights workspace/baseline --no-progress
    brasyn evaluate --pred "$dir/model" --labels "$dir/labels" --segmentation-dir "$dir/seg" \
        --baseline "$dir/baseline" --out "$dir/report" --no-pictures
}
where() {  # target: the edge of the composite model, every case of both section-9 cohorts
    "$PY" docs/study/medperf-where/where_probe.py "$1" --run "composite=$WEIGHTS" --baseline workspace/baseline \
        --cohort indist=runs/issue17/indist/labels --cohort shifted=runs/issue17/shifted/labels > "$OUT/where_$1.txt"
}
lane_scores() {
    judge indist runs/issue17/indist > "$OUT/indist.txt"
    judge shifted runs/issue17/shifted > "$OUT/shifted.txt"
    "$PY" scripts/site_shift_table.py "$OUT/indist" "$OUT/shifted" > "$OUT/section9.md"
    log "section 9 done"
    judge validation runs/eval > "$OUT/validation.txt"
    log "validation done"
}
lane_edges() { where t2w; log "edge of t2w done"; where t1n; log "edge of t1n done"; }

log "judging $WEIGHTS"
lane_scores & lane_edges; wait
log done
