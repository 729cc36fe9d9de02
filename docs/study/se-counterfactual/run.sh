#!/usr/bin/env bash
# Issue 17, step 5: the four spin-echo T1-ce cases of the in-distribution cohort regenerated with
# the T1 before contrast (a source) acquired with an MPRAGE, and with both T1 series so acquired
# (make_cases.py beside this file), each scored as a T1-ce target by the bundled model, the
# warm-up-only model, the rim x 30 warm-up model and the varied cohort's baseline (one pass, no
# mirroring, all runs alike), then the enhancement recovered per case (summary.py).
#   docs/study/se-counterfactual/run.sh     (about 15 min on 2 cores; needs the runs it names)
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PYTHON:-.venv/bin/python}
here=docs/study/se-counterfactual
out=runs/se-cf
"$PY" $here/make_cases.py $out --seed 2024 --case 20000 --case 20003 --case 20005 --case 20007 \
    --check runs/issue17/indist/labels/original_data
cohorts=()
for variant in as-drawn t1n-mprage both-mprage; do cohorts+=(--cohort "$variant=$out/$variant"); done
"$PY" scripts/ab_probe.py t1c --run bundled=workspace/additional_files \
    --run wonly-warm=runs/t1c-varied/train-robust_etw_warmup_only/warmup \
    --run rim30-warm=runs/t1c-varied/train-robust_etw30_keep/warmup \
    --baseline runs/t1c-varied/baseline --mirror-axes none "${cohorts[@]}" \
    --json $here/ab_t1c.json | sed -n '/mirror_axes/,$p' > $here/ab_t1c.txt
"$PY" $here/summary.py $here/ab_t1c.json > $here/summary.txt
# the picture: two cases as drawn and with the MPRAGE T1 before contrast (test-time mirroring; ~10 min)
cf=$out/as-drawn/BraTS-GLI cfm=$out/t1n-mprage/BraTS-GLI
"$PY" scripts/compare_picture.py t1c --run bundled=workspace/additional_files \
    --run rim30-warmup=runs/t1c-varied/train-robust_etw30_keep/warmup \
    --case $cf-20003-000 --case $cfm-20003-000 --case $cf-20007-000 --case $cfm-20007-000 --out $out/cases.png
"$PY" -c "from PIL import Image; Image.open('$out/cases.png').convert('RGB').quantize(64).save('$here/cases.png')"
