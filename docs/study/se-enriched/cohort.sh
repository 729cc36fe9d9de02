#!/usr/bin/env bash
# Issue 17: the varied training cohort (runs/t1c-varied/cohort: 32 cases, seed 1, 6 spin-echo T1)
# plus the first ten further cases of the same seed and site whose T1 is a spin echo (indices found
# by redrawing each case's physics, no volume made; 10035 ... 10076), so 16 of 42 cases are spin
# echo. The 32 cases are hard links, the ten are generated. Then train it as the rim x 10 keep run:
#   docs/study/se-enriched/cohort.sh
#   RUN=runs/t1c-se TARGETS=t1c TARGET_CONFIGS=t1c=docs/study/et-weight/warmup/robust_etw_keep.yaml \
#       PHANTOM_ARGS="--site varied" INSTALL=0 BASELINE=0 scripts/train_checkpoints.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PYTHON:-.venv/bin/python}
out=runs/t1c-se/cohort
[[ -f runs/t1c-varied/cohort/.complete ]] || { echo "runs/t1c-varied/cohort: train the varied cohort first (docs, Reproduce)"; exit 1; }
rm -rf "$out" runs/t1c-se/parts
mkdir -p "$out"
cp -al runs/t1c-varied/cohort/BraTS-* "$out/"
indices=$(PYTHONPATH=scripts "$PY" - <<'PY'
from study_cases import drawn_protocol

from brasyn.constants import Modality

found = []
index = 10032
while len(found) < 10:
    if drawn_protocol(1, index, "varied").sequences[Modality.T1C].kind == "SE":
        found.append(index)
    index += 1
print(*found)
PY
)
echo "spin-echo cases added: $indices"
for index in $indices; do
    "$PY" -m brasyn.cli phantom train runs/t1c-se/parts/$index --cases 1 --seed 1 --first-id "$index" \
        --site varied --no-progress > /dev/null
    mv runs/t1c-se/parts/$index/BraTS-* "$out/"
done
rm -rf runs/t1c-se/parts
touch "$out/.complete"
