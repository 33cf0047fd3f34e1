# Every target creates the virtualenv it needs: on a fresh clone `make demo` and `make test` are enough.
#
# Compatibility lanes: a lane is a constraints file constraints/airflow-X.Y.txt whose first line is
#     # lane: airflow X.Y.Z, python 3.N
# Everything about a lane comes from that line: the Airflow it installs, its interpreter (pyenv or
# python3.N on PATH, see scripts/find-python; a missing one fails the lane) and its venv (.venv for the
# full lane, .venv-X.Y for the others). Adding a lane = adding a constraints file.
LANES := $(sort $(patsubst constraints/airflow-%.txt,%,$(wildcard constraints/airflow-*.txt)))
# The full lane runs every test; it is also the venv of lint, demo, bench and dist.
FULL_LANE := 3.3
VENV := .venv
# Extras each lane installs (LANE_EXTRAS_X.Y overrides the default for lane X.Y).
LANE_EXTRAS := dev
LANE_EXTRAS_3.3 := dev,bench,deployment,s3-tests
# The other lanes run what depends on the Airflow version: the unit suites of the hook, operators,
# sensor and triggers, DagBag and dag.test() of every example DAG, the audit on ObjectStoragePath and
# the secret-leak search. What does not (the emulator's own suite, the purge engine's fault and SIGKILL
# suites, property tests), real Airflow processes, the browser and packaging run on the full lane only.
# Airflow 2 lanes also leave out af3_only.
QUICK_TESTS := tests/hooks tests/operators tests/sensors tests/triggers tests/example_dags \
	tests/e2e/test_connection_form.py tests/test_compat.py tests/test_get_provider_info.py tests/test_models.py \
	tests/test_exceptions.py tests/test_audit.py tests/test_purge_audit.py tests/reliability/test_secrets.py \
	tests/reliability/test_secrets_cli.py tests/reliability/test_bad_input.py
QUICK_MARKERS := not airflow_e2e and not browser and not packaging
# Extra pytest arguments (a partial run: its result is not recorded).
PYTEST_ARGS ?=
# `make test-fast`, the developer's inner loop on the full lane's venv: lint plus the unit, hook,
# emulator, operator, sensor and trigger suites and the figures check; no real Airflow process
# (airflow_e2e), no browser, no packaging, no other lane, no dag.test() runs, no
# SIGKILL or property suites (those are in tests/example_dags, tests/e2e and tests/reliability).
FAST_TESTS := tests/hooks tests/operators tests/sensors/test_assemblyai.py tests/triggers tests/testing \
	tests/test_models.py tests/test_exceptions.py tests/test_compat.py tests/test_get_provider_info.py \
	tests/test_audit.py tests/test_purge.py tests/test_purge_audit.py tests/test_figures.py
# Left out of those files: dag.test() runs and the checks that start a fresh interpreter to import
# Airflow (DAG-parse import cost, the Airflow CLI, Airflow's secret-masker warning); make test runs them.
FAST_DESELECT := test_dag_run_ or test_dag_parsing_imports_neither_the_hook_nor_the_trigger \
	or test_dag_files_defining_a_watcher_do_not_import_the_hook or test_dag_files_do_not_load_the_purge_machinery \
	or test_the_reader_is_cheap_to_import_and_dag_files_do_not_load_it or test_airflow_cli_lists_provider \
	or test_the_short_secret_warning_comes_from_airflow

comma := ,
lane_words = $(subst $(comma), ,$(shell head -n1 constraints/airflow-$(1).txt))
lane_airflow = $(word 4,$(call lane_words,$(1)))
lane_python = $(word 6,$(call lane_words,$(1)))
lane_venv = $(if $(filter $(FULL_LANE),$(1)),$(VENV),.venv-$(1))
venv_lane = $(if $(filter $(VENV),$(1)),$(FULL_LANE),$(patsubst .venv-%,%,$(1)))
lane_extras = $(or $(LANE_EXTRAS_$(1)),$(LANE_EXTRAS))
lane_tests = $(if $(filter $(FULL_LANE),$(1)),,$(QUICK_TESTS))
lane_markers = $(if $(filter $(FULL_LANE),$(1)),,-m "$(QUICK_MARKERS)$(if $(filter 2.%,$(call lane_airflow,$(1))), and not af3_only)")

.PHONY: help venv venvs lint test test-quick-lanes test-fast test-clock-start test-clock-stop test-lane test-af3 test-af2 test-deployment deployment-deps compat-table bench bench-smoke demo browser-deps dist clean

help:
	@echo "make demo            run the post-ETL example DAG for real against the local emulator"
	@echo "make test            what CI runs: lint, every lane ($(LANES)), benchmark smoke, compatibility table"
	@echo "make test-fast       the inner loop: lint + unit, hook, emulator, operator suites (no real Airflow, no browser)"
	@echo "make test-lane LANE=X.Y   one lane (inner loop); PYTEST_ARGS='tests/hooks -x' narrows it"
	@echo "make test-af3        lint + the full lane (Airflow $(call lane_airflow,$(FULL_LANE)): everything, real Airflow processes and browser included)"
	@echo "make test-af2        the Airflow 2.11 lane"
	@echo "make test-deployment PostgreSQL + Redis + CeleryExecutor (2 workers, 2 triggerers) with faults"
	@echo "make compat-table    publish the lanes' last results (.lanes/) to docs/lanes/ and regenerate every figure"
	@echo "make bench           benchmarks (slow), results in bench/results/ and docs/performance.md"
	@echo "lanes:"; for lane in $(LANES); do echo "  $$lane: $$(head -n1 constraints/airflow-$$lane.txt | sed 's/^# lane: //'), $(VENV)$$( [ $$lane = $(FULL_LANE) ] || echo -$$lane)"; done

# A lane's venv, installed with uv (pip installs uv into the venv first) from the lane's pinned
# constraints, so every machine resolves the same versions.
.SECONDEXPANSION:
%/.installed: constraints/airflow-$$(call venv_lane,$$*).txt pyproject.toml
	@head -n1 $< | grep -Eqx '# lane: airflow [0-9]+\.[0-9]+\.[0-9]+, python 3\.[0-9]+' \
		|| { echo "error: the first line of $< must be '# lane: airflow X.Y.Z, python 3.N'" >&2; exit 1; }
	python="$$(scripts/find-python $(call lane_python,$(call venv_lane,$*)))" && rm -rf $* && "$$python" -m venv $*
	$*/bin/pip install --quiet --disable-pip-version-check uv
	$*/bin/uv pip install --quiet --python $*/bin/python -c $< \
		"apache-airflow==$(call lane_airflow,$(call venv_lane,$*))" -e ".[$(call lane_extras,$(call venv_lane,$*))]"
	touch $@

venv: $(VENV)/.installed
venvs: $(foreach lane,$(LANES),$(call lane_venv,$(lane))/.installed)

# One lane's tests. A whole-lane run records its result in .lanes/X.Y.json (scripts/lane_results.py);
# `make compat-table` publishes it.
test-lane-%: $$(call lane_venv,$$*)/.installed
	scripts/run-pytest $(call lane_venv,$*) -p scripts.lane_results $(call lane_markers,$*) \
		$(if $(PYTEST_ARGS),$(PYTEST_ARGS),--lane-results=.lanes/$*.json $(call lane_tests,$*))

test-lane:
	@test -n "$(filter $(LANE),$(LANES))" \
		|| { echo "error: LANE='$(LANE)' is not a lane; the lanes are: $(LANES)" >&2; exit 1; }
	$(MAKE) --no-print-directory test-lane-$(LANE)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict

# Debian's Chromium for the connection-form browser test (Playwright drives it; no browser download).
browser-deps:
	@test -x /usr/bin/chromium || { \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
		|| echo "warning: could not install chromium; the browser test will be skipped"; }

test-fast: lint
	scripts/run-pytest $(VENV) -q -m "$(QUICK_MARKERS)" -k "not ($(FAST_DESELECT))" $(or $(PYTEST_ARGS),$(FAST_TESTS))

test-af3: lint browser-deps test-lane-$(FULL_LANE)
test-af2: test-lane-2.11

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

test: test-clock-start lint browser-deps test-quick-lanes test-lane-$(FULL_LANE) test-deployment bench-smoke \
	test-clock-stop compat-table

# The quick lanes two at a time (this machine has 2 cores and a lane is one pytest process), each
# lane's output kept together; the full lane, with its real Airflow processes, runs alone after them.
QUICK_LANES := $(filter-out $(FULL_LANE),$(LANES))
test-quick-lanes:
	$(MAKE) --no-print-directory -j2 --output-sync=target $(addprefix test-lane-,$(QUICK_LANES))

# make test's wall time, for the README (scripts/figures.py): .lanes/make-test.json, published with the lanes.
test-clock-start:
	python3 scripts/figures.py --clock-start
test-clock-stop:
	python3 scripts/figures.py --clock-stop

# Move the lanes' last results (and make test's wall time) into docs/lanes/ and regenerate every figure
# between markers in README.md and docs/*.md (scripts/figures.py, which also renders the compatibility
# tables of scripts/compat_table.py).
compat-table:
	@if ls .lanes/*.json >/dev/null 2>&1; then mkdir -p docs/lanes && mv .lanes/*.json docs/lanes/; fi
	python3 scripts/figures.py

bench: venv
	$(VENV)/bin/python -m bench

bench-smoke: venv
	$(VENV)/bin/python -m bench --smoke

demo: venv
	scripts/demo.sh $(VENV)

dist: venv
	rm -rf dist && $(VENV)/bin/python -m build --outdir dist . && $(VENV)/bin/twine check dist/*

clean:
	rm -rf $(VENV) .venv-* .lanes dist build .mypy_cache .ruff_cache .pytest_cache .airflow-home*
