#!/usr/bin/env bash
# Judge the keep run (robust_etw_keep.yaml) twice, side by side at one thread each: its final
# checkpoint and the warm-up's (warmup/), each against the varied cohort's baseline; then one table
# beside the earlier full-budget run and the bundled model (runs/keep-table.md) and one picture
# (runs/keep-t1c_cases.png).
#   docs/study/et-weight/warmup/eval.sh       (after the run in docs/training-study.md, Reproduce)
set -euo pipefail
cd "$(dirname "$0")/../../../.."
exec docs/study/varied-robust/both_checkpoints.sh keep t1c-varied/train-robust_etw_keep \
    full-budget=docs/study/et-weight/full-budget/ab_t1c.json
