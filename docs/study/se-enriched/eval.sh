#!/usr/bin/env bash
# Judge the spin-echo-enriched run (cohort.sh beside this file, then the rim x 10 keep recipe) by its
# warm-up checkpoint (warmup/: the final one was the worse of the two in every earlier rim run)
# against the varied cohort's baseline with docs/study/varied-robust/eval.sh (both cores): one table
# beside the rim x 10 warm-up model and the bundled one (runs/se-table.md), the enhancement by T1-ce
# acquisition (runs/se-by_sequence.txt), the spin-echo counterfactual cases of
# docs/study/se-counterfactual scored by it (runs/se-counterfactual.txt) and one picture of the cases
# missing T1-ce (runs/se-t1c_cases.png), and the truth's enhancement per acquisition in the training
# cohort (runs/se-truth_ratios.txt).
#   docs/study/se-enriched/eval.sh     (after the run; needs runs/se-cf from se-counterfactual/run.sh)
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PYTHON:-.venv/bin/python}
run=runs/se-warm
rim10=docs/study/et-weight/warmup/warm/ab_t1c.json
rm -rf "$run"; mkdir -p "$run"
ln -s ../t1c-varied/baseline "$run/baseline"
ln -s ../t1c-se/train-robust_etw_keep/warmup "$run/train"
PICTURE=0 docs/study/varied-robust/eval.sh "$run" > runs/se-warm.log 2>&1
cohorts=(--cohort indist=runs/issue17/indist/labels --cohort shifted=runs/issue17/shifted/labels)
"$PY" scripts/ab_table.py --json se-warmup=$run/eval/ab_t1c.json --json rim10-warmup=$rim10 \
    --json bundled=docs/study/robust-probe/bundled/ab_t1c.json "${cohorts[@]}" > runs/se-table.md
"$PY" docs/study/et-weight/by_sequence.py --json se-warmup=$run/eval/ab_t1c.json --json rim10-warmup=$rim10 \
    "${cohorts[@]}" > runs/se-by_sequence.txt
variants=()
for variant in as-drawn t1n-mprage both-mprage; do variants+=(--cohort "$variant=runs/se-cf/$variant"); done
"$PY" scripts/ab_probe.py t1c --run se-warm=$run/train --baseline runs/t1c-varied/baseline --mirror-axes none \
    "${variants[@]}" --json runs/se-counterfactual.json > /dev/null
"$PY" docs/study/se-counterfactual/summary.py runs/se-counterfactual.json > runs/se-counterfactual.txt
"$PY" scripts/compare_picture.py t1c --run bundled=workspace/additional_files --run se-warmup=$run/train \
    --baseline runs/t1c-varied/baseline --missing-in runs/issue17/indist/labels \
    --missing-in runs/issue17/shifted/labels --out runs/se-t1c_cases.png
"$PY" docs/study/se-counterfactual/truth_ratios.py --training se=runs/t1c-se/cohort:1:varied > runs/se-truth_ratios.txt
echo done
