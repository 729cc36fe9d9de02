#!/usr/bin/env bash
# Judge the prior run (robust_etw_prior.yaml) twice, side by side at one thread each: its final
# checkpoint and the warm-up's (warmup/), each against the varied cohort's baseline; then one table
# beside the rim x 10 run without the prior (docs/study/et-weight/warmup) and the bundled model
# (runs/prior-table.md), and one picture (runs/prior-t1c_cases.png).
#   docs/study/prior/eval.sh       (after the run in docs/training-study.md, Reproduce)
set -euo pipefail
cd "$(dirname "$0")/../../.."
exec docs/study/varied-robust/both_checkpoints.sh prior t1c-varied/train-robust_etw_prior \
    rim-warmup=docs/study/et-weight/warmup/warm/ab_t1c.json
