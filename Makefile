# One-command setup on a fresh machine: `make demo` (the product on synthetic data) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BRASYN := $(VENV)/bin/brasyn
NILEARN_VERSION ?= 0.14.1
CONSTRAINTS := constraints.txt
# The torch release the tests run and the image ships: the pin in constraints.txt (one place for both)
TORCH_SPEC ?= $(shell grep -m1 -o '^torch==[^ ]*' $(CONSTRAINTS))

.PHONY: install test lint demo bench gpu-check checkpoints clean mlcube-venv docker-build mlcube-run

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=23"
	# CPU torch first (a bare `torch` requirement would pull a multi-GB CUDA build)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	# the runtime dependencies at the versions the image ships (constraints.txt)
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e ".[dev]"
	# MNI152 anatomy for the phantom generator ships inside the nilearn wheel; its deps are not needed
	$(PY) -m pip install -q --no-deps "nilearn==$(NILEARN_VERSION)"
	touch $@

install: $(VENV)/.installed

# The real MLCube client (tests validate the manifest and run it through a docker shim). mlcube 0.0.9
# pins omegaconf 2.1.0, whose metadata pip >= 24.1 rejects: its own venv with an older pip. It also
# imports distutils (mlcube/shell.py), which Python 3.12 removed: setuptools provides it again.
MLCUBE_VENV ?= .venv-mlcube
$(MLCUBE_VENV)/.installed:
	$(PYTHON) -m venv $(MLCUBE_VENV)
	$(MLCUBE_VENV)/bin/python -m pip install -q "pip<24.1" setuptools
	$(MLCUBE_VENV)/bin/python -m pip install -q "mlcube==0.0.9" "mlcube-docker==0.0.9"
	$(MLCUBE_VENV)/bin/python -c "import distutils, mlcube.shell"
	touch $@

mlcube-venv: $(MLCUBE_VENV)/.installed

# The lint (line length included) runs first: a long line fails `make test` like a failing test.
test: install mlcube-venv
	$(VENV)/bin/ruff check project tests bench
	OMP_NUM_THREADS=2 $(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check project tests bench

# End-to-end inference (engine vs the naive reference, demo and paper sizes) and the training data
# pipeline alone; JSON in bench/results/ (CPU unless DEVICE=cuda). About 6 min on 2 idle CPU cores.
BENCH_OUT ?= bench/results
bench: install
	$(PY) bench/bench_inference.py --device $(or $(DEVICE),cpu) --json $(BENCH_OUT)/inference_$(or $(DEVICE),cpu).json
	$(PY) bench/bench_loader.py --workers 0,2 --json $(BENCH_OUT)/loader.json

# The prepared GPU check (bench/gpu_check.sh): all results in OUT (default gpu-check/), under 5 min on
# one H100/H200; DEVICE=cpu runs the same steps on the tiny config. Installs nothing (PYTHON=...).
gpu-check:
	DEVICE=$(or $(DEVICE),cuda) bash bench/gpu_check.sh $(or $(OUT),gpu-check)

# Container image (needs a Docker engine) and the cube: `make mlcube-run DATA=folder OUT=folder [GPUS=0]`
# (defaults: workspace/data and workspace/predictions; weights from workspace/additional_files;
# the image is built when missing; GPUS=0 runs without --gpus).
# TORCH_CUDA: the image's torch build, pypi (default, CUDA 13.0) or cu126 (V100, drivers R525+); see
# the Dockerfile and mlcube/README.md (GPU support).
IMAGE ?= brasyn/plave:0.1.0
docker-build:
	docker build $(if $(TORCH_CUDA),--build-arg TORCH_CUDA=$(TORCH_CUDA)) -t $(IMAGE) .

mlcube-run: mlcube-venv
	$(MLCUBE_VENV)/bin/mlcube run --mlcube=mlcube --task=infer --platform=docker -Pdocker.build_strategy=auto \
		$(if $(filter 0,$(GPUS)),-Pplatform.accelerator_count=0) $(if $(DATA),data_path=$(abspath $(DATA))) $(if $(OUT),output_path=$(abspath $(OUT)))

# The main job on the bundled defaults: a synthetic challenge-style validation cohort -> `infer`
# through the MLCube entrypoint with the bundled checkpoints -> both BraSyn criteria, model and the
# non-neural baseline side by side: image scores, and the Dice of an independent segmenter
# (DEMO_SEGMENTER, the bundled one by default) on the real set vs the completed set; also the
# Dice of the model's own segmentation decoder, and QC pictures.
DEMO ?= demo
DEMO_CASES ?= 4
DEMO_SEGMENTER ?= bundled
demo: install
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(BRASYN) phantom validation $(DEMO)/data $(DEMO)/labels --cases $(DEMO_CASES) --seed 2024 --no-progress
	printf 'infer:\n  segmentation_dir: %s\n' "$(abspath $(DEMO))/segmentations" > $(DEMO)/parameters.yaml
	$(PY) project/mlcube.py infer --data_path=$(DEMO)/data --output_path=$(DEMO)/predictions \
		--parameters_file=$(DEMO)/parameters.yaml --weights=workspace/additional_files
	$(BRASYN) infer $(DEMO)/data $(DEMO)/baseline --weights workspace/baseline --no-progress
	$(BRASYN) evaluate --pred $(DEMO)/predictions --labels $(DEMO)/labels --segmentation-dir $(DEMO)/segmentations \
		--baseline $(DEMO)/baseline --out $(DEMO)/report --segmenter '$(DEMO_SEGMENTER)'
	@echo "Pictures: $(DEMO)/report/overview.png and $(DEMO)/report/qc/<case>.png; scores: $(DEMO)/report/cases.csv, summary.json"

# The bundled checkpoints (workspace/additional_files) and the reference baseline (workspace/baseline):
# a 32-case synthetic training cohort (seed 1), the `synthetic` preset with the background composite
# (docs/study/composite/synthetic_composite.yaml) for t1n, t2w and t2f and
# `synthetic_wide` (16 channels) for t1c, the four side by side, each stage fitted to its time budget
# (4 + 90 min: about 1 h 40 min on 2 cores), the polynomial baseline fitted on the same cohort, and a
# provenance record. TARGETS=t1c retrains only that target; STUDY=1 also trains docs/study's variants.
CKPT_RUN ?= runs/checkpoints
checkpoints: install
	PYTHON=$(PY) RUN=$(CKPT_RUN) STUDY=$(or $(STUDY),0) $(if $(TARGETS),TARGETS="$(TARGETS)") scripts/train_checkpoints.sh

clean:
	rm -rf $(VENV) $(MLCUBE_VENV) demo runs .pytest_cache
