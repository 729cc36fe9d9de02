#!/usr/bin/env bash
# Issue 17: the composite rim x 10 run's final checkpoint (after the GAN phase) beside its warm-up
# checkpoint, which docs/study/t1c-install/eval.sh judged (docs/training-study.md, section 9, "the
# composite on the rim x 10 recipe"):
#   1. final_vs_warmup.*: the section-9 cases missing T1-ce, both checkpoints and the baseline
#      (scripts/ab_probe.py, inference defaults);
#   2. validation_final.txt: the 16-case validation cohort's cases missing T1-ce (brasyn infer + evaluate);
#   3. where_final_t1c.txt: where the final model loses MedPerf-2023 SSIM (where_probe.py).
#
#   docs/study/composite/mixed/eval_final.sh [RUN (runs/t1c-mixcomp)] [BASE (runs/t1c-mixed/baseline)]
# Needs runs/issue17/{indist,shifted} and runs/eval (16 cases, seed 2024), docs, Reproduce.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
RUN=${1:-runs/t1c-mixcomp}
BASE=${2:-runs/t1c-mixed/baseline}
PY=${PYTHON:-.venv/bin/python}
final=$RUN/train-rim10_keep_composite
out=$RUN/final-eval
val=$out/validation
rm -rf "$out"; mkdir -p "$out/indist" "$out/shifted" "$val/data" "$val/labels/original_data"
t1c_cases() {  # a cohort's labels/missing.json -> its cases missing T1-ce; with a second path, also that file cut to them
    "$PY" -c "import json, sys; keep = {c: m for c, m in json.load(open(sys.argv[1])).items() if m == 't1c'}
if len(sys.argv) > 2: json.dump(keep, open(sys.argv[2], 'w'), indent=1)
print(*keep)" "$@"
}
for cohort in indist shifted; do
    for case in $(t1c_cases "runs/issue17/$cohort/labels/missing.json"); do
        ln -s "$PWD/runs/issue17/$cohort/labels/original_data/$case" "$out/$cohort/$case"
    done
done
for case in $(t1c_cases runs/eval/labels/missing.json "$val/labels/missing.json"); do
    ln -s "$PWD/runs/eval/data/$case" "$val/data/$case"
    ln -s "$PWD/runs/eval/labels/original_data/$case" "$val/labels/original_data/$case"
done
"$PY" scripts/ab_probe.py t1c --run final="$final" --run warmup="$final/warmup" --baseline "$BASE" \
    --cohort indist="$out/indist" --cohort shifted="$out/shifted" --json "$out/final_vs_warmup.json" > "$out/final_vs_warmup.txt"
"$PY" -m brasyn.cli infer "$val/data" "$val/model" --weights "$final" --segmentation-dir "$val/seg"
"$PY" -m brasyn.cli infer "$val/data" "$val/baseline" --weights "$BASE"
"$PY" -m brasyn.cli evaluate --pred "$val/model" --labels "$val/labels" --segmentation-dir "$val/seg" \
    --baseline "$val/baseline" --out "$val/report" --no-pictures > "$out/validation_final.txt"
"$PY" docs/study/medperf-where/where_probe.py t1c --run final="$final" --baseline "$BASE" \
    --cohort indist=runs/issue17/indist/labels --cohort shifted=runs/issue17/shifted/labels > "$out/where_final_t1c.txt"
