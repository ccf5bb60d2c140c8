PY ?= python3
PIP := $(PY) -m pip

.PHONY: install install-dev demo test lint format bench

install:
	$(PIP) install -q -e .

install-dev:
	$(PIP) install -q -e ".[dev]"

demo: install
	sam2vol demo --out demo_output

lint:
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

format:
	$(PY) -m ruff check --fix src tests benchmarks
	$(PY) -m ruff format src tests benchmarks

test: install-dev lint
	$(PY) -m pytest -q

bench: install-dev
	$(PIP) install -q -e ".[bench]"
	$(PY) benchmarks/metrics.py
	$(PY) benchmarks/default_engine.py
