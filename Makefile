# The front door: every workflow, for people and for CI. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
MODEL := binary/pipeline.pkl

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(STAMP) ## Create the virtual environment with every dependency

# Debian packages the targets use, as COMMAND:PACKAGE; deploy/apt-need.sh installs the
# missing ones (as root) or names them. `make test` needs them all, so a fresh machine
# runs the README's two commands and nothing else.
RUN_TOOLS := nginx:nginx envsubst:gettext-base ss:iproute2
TEST_TOOLS := $(RUN_TOOLS) promtool:prometheus prometheus:prometheus wrk:wrk \
  docker-compose:docker-compose

tools-run:
	@sh deploy/apt-need.sh $(RUN_TOOLS)

tools-test:
	@sh deploy/apt-need.sh $(TEST_TOOLS)

KEY := .run/signing-key
TOKEN := .run/admin-token

# Demo credentials, generated once, readable only by you (git ignores .run/).
.run/signing-key .run/admin-token:
	mkdir -p .run
	umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(32))' > $@

$(MODEL): | $(STAMP) $(KEY)
	$(PY) -m service demo --out binary --key-file $(KEY)

model: $(STAMP) $(KEY) ## (Re)train the demo model into binary/, signed with .run/signing-key
	$(PY) -m service demo --out binary --key-file $(KEY)

PORT ?= 8080
METRICS_PORT ?= 9200

run: $(STAMP) tools-run $(KEY) $(TOKEN) $(MODEL) ## Serve the demo model through nginx + gunicorn on :$(PORT)
	@echo "admin token: $(TOKEN); signing key: $(KEY)"
	MODEL_SIGNING_KEY_FILE=$(KEY) ADMIN_TOKEN_FILE=$(TOKEN) \
	  $(PY) -m deploy.stack --model $(MODEL) --port $(PORT) --metrics-port $(METRICS_PORT)

lint: $(STAMP) ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP) ## Apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: tools-test lint ## Install what the tests use, lint, then run every test with coverage
	$(PY) -m pytest --cov --cov-report=term

SOAK_SECONDS ?= 600

bench: $(STAMP) ## Benchmark the stack against a naive server (wrk, ~5 min) -> bench/results/
	@sh deploy/apt-need.sh $(RUN_TOOLS) wrk:wrk
	$(PY) -m bench.run

soak: $(STAMP) ## Steady load through nginx for SOAK_SECONDS (600): zero errors, flat memory
	@sh deploy/apt-need.sh $(RUN_TOOLS) wrk:wrk
	$(PY) -m bench.soak --seconds $(SOAK_SECONDS)

FUZZ_ARGS ?=

fuzz: $(STAMP) tools-run ## Fuzz every operation through nginx (schemathesis, ~10 min; FUZZ_ARGS=--help)
	$(PY) -m tests.integration.test_fuzz $(FUZZ_ARGS)

.PHONY: help venv tools-run tools-test model run lint format test bench soak fuzz
