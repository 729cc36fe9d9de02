#!/usr/bin/env bash
# Judge a run's final checkpoint and its warm-up's (stage2.keep_warmup_checkpoint: warmup/) side by
# side, one thread each, with eval.sh beside this file (PICTURE=0), each against the varied cohort's
# baseline (runs/t1c-varied/baseline):
#   docs/study/varied-robust/both_checkpoints.sh NAME RUN_FOLDER   (RUN_FOLDER relative to runs/)
# e.g. `prior t1c-varied/train-robust_etw_prior` writes runs/prior-final/eval and runs/prior-warm/eval
# (logs runs/prior-final.log, runs/prior-warm.log). Used by docs/study/et-weight/warmup/eval.sh and
# docs/study/prior/eval.sh.
set -euo pipefail
cd "$(dirname "$0")/../../.."
name=$1 folder=$2
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
