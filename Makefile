# The whole user interface. `make demo` and `make test` work from a fresh clone.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PY ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
DATA ?= $(CURDIR)/data
DEMO_DATA ?= $(CURDIR)/data/demo
USERS ?= 3
DAYS ?= 7
SEED ?= 1
PIPELINE_DAGS := focus_ingest focus_transform focus_quality focus_publish
# Debian packages tests need (installed by `make sysdeps` as root; `make test` runs it).
APT_PACKAGES ?= xvfb xauth xdotool x11-utils jwm dbus-daemon libx11-dev libxtst-dev chromium chromium-driver postgresql
# Project-local Airflow (SQLite metadata, LocalExecutor, loopback only, telemetry off).
AIRFLOW_ENV = eval "$$($(BIN)/python -m focuslake.airflow_env)"
export DO_NOT_TRACK := 1

.PHONY: help sysdeps setup venv native airflow-setup demo run-dags summary test test-fast bench airflow clean receiver \
        docs docs-serve

help:
	@echo "make demo     - set up, generate $(USERS) users x $(DAYS) days, run the DAGs end to end, print gold"
	@echo "make test     - set up and run the whole test suite"
	@echo "make bench    - benchmarks (ratios measured side by side)"
	@echo "make airflow  - Airflow UI on http://127.0.0.1:8080 (login required)"
	@echo "make docs     - dbt docs as one static HTML file (make docs-serve: on http://127.0.0.1:8088)"

setup: venv native airflow-setup

# Install whichever of APT_PACKAGES are missing (needs root: CI and the dev machines are).
sysdeps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" -ne 0 ]; then echo "not root: run sudo apt-get install -y$$missing" >&2; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && \
	  apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PY) -m uv --version >/dev/null 2>&1 || $(PY) -m pip install -q uv
	[ -x $(BIN)/python ] || $(PY) -m uv venv -q --python "$$($(PY) -c 'import sys; print(sys.executable)')" $(VENV)
	$(PY) -m uv pip sync -q --python $(BIN)/python requirements.lock
	$(PY) -m uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

native:
	$(MAKE) -s -C native

# Airflow metadata DB (SQLite in .airflow/), the one-slot warehouse_writer pool, and the dbt
# manifest Cosmos renders the transform DAG from (`dbt parse`, only when stale).
airflow-setup: venv
	$(BIN)/python -m focuslake.airflow_env --setup

# Run the four pipeline DAGs in order with `airflow dags test` (what the Asset chain does
# when the scheduler runs them).
run-dags:
	$(AIRFLOW_ENV) && for dag in $(PIPELINE_DAGS); do \
	  echo "== airflow dags test $$dag"; $(BIN)/airflow dags test $$dag >"$$FOCUSLAKE_DATA/$$dag.log" 2>&1 \
	    || { tail -40 "$$FOCUSLAKE_DATA/$$dag.log"; exit 1; }; done

demo: setup
	rm -rf $(DEMO_DATA) && mkdir -p $(DEMO_DATA)
	$(BIN)/python -m collectors.simulate --users $(USERS) --days $(DAYS) --seed $(SEED) --data $(DEMO_DATA)
	$(MAKE) -s run-dags FOCUSLAKE_DATA=$(DEMO_DATA)
	FOCUSLAKE_DATA=$(DEMO_DATA) $(BIN)/python -m focuslake summary

summary:
	$(BIN)/python -m focuslake summary

# Test modules run on TEST_WORKERS pytest-xdist processes (each module whole, in its own order, on
# one worker: --dist loadfile; the heaviest first: tests/conftest.py). TEST_WORKERS=0 runs them in this one process.
TEST_WORKERS ?= 2
PYTEST_PAR = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)

test: sysdeps setup
	$(BIN)/pytest $(PYTEST_PAR)

test-fast: setup
	$(BIN)/pytest $(PYTEST_PAR) -m "not slow"

# Each module prints its own side-by-side comparisons; modules not written yet are skipped.
BENCH_MODULES ?= focuslake.bench focuslake.bench_models collectors.bench focuslake.bench_airflow \
                 focuslake.receiver.bench focuslake.reports.bench focuslake.bench_queries focuslake.quality.bench
bench: setup
	@for m in $(BENCH_MODULES); do \
	  if $(BIN)/python -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('$$m') is None)" 2>/dev/null; \
	  then echo "== $$m"; $(BIN)/python -m $$m; else echo "== $$m (not present, skipped)"; fi; done

# The UI: Airflow standalone on the embedded default, bound to 127.0.0.1, login required: user
# admin, password from AIRFLOW_ADMIN_PASSWORD or generated at first start into .airflow/ (mode
# 0600, never committed); the launcher prints where it is. PORT=8081 for another port.
airflow: setup
	$(BIN)/python -m focuslake.airflow_ui --no-setup $(if $(PORT),--port $(PORT))

# dbt docs (models, columns, lineage) as one self-contained HTML file, generated with the in-repo
# profile against a copy of the published warehouse of FOCUSLAKE_DATA (default data/; after
# `make demo`: make docs FOCUSLAKE_DATA=data/demo). docs-serve serves it on 127.0.0.1 only.
DOCS_PORT ?= 8088
docs: venv
	$(BIN)/python -m focuslake.docs_site build

docs-serve: venv
	$(BIN)/python -m focuslake.docs_site serve --port $(DOCS_PORT)

# The ingest receiver for other machines' collectors and apps (docs/receiver.md), on
# 127.0.0.1:8765 unless RECEIVER_ARGS says otherwise (e.g. "--host 0.0.0.0" behind a TLS proxy).
# Device tokens: .venv/bin/python -m focuslake.receiver token create --user U --device D
RECEIVER_ARGS ?=
receiver: venv
	$(BIN)/python -m focuslake.receiver serve $(RECEIVER_ARGS)

clean:
	rm -rf $(VENV) .airflow dbt_project/target dbt_project/logs data/demo
	$(MAKE) -s -C native clean
