#!/usr/bin/env bash
# Judge a run's final checkpoint and its warm-up's (stage2.keep_warmup_checkpoint: warmup/) side by
# side, one thread each, with eval.sh beside this file (PICTURE=0), each against the varied cohort's
# baseline (runs/t1c-varied/baseline); then one table of both beside earlier probes and the bundled
# model, and one picture of both beside the bundled model and the baseline:
#   docs/study/varied-robust/both_checkpoints.sh NAME RUN_FOLDER [LABEL=AB_JSON ...]
# RUN_FOLDER is relative to runs/; each LABEL=AB_JSON (an earlier probe's ab_t1c.json) adds its rows
# to the table. E.g. `prior t1c-varied/train-robust_etw_prior rim-warmup=docs/study/et-weight/warmup/warm/ab_t1c.json`
# writes runs/prior-final/eval and runs/prior-warm/eval (logs runs/prior-final.log,
# runs/prior-warm.log), runs/prior-table.md (rows prior-warmup, prior-final, rim-warmup, bundled)
# and runs/prior-t1c_cases.png. Used by the eval.sh of docs/study/et-weight/warmup,
# docs/study/et-weight/rim30 and docs/study/prior.
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PYTHON:-.venv/bin/python}
name=$1 folder=$2
shift 2
for which in final warm; do
    rm -rf "runs/$name-$which"; mkdir -p "runs/$name-$which"
    ln -s ../t1c-varied/baseline "runs/$name-$which/baseline"
done
ln -s "../$folder" "runs/$name-final/train"
ln -s "../$folder/warmup" "runs/$name-warm/train"
pids=()
for which in final warm; do
    OMP_NUM_THREADS=1 PICTURE=0 docs/study/varied-robust/eval.sh "runs/$name-$which" > "runs/$name-$which.log" 2>&1 &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
earlier=()
for pair in "$@"; do earlier+=(--json "$pair"); done
cohorts=(--cohort indist=runs/issue17/indist/labels --cohort shifted=runs/issue17/shifted/labels)
"$PY" scripts/ab_table.py --json "$name-warmup=runs/$name-warm/eval/ab_t1c.json" \
    --json "$name-final=runs/$name-final/eval/ab_t1c.json" "${earlier[@]}" \
    --json bundled=docs/study/robust-probe/bundled/ab_t1c.json "${cohorts[@]}" > "runs/$name-table.md"
"$PY" scripts/compare_picture.py t1c --run bundled=workspace/additional_files \
    --run "$name-warmup=runs/$name-warm/train" --run "$name-final=runs/$name-final/train" \
    --baseline runs/t1c-varied/baseline --missing-in runs/issue17/indist/labels \
    --missing-in runs/issue17/shifted/labels --out "runs/$name-t1c_cases.png"
echo done
