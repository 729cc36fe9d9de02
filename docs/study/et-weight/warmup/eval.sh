#!/usr/bin/env bash
# Judge the keep run (robust_etw_keep.yaml) twice, side by side at one thread each: its final checkpoint
# and the warm-up's (warmup/), each against the varied cohort's baseline (docs/study/varied-robust/eval.sh,
# PICTURE=0), then one table (runs/keep-table.md) and one picture (runs/keep-t1c_cases.png) of both.
#   docs/study/et-weight/warmup/eval.sh       (after the run in docs/training-study.md, Reproduce)
set -euo pipefail
cd "$(dirname "$0")/../../../.."
docs/study/varied-robust/both_checkpoints.sh keep t1c-varied/train-robust_etw_keep
.venv/bin/python scripts/ab_table.py --json warmup=runs/keep-warm/eval/ab_t1c.json --json final=runs/keep-final/eval/ab_t1c.json \
    --json full-budget=docs/study/et-weight/full-budget/ab_t1c.json --json bundled=docs/study/robust-probe/bundled/ab_t1c.json \
    --cohort indist=runs/issue17/indist/labels --cohort shifted=runs/issue17/shifted/labels > runs/keep-table.md
.venv/bin/python scripts/compare_picture.py t1c --run bundled=workspace/additional_files --run warmup=runs/keep-warm/train \
    --run final=runs/keep-final/train --baseline runs/t1c-varied/baseline \
    --missing-in runs/issue17/indist/labels --missing-in runs/issue17/shifted/labels --out runs/keep-t1c_cases.png
echo done
