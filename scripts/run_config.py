#!/usr/bin/env python3
"""A run's config file: a preset name, or a YAML file with `preset:` and overrides, written out again
with this run's device, loader workers and slice cache (used by scripts/train_checkpoints.sh and the
probes in docs/study/).

    python scripts/run_config.py SOURCE OUT DEVICE WORKERS CACHE
"""

import sys

import yaml

source, out, device, workers, cache = sys.argv[1:]
if source.endswith(".yaml"):
    with open(source) as handle:
        data = yaml.safe_load(handle)
else:
    data = {"preset": source}
training = data.setdefault("training", {}) or {}
data["training"] = training
training.update(device=device, num_workers=int(workers))
training.setdefault("data", {})["cache_dir"] = cache
with open(out, "w") as handle:
    yaml.safe_dump(data, handle, sort_keys=False)
