# dd-bench: `make demo` installs and runs the quick benchmark; `make test` installs and runs the tests.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: help install demo test test-full bench clean

help:
	@echo "make demo       install dd-bench and run the quick digits benchmark (CPU, a few minutes)"
	@echo "make test       install dd-bench with its test extras and run the default test suite (CPU, no network)"
	@echo "make test-full  also run tests marked slow"
	@echo "make bench      evaluator/DSA speed benchmark (scripts/bench_evaluator.py)"

# torch first: the pinned CUDA build runs on CPU and GPU alike; any torch >= 2.11 already installed is kept.
install:
	@$(PYTHON) -c "import torch, torchvision" 2>/dev/null || $(PIP) install -q torch==2.14.1 torchvision==0.29.1 \
		|| $(PIP) install -q "torch>=2.11" torchvision
	$(PIP) install -q -e ".[test]"

demo: install
	dd-bench

test: install
	$(PYTHON) -m pytest -q -m "not slow"

test-full: install
	$(PYTHON) -m pytest -q

bench: install
	$(PYTHON) scripts/bench_evaluator.py

clean:
	rm -rf runs outputs multirun .pytest_cache build dist *.egg-info
