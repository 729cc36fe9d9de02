#!/usr/bin/env bash
# Judge the warm-up-only run (robust_etw_warmup_only.yaml): its warm-up checkpoint (warmup/, taken
# after the whole learning-rate decay; the final one differs by 40 steps at ~2 % of the base rate
# and is not judged) against the varied cohort's baseline with docs/study/varied-robust/eval.sh
# (both cores), then one table beside the rim x 10 and rim x 30 warm-up models
# (runs/wonly-table.md), one picture of the cases missing T1-ce (runs/wonly-t1c_cases.png), one of
# two spin-echo T1-ce cases and an MPRAGE one (runs/wonly-se_cases.png), and the enhancement by
# T1-ce acquisition (runs/wonly-by_sequence.txt).
#   docs/study/et-weight/warmup-only/eval.sh    (after the run in docs/training-study.md, Reproduce)
set -euo pipefail
PY=${PYTHON:-.venv/bin/python}
cd "$(dirname "$0")/../../../.."
run=runs/wonly-warm
rm -rf "$run"; mkdir -p "$run"
ln -s ../t1c-varied/baseline "$run/baseline"
ln -s ../t1c-varied/train-robust_etw_warmup_only/warmup "$run/train"
PICTURE=0 docs/study/varied-robust/eval.sh "$run" > runs/wonly-warm.log 2>&1
et=docs/study/et-weight
"$PY" scripts/ab_table.py --json wonly-warmup=$run/eval/ab_t1c.json \
    --json rim10-warmup=$et/warmup/warm/ab_t1c.json --json rim30-warmup=$et/rim30/warm/ab_t1c.json \
    --json bundled=docs/study/robust-probe/bundled/ab_t1c.json \
    --cohort indist=runs/issue17/indist/labels --cohort shifted=runs/issue17/shifted/labels > runs/wonly-table.md
"$PY" scripts/compare_picture.py t1c --run bundled=workspace/additional_files \
    --run wonly-warmup=$run/train --baseline runs/t1c-varied/baseline \
    --missing-in runs/issue17/indist/labels --missing-in runs/issue17/shifted/labels \
    --out runs/wonly-t1c_cases.png
se=runs/issue17/indist/labels/original_data/BraTS-GLI   # two spin-echo T1-ce cases and one MPRAGE
"$PY" scripts/compare_picture.py t1c --run wonly-warmup=$run/train --baseline runs/t1c-varied/baseline \
    --case $se-20003-000 --case $se-20000-000 --case $se-20001-000 --out runs/wonly-se_cases.png
"$PY" docs/study/et-weight/by_sequence.py --json wonly-warmup=$run/eval/ab_t1c.json \
    --json rim10-warmup=$et/warmup/warm/ab_t1c.json --json rim30-warmup=$et/rim30/warm/ab_t1c.json \
    --cohort indist=runs/issue17/indist/labels --cohort shifted=runs/issue17/shifted/labels > runs/wonly-by_sequence.txt
echo done
