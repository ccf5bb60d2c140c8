PY ?= python3
PIP := $(PY) -m pip
# CPU build of torch (from local disk here); an unpinned torch pulls a multi-GB CUDA build.
TORCH ?= torch==2.13.0
SAM2 := sam2==1.1.0

.PHONY: install install-sam2 install-dev demo test lint format bench results

install:
	$(PIP) install -q -e .

# SAM 2: Meta's code at commit 2b90b9f, republished as sam2==1.1.0. Built against the installed
# torch (--no-build-isolation), without its CUDA extension and without torchvision (--no-deps).
install-sam2:
	$(PIP) install -q $(TORCH) setuptools wheel
	$(PIP) install -q -e ".[sam2]"
	SAM2_BUILD_CUDA=0 $(PIP) install -q --no-build-isolation --no-deps $(SAM2)

install-dev: install-sam2
	$(PIP) install -q -e ".[dev,web,eval,train,ray]"
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)

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
	$(PY) benchmarks/propagation.py
	$(PY) benchmarks/web_latency.py
	$(PY) benchmarks/train_step.py

PROTOCOLS := shen2024-mask shen2024-clicks he2024 he2024-code ma2024 dong2024 dong2024-3slices
# Shen et al.'s Dice per click, exactly: one run per number of clicks (5 is shen2024-clicks).
SHEN_CLICKS := 1 2 3 4

# The README's table and plots: the default engine on the bundled samples, every protocol.
results: install
	$(PIP) install -q -e ".[eval]"
	rm -rf runs/samples
	for p in $(PROTOCOLS); do sam2vol evaluate --dataset samples: --protocol $$p --out runs/samples/$$p || exit 1; done
	for k in $(SHEN_CLICKS); do sam2vol evaluate --dataset samples: --protocol shen2024-clicks:clicks=$$k --out runs/samples/shen2024-clicks-$$k || exit 1; done
	sam2vol report runs/samples/* --out docs/results --title "Default engine on the bundled samples, every protocol"
