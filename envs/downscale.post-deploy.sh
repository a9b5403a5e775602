#!/usr/bin/env bash
# Snakemake runs this inside the freshly created env: install the lstfill package from this
# repository (editable, so code changes need no env rebuild; dependencies come from the yaml).
set -euo pipefail
python -m pip install --no-deps --no-build-isolation -e "$(dirname "$0")/.."
