# Two entry points (see README): `make demo` and `make test`. Both create or reuse .venv.
# The DGL lane (`make test-dgl`) has its own environment, .venv-dgl: DGL loads only beside torch <= 2.2.1.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
VENV_DGL := .venv-dgl
STAMP_DGL := $(VENV_DGL)/.installed

.PHONY: demo test lint venv venv-dgl test-dgl

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,spark,serve,text,coldstart,notebooks]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/graphrec demo --out artifacts/demo

# Everything but `slow`, `gpu` and `dgl` tests (the DGL lane runs those); the `spark` ones run Spark
# in local mode (needs Java 17). The slowest tests are listed at the end, to keep the run short.
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m 'not slow and not gpu and not dgl' --durations=15

lint: $(STAMP)
	$(VENV)/bin/ruff format --check graphrec tests benchmarks
	$(VENV)/bin/ruff check graphrec tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

$(STAMP_DGL): pyproject.toml constraints-dgl.txt
	test -x $(VENV_DGL)/bin/python || $(PYTHON) -m venv $(VENV_DGL)
	$(VENV_DGL)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints-dgl.txt -e '.[dgl]' pytest hypothesis
	touch $(STAMP_DGL)

venv-dgl: $(STAMP_DGL)

# The `dgl` tests, plus the core suites on the oldest torch graphrec supports (2.2.1).
test-dgl: $(STAMP_DGL)
	DGLBACKEND=pytorch $(VENV_DGL)/bin/python -m pytest -q -m 'not slow and not spark and not gpu' \
		tests/interop tests/graph tests/index tests/io tests/evaluate tests/weights tests/model tests/recall
