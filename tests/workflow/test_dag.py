"""Building the DAG is light: parsing the workflow, validating the config and evaluating every
input function import no PyTorch, matplotlib, SciPy, xarray, rasterio, netCDF4 or pyhdf, so a
dry run or --lint on a login node needs only Snakemake and the standard library."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, copy_run, tiny_workdir

LIGHT = ROOT / "tests/fixtures/light_dag.py"


def light_snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(LIGHT), "-s", str(ROOT / "Snakefile"), "-d", str(workdir)]
    cmd += ["--workflow-profile", "none", "--cores", "1", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def assert_light(proc: subprocess.CompletedProcess) -> None:
    text = proc.stdout + proc.stderr
    assert "DAG-time import" not in text, text[-4000:]
    assert proc.returncode == 0, text[-4000:]


def test_the_blocker_blocks():
    code = f"import sys; sys.path.insert(0, {str(LIGHT.parent)!r}); import light_dag; "
    code += "light_dag.install(); import scipy.ndimage"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "DAG-time import of 'scipy'" in proc.stderr


def test_dry_run_of_a_fresh_demo_is_light(tmp_path):
    assert_light(light_snakemake(tiny_workdir(tmp_path), "--dry-run"))


def test_dry_run_and_lint_of_a_finished_run_are_light(tiny_run, tmp_path):
    """After a run every checkpoint is resolved, so every input function is evaluated."""
    workdir = copy_run(tiny_run, tmp_path / "run")
    (workdir / "results/tiny/cubes").joinpath(
        next(p.name for p in (workdir / "results/tiny/cubes").glob("2*.nc"))
    ).unlink()
    assert_light(light_snakemake(workdir, "--dry-run"))
    assert_light(light_snakemake(workdir, "--lint"))


@pytest.mark.parametrize("example", ["vienna.yaml", "innsbruck_bbox.yaml", "israel.yaml"])
def test_dry_run_of_the_real_region_examples_is_light(tmp_path, example):
    config = ROOT / "config/examples" / example
    proc = light_snakemake(tmp_path, "--dry-run", "--configfile", str(config))
    text = proc.stdout + proc.stderr
    assert "DAG-time import" not in text, text[-4000:]
    if example != "israel.yaml":  # its LST and DEM files are not here: a named config error
        assert proc.returncode == 0, text[-4000:]
