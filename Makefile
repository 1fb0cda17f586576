# `make demo` and `make test` do their own set-up: a virtual environment in .venv with
# greenai installed in editable mode and torch==2.13.0 (CPU build) pinned in pyproject.toml.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench setup clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[demo,optimize,ray,report,dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/greenai demo

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[demo,optimize,ray,report,dev,bench]'
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) build src/*.egg-info
