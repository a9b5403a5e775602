"""File verification: a fetched file opens as its kind, and a file already in place is complete
only when its size, checksum or contents say so."""

from __future__ import annotations

import hashlib
import io
import zipfile

import numpy as np
import pytest
from affine import Affine

from lstfill.download.base import DownloadError, FileRef
from lstfill.download.verify import is_complete, verify_file
from lstfill.io import write_cog


@pytest.fixture(scope="module")
def tif(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real 16x16 float32 GeoTIFF in EPSG:32633, as lstfill writes them (a COG)."""
    data = np.arange(256, dtype="float32").reshape(16, 16)
    transform = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 5300000.0)
    path = write_cog(tmp_path_factory.mktemp("cog") / "x.tif", data, transform, "EPSG:32633")
    return path.read_bytes()


def test_verify_file_on_part_names(tmp_path, tif):
    import netCDF4
    from pyhdf.SD import SD, SDC

    geotiff = tmp_path / ".x.tif.part"
    geotiff.write_bytes(tif)
    verify_file(geotiff, "geotiff")

    nc = tmp_path / ".x.nc.part"
    with netCDF4.Dataset(str(nc), "w") as ds:
        ds.createDimension("x", 3)
        ds.createVariable("v", "f4", ("x",))[:] = [1, 2, 3]
    verify_file(nc, "netcdf")

    hdf = tmp_path / "x.hdf"
    sd = SD(str(hdf), SDC.WRITE | SDC.CREATE)
    sds = sd.create("v", SDC.FLOAT32, (2, 2))
    sds[:] = np.ones((2, 2), dtype="float32")
    sds.endaccess()
    sd.end()
    verify_file(hdf, "auto")
    (tmp_path / ".x.hdf.part").write_bytes(hdf.read_bytes())
    verify_file(tmp_path / ".x.hdf.part", "hdf4")

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("a.txt", "hello" * 100)
    (tmp_path / "ok.zip").write_bytes(buffer.getvalue())
    verify_file(tmp_path / "ok.zip", "auto")
    verify_file(tmp_path / ".x.tif.part", "none")  # does not exist: nothing is checked


@pytest.mark.parametrize(
    ("name", "kind", "reason"),
    [
        ("bad.tif", "auto", "does not open as GeoTIFF"),
        ("bad.nc", "auto", "does not open as netCDF"),
        ("bad.hdf", "auto", "does not open as HDF4"),
        ("bad.zip", "auto", "is not a valid zip"),
        (".bad.tif.part", "geotiff", "does not open as GeoTIFF"),
    ],
)
def test_verify_file_rejects_garbage(tmp_path, name, kind, reason):
    path = tmp_path / name
    path.write_bytes(b"<html>not data</html>" * 20)
    with pytest.raises(DownloadError, match=reason) as info:
        verify_file(path, kind)
    assert name in str(info.value)


def test_verify_file_rejects_truncated_zip(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("a.bin", np.random.default_rng(1).bytes(5000))
    path = tmp_path / "cut.zip"
    path.write_bytes(buffer.getvalue()[:3000])
    with pytest.raises(DownloadError, match="is not a valid zip"):
        verify_file(path, "zip")


def test_is_complete(tmp_path, tif):
    path = tmp_path / "x.tif"
    ref = FileRef(url="https://example.org/x.tif", name="x.tif")
    assert not is_complete(path, ref)
    path.write_bytes(tif)
    assert is_complete(path, ref)
    assert is_complete(path, FileRef(url=ref.url, name="x.tif", size=len(tif)))
    assert not is_complete(path, FileRef(url=ref.url, name="x.tif", size=len(tif) - 1))
    md5 = hashlib.md5(tif).hexdigest()
    assert is_complete(path, FileRef(ref.url, "x.tif", checksum=md5, checksum_algorithm="md5"))
    assert not is_complete(path, FileRef(ref.url, "x.tif", checksum="f" * 32))
    path.write_bytes(b"<html>login</html>")
    assert not is_complete(path, ref)
    assert is_complete(path, FileRef(url=ref.url, name="x.tif", kind="none"))
    path.write_bytes(b"")
    assert not is_complete(path, FileRef(url=ref.url, name="x.tif", kind="none"))
