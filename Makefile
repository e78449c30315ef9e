# The two commands a new machine needs: `make demo` and `make test`.
# Each sets up .venv on first use (pinned by constraints.txt) and then runs.
# `make test` (what CI runs) is ruff, the import-layer contracts and every test;
# `make test-fast` the same checks and the unit tier only (tests/unit, no Prefect harness; only
# that folder is collected, so its workers never import the flows' modules: about 6 s each).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
# Tests run on both cores (pytest-xdist): whole files or fixture-sharing groups per worker,
# longest first (tests/conftest.py). TEST_WORKERS=0 runs them in this one process.
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export GX_ANALYTICS_ENABLED := false

.PHONY: demo test test-fast lint bench clean

# After installing, the linkage kernels are compiled into numba's cache (pipelines/steps/compile.py),
# so the first run, the demo and the tests load them instead of compiling (about 9 s of CPU).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	$(BIN)/python -m pipelines.steps.compile
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/pathlink demo

test: $(STAMP)
	$(BIN)/ruff check pipelines linkage keys data_contracts schemas tests benchmarks
	$(BIN)/lint-imports --no-logo
	$(BIN)/python -m pytest $(XDIST)

test-fast: $(STAMP)
	$(BIN)/ruff check pipelines linkage keys data_contracts schemas tests benchmarks
	$(BIN)/lint-imports --no-logo
	$(BIN)/python -m pytest $(XDIST) -m "not slow" tests/unit

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/encode_throughput.py

clean:
	rm -rf $(VENV) demo-workspace .pytest_cache

# Pathlink (encodings) vs Splink (plain text) on held-out sets; Splink is the optional
# `compare` extra, never a runtime dependency. ARGS, e.g. ARGS=--stability or ARGS="--keys 5".
.PHONY: bench-compare
bench-compare: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[compare]'
	$(BIN)/python benchmarks/linkage_vs_splink.py $(ARGS)
