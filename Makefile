# The two commands of the quick start: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test setup lint format release serve worker db-stop clean

$(INSTALLED): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(INSTALLED)

## setup: virtualenv, packages, database (embedded unless DATABASE_URL), migrations
setup: $(INSTALLED)
	$(PY) manage.py migrate --noinput

## run: set up, load demo data, create the admin login, serve on :8000 with a worker, the
## market feed and the Kite sandbox (the demo's LIVE account logs in there, not at Zerodha)
run: export OMS_PAPER_MARKET_HOURS ?= ignore
run: export OMS_KITE_SANDBOX ?= true
run: export KITE_API_ROOT ?= http://127.0.0.1:8001
run: export KITE_LOGIN_URL ?= http://127.0.0.1:8001/connect/login
run: export KITE_TICKER_ROOT ?= ws://127.0.0.1:8001/ws
run: setup
	$(PY) manage.py seed_demo
	$(PY) manage.py ensure_admin
	bash bin/run

## test: the whole suite (unit, database, API, concurrency) on real PostgreSQL
test: $(INSTALLED)
	bash bin/test

## lint: ruff (lint and format) and the layers contract (import-linter, pyproject.toml)
lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(INSTALLED)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## release / serve / worker: the production shape, as the Procfile runs it (README, "Production
## deployment"): release once per deploy, then N machines `make serve`, M machines `make worker`,
## all on one DATABASE_URL. None of them migrates but release.
release: $(INSTALLED)
	$(PY) manage.py check --deploy --fail-level WARNING
	$(PY) manage.py migrate --noinput

serve: $(INSTALLED)
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(VENV)/bin/gunicorn omsproject.wsgi --bind $${OMS_BIND:-127.0.0.1:8000} --workers $${WEB_CONCURRENCY:-2} --threads $${OMS_WEB_THREADS:-4} --access-logfile -

worker: $(INSTALLED)
	$(PY) manage.py procrastinate worker --concurrency $${OMS_WORKER_CONCURRENCY:-4}

db-stop: $(INSTALLED)
	$(PY) manage.py embedded_db stop

clean: db-stop
	rm -rf $(VENV) var staticfiles
