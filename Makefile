# Two commands on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 3000

.PHONY: setup serve test build

$(VENV)/.installed: requirements.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@

setup: $(VENV)/.installed
	$(PY) scripts/import_models.py

serve: setup
	$(VENV)/bin/bentoml serve . --port $(PORT)

test: setup
	$(PY) -m pytest

build: setup
	$(VENV)/bin/bentoml build
