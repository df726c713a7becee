# Fedelta: `make up` starts the whole stack, `make test` proves it. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOTSTRAP ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

# The test stack runs beside a `make up` stack without touching it: its own state and ports.
TEST_STACK := FEDELTA_STATE_DIR=$(CURDIR)/.fedelta/test FEDELTA_PG_PORT=15442 \
	FEDELTA_KAFKA_PORT=19192 FEDELTA_KAFKA_CONTROLLER_PORT=19193 FEDELTA_SMTP_PORT=10026 \
	FEDELTA_SMS_PORT=10027 FEDELTA_INGEST_PORT=18080 FEDELTA_POINTS_PORT=18081 FEDELTA_TIERS_PORT=18082 \
	FEDELTA_NOTIFICATIONS_PORT=18083 FEDELTA_ENGAGEMENT_PORT=18084 FEDELTA_INSIGHTS_PORT=18085 \
	FEDELTA_WEB_PORT=18086
TEST_ENV := FEDELTA_TEST_STATE_DIR=$(CURDIR)/.fedelta/test FEDELTA_TEST_PG_PORT=15442 \
	FEDELTA_TEST_KAFKA_PORT=19192 FEDELTA_TEST_KAFKA_CONTROLLER_PORT=19193 \
	FEDELTA_TEST_SMTP_PORT=10026 FEDELTA_TEST_SMS_PORT=10027 \
	FEDELTA_TEST_SERVICE_PORTS=18080,18081,18082,18083,18084,18085,18086

.PHONY: help setup test-tools up down status demo lint typecheck unit integration e2e test test-down bench chaos clean

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP) ## virtualenv with the pinned dependencies, Kafka jars, PostgreSQL packages
	@deploy/local/kafka.sh install
	@deploy/local/postgres.sh install

# What only the contract and end-to-end tests need, kept out of `make up`'s way (tests/unit needs
# none of it): under a minute the first time, nothing after.
test-tools: setup ## the checkers the tests run: AsyncAPI parser, CloudEvents SDK, axe-core, promtool, kubectl, compose-check, Chromium
	@deploy/local/node-tools.sh install
	@deploy/local/k8s-tools.sh install
	@deploy/local/tools.sh install
	@deploy/local/chromium.sh install

up: setup ## start Kafka, PostgreSQL, a mail catcher, the six services and the web; print what to do next
	@deploy/local/stack.sh up

down: ## stop everything `make up` started
	@deploy/local/stack.sh down

status: ## what runs
	@deploy/local/stack.sh status

demo: setup ## enrol a customer, two purchases, points, tier and mail, then a reward and its coupon at the till; prints the wallet link and the console (after make up)
	@$(VENV)/bin/fedelta demo

lint: setup ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup ## mypy --strict
	$(VENV)/bin/mypy fedelta_cli fedelta_client shared services deploy tests bench chaos

# The browser-marked ones need Chromium and axe-core from test-tools: `make test` runs them.
unit: setup ## fast tests, no infrastructure (nor browser)
	$(VENV)/bin/pytest tests/unit -m 'not browser'

integration: setup ## each service on the real Kafka and PostgreSQL of the test stack
	@$(TEST_ENV) $(VENV)/bin/pytest tests/integration; rc=$$?; $(MAKE) --no-print-directory test-down; exit $$rc

e2e: test-tools ## the services and the web as processes, over HTTP, through the whole pipeline
	@$(TEST_ENV) $(VENV)/bin/pytest tests/e2e; rc=$$?; $(MAKE) --no-print-directory test-down; exit $$rc

test: test-tools lint typecheck ## everything CI runs: lint, types, unit, integration, end-to-end; leaves nothing running
	@$(TEST_ENV) $(VENV)/bin/pytest tests; rc=$$?; $(MAKE) --no-print-directory test-down; exit $$rc

test-down: ## stop the test stack (make test does this itself)
	@$(TEST_STACK) deploy/local/stack.sh down >/dev/null

# Each benchmark waits until the consumers have finished the previous one's backlog.
bench: setup ## run the benchmarks against a running stack (make up first)
	$(PY) -m bench.ingest_throughput
	$(PY) -m bench.consume_throughput
	$(PY) -m bench.pipeline_latency
	$(PY) -m bench.dispatcher
	$(PY) -m bench.expiry_warnings
	$(PY) -m bench.jobs
	$(PY) -m bench.import_members

# Its own stack (.fedelta/chaos; ports 15462, 19212-3, 10036-7, 18090-18108): beside any other.
CHAOS_SEED ?= 1
CHAOS_CALLS ?= 10000
chaos: setup ## SIGKILL every part under 10,000 calls, then prove nothing lost or doubled (own stack)
	$(PY) -m chaos --seed $(CHAOS_SEED) --calls $(CHAOS_CALLS)

clean: down ## stop everything and delete local state (.fedelta) and the virtualenv
	rm -rf .fedelta $(VENV)
