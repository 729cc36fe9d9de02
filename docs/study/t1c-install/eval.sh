#!/usr/bin/env bash
# Judge a T1-ce model trained to replace the bundled one (the rim x 10 keep recipe on the varied
# cohort, its warm-up checkpoint, installed into a copy of the workspace; docs/training-study.md,
# Reproduce) before it replaces it (it did not: section 9, "retrained to be installed"):
#   1. docs/study/varied-robust/eval.sh: the FLAIR counterfactual and every case of both section-9
#      cohorts as a T1-ce target, against the baseline fitted by the same run (both cores);
#   2. table.md: beside the earlier run of the same recipe (docs/study/et-weight/warmup) and the
#      bundled model;
#   3. the README's 16-case validation table, T1-ce column: `brasyn infer` (inference defaults, with
#      the segmentation decoder's maps) and `brasyn evaluate` beside the baseline on the cohort's
#      four cases missing T1-ce (the other columns' checkpoints are unchanged);
#   4. t1c_cases.png: the section-9 cases missing T1-ce, truth, bundled, new, baseline.
#
#   docs/study/t1c-install/eval.sh [RUN (runs/t1c-install)]
# Other runs' probes to show in table.md: COMPARE_JSON="NAME=ab_t1c.json ...", e.g. the retrained
# varied-cohort model's, COMPARE_JSON="varied-retrained=docs/study/t1c-install/ab_t1c.json"
# (docs/study/t1c-mixed, where RUN is the both-site cohort's run). Another run's model and baseline:
# TRAIN (its weights folder in RUN, train-robust_etw_keep/warmup) and BASE (RUN/baseline), e.g. the
# composite-background run: TRAIN=train-wide_composite BASE=workspace/baseline ... eval.sh runs/checkpoints.
# Needs runs/issue17/{indist,shifted} and runs/eval (16 cases, seed 2024), docs, Reproduce.
set -euo pipefail
cd "$(dirname "$0")/../../.."
RUN=${1:-runs/t1c-install}
PY=${PYTHON:-.venv/bin/python}
judge=$RUN/judge
log() { echo "[$(date +%H:%M:%S)] $*"; }
rm -rf "$judge"; mkdir -p "$judge"
ln -s "$(cd "$RUN" && pwd)/${TRAIN:-train-robust_etw_keep/warmup}" "$judge/train"
ln -s "$(realpath "${BASE:-$RUN/baseline}")" "$judge/baseline"
PICTURE=0 docs/study/varied-robust/eval.sh "$judge"
compare_json=()
for pair in ${COMPARE_JSON:-}; do compare_json+=(--json "$pair"); done
"$PY" scripts/ab_table.py --json new="$judge/eval/ab_t1c.json" "${compare_json[@]}" \
    --json rim10-warmup-earlier=docs/study/et-weight/warmup/warm/ab_t1c.json \
    --json bundled=docs/study/robust-probe/bundled/ab_t1c.json \
    --cohort indist=runs/issue17/indist/labels --cohort shifted=runs/issue17/shifted/labels > "$judge/table.md"

log "16-case validation cohort, the cases missing T1-ce"
val=$judge/validation
mkdir -p "$val/data" "$val/labels/original_data"
# the cohort's missing.json cut to its T1-ce cases, written beside them; the case names printed
cases=$("$PY" -c "import json, sys; keep = {c: m for c, m in json.load(open(sys.argv[1])).items() if m == 't1c'}
json.dump(keep, open(sys.argv[2], 'w'), indent=1); print(*keep)" runs/eval/labels/missing.json "$val/labels/missing.json")
for case in $cases; do
    ln -s "$PWD/runs/eval/data/$case" "$val/data/$case"
    ln -s "$PWD/runs/eval/labels/original_data/$case" "$val/labels/original_data/$case"
done
for which in new bundled; do
    weights=$judge/train; base=$judge/baseline
    if [[ $which == bundled ]]; then weights=workspace/additional_files; base=workspace/baseline; fi
    "$PY" -m brasyn.cli infer "$val/data" "$val/$which/model" --weights "$weights" --segmentation-dir "$val/$which/seg"
    "$PY" -m brasyn.cli infer "$val/data" "$val/$which/baseline" --weights "$base"
    "$PY" -m brasyn.cli evaluate --pred "$val/$which/model" --labels "$val/labels" --segmentation-dir "$val/$which/seg" \
        --baseline "$val/$which/baseline" --out "$val/$which/report" --no-pictures > "$val/$which.txt"
done
[[ ${PICTURE:-1} == 1 ]] || { log done; exit 0; }
log "picture"
"$PY" scripts/compare_picture.py t1c --run bundled=workspace/additional_files --run new="$judge/train" \
    --baseline "$judge/baseline" \
    --missing-in runs/issue17/indist/labels --missing-in runs/issue17/shifted/labels --out "$judge/t1c_cases.png"
log done
