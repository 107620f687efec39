# The two commands of the README. Each does its own set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PYTEST_WORKERS ?= 2

.PHONY: demo test install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,spark]"
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

## make demo: install dhs and run the whole pipeline on the embedded survey
demo: $(VENV)/.installed
	$(BIN)/dhs stage=all

## make test: install dhs with its test and Spark extras and run the test suite
test: $(VENV)/.installed-dev
	$(BIN)/ruff check dhs tests benchmarks launchers
	PYSPARK_PYTHON=$(abspath $(BIN)/python) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile -q

clean:
	rm -rf $(VENV) build dist *.egg-info outputs/data outputs/runs
