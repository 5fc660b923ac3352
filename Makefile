# Two entry points (see README): `make demo` and `make test`. Both create or reuse .venv.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint venv

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,spark,serve,text,coldstart,notebooks]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/graphrec demo --out artifacts/demo

# Everything but `slow` and `gpu` tests; the `spark` ones run Spark in local mode (needs Java 17).
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m 'not slow and not gpu'

lint: $(STAMP)
	$(VENV)/bin/ruff format --check graphrec tests benchmarks
	$(VENV)/bin/ruff check graphrec tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache
