# Everything runs in a project virtual environment (.venv), made from whatever python3 is on
# the PATH, so a system Python that pip may not touch (Debian 12, Ubuntu 24.04) works too.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# CPU build of torch; an unpinned torch pulls a multi-GB CUDA build.
TORCH ?= torch==2.13.0
SAM2 := sam2==1.1.0
CHROMIUM := /usr/bin/chromium

.PHONY: venv install install-sam2 install-dev demo test test-core lint format bench results

venv: $(VENV)/bin/python

$(VENV)/bin/python:
	@$(PYTHON) -c "import ensurepip" 2>/dev/null || { echo "$(PYTHON) cannot make a virtual environment: install python3-venv (Debian/Ubuntu: sudo apt-get install python3-venv)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel

install: venv
	$(PIP) install -q -e .

# SAM 2: Meta's code at commit 2b90b9f, republished as sam2==1.1.0. Built against the installed
# torch (--no-build-isolation), without its CUDA extension and without torchvision (--no-deps).
install-sam2: venv
	$(PIP) install -q $(TORCH) setuptools wheel
	$(PIP) install -q -e ".[sam2]"
	SAM2_BUILD_CUDA=0 $(PIP) install -q --no-build-isolation --no-deps $(SAM2)

install-dev: install-sam2
	$(PIP) install -q -e ".[dev,web,eval,train,ray]"
	@if [ ! -x $(CHROMIUM) ] && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && apt-get install -y -qq chromium; fi

demo: install
	$(VENV)/bin/sam2vol demo --out demo_output

lint: venv
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

format: venv
	$(PY) -m ruff check --fix src tests benchmarks
	$(PY) -m ruff format src tests benchmarks

# Everything; without chromium (and without root to install it) the browser tests are left out,
# with a line saying how to add them. Then the full-size load test of the web server (marker
# load: 16 sessions of 512x512x200 under a 2 GB budget, about a minute).
test: install-dev lint
	@if [ -x $(CHROMIUM) ]; then SAM2VOL_ALL_EXTRAS=1 $(PY) -m pytest -q; else \
		echo "NOTE: $(CHROMIUM) is missing, so the browser tests are left out;" \
			"install it with: sudo apt-get install chromium (then run make test again)"; \
		SAM2VOL_ALL_EXTRAS=1 $(PY) -m pytest -q -m "not browser"; fi
	$(PY) -m pytest -q -p no:cacheprovider -m load tests/web/test_load.py

# The suite with only the core installed (the extras' tests skip), in its own environment.
test-core:
	$(MAKE) VENV=.venv-core install
	.venv-core/bin/python -m pip install -q "pytest>=8"
	.venv-core/bin/python -m pytest -q -p no:cacheprovider

bench: install-dev
	$(PIP) install -q -e ".[bench]"
	$(PY) benchmarks/metrics.py
	$(PY) benchmarks/default_engine.py
	$(PY) benchmarks/propagation.py
	$(PY) benchmarks/web_latency.py
	$(PY) benchmarks/train_step.py
	$(PY) benchmarks/session_memory.py

PROTOCOLS := shen2024-mask shen2024-clicks he2024 he2024-code ma2024 dong2024 dong2024-3slices
# Shen et al.'s Dice per click, exactly: one run per number of clicks (5 is shen2024-clicks).
SHEN_CLICKS := 1 2 3 4

# The README's table and plots: the default engine on the bundled samples, every protocol.
results: install
	$(PIP) install -q -e ".[eval]"
	rm -rf runs/samples
	for p in $(PROTOCOLS); do $(VENV)/bin/sam2vol evaluate --dataset samples: --protocol $$p --out runs/samples/$$p || exit 1; done
	for k in $(SHEN_CLICKS); do $(VENV)/bin/sam2vol evaluate --dataset samples: --protocol shen2024-clicks:clicks=$$k --out runs/samples/shen2024-clicks-$$k || exit 1; done
	$(VENV)/bin/sam2vol report runs/samples/* --out docs/results --title "Default engine on the bundled samples, every protocol"
