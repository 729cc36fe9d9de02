#!/usr/bin/env bash
# Judge the rim x 30 keep run (robust_etw30_keep.yaml) twice, side by side at one thread each: its
# final checkpoint and the warm-up's (warmup/), each against the varied cohort's baseline
# (docs/study/varied-robust/both_checkpoints.sh); then one table beside the rim x 10 warm-up model
# (docs/study/et-weight/warmup) and the bundled model (runs/rim30-table.md), and one picture
# (runs/rim30-t1c_cases.png; the rim x 10 run's weights are not kept in git, so its picture is
# docs/study/et-weight/warmup/t1c_cases.png).
#   docs/study/et-weight/rim30/eval.sh       (after the run in docs/training-study.md, Reproduce)
set -euo pipefail
cd "$(dirname "$0")/../../../.."
docs/study/varied-robust/both_checkpoints.sh rim30 t1c-varied/train-robust_etw30_keep
rim10=docs/study/et-weight/warmup
.venv/bin/python scripts/ab_table.py --json rim30-warmup=runs/rim30-warm/eval/ab_t1c.json \
    --json rim30-final=runs/rim30-final/eval/ab_t1c.json --json rim10-warmup=$rim10/warm/ab_t1c.json \
    --json bundled=docs/study/robust-probe/bundled/ab_t1c.json \
    --cohort indist=runs/issue17/indist/labels --cohort shifted=runs/issue17/shifted/labels \
    | sed 's/| new |/| rim30-warmup |/' > runs/rim30-table.md   # the first file's run keeps the name "new"
.venv/bin/python scripts/compare_picture.py t1c --run bundled=workspace/additional_files \
    --run rim30-warmup=runs/rim30-warm/train --run rim30-final=runs/rim30-final/train \
    --baseline runs/t1c-varied/baseline --missing-in runs/issue17/indist/labels \
    --missing-in runs/issue17/shifted/labels --out runs/rim30-t1c_cases.png
echo done
