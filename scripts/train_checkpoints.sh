#!/usr/bin/env bash
# The bundled checkpoints, reproducibly: a synthetic training cohort -> slice cache -> the four
# dedicated models (side by side, on a GPU or a CPU) -> the polynomial baseline fitted on the same
# cohort -> optional study variants (docs/study) -> a record of how it was made.
#
#   scripts/train_checkpoints.sh                    # what `make checkpoints` runs
#   TARGETS=t1c BASELINE=0 scripts/train_checkpoints.sh                # retrain one target
#   PYTHON=python3 RUN=/tmp/run STUDY=1 scripts/train_checkpoints.sh   # e.g. on a GPU host
#
# Environment (defaults): PYTHON (.venv/bin/python), RUN (runs/checkpoints), CASES (32), SEED (1),
# CONFIG (docs/study/composite/synthetic_composite.yaml: the synthetic preset with the background
# composite, the bundled recipe of t1n, t2w and t2f), DEVICE (auto), JOBS (number of cores),
# PARALLEL (1: the targets train side by side, on a CPU with JOBS/(number of targets) threads each,
# at least 1: on 2 cores as many steps per hour as one after another, and other work on the machine
# slows all targets alike instead of cutting the last one short), TARGETS ("t1n t1c t2w t2f"; a
# subset retrains only those),
# TARGET_CONFIGS (target=config pairs that replace CONFIG for one target; with the default CONFIG or
# CONFIG=synthetic the default is "t1c=synthetic_wide", the recipe's 16-channel T1-ce model,
# docs/training-study.md),
# BASELINE (1: fit the baseline too), STUDY (0; 1 also trains the variants in docs/study/variants on
# STUDY_TARGET, t2w), INSTALL (1: copy the results into WORKSPACE, workspace/; its provenance.json
# keeps one record per target; only the trained targets' baselines are replaced, so a target
# retrained on another cohort is judged against the baseline fitted on that cohort), PHANTOM_ARGS
# (extra `brasyn phantom train` options, e.g. --small or --site varied; recorded in provenance.json),
# INSTALL_WARMUP (targets whose warm-up checkpoint, warmup/ of a config with
# stage2.keep_warmup_checkpoint, is installed instead of the final one; recorded in provenance.json).
# CONFIG is a preset name or a YAML file with `preset:` and overrides. A target trained with its own
# config gets its own run folder, train-<config name>/, since a run folder holds one config.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
RUN=${RUN:-runs/checkpoints}
CASES=${CASES:-32}
SEED=${SEED:-1}
BUNDLED_CONFIG=docs/study/composite/synthetic_composite.yaml
CONFIG=${CONFIG:-$BUNDLED_CONFIG}
DEVICE=${DEVICE:-auto}
JOBS=${JOBS:-$(nproc)}
STUDY=${STUDY:-0}
STUDY_TARGET=${STUDY_TARGET:-t2w}
INSTALL=${INSTALL:-1}
WORKSPACE=${WORKSPACE:-workspace}
BASELINE=${BASELINE:-1}
INSTALL_WARMUP=${INSTALL_WARMUP:-}
read -r -a TARGETS <<<"${TARGETS:-t1n t1c t2w t2f}"
if [[ $CONFIG == synthetic || $CONFIG == "$BUNDLED_CONFIG" ]]; then TARGET_CONFIGS=${TARGET_CONFIGS-t1c=synthetic_wide}; fi
TARGET_CONFIGS=${TARGET_CONFIGS:-}
config_of() {  # target -> its config (TARGET_CONFIGS, else CONFIG)
    local pair
    for pair in $TARGET_CONFIGS; do [[ ${pair%%=*} == "$1" ]] && { echo "${pair#*=}"; return; }; done
    echo "$CONFIG"
}
is_warmup_installed() {  # target -> true when INSTALL_WARMUP names it
    [[ " $INSTALL_WARMUP " == *" $1 "* ]]
}
folder_of() {  # target -> its run folder: train/ for CONFIG, train-<config name>/ for its own config
    local config; config=$(config_of "$1")
    if [[ $config == "$CONFIG" ]]; then echo "$RUN/train"; else echo "$RUN/train-$(basename "$config" .yaml)"; fi
}
brasyn() { "$PYTHON" -m brasyn.cli "$@"; }
log() { echo "[$(date +%H:%M:%S)] $*"; }

cuda=$("$PYTHON" -c "import torch; print(int(torch.cuda.is_available()))")
if [[ $DEVICE == cpu ]]; then cuda=0; fi
PARALLEL=${PARALLEL:-1}
if [[ $PARALLEL == 1 && $cuda == 0 ]]; then
    # OpenMP pools that together ask for more threads than cores wait at their barriers on
    # descheduled threads (README, Benchmarks): split the cores between the side-by-side runs.
    export OMP_NUM_THREADS=$(( JOBS / ${#TARGETS[@]} > 0 ? JOBS / ${#TARGETS[@]} : 1 ))
fi
mkdir -p "$RUN"
RUN=$(cd "$RUN" && pwd)
started=$(date +%s)
# the code the run starts with (a commit made while it trains must not be credited with it)
code_commit=$(git rev-parse --short HEAD 2>/dev/null || echo "${CODE_COMMIT:-unknown}")
if [[ -n $(git status --porcelain -- project scripts 2>/dev/null || true) ]]; then code_commit+="+uncommitted"; fi

# 1. cohort: shards in parallel (case k depends only on (seed, k), so shards equal one sequential run)
if [[ ! -f $RUN/cohort/.complete ]]; then
    log "cohort: $CASES cases, seed $SEED, $JOBS processes"
    rm -rf "$RUN/cohort" "$RUN/cohort-parts"
    per=$(( (CASES + JOBS - 1) / JOBS ))
    pids=()
    for ((first = 0; first < CASES; first += per)); do
        n=$(( CASES - first < per ? CASES - first : per ))
        # shellcheck disable=SC2086  # PHANTOM_ARGS is a list of options (e.g. --small for tests)
        brasyn phantom train "$RUN/cohort-parts/$first" --cases "$n" --seed "$SEED" --first-id $((10000 + first)) \
            --no-progress ${PHANTOM_ARGS:-} >/dev/null &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
    mkdir -p "$RUN/cohort"
    mv "$RUN"/cohort-parts/*/BraTS-* "$RUN/cohort/"
    rm -rf "$RUN/cohort-parts"
    touch "$RUN/cohort/.complete"
fi

# 2. the slice cache, built once and shared by every run below
run_config() {  # YAML with a preset (and overrides) -> the same plus this run's device, workers and cache
    "$PYTHON" scripts/run_config.py "$@"
}
workers=$(( JOBS >= 8 ? 1 : 0 ))
config_file=$RUN/config-run.yaml
run_config "$CONFIG" "$config_file" "$DEVICE" "$workers" "$RUN/cache"
log "slice cache"
brasyn train "$RUN/cohort" "$RUN/train" --config "$config_file" --prepare-only >/dev/null

# 3. the four targets (and the study variants), the baseline beside them on the CPU
pids=()
names=()
launch() {  # name, log file, command...
    local name=$1 logfile=$2; shift 2
    if [[ $PARALLEL == 1 ]]; then "$@" >"$logfile" 2>&1 & pids+=($!); names+=("$name")
    else "$@" >"$logfile" 2>&1 || { echo "FAILED: $name (see $logfile)"; exit 1; }; fi
}
log "training ${TARGETS[*]} with $CONFIG ${TARGET_CONFIGS:+($TARGET_CONFIGS) }on $( ((cuda)) && echo cuda || echo cpu ) (parallel: $PARALLEL)"
baseline_pid=
if [[ $BASELINE == 1 ]]; then
    brasyn baseline fit "$RUN/cohort" "$RUN/baseline" >"$RUN/baseline.log" 2>&1 &
    baseline_pid=$!
fi
for target in "${TARGETS[@]}"; do
    target_config=$config_file
    if [[ $(config_of "$target") != "$CONFIG" ]]; then
        target_config=$RUN/config-run-$target.yaml
        run_config "$(config_of "$target")" "$target_config" "$DEVICE" "$workers" "$RUN/cache"
    fi
    launch "$target" "$RUN/train-$target.log" \
        brasyn train "$RUN/cohort" "$(folder_of "$target")" --config "$target_config" --target "$target"
done
if [[ $STUDY == 1 ]]; then
    for variant in docs/study/variants/*.yaml; do
        name=$(basename "$variant" .yaml)
        run_config "$variant" "$RUN/study-$name.yaml" "$DEVICE" "$workers" "$RUN/cache"
        launch "study-$name" "$RUN/study-$name.log" brasyn train "$RUN/cohort" "$RUN/study/$name" --config "$RUN/study-$name.yaml" --target "$STUDY_TARGET"
    done
fi
failed=0
for i in "${!pids[@]}"; do wait "${pids[$i]}" || { echo "FAILED: ${names[$i]}"; failed=1; }; done
if [[ -n $baseline_pid ]]; then wait "$baseline_pid" || { echo "FAILED: baseline (see $RUN/baseline.log)"; failed=1; }; fi
(( failed == 0 )) || exit 1
seconds=$(( $(date +%s) - started ))
log "done in ${seconds} s"

# 4. how the weights were made, beside them
machine=$("$PYTHON" -c "import platform, torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else f'{platform.processor() or platform.machine()} CPU')")
cores=$(env -u OMP_NUM_THREADS nproc)  # nproc answers OMP_NUM_THREADS when it is set (above)
targets=$(for target in "${TARGETS[@]}"; do
    printf '%s=%s=%s=%s ' "$target" "$(is_warmup_installed "$target" && echo warmup || echo final)" "$(config_of "$target")" \
        "$(folder_of "$target")"; done)
mkdir -p "$RUN/train"
"$PYTHON" - "$RUN" "$CONFIG" "$CASES" "$SEED" "$seconds" "$machine" "$cores" "${OMP_NUM_THREADS:-}" "$targets" \
    "${PHANTOM_ARGS:-}" "$code_commit" <<'PY'
import csv, json, sys
import torch
run, config, cases, seed, seconds, machine, cores, threads, targets, phantom_args, commit = sys.argv[1:]

def steps(folder, target):  # the last step of each stage in the target's metrics log
    with open(f"{folder}/metrics_{target}.csv") as handle:
        return {f"{row['stage']}_steps": int(row["step"]) for row in csv.DictReader(handle)}

cohort = {"cases": int(cases), "seed": int(seed), **({"phantom_args": phantom_args} if phantom_args else {})}
record = {"command": "scripts/train_checkpoints.sh", "config": config, "cohort": cohort,
          "targets": {t: {"config": c, **steps(f, t), **({"checkpoint": "warmup"} if k == "warmup" else {})}
                      for t, k, c, f in (entry.split("=", 3) for entry in targets.split())},
          "wall_seconds": int(seconds), "machine": machine, "cpu_cores": int(cores),
          "threads_per_target": int(threads) if threads else None, "torch": torch.__version__, "code_commit": commit}
with open(f"{run}/train/provenance.json", "w") as handle:
    json.dump(record, handle, indent=1)
print(json.dumps(record))
PY
if [[ $INSTALL == 1 ]]; then
    weights=$WORKSPACE/additional_files
    mkdir -p "$weights/metrics" "$WORKSPACE/baseline"
    for target in "${TARGETS[@]}"; do
        folder=$(folder_of "$target")
        if is_warmup_installed "$target"; then cp "$folder/warmup/brasyn_$target.pt" "$weights/"
        else cp "$folder/brasyn_$target.pt" "$weights/"; fi
        cp "$folder/metrics_$target.csv" "$weights/metrics/"
        if [[ $folder == "$RUN/train" ]]; then cp "$folder/config.yaml" "$weights/"
        else cp "$folder/config.yaml" "$weights/config_$target.yaml"; fi
    done
    # provenance.json keeps one record per target, so retraining a subset keeps the others' records
    "$PYTHON" - "$RUN/train/provenance.json" "$weights/provenance.json" <<'PY'
import json, os, sys
run_file, installed_file = sys.argv[1:]
run = json.load(open(run_file))
installed = json.load(open(installed_file)) if os.path.exists(installed_file) else {}
records = installed.get("targets", {})  # an older single-record file has none
shared = {key: value for key, value in run.items() if key != "targets"}
for target, own in run["targets"].items():
    records[target] = {**shared, **own}
with open(installed_file, "w") as handle:
    json.dump({"targets": dict(sorted(records.items()))}, handle, indent=1)
PY
    # the baseline of the targets trained here only: each target's baseline is fitted on its model's cohort
    if [[ $BASELINE == 1 ]]; then
        for target in "${TARGETS[@]}"; do cp "$RUN/baseline/brasyn_$target.pt" "$WORKSPACE/baseline/"; done
    fi
    log "installed into $WORKSPACE/additional_files and $WORKSPACE/baseline"
fi
