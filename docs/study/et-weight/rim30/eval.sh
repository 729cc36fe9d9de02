#!/usr/bin/env bash
# Judge the rim x 30 keep run (robust_etw30_keep.yaml) twice, side by side at one thread each: its
# final checkpoint and the warm-up's (warmup/), each against the varied cohort's baseline; then one
# table beside the rim x 10 warm-up model (docs/study/et-weight/warmup) and the bundled model
# (runs/rim30-table.md), and one picture (runs/rim30-t1c_cases.png; the rim x 10 run's weights are
# not kept in git, so its picture is docs/study/et-weight/warmup/t1c_cases.png).
#   docs/study/et-weight/rim30/eval.sh       (after the run in docs/training-study.md, Reproduce)
set -euo pipefail
cd "$(dirname "$0")/../../../.."
exec docs/study/varied-robust/both_checkpoints.sh rim30 t1c-varied/train-robust_etw30_keep \
    rim10-warmup=docs/study/et-weight/warmup/warm/ab_t1c.json
