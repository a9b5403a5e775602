"""The Israel LST grid: a DEM averaged onto its cells, by exact blocks or by GDAL resampling."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio.warp
from affine import Affine

from lstfill.sources.israel_grid import dem_on_grid

STEP = 1.0 / 120
H, W = 12, 10
LAT = 31.5 - STEP / 2 - STEP * np.arange(H)  # north to south
LON = 34.0 + STEP / 2 + STEP * np.arange(W)


def _no_reproject(*args, **kwargs):
    raise AssertionError("the integer-ratio path must not resample with GDAL")


def test_dem_on_grid_integer_ratio(monkeypatch) -> None:
    monkeypatch.setattr(rasterio.warp, "reproject", _no_reproject)
    lat = LAT[:4]
    lon = LON[:5]
    sub = STEP / 3
    # the DEM starts one cell row north and 2 pixels west of the grid and ends before its east edge
    dem_t = Affine(sub, 0, 34.0 - 2 * sub, 0, -sub, 31.5 + STEP)
    rng = np.random.default_rng(1)
    dem = rng.uniform(0, 900, (3 + 12, 2 + 12)).astype(np.float32)
    dem[3, 2] = np.nan  # first pixel of cell (0, 0)
    dem[3 + 3 : 3 + 6, 2 + 3 : 2 + 6] = np.nan  # all of cell (1, 1)
    out = dem_on_grid(dem, dem_t, lat, lon)
    assert out.shape == (4, 5) and out.dtype == np.float32
    inner = dem[3:, 2:]
    for i in range(4):
        for j in range(4):
            block = inner[3 * i : 3 * i + 3, 3 * j : 3 * j + 3]
            if np.isnan(block).all():
                assert np.isnan(out[i, j])
            else:
                assert out[i, j] == pytest.approx(np.nanmean(block), rel=1e-6)
    assert np.isnan(out[1, 1])
    assert out[0, 0] == pytest.approx(np.mean(inner[:3, :3].ravel()[1:]), rel=1e-6)
    assert np.isnan(out[:, 4]).all()  # beyond the DEM's east edge
    flipped = dem_on_grid(dem, dem_t, lat[::-1], lon)
    np.testing.assert_array_equal(flipped, out[::-1])
    nodata = np.where(np.isnan(dem), -32768, dem)
    np.testing.assert_array_equal(dem_on_grid(nodata, dem_t, lat, lon, nodata=-32768), out)


def test_dem_on_grid_resampled_matches_brute_force(monkeypatch) -> None:
    calls = []
    reproject = rasterio.warp.reproject
    monkeypatch.setattr(
        rasterio.warp, "reproject", lambda *a, **k: calls.append(1) or reproject(*a, **k)
    )
    sub = 1.0 / 1000  # 8.33 pixels per cell: not an integer ratio
    west, north = 33.99, 31.51
    rows, cols = int((north - 31.4) / sub) + 3, int((34.1 - west) / sub) + 3
    yc = north - sub * (np.arange(rows) + 0.5)
    xc = west + sub * (np.arange(cols) + 0.5)
    dem = (300 + 2000 * (xc[None, :] - 34) + 50 * np.sin(200 * yc[:, None])).astype(np.float32)
    dem_t = Affine(sub, 0, west, 0, -sub, north)
    out = dem_on_grid(dem, dem_t, LAT, LON)
    assert calls
    brute = np.empty((H, W))
    for i, la in enumerate(LAT):
        in_y = np.abs(yc - la) < STEP / 2
        for j, lo in enumerate(LON):
            in_x = np.abs(xc - lo) < STEP / 2
            brute[i, j] = dem[np.ix_(in_y, in_x)].mean()
    # up to ~10 m between neighbouring pixels: the area-weighted mean and the mean of the pixels
    # whose centres lie in the cell differ by a fraction of that
    np.testing.assert_allclose(out, brute, atol=3.0)
    assert np.abs(out - brute).mean() < 1.5  # a one-cell shift gives ~40
