# Two commands matter: `make demo` and `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck pytest screenshots bench conformance clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/zai-dash --demo

test: $(STAMP)
	$(BIN)/ruff check zai_dash tests bench conformance
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest
	# Again with the wall clock 45 days ahead: a test that only passes on the day it was written fails here.
	ZAI_DASH_TEST_TRAVEL_DAYS=45 $(BIN)/python -m pytest -m "not wall_clock" -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check zai_dash tests bench conformance
	$(BIN)/ruff format --check zai_dash tests bench conformance

typecheck: $(STAMP)
	$(BIN)/mypy

screenshots: $(STAMP)
	$(BIN)/python -m zai_dash.ui.screenshots screenshots

bench: $(STAMP)
	$(BIN)/python bench/run.py

# Real clients (npm, about 3 GB once, cached in ${ZAI_DASH_CONFORMANCE_CACHE:-/var/tmp/zai-dash-conformance})
# against a recording fake server on 127.0.0.1; writes bench/CONFORMANCE.md. Not part of `make test`.
conformance: $(STAMP)
	nice $(BIN)/python -m conformance.run $(CONFORMANCE_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
