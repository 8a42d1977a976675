# Two commands on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
BENCH_TF_VENV := .venv-bench-tf
PORT ?= 3000
# Loopback only unless told otherwise (HOST=0.0.0.0): with keys disabled, anyone who reaches the port owns it.
HOST ?= 127.0.0.1

.PHONY: setup serve check test build bench-tf-env

$(VENV)/.installed: requirements.txt requirements-test.txt requirements-clients.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-test.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-clients.txt
	touch $@

setup: $(VENV)/.installed
	$(PY) scripts/import_models.py

# Local development: API keys are switched OFF here, explicitly. Never expose this to a network;
# production sets FACESERVE_API_KEYS_FILE (see README, "Security and limits").
serve: setup
	FACESERVE_AUTH=$${FACESERVE_AUTH:-disabled} $(VENV)/bin/bentoml serve . --host $(HOST) --port $(PORT)

# Lint (rules in pyproject.toml) and type-check: CI runs this before the tests.
check: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: setup
	$(PY) -m pytest

build: setup
	$(VENV)/bin/bentoml build

# The PyPI `mtcnn` package (TensorFlow) that scripts/bench_mtcnn_pypi.py measures ours against: a venv of its own,
# so TensorFlow never enters the service's.
$(BENCH_TF_VENV)/.installed: requirements-bench-tf.txt
	$(PYTHON) -m venv $(BENCH_TF_VENV)
	$(BENCH_TF_VENV)/bin/python -m pip install --quiet -r requirements-bench-tf.txt
	touch $@

bench-tf-env: $(BENCH_TF_VENV)/.installed
