# sekisho: two commands on a fresh machine with Python 3.11+:
#   make demo   runs sekisho on SQLite with the example model and prints the walkthrough
#   make test   passes the tests (SQLite always; PostgreSQL when SEKISHO_TEST_POSTGRES_URL is set)
#   make demo-sso  the demo, signing in through an OpenID Provider beside it (needs Node 20.18+)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The OpenID Provider the SSO tests start (tests/oidc, Node). npm writes node_modules/.package-lock.json
# on every install, so it stands as the stamp. Without npm those tests skip.
OIDC      := tests/oidc
OIDC_DEPS := $(OIDC)/node_modules/.package-lock.json
NPM       := $(shell command -v npm 2>/dev/null)

.PHONY: demo demo-sso test lint format bench screenshots clean venv oidc-provider

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

ifneq ($(NPM),)
oidc-provider: $(OIDC_DEPS)

$(OIDC_DEPS): $(OIDC)/package.json $(OIDC)/package-lock.json
	npm ci --prefix $(OIDC) --no-audit --no-fund --loglevel=error
	touch $@
else
oidc-provider:
	@echo "note: npm not found: the OpenID Provider tests will skip (install Node.js 20.18+ and npm to run them)"
endif

demo: $(STAMP)
	$(BIN)/sekisho demo

# The demo with sign-in through an OpenID Provider beside it (the tests' oidc-provider; Node).
demo-sso: $(STAMP) oidc-provider
	$(BIN)/python examples/demo_sso.py

test: $(STAMP) oidc-provider
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
