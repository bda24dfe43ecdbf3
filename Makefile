# The front door: every workflow, for people and for CI. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

# The venv is the lock, exactly: made afresh whenever the lock changes, every package at
# its pinned version and hash (--no-deps: the lock already lists every dependency), then
# this project itself. Two clones of one commit install the same set (tests/unit/test_lock.py).
LOCK := requirements/dev.txt
LOCK_FLAGS := --generate-hashes --python-version 3.11 --python-platform linux \
  --custom-compile-command "make lock" --quiet

$(STAMP): $(LOCK) pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

venv: $(STAMP) ## Create the virtual environment with every dependency, from the lock

lock: $(STAMP) ## Re-resolve requirements/*.txt to the newest releases pyproject.toml allows; re-test the shim
	$(VENV)/bin/uv pip compile pyproject.toml --upgrade --extra dev $(LOCK_FLAGS) -o $(LOCK)
	$(VENV)/bin/uv pip compile pyproject.toml -c $(LOCK) $(LOCK_FLAGS) -o requirements/runtime.txt
	@$(MAKE) --no-print-directory venv
	$(PY) -m pytest -q -p no:cacheprovider tests/unit/model/test_compat.py
	@git diff --stat -- requirements/ 2>/dev/null || true

# Debian packages the targets use, as COMMAND:PACKAGE; deploy/apt-need.sh installs the
# missing ones (as root) or names them. `make test` needs them all, so a fresh machine
# runs the README's two commands and nothing else.
RUN_TOOLS := nginx:nginx envsubst:gettext-base ss:iproute2 openssl:openssl
TEST_TOOLS := $(RUN_TOOLS) promtool:prometheus prometheus:prometheus wrk:wrk \
  docker-compose:docker-compose curl:curl haproxy:haproxy

tools-run:
	@sh deploy/apt-need.sh $(RUN_TOOLS)

tools-test:
	@sh deploy/apt-need.sh $(TEST_TOOLS)

# make run's state: credentials, store, socket, logs (git ignores .run/).
RUN_DIR ?= .run
KEY := $(RUN_DIR)/signing-key
TOKEN := $(RUN_DIR)/admin-token

# Local credentials, generated once, readable only by you.
$(KEY) $(TOKEN):
	mkdir -p $(RUN_DIR)
	umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(32))' > $@

model: $(STAMP) $(KEY) ## (Re)train the demo model into binary/, signed with .run/signing-key
	$(PY) -m service demo --out binary --key-file $(KEY)

# The model `make run` serves: MODEL=path (or MODEL_PATH=path) serves that pickle;
# without it, the version active in .run/store, else binary/pipeline.pkl (the demo model
# is trained there when the folder is empty). See deploy/model_choice.py.
MODEL ?= $(MODEL_PATH)
PORT ?= 8080
METRICS_PORT ?= 9200
TLS_PORT ?= 8443

run: $(STAMP) tools-run $(KEY) $(TOKEN) ## Serve MODEL=path (default: the demo) through nginx on PORT=8080
	@exec $(PY) -m deploy.run $(if $(MODEL),--model "$(MODEL)") --port $(PORT) \
	  --metrics-port $(METRICS_PORT) --run-dir $(RUN_DIR) --key-file $(KEY) --token-file $(TOKEN) \
	  $(if $(filter 1 yes true on,$(TLS)),--tls) --tls-port $(TLS_PORT)

REPLICAS ?= 3

fleet: $(STAMP) tools-run $(KEY) $(TOKEN) ## REPLICAS=3 stacks sharing one store behind HAProxy on PORT=8080
	@sh deploy/apt-need.sh haproxy:haproxy
	@exec $(PY) -m deploy.fleet --replicas $(REPLICAS) $(if $(MODEL),--model "$(MODEL)") \
	  --port $(PORT) --metrics-port $(METRICS_PORT) --run-dir $(RUN_DIR) --key-file $(KEY) \
	  --token-file $(TOKEN)

MONITOR_PORT ?= 9090

monitor: $(STAMP) ## Prometheus with the repo's alert rules scraping make run's metrics, on MONITOR_PORT=9090
	@sh deploy/apt-need.sh prometheus:prometheus
	@exec $(PY) -m deploy.monitor --metrics-port $(METRICS_PORT) --port $(MONITOR_PORT) \
	  --run-dir $(RUN_DIR)

lint: $(STAMP) ## ruff lint and format check, mypy over service/ and deploy/, import contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: $(STAMP) ## Apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test-unit: $(STAMP) ## Only the unit tests (Flask's test client, no processes; under a minute)
	$(PY) -m pytest -q -m "not integration"

# The compose tests (marker `compose`) need a container engine: Docker, or podman, which the
# engine check installs as root. Where none can run (inside the test image itself, or
# without root), they are left out, and the line before the tests says why.
# TEST_EXCLUDE: markers left out. The test image sets "fleet k8s soak fuzz overload" (compose
# says why).
TEST_EXCLUDE ?=

test: tools-test lint ## Install what the tests use, lint, then run every test with coverage
	@if $(PY) -m deploy.compose engine --podman-tools "$(PODMAN_TOOLS)" \
	  --stand-in-tools "$(STAND_IN_TOOLS)"; then select=""; else select="not compose"; fi; \
	  for marker in $(TEST_EXCLUDE); do select="$${select:+$$select and }not $$marker"; done; \
	  $(PY) -m pytest --cov --cov-report=term --durations=15 -m "$$select"

SOAK_SECONDS ?= 600

bench: $(STAMP) ## Benchmark the stack against a naive server (wrk, ~11 min) -> bench/results/
	@sh deploy/apt-need.sh $(RUN_TOOLS) wrk:wrk
	$(PY) -m bench.run

soak: $(STAMP) ## Steady load through nginx for SOAK_SECONDS (600): zero errors, flat memory
	@sh deploy/apt-need.sh $(RUN_TOOLS) wrk:wrk
	$(PY) -m bench.soak --seconds $(SOAK_SECONDS)

# The compose stack for real (docker-compose.yml): Docker when its daemon answers, else podman
# with podman-compose from the venv. Its Debian packages: runc (crun was seen to refuse hybrid
# cgroups), netavark + aardvark-dns (services find each other by name), iptables (published
# ports). Base images that are missing when no registry answers are built from Debian packages
# (debootstrap) under the same names. deploy/compose.py says how and why.
PODMAN_TOOLS := podman:podman runc:runc netavark:netavark aardvark-dns:aardvark-dns \
  iptables:iptables
STAND_IN_TOOLS := debootstrap:debootstrap
COMPOSE_PORT ?= 8080
COMPOSE_PROMETHEUS_PORT ?= 9090
COMPOSE_TLS_PORT ?= 8443
COMPOSE_REPLICAS ?= 1

compose-up: $(STAMP) $(KEY) $(TOKEN) ## Build and start docker-compose.yml (Docker, else podman) on COMPOSE_PORT=8080 (TLS 8443), COMPOSE_REPLICAS=1
	@test -e binary/pipeline.pkl || $(PY) -m service demo --out binary --key-file $(KEY)
	@sh deploy/apt-need.sh openssl:openssl
	@$(PY) -m deploy.compose up --port $(COMPOSE_PORT) --prometheus-port $(COMPOSE_PROMETHEUS_PORT) \
	  --tls-port $(COMPOSE_TLS_PORT) \
	  --podman-tools "$(PODMAN_TOOLS)" --stand-in-tools "$(STAND_IN_TOOLS)" \
	  --key-file $(KEY) --token-file $(TOKEN) --replicas $(COMPOSE_REPLICAS)

compose-down: $(STAMP) ## Remove what compose-up started: containers, networks, volumes
	@$(PY) -m deploy.compose down

FUZZ_ARGS ?=

fuzz: $(STAMP) tools-run ## Fuzz every operation through nginx (schemathesis, ~10 min; FUZZ_ARGS=--help)
	$(PY) -m tests.integration.test_fuzz $(FUZZ_ARGS)

.PHONY: help venv lock tools-run tools-test model run fleet monitor lint format test-unit test bench soak fuzz \
  compose-up compose-down
