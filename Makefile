# Everything runs from .venv, built from requirements*.txt on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= auto

CLIENT := clients/js
CLIENT_DEPS := $(CLIENT)/node_modules/.installed

.PHONY: venv client test unit lint up bench conformance package deploy smoke clean

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

# The model adapter's contract against a real provider (the emulator and Bedrock stand-in runs are
# in make test). CONFORMANCE_TARGET=anthropic (default, needs ANTHROPIC_API_KEY) or bedrock (needs
# AWS credentials from boto3's chain, AWS_REGION, optional BEDROCK_SCOPE=global|us|eu|...).
# CONFORMANCE_MODELS=a,b picks the models (default: the product's default model).
CONFORMANCE_TARGET ?= anthropic
conformance: $(STAMP)
	@if [ "$(CONFORMANCE_TARGET)" = bedrock ]; then \
		if ! $(BIN)/python -c "import boto3, sys; sys.exit(boto3.Session().get_credentials() is None)"; then \
			echo "make conformance: no AWS credentials found (boto3's default chain); nothing was sent."; \
		else \
			CONFORMANCE_TARGET=bedrock $(BIN)/python -m pytest -p no:cacheprovider -s tests/conformance; \
		fi; \
	elif [ -z "$$ANTHROPIC_API_KEY" ]; then \
		echo "make conformance: ANTHROPIC_API_KEY is not set; nothing was sent."; \
	else \
		CONFORMANCE_TARGET=anthropic $(BIN)/python -m pytest -p no:cacheprovider -s tests/conformance; \
	fi

package: $(STAMP)
	BIN=$(BIN) infra/package.sh $(or $(STAGE),dev)

deploy: package
	infra/deploy.sh $(or $(STAGE),dev)

# checkov on the packaged template (docs/security.md, "checkov"). Its own venv: checkov 3.3.30
# pins boto3 1.35 and packaging 23, older than the project's.
CHECKOV_VENV := .venv-checkov
.PHONY: checkov
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet -r requirements-checkov.txt
	touch $@

# The checks accepted in docs/security.md ("checkov", each with its reason; a test keeps the two
# lists equal): any other failure fails the target.
CHECKOV_ACCEPTED := CKV_AWS_115,CKV_AWS_116,CKV_AWS_117,CKV_AWS_119,CKV_AWS_120,CKV_AWS_149,CKV_AWS_158,CKV_AWS_173,CKV_AWS_27
checkov: package $(CHECKOV_VENV)/.installed
	$(CHECKOV_VENV)/bin/checkov --framework cloudformation --compact --quiet \
		--skip-check $(CHECKOV_ACCEPTED) -f build/$(or $(STAGE),dev)/sam.yaml
# The probe against a deployed stage (its stack outputs, a token from its secret or its Cognito
# test user) on the cheapest catalog model; the expected cost is printed first. STAGE=local runs
# it against `make up`'s stack. Without AWS credentials it says so and sends nothing.
smoke: $(STAMP)
	$(BIN)/python -m devstack.smoke $(or $(STAGE),dev)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .mypy_cache .ruff_cache .devstack $(CLIENT)/node_modules $(CLIENT)/dist
