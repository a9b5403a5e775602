#!/usr/bin/env bash
# Snakemake runs this inside each freshly created env, from its own copy at
# .snakemake/conda/<hash>.post-deploy.sh (so "$0" says nothing about where lstfill is). It
# installs lstfill editable (code changes need no env rebuild; dependencies come from the yaml)
# from the workflow directory, which the Snakefile exports as LSTFILL_WORKFLOW_DIR and Snakemake's
# subprocess inherits. Every envs/<env>.post-deploy.sh is a link to this one file.
set -euo pipefail
repo="${LSTFILL_WORKFLOW_DIR:-}"
if [[ -z "$repo" ]]; then
    echo "lstfill post-deploy: LSTFILL_WORKFLOW_DIR is not set (the Snakefile sets it to" \
        "workflow.basedir; create the env through snakemake)" >&2
    exit 1
fi
if ! grep -Eqs '^name[[:space:]]*=[[:space:]]*"lstfill"' "$repo/pyproject.toml"; then
    echo "lstfill post-deploy: LSTFILL_WORKFLOW_DIR=$repo holds no lstfill pyproject.toml" \
        "(it must be the lstfill repository root)" >&2
    exit 1
fi
python -m pip install --no-deps --no-build-isolation -e "$repo"
