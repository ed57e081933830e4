# The two commands a new user needs: `make run` and `make test`. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run serve worker test test-postgres lint bench load clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## make run: install, migrate, load the demo release and accounts, serve with a worker and beat.
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py ensure_signing_cert
	$(PY) manage.py setup_demo
	@echo "Portal: http://$(HOST):$(PORT)/admin/  (Ctrl-C stops the portal and its worker)"
	@set -m; \
	$(VENV)/bin/celery -A dcmms_release worker --beat --loglevel INFO --concurrency 1 \
	  --logfile var/celery.log & worker=$$!; \
	trap 'kill -TERM -$$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(PY) manage.py runserver $(HOST):$(PORT)

## make test: the suite on the embedded default (SQLite, no broker), with coverage >= 85 %.
## The browser tests (marker browser) run when Debian's Chromium is installed.
test: install
	@if [ -x /usr/bin/chromium ]; then markers="not postgres and not broker"; else \
	  echo "Browser tests not run: install Debian's chromium (apt-get install chromium) to run" \
	    "tests/browser (Playwright drives /usr/bin/chromium; never 'playwright install')."; \
	  markers="not postgres and not broker and not browser"; fi; \
	$(VENV)/bin/pytest -m "$$markers" --cov --cov-report=term-missing:skip-covered \
	  --cov-fail-under=85 -q

## The PostgreSQL + Redis run of .ci/run (DATABASE_URL and CELERY_BROKER_URL must be set).
test-postgres: install
	$(VENV)/bin/pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) var .pytest_cache .coverage htmlcov

## make bench: build the benchmark data (once, under var/bench) and measure; writes docs/performance.*
bench: install
	DCMMS_VAR_DIR=$(CURDIR)/var/bench $(PY) manage.py migrate --noinput --verbosity 0
	DCMMS_VAR_DIR=$(CURDIR)/var/bench $(PY) manage.py bench --runs $${RUNS:-5}

## make load: the load test (PostgreSQL + Redis on 127.0.0.1, locust in .venv-load); writes the
## "Load test" section of docs/performance.md and docs/load.json. Overrides: see fixtures/load.sh.
load: install
	fixtures/load.sh
