"""`--sdm conda` without conda stops at parse time with a message saying what to do instead."""

import os
import subprocess
from enum import Enum
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import SNAKEMAKE, tiny_workdir

from lstfill.deploy import DeploymentError, check_conda


class Method(Enum):
    CONDA = "conda"
    APPTAINER = "apptainer"


def settings(*methods: Method, base: Path | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        deployment_method=frozenset(methods), conda_frontend="conda", conda_base_path=base
    )


def fake_conda(folder: Path) -> Path:
    (folder / "bin").mkdir(parents=True)
    exe = folder / "bin" / "conda"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    return folder


def test_no_conda_asked_no_check(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    check_conda(settings())
    check_conda(settings(Method.APPTAINER))


def test_conda_asked_but_absent_names_both_ways(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(DeploymentError, match="'conda' is not on PATH") as err:
        check_conda(settings(Method.CONDA))
    assert "leave out --sdm conda" in str(err.value)


def test_conda_found_on_path_or_base(monkeypatch, tmp_path):
    base = fake_conda(tmp_path / "miniforge")
    monkeypatch.setenv("PATH", "/nonexistent")
    check_conda(settings(Method.CONDA, base=base))
    with pytest.raises(DeploymentError, match="nor under"):
        check_conda(settings(Method.CONDA, base=tmp_path / "elsewhere"))
    monkeypatch.setenv("PATH", str(base / "bin"))
    check_conda(settings(Method.CONDA))


def test_dry_run_with_sdm_conda_and_no_conda_says_what_to_do(tmp_path):
    env = {**os.environ, "PATH": str(Path(SNAKEMAKE[0]).parent) + ":/usr/bin:/bin"}
    cmd = [*SNAKEMAKE, "-d", str(tiny_workdir(tmp_path)), "-n", "--sdm", "conda"]
    proc = subprocess.run(
        [*cmd, "--workflow-profile", "none"], capture_output=True, text=True, env=env
    )
    assert proc.returncode != 0
    assert "'conda' is not on PATH" in proc.stderr + proc.stdout
