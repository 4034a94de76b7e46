# Everything runs from .venv, built from requirements*.txt on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= auto

CLIENT := clients/js
CLIENT_DEPS := $(CLIENT)/node_modules/.installed

.PHONY: venv client test unit lint up bench conformance package deploy clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip<26.3"  # chalice 1.34 requires pip<26.3
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

# The TypeScript client (clients/js): the page imports its build, the e2e tests run its tests.
# --prefer-offline: npm's cache answers when it can.
$(CLIENT_DEPS): $(CLIENT)/package-lock.json
	cd $(CLIENT) && npm ci --prefer-offline --no-audit --no-fund --loglevel=error
	touch $@

client: $(CLIENT_DEPS)
	cd $(CLIENT) && npm run --silent build

test: $(STAMP) client
	bash scripts/install-browser.sh
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -q -p no:cacheprovider tests

unit: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

up: $(STAMP) client
	$(BIN)/python -m devstack $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

# The model adapter's contract against the real Anthropic API (the emulator run is in make test).
# CONFORMANCE_MODELS=a,b picks the models (default: the product's default model).
conformance: $(STAMP)
	@if [ -z "$$ANTHROPIC_API_KEY" ]; then \
		echo "make conformance: ANTHROPIC_API_KEY is not set; nothing was sent."; \
	else \
		CONFORMANCE_TARGET=anthropic $(BIN)/python -m pytest -p no:cacheprovider -s tests/conformance; \
	fi

package: $(STAMP)
	BIN=$(BIN) infra/package.sh $(or $(STAGE),dev)

deploy: package
	infra/deploy.sh $(or $(STAGE),dev)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .devstack $(CLIENT)/node_modules $(CLIENT)/dist
