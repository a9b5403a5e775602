# The two user commands: `make demo` (run the workflow on the embedded demo region) and
# `make test` (pytest, snakemake --lint and a dry run). Both create .venv if it is missing.

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lstfill-installed
TORCH := torch==2.13.0

.PHONY: demo test

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[test,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/snakemake --cores all
	$(VENV)/bin/snakemake --report results/report.html

test: $(STAMP)
	$(VENV)/bin/pytest tests
	$(VENV)/bin/ruff check lstfill tests workflow_scripts benchmarks
	$(VENV)/bin/snakemake --lint
	$(VENV)/bin/snakemake --dry-run --quiet
