#!/usr/bin/env bash
# Judge the prior run (robust_etw_prior.yaml) twice, side by side at one thread each: its final
# checkpoint and the warm-up's (warmup/), each against the varied cohort's baseline
# (docs/study/varied-robust/eval.sh, PICTURE=0); then one table beside the rim x 10 run without the
# prior (docs/study/et-weight/warmup) and the bundled model (runs/prior-table.md), and one picture
# (runs/prior-t1c_cases.png).
#   docs/study/prior/eval.sh       (after the run in docs/training-study.md, Reproduce)
set -euo pipefail
cd "$(dirname "$0")/../../.."
docs/study/varied-robust/both_checkpoints.sh prior t1c-varied/train-robust_etw_prior
rim=docs/study/et-weight/warmup
.venv/bin/python scripts/ab_table.py --json prior-warmup=runs/prior-warm/eval/ab_t1c.json \
    --json prior-final=runs/prior-final/eval/ab_t1c.json --json rim-warmup=$rim/warm/ab_t1c.json \
    --json bundled=docs/study/robust-probe/bundled/ab_t1c.json \
    --cohort indist=runs/issue17/indist/labels --cohort shifted=runs/issue17/shifted/labels \
    | sed 's/| new |/| prior-warmup |/' > runs/prior-table.md   # the first file's run keeps the name "new"
.venv/bin/python scripts/compare_picture.py t1c --run bundled=workspace/additional_files \
    --run prior-warmup=runs/prior-warm/train --run prior-final=runs/prior-final/train \
    --baseline runs/t1c-varied/baseline \
    --missing-in runs/issue17/indist/labels --missing-in runs/issue17/shifted/labels --out runs/prior-t1c_cases.png
echo done
