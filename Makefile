# dd-bench: `make demo` installs and runs the quick benchmark; `make test` installs and runs the tests.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: help install install-core demo test test-full lint bench gpu-checks docs clean

help:
	@echo "make demo       install dd-bench and run the quick digits benchmark (CPU, a few minutes)"
	@echo "make test       install dd-bench with its test extras and run the default test suite (CPU, no network)"
	@echo "make test-full  also run tests marked slow"
	@echo "make lint       ruff check with pyproject.toml's rules (ruff comes with the test extras: make install)"
	@echo "make bench      evaluator/DSA speed benchmark (scripts/bench_evaluator.py)"
	@echo "make gpu-checks every pending GPU check and benchmark (scripts/gpu_checks.sh; OUT=dir)"
	@echo "make docs       build the docs site into site/ (mkdocs build --strict; the docs extra)"

# torch first: the pinned CUDA build runs on CPU and GPU alike; any torch >= 2.11 already installed is kept.
TORCH = $(PYTHON) -c "import torch, torchvision" 2>/dev/null || $(PIP) install -q torch==2.14.1 torchvision==0.29.1 \
	|| $(PIP) install -q "torch>=2.11" "torchvision>=0.26"

# The test extra brings the launcher plugins (joblib, submitit) the sweep and SLURM tests use.
install:
	@$(TORCH)
	$(PIP) install -q -e ".[test]"

# The demo needs only the package (measured: 13.0 s vs 17.7 s for the test extras, both already present).
install-core:
	@$(TORCH)
	$(PIP) install -q -e .

demo: install-core
	dd-bench

test: install
	$(PYTHON) -m pytest -q -m "not slow"

test-full: install
	$(PYTHON) -m pytest -q

# No install step (seconds, not the test extras' reinstall): ruff comes with `make install` / `make test`.
lint:
	$(PYTHON) -m ruff check .

bench: install
	$(PYTHON) scripts/bench_evaluator.py

gpu-checks: install
	bash scripts/gpu_checks.sh

# The docs extra (setup.cfg) holds the version bounds; torch first as in install-core, so pip never picks another.
docs:
	@$(TORCH)
	$(PIP) install -q -e ".[docs]"
	$(PYTHON) -m mkdocs build --strict

clean:
	rm -rf runs outputs multirun .pytest_cache build dist site *.egg-info
