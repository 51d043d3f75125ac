# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test lint bench servers clean

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

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check cachekit tests bench

test: $(VENV)/.dev servers
	$(VENV)/bin/ruff check cachekit tests bench
	$(VENV)/bin/pytest tests --nbval-lax notebooks

$(VENV)/.bench: $(VENV)/.dev
	$(PIP) install -q -e '.[dev,bench]'
	touch $@

bench: $(VENV)/.bench servers
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .cache build *.egg-info
