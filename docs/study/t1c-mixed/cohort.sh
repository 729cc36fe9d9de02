#!/usr/bin/env bash
# Issue 17: a training cohort from both training sites, 32 cases of seed 1: indices 10000-10015
# from the default site (the bundled models' cohort's first 16 cases) and 10016-10031 from the
# varied site (the varied cohort's last 16), each case identical to the same index of its one-site
# cohort. Then train the rim x 10 keep recipe on it, installed into a copy of the workspace, and
# judge it as the varied-cohort model was (docs/training-study.md, section 9, "both sites"):
#   docs/study/t1c-mixed/cohort.sh
#   cp -r workspace runs/ws-mixed && RUN=runs/t1c-mixed TARGETS=t1c \
#       TARGET_CONFIGS=t1c=docs/study/et-weight/warmup/robust_etw_keep.yaml INSTALL_WARMUP=t1c \
#       WORKSPACE=runs/ws-mixed scripts/train_checkpoints.sh
#   COMPARE_JSON="varied-retrained=docs/study/t1c-install/ab_t1c.json" docs/study/t1c-install/eval.sh runs/t1c-mixed
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PYTHON:-.venv/bin/python}
run=runs/t1c-mixed
rm -rf "$run/cohort" "$run/parts"
"$PY" -m brasyn.cli phantom train "$run/parts/default" --cases 16 --seed 1 --first-id 10000 --no-progress >/dev/null &
first=$!
"$PY" -m brasyn.cli phantom train "$run/parts/varied" --cases 16 --seed 1 --first-id 10016 --site varied \
    --no-progress >/dev/null &
wait "$first" && wait $!
mkdir -p "$run/cohort"
mv "$run"/parts/*/BraTS-* "$run/cohort/"
for site in default varied; do mv "$run/parts/$site/phantom.json" "$run/cohort/phantom-$site.json"; done
rm -rf "$run/parts"
touch "$run/cohort/.complete"
