"""SRTMGL1 .hgt.zip tiles: names, pixel-is-point geometry, voids, mosaics, corrupt files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from fakes.damaged import truncated

from lstfill.errors import InputError
from lstfill.grid import Grid
from lstfill.io import write_cog
from lstfill.raster import Raster, to_grid
from lstfill.sources import srtm

N = 3601
STEP = 1.0 / 3600


def _heights() -> np.ndarray:
    idx = np.arange(N)
    h = (500 + idx[:, None] // 4 + idx[None, :] // 8).astype(np.int16)  # rises to south and east
    h[100, 200] = srtm.VOID
    h[3600, 3600] = srtm.VOID
    return h


@pytest.fixture(scope="module")
def tile(tmp_path_factory) -> tuple[Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("srtm")
    heights = _heights()
    path = srtm.write_hgt_zip(folder / srtm.zip_name(47, 11), heights, 47, 11)
    return path, heights


@pytest.fixture(scope="module")
def dem(tile) -> Raster:
    return srtm.read_srtm(tile[0])


def test_names() -> None:
    assert srtm.tile_name(47, 11) == "N47E011"
    assert srtm.tile_name(-1, -60) == "S01W060"
    assert srtm.zip_name(47, 11) == "N47E011.SRTMGL1.hgt.zip"
    assert srtm.parse_tile_name("N47E011.SRTMGL1.hgt.zip") == (47, 11)
    assert srtm.parse_tile_name("s01w060.hgt") == (-1, -60)
    with pytest.raises(ValueError):
        srtm.parse_tile_name("dem.tif")


def test_zip_layout(tile) -> None:
    path, heights = tile
    assert path.name == "N47E011.SRTMGL1.hgt.zip"
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["N47E011.hgt"]
        raw = zf.read("N47E011.hgt")
    assert len(raw) == N * N * 2
    assert raw[:2] == int(heights[0, 0]).to_bytes(2, "big", signed=True)
    assert raw[-2:] == (-32768).to_bytes(2, "big", signed=True)


def test_read_values_and_voids(tile, dem: Raster) -> None:
    _, heights = tile
    r = dem
    assert r.crs == "EPSG:4326" and r.data.dtype == np.float32 and r.data.shape == (N, N)
    assert np.isnan(r.data[100, 200]) and np.isnan(r.data[3600, 3600])
    assert np.isnan(r.data).sum() == 2
    ok = heights != srtm.VOID
    assert np.array_equal(r.data[ok], heights[ok].astype(np.float32))
    assert r.data[0, 0] == 500.0 and r.data[4, 8] == 502.0


def test_pixel_is_point_geometry(dem: Raster) -> None:
    t = dem.transform
    assert t.a == STEP and t.e == -STEP
    # the first sample sits exactly on the tile's north-west corner, the last on its south-east
    assert t @ (0.5, 0.5) == pytest.approx((11.0, 48.0), abs=1e-12)
    assert t @ (N - 0.5, N - 0.5) == pytest.approx((12.0, 47.0), abs=1e-12)
    assert t.c == pytest.approx(11.0 - STEP / 2, abs=1e-12)
    assert t.f == pytest.approx(48.0 + STEP / 2, abs=1e-12)


def test_read_dem_dispatch_and_geotiff(tile, tmp_path: Path) -> None:
    path, _ = tile
    assert srtm.read_dem(path).data.shape == (N, N)
    data = np.array([[1.0, -9999.0], [3.0, 4.0]], np.float32)
    tif = write_cog(
        tmp_path / "dem.tif", data, Affine(30, 0, 600000, 0, -30, 5200000), "EPSG:32632", -9999.0
    )
    r = srtm.read_dem(tif)
    assert r.crs == "EPSG:32632"
    assert np.isnan(r.data[0, 1]) and r.data[1, 0] == 3.0
    assert srtm.find_dem(tmp_path) == [tif]
    assert srtm.find_dem(path.parent) == [path]


def test_mosaic_of_two_small_tiles() -> None:
    # two 1201-sample tiles side by side share their edge column
    step = 1 / 1200
    a = Raster(
        np.full((3, 3), 1.0, np.float32),
        Affine(step, 0, 11 - step / 2, 0, -step, 48 + step / 2),
        "EPSG:4326",
    )
    b_data = np.full((3, 3), 2.0, np.float32)
    b_data[1, 0] = np.nan
    b = Raster(
        b_data, Affine(step, 0, 11 + 2 * step - step / 2, 0, -step, 48 + step / 2), "EPSG:4326"
    )
    a.data[1, 2] = np.nan
    m = srtm.mosaic([a, b])
    assert m.data.shape == (3, 5)
    assert m.transform.c == pytest.approx(a.transform.c)
    assert m.data[0].tolist() == [1, 1, 1, 2, 2]
    assert np.isnan(m.data[1, 2])  # void in both tiles
    assert m.data[1].tolist()[:2] == [1, 1] and m.data[1].tolist()[3:] == [2, 2]
    with pytest.raises(ValueError, match="aligned"):
        srtm.mosaic([a, Raster(b.data, b.transform @ Affine.translation(0.3, 0), "EPSG:4326")])


def test_resample_to_utm_grid(tile, dem: Raster) -> None:
    _, heights = tile
    grid = Grid.from_bbox("EPSG:32632", (687000, 5262000, 688000, 5263000), 100.0)
    out = to_grid(dem, grid, "bilinear")
    lon, lat = grid.lonlat()
    rows = np.round((48 - lat) * 3600).astype(int)
    cols = np.round((lon - 11) * 3600).astype(int)
    assert rows.min() > 0 and cols.min() > 0 and rows.max() < N - 1 and cols.max() < N - 1
    expected = heights[rows, cols].astype(float)
    assert np.abs(out - expected).max() <= 1.0


def test_corrupt_and_wrong_files(tile, tmp_path: Path) -> None:
    path, _ = tile
    with pytest.raises(InputError, match="N47E011.SRTMGL1.hgt.zip"):
        srtm.read_srtm(truncated(path, tmp_path / "N47E011.SRTMGL1.hgt.zip"))
    raw = path.read_bytes()
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0xFF  # corrupt the compressed stream: CRC/inflate error
    bad = tmp_path / "N46E011.SRTMGL1.hgt.zip"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(InputError, match="N46E011"):
        srtm.read_srtm(bad)
    short = tmp_path / "N45E011.hgt"
    short.write_bytes(b"\x00\x01" * 1000)
    with pytest.raises(InputError, match="N45E011.hgt.*2000 bytes"):
        srtm.read_srtm(short)
    with pytest.raises(InputError, match="missing"):
        srtm.read_dem(tmp_path / "missing.hgt.zip")
    with pytest.raises(ValueError):
        srtm.write_hgt_zip(tmp_path / "x.zip", np.zeros((10, 10), np.int16), 47, 11)
    assert not (tmp_path / "x.zip").exists()
