# The two user commands: `make demo` (run the workflow on the embedded demo region) and
# `make test` (pytest, snakemake --lint, and dry runs of the demo and of the tiny test region
# config/test/tiny.yaml that the workflow tests run). Both create .venv if it is missing.

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lstfill-installed
# Every version comes from envs/pins.txt (pip constraints), the one source the conda envs mirror.
PINS := envs/pins.txt
TORCH := $(shell grep '^torch==' $(PINS))

.PHONY: demo test

$(STAMP): pyproject.toml $(PINS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip -c $(PINS)
	$(PY) -m pip install --quiet "$(TORCH)" -c $(PINS)
	$(PY) -m pip install --quiet -e ".[test,dev,slurm]" -c $(PINS)
	# pymodis (the MODIS Data Pool backend) needs the GDAL bindings, built against the system
	# GDAL: installed where gdal-config exists (apt-get install libgdal-dev), else its tests skip.
	if command -v gdal-config >/dev/null; then \
		$(PY) -m pip install --quiet "GDAL==$$(gdal-config --version)" pymodis -c $(PINS); fi
	# The viewer's JavaScript libraries (pinned npm tarballs, integrity-checked) into the user cache.
	$(PY) -m lstfill.viewer.vendor
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/snakemake --cores all
	$(VENV)/bin/snakemake --report results/report.html

test: $(STAMP)
	$(VENV)/bin/pytest tests
	$(VENV)/bin/ruff check lstfill tests workflow_scripts benchmarks
	$(VENV)/bin/snakemake --lint
	$(VENV)/bin/snakemake --dry-run --quiet
	$(VENV)/bin/snakemake --dry-run --quiet --configfile config/test/tiny.yaml
