# sekisho: two commands on a fresh machine with Python 3.11+:
#   make demo   runs sekisho on SQLite with the example model and prints the walkthrough
#   make test   passes the tests (SQLite always; PostgreSQL when SEKISHO_TEST_POSTGRES_URL is set)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format bench screenshots clean venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/sekisho demo

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP)
	$(BIN)/python -m bench

# The web UI's pictures in docs/screenshots, taken by the browser test (needs chromium).
screenshots: $(STAMP)
	SEKISHO_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/pytest -q tests/web/test_screenshots.py

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
