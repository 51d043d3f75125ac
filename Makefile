# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test test-min lint bench bench-quick servers browser soak clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# The demo needs no server: core + pandas/matplotlib for the table and plot + the CLI.
$(VENV)/.demo: $(VENV)/bin/python pyproject.toml
	$(PIP) install -q -e '.[pandas,notebook,cli]'
	touch $@

$(VENV)/.dev: $(VENV)/bin/python pyproject.toml
	$(PIP) install -q -e '.[dev]'
	touch $@ $(VENV)/.demo

demo: $(VENV)/.demo
	$(VENV)/bin/cachekit validate configs/
	$(VENV)/bin/cachekit demo --plot demo-hit-ratio.png

servers:
	bash scripts/ensure-servers.sh

# Debian's headless Chromium for the browser test (tests/front/test_notebook_browser.py)
browser:
	bash scripts/ensure-browser.sh

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check cachekit tests bench

test: $(VENV)/.dev servers browser
	$(VENV)/bin/ruff check cachekit tests bench
	$(VENV)/bin/pytest tests --nbval-lax notebooks

# The core (no extra) on the declared minimums: a fresh venv, the floors of constraints/minimums.txt,
# cachekit built with the oldest setuptools allowed, then the tests that need no extra.
MIN_VENV ?= .venv-min
CORE_TESTS := $(filter-out tests/config/test_config_schema.py,$(wildcard tests/config/test_config_*.py)) tests/front/test_facade.py \
	tests/runtime/test_runtime.py tests/providers/test_file_driver.py tests/front/test_decorators.py tests/front/test_services.py \
	tests/front/test_testing_support.py tests/front/test_pytest_plugin.py tests/test_packaging.py
# the few tests of those files that need an extra (redis-py, pandas, the CLI's typer); test_config_schema.py
# runs `cachekit schema` (the CLI extra) throughout
CORE_DESELECT := tests/front/test_decorators.py::test_a_second_runtime_on_the_same_redis_finds_the_decorated_result \
	tests/front/test_services.py::test_items_on_a_redis_region \
	tests/front/test_services.py::test_the_seeds_memory_provider_reads_live_traffic_under_the_embedded_default \
	tests/runtime/test_runtime.py::test_stats_to_frame_is_a_dataframe_indexed_by_region \
	tests/config/test_config_env.py::test_env_redis_url_reaches_the_runtime_through_load_environ \
	tests/config/test_config_env.py::test_readme_example_cache_facade_with_redis_url_in_the_environment \
	tests/config/test_config_types.py::test_cachekit_validate_rejects_values_of_the_wrong_toml_type

test-min:
	rm -rf $(MIN_VENV)
	$(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/pip install -q -c constraints/minimums.txt setuptools pytest pytest-timeout pytest-asyncio hypothesis
	$(MIN_VENV)/bin/pip install -q -c constraints/minimums.txt --no-build-isolation .
	$(MIN_VENV)/bin/python -m pip list --format=freeze | grep -iE '^(setuptools|pydantic|pydantic.settings|tomlkit)=='
	$(MIN_VENV)/bin/pytest $(CORE_TESTS) -q -p no:cacheprovider $(addprefix --deselect ,$(CORE_DESELECT))

# A longer soak than the 10 s one `make test` runs: memory, threads and connections stay flat across
# repeated cuts, black-holes and pub/sub kills (tests/runtime/test_soak.py). SOAK_SECONDS=600 make soak for more.
SOAK_SECONDS ?= 120
soak: $(VENV)/.dev servers
	SOAK_SECONDS=$(SOAK_SECONDS) $(VENV)/bin/pytest tests/runtime/test_soak.py -q -p no:cacheprovider

$(VENV)/.bench: $(VENV)/.dev
	$(PIP) install -q -e '.[dev,bench]'
	touch $@

# the full run (several minutes) rewrites bench/results.json and docs/benchmarks.md
bench: $(VENV)/.bench servers
	$(PY) bench/run.py

# smaller workloads and fewer repeats, every row and the targets table: under two minutes on 2 cores
bench-quick: $(VENV)/.bench servers
	$(PY) bench/run.py --quick

clean:
	rm -rf $(VENV) $(MIN_VENV) .pytest_cache .ruff_cache .cache build *.egg-info
