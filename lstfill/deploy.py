"""Checks of how the workflow's software is deployed, run when the Snakefile is parsed, so that a
user learns what to do before any job is planned. Standard library only."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from lstfill.errors import LstfillError


class DeploymentError(LstfillError):
    """The requested software deployment cannot work on this machine."""


WORKFLOW_DIR_VAR = "LSTFILL_WORKFLOW_DIR"


def prepare_deployment(workflow_dir: str, settings: Any) -> None:
    """Check the deployment method, and export the workflow folder as LSTFILL_WORKFLOW_DIR:
    Snakemake runs each env's post-deploy script from a copy under .snakemake/conda/, in a
    subprocess that inherits this environment, so the script installs lstfill from there."""
    check_conda(settings)
    os.environ[WORKFLOW_DIR_VAR] = str(workflow_dir)


def check_conda(settings: Any) -> None:
    """With `--sdm conda`, the conda frontend must be on PATH (or under --conda-base-path);
    otherwise a DeploymentError says how to run in the current environment instead.

    `settings` is Snakemake's DeploymentSettings (`workflow.deployment_settings`)."""
    if "CONDA" not in {m.name for m in settings.deployment_method}:
        return
    frontend = settings.conda_frontend or "conda"
    base = settings.conda_base_path
    if base is not None and (Path(base) / "bin" / frontend).exists():
        return
    if shutil.which(frontend):
        return
    raise DeploymentError(
        f"--software-deployment-method conda was asked for, but '{frontend}' is not on PATH"
        + (f" nor under {base}/bin" if base else "")
        + ". Either load conda (e.g. `module load miniforge`, or install Miniforge) and rerun, "
        "or leave out --sdm conda and run in an environment that has lstfill installed "
        "(`pip install -e '.[slurm]'` in a venv, see README 'Running on a SLURM cluster')."
    )
