# One-command setup on a fresh machine: `make demo` (the product on synthetic data) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
NILEARN_VERSION ?= 0.14.1
TORCH_SPEC ?= torch==2.13.0

.PHONY: install test lint demo bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=23"
	# CPU torch first (a bare `torch` requirement would pull a multi-GB CUDA build)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	# MNI152 anatomy for the phantom generator ships inside the nilearn wheel; its deps are not needed
	$(PY) -m pip install -q --no-deps "nilearn==$(NILEARN_VERSION)"
	touch $@

install: $(VENV)/.installed

test: install
	OMP_NUM_THREADS=2 $(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check project tests

clean:
	rm -rf $(VENV) demo runs .pytest_cache
