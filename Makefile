# telbill: two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEBIAN_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils
PYTEST_ARGS ?=

.PHONY: demo test bench airflow lint system-deps venv clean

## set-up ------------------------------------------------------------------------------------
system-deps:  ## Debian libraries WeasyPrint needs, and pdftotext for PDF checks
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get install -y -q $$missing >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q $$missing >/dev/null; }; \
	fi

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check uv==0.13.9 2>&1 | grep -v -i warning || true
	$(VENV)/bin/uv pip sync -q requirements.lock --python $(PY)
	$(VENV)/bin/uv pip install -q -e . --no-deps --python $(PY)
	touch $(STAMP)

venv: system-deps $(STAMP)

## the two commands -----------------------------------------------------------------------------
demo: venv  ## run the whole chain on generated sample data and say where the results are
	$(VENV)/bin/telbill demo

test: venv  ## the full test suite (starts its own S3 server, DuckDB files, PDFs, airflow dags test)
	$(PY) -m pytest -n 2 --dist loadfile -q -p no:cacheprovider $(PYTEST_ARGS)

## the rest -------------------------------------------------------------------------------------
bench: venv  ## benchmarks: prints a table per area (speed and memory), never asserted in tests
	$(PY) bench/run.py $(BENCH_ARGS)

airflow: venv  ## airflow standalone with telbill's DAGs on http://127.0.0.1:8080 (see README)
	$(VENV)/bin/telbill airflow standalone

lint: venv
	$(VENV)/bin/ruff check .

lock:  ## re-resolve pinned dependencies after editing pyproject.toml
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev -o requirements.lock -q --python 3.11

clean:
	rm -rf var airflow_home
