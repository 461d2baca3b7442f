# Two commands do all set-up: `make run` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
RASA   := $(VENV)/bin/rasa
MODEL  := models/current.tar.gz
DOMAIN := bot/domain
DATA   := nlu/vi nlu/en nlu/lookups stories

# Python 3.10 (Rasa 3.6 supports up to 3.10): python3.10 on PATH, or pyenv's 3.10.
PY310 := $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null && { command -v "$$p" || echo "$$p"; } && break; done)

TRAIN_INPUTS := config.yml $(shell find $(DOMAIN) nlu stories -name '*.yml' 2>/dev/null) \
	$(shell find nlu/components -name '*.py' 2>/dev/null)

.PHONY: help install train serve serve-scaled services chat run test unit retention lint validate conversations e2e browser clean eval bench-nlu bench-nlg bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## create .venv (Python 3.10) and install pinned dependencies

$(VENV)/.installed: pyproject.toml requirements.lock
	@if [ -z "$(PY310)" ]; then \
	  echo "Python 3.10 was not found (Rasa 3.6 needs 3.10)."; \
	  echo "Install it with 'pyenv install 3.10' (https://github.com/pyenv/pyenv) or your system's"; \
	  echo "package manager (e.g. 'apt-get install python3.10 python3.10-venv'), then run make again."; \
	  exit 1; fi
	@test -x $(PY) || { echo "creating $(VENV) with $(PY310)"; $(PY310) -m venv $(VENV); }
	$(PY) -m pip install -q --disable-pip-version-check -c requirements.lock -e '.[dev]'
	@touch $@

train: $(MODEL) ## train the model, only when data, domain, config or components changed

$(MODEL): $(TRAIN_INPUTS) | $(VENV)/.installed
	@$(MAKE) --no-print-directory validate
	$(RASA) train --config config.yml --domain $(DOMAIN) --data $(DATA) --out models --fixed-model-name current
	@touch $@

# Sandbox mode (test citizens, readable SMS outbox, open REST channel; loopback only) is never
# a default of the code: these two targets, and the tests, switch it on.
serve: install train ## start sandbox APIs, action server and Rasa in the foreground (Ctrl-C stops all)
	SANDBOX_MODE=1 $(PY) -m bot.launcher

# Scaled mode: PostgreSQL, Redis, RASA_REPLICAS Rasa replicas (default 2) and ACTION_REPLICAS
# action servers (default 2) behind HAProxy on the usual ports; data under var/ (docs/SCALING.md).
serve-scaled: install train services ## the stack with PostgreSQL, Redis and replicas behind HAProxy
	SANDBOX_MODE=1 SCALED=1 $(PY) -m bot.launcher

chat: install ## terminal chat against the running stack (make serve in another terminal)
	$(PY) -m bot.chat

run: install train ## install, train if stale, start every service and open a chat
	SANDBOX_MODE=1 $(PY) -m bot.launcher --chat

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy actions bot nlu sandbox console

# Responses uttered by custom actions and the intents set by the input guard are expected
# warnings; any other warning (unknown intent, conflicting stories...) fails validation.
EXPECTED_WARNINGS := is not used in any story or rule|'(empty_message|message_too_long|offer_password)' is listed in the domain

validate: install ## rasa data validate (fails on unexpected warnings)
	@mkdir -p var
	$(RASA) data validate --config config.yml --domain $(DOMAIN) --data $(DATA) > var/validate.log 2>&1 \
	  || { cat var/validate.log; exit 1; }
	@if grep -E "UserWarning|ERROR" var/validate.log | grep -Ev "$(EXPECTED_WARNINGS)"; then \
	  echo "rasa data validate: unexpected warnings (see var/validate.log)"; exit 1; fi
	@echo "rasa data validate: ok"

unit: install ## unit tests (no trained model needed)
	$(PY) -m pytest -q -m "not e2e and not model"

retention: install ## delete conversations idle for more than RETENTION_DAYS (default 30) now
	$(PY) -m bot.retention

conversations: install train ## conversation tests (rasa test --fail-on-prediction-errors)
	$(RASA) test core --model $(MODEL) --stories tests/conversations --fail-on-prediction-errors --out var/results/conversations

e2e: install train browser services ## tests that need the trained model and real processes
	$(PY) -m pytest -q -m "e2e or model"

# Debian's packages for scaled mode and its tests, installed when missing (root), else named.
SERVICE_PACKAGES := postgresql redis-server haproxy
services: ## Debian's PostgreSQL, Redis and HAProxy (scaled mode and its tests)
	@missing=""; \
	  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	  command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	  command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ]; then \
	      echo "installing$$missing"; apt-get update -qq && \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	    else echo "missing:$$missing (sudo apt-get install$$missing)"; exit 1; fi; fi

browser: ## Debian's Chromium for the web chat test (never a downloaded browser build)
	@command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium is missing: sudo apt-get install chromium"; exit 1; fi; }

test: install ## everything CI runs: lint, unit, validate, train, conversation and end-to-end tests
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory validate
	$(MAKE) --no-print-directory train
	$(MAKE) --no-print-directory conversations
	$(MAKE) --no-print-directory e2e

clean: ## remove trained models, results and sandbox databases (keeps .venv)
	rm -rf models var .pytest_cache .mypy_cache .ruff_cache

eval: install ## train project and default NLU pipelines, compare on the held-out set (report in var/eval/); SEEDS="1 2 3" averages seeds
	$(PY) -m nlu.evaluation.compare $(if $(SEEDS),--seeds $(SEEDS))

# The stock `rasa init` bot (built and cached in var/bench/stock/) against the project stack,
# one after the other, at 1, 20 and 50 concurrent conversations; QUICK=1: levels 1 and 5, 5 s each.
# SCALED=1: the stock bot, then scaled mode with 1 and with 2 Rasa replicas (bench/README.md).
bench: install train $(if $(SCALED),services) ## load benchmark, stock bot vs project stack (var/bench/report.md); QUICK=1 smoke run, SCALED=1 1 vs 2 replicas
	$(PY) -m bench $(if $(QUICK),--quick) $(if $(SCALED),--scaled)

# DATA already names the training folders above, so only a DATA given on the command line counts.
bench-nlg: install ## what one reply costs through the content service vs from the domain (Rasa's own generator)
	$(PY) -m bench.nlg

bench-nlu: install ## JointBERT-layout benchmark: make bench-nlu DATA=path/to/dataset
	@test "$(origin DATA)" = "command line" || { echo "usage: make bench-nlu DATA=<folder with train/ dev/ test/>"; exit 1; }
	$(PY) -m nlu.evaluation.jointbert $(DATA)
