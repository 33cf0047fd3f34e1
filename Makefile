# Every target creates the virtualenv it needs: on a fresh clone `make demo` and `make test` are enough.
PYTHON ?= python3
AF3_VERSION ?= 3.3.2
AF2_VERSION ?= 2.11.2
VENV ?= .venv
VENV_AF2 ?= .venv-af2
PYTEST_ARGS ?=

.PHONY: help venv venv-af2 lint test test-af3 test-af2 test-deployment deployment-deps bench bench-smoke demo browser-deps dist clean

help:
	@echo "make demo         run the post-ETL example DAG for real against the local emulator"
	@echo "make test         lint + full suite on Airflow $(AF3_VERSION) + unit/DagBag/dag.test suite on Airflow $(AF2_VERSION)"
	@echo "make test-af3     lint + full suite on Airflow 3 (real scheduler/triggerer and browser tests included)"
	@echo "make test-af2     unit, DagBag and dag.test() suites on Airflow 2.11"
	@echo "make test-deployment  PostgreSQL + Redis + CeleryExecutor (2 workers, 2 triggerers) with faults"
	@echo "make bench        benchmarks (slow), results in bench/results/ and docs/performance.md"

# A venv per Airflow major, installed with uv (pip installs uv into the venv first) from the pinned
# constraints in constraints/, so every machine resolves the same versions.
$(VENV)/.installed: pyproject.toml constraints/airflow-3.3.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv pip install --quiet --python $(VENV)/bin/python -c constraints/airflow-3.3.txt \
		"apache-airflow==$(AF3_VERSION)" -e ".[dev,bench,deployment,s3-tests]"
	touch $@

$(VENV_AF2)/.installed: pyproject.toml constraints/airflow-2.11.txt
	rm -rf $(VENV_AF2)
	$(PYTHON) -m venv $(VENV_AF2)
	$(VENV_AF2)/bin/pip install --quiet --disable-pip-version-check uv
	$(VENV_AF2)/bin/uv pip install --quiet --python $(VENV_AF2)/bin/python -c constraints/airflow-2.11.txt \
		"apache-airflow==$(AF2_VERSION)" -e ".[dev,s3-tests]"
	touch $@

venv: $(VENV)/.installed
venv-af2: $(VENV_AF2)/.installed

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict

# Debian's Chromium for the connection-form browser test (Playwright drives it; no browser download).
browser-deps:
	@test -x /usr/bin/chromium || { \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
		|| echo "warning: could not install chromium; the browser test will be skipped"; }

test-af3: lint browser-deps
	scripts/run-pytest $(VENV) $(PYTEST_ARGS)

test-af2: venv-af2
	scripts/run-pytest $(VENV_AF2) -m "not af3_only" $(PYTEST_ARGS)

# Debian's PostgreSQL server and Redis for test-deployment: it starts instances of its own on free
# loopback ports (never the system's services, which the packages install but do not start here).
deployment-deps:
	@{ ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v redis-server >/dev/null; } || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >/dev/null) \
		|| { echo "error: test-deployment needs Debian's postgresql and redis-server (apt-get install them)"; exit 1; }

# A production-shaped deployment on loopback with faults (tests/deployment/__main__.py); its figures
# go to bench/results/deployment.json, quoted by docs/deployment.md.
test-deployment: venv deployment-deps
	$(VENV)/bin/python -m tests.deployment --result bench/results/deployment.json

test: test-af3 test-af2 test-deployment bench-smoke

bench: venv
	$(VENV)/bin/python -m bench

bench-smoke: venv
	$(VENV)/bin/python -m bench --smoke

demo: venv
	scripts/demo.sh $(VENV)

dist: venv
	rm -rf dist && $(VENV)/bin/python -m build --outdir dist . && $(VENV)/bin/twine check dist/*

clean:
	rm -rf $(VENV) $(VENV_AF2) dist build .mypy_cache .ruff_cache .pytest_cache .airflow-home*
