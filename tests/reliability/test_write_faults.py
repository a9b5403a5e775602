"""A full disk or an unwritable folder ends in one line naming the path, with no partial file."""

import errno
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import xarray as xr
from affine import Affine

from lstfill.errors import OutputError
from lstfill.io import write_cog, write_json, write_netcdf


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_enospc_names_the_path_and_says_disk_full(tmp_path, monkeypatch):
    monkeypatch.setattr("pathlib.Path.write_text", _no_space)
    target = tmp_path / "metrics.json"
    with pytest.raises(OutputError) as err:
        write_json(target, {"rmse": 1.0})
    assert str(err.value).startswith(f"{target}: disk full while writing (")
    assert "MiB free" in str(err.value)
    assert list(tmp_path.iterdir()) == []  # neither the output nor its temporary file


def test_a_library_s_own_words_for_a_full_disk_are_recognised(tmp_path, monkeypatch):
    """HDF5 (through netCDF4) and GDAL report a failed write as text, not as an errno."""

    def hdf_full(self, path, **kwargs):
        raise RuntimeError("NetCDF: HDF error") from OSError("No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", hdf_full)
    target = tmp_path / "cube.nc"
    with pytest.raises(OutputError, match="disk full"):
        write_netcdf(target, xr.Dataset({"lst": (("y", "x"), np.zeros((2, 2)))}))
    assert list(tmp_path.iterdir()) == []


def test_eacces_says_permission_denied(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    target = tmp_path / "filled" / "a.tif"
    with pytest.raises(OutputError) as err:
        write_cog(target, np.zeros((4, 4), np.float32), Affine(70, 0, 0, 0, -70, 0), "EPSG:32632")
    assert str(err.value) == f"{target}: permission denied: cannot write in its folder"


def test_other_errors_pass_through_unchanged(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("a bug")

    monkeypatch.setattr("pathlib.Path.write_text", broken)
    with pytest.raises(ValueError, match="a bug"):
        write_json(tmp_path / "x.json", {})
    assert list(tmp_path.iterdir()) == []


SCRIPT = """
import errno, sys
from lstfill.io import write_json
from lstfill.logs import setup_logging
setup_logging(sys.argv[1])
import pathlib
def full(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")
pathlib.Path.write_text = full
write_json(sys.argv[2], {})
"""


def test_a_workflow_script_ends_a_user_error_in_one_line_with_exit_code_2(tmp_path):
    log, target = tmp_path / "rule.log", tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, log, target], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "Traceback" not in log.read_text()
    errors = [line for line in log.read_text().splitlines() if " ERROR " in line]
    assert len(errors) == 1 and f"error: {target}: disk full while writing (" in errors[0]
