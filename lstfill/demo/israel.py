"""A synthetic region in the Israel LST format, for the downscaling job's demo and tests.

The real data (gap-filled MYD11A1 1 km LST over Israel, one NetCDF per year, 0.02 K units, QA
band) cannot be downloaded offline, so this writes a small region in exactly that format, with
an SRTM-like DEM at three times the LST resolution beside it. Its LST has the structure the
downscaling model is meant to learn, driven by terrain at the scale of a 9x9 km window:

- day: a lapse rate (-6.5 K/km), warmer sun-facing (south) slopes and cooler north slopes;
- night: a weaker lapse rate and cold-air pooling in hollows (colder than their surroundings);
- both: a seasonal cycle, a per-day regional offset, and spatially correlated noise that no
  terrain feature explains (soil moisture, vegetation), so the gain has a ceiling;
- the sea (a strip along the west edge) is masked, as over the Mediterranean in the real files.

QA codes mark cloudy days as in the real product (3 both valid, 1 no day, 2 no night, 0 neither);
the LST itself is gap-filled everywhere on land, as the real data set is.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from scipy import ndimage

from lstfill.demo.physics import correlated_field
from lstfill.demo.world import rng_for
from lstfill.downscale.targets import DEMO_LST_NAME, DEMO_YEAR
from lstfill.io import write_cog
from lstfill.terrain import slope_aspect

CELL_DEG = 1.0 / 120.0
DEM_SUBDIV = 3


def synthetic_terrain(seed: int, shape: tuple[int, int]) -> np.ndarray:
    """DEM (m) at DEM_SUBDIV x the LST resolution: ridges and valleys at several scales."""
    rng = rng_for(seed, "israel-terrain")
    h, w = shape[0] * DEM_SUBDIV, shape[1] * DEM_SUBDIV
    z = (
        450
        + 380 * correlated_field(rng, (h, w), 14 * DEM_SUBDIV)
        + 140 * correlated_field(rng, (h, w), 4 * DEM_SUBDIV)
        + 25 * correlated_field(rng, (h, w), DEM_SUBDIV)
    )
    return np.maximum(z, -400.0).astype(np.float32)


def synthetic_lst(
    seed: int, dem_1km: np.ndarray, n_days: int, year: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(days, night_k, day_k, qa) for `n_days` days spread over `year` (a few days missing)."""
    rng = rng_for(seed, "israel-lst")
    h, w = dem_1km.shape
    slope, aspect = slope_aspect(dem_1km, 1000.0, 1000.0)
    south = np.sin(np.radians(slope)) * np.cos(np.radians(np.nan_to_num(aspect) - 180.0))
    hollow = np.minimum(dem_1km - ndimage.uniform_filter(dem_1km, 9, mode="nearest"), 0.0)
    n_year = 366 if year % 4 == 0 else 365
    days = np.sort(rng.choice(n_year, size=n_days, replace=False)).astype(np.int32)
    night = np.empty((n_days, h, w), np.float32)
    day = np.empty((n_days, h, w), np.float32)
    qa = np.full((n_days, h, w), 3, np.uint8)
    for k, doy in enumerate(days):
        season = np.sin(2 * np.pi * (doy - 110) / 365.25)
        offset = rng.normal(0, 1.5)
        day[k] = (
            306
            + 9 * season
            + offset
            - 6.5e-3 * dem_1km
            + 14 * south
            + 1.2 * correlated_field(rng, (h, w), 2.0)
        )
        night[k] = (
            286
            + 6 * season
            + 0.6 * offset
            - 4.0e-3 * dem_1km
            + 0.02 * hollow
            + 0.7 * correlated_field(rng, (h, w), 2.0)
        )
        cloud = correlated_field(rng, (h, w), 8.0) > rng.uniform(0.8, 2.5)
        qa[k][cloud] = rng.choice(np.array([0, 1, 2], np.uint8), size=int(cloud.sum()))
    return days, night, day, qa


def write_demo_israel(
    folder: str | Path,
    seed: int,
    shape: tuple[int, int] = (90, 70),
    n_days: int = 40,
    year: int = 2020,
    origin: tuple[float, float] = (34.2, 31.9),
) -> dict[str, Path]:
    """Write `LST_{year}_NetCDF.nc` and `dem.tif` under `folder`; returns their paths.

    `origin` is the (lon, lat) of the grid's north-west corner; rows run north to south.
    """
    from lstfill.sources import israel

    folder = Path(folder)
    dem = synthetic_terrain(seed, shape)
    dem_1km = dem.reshape(shape[0], DEM_SUBDIV, shape[1], DEM_SUBDIV).mean(axis=(1, 3))
    days, night, day, qa = synthetic_lst(seed, dem_1km, n_days, year)
    sea = np.zeros(shape, bool)
    sea[:, : max(2, shape[1] // 12)] = True
    night[:, sea] = np.nan
    day[:, sea] = np.nan
    qa[:, sea] = 0
    lon0, lat0 = origin
    lat = lat0 - CELL_DEG * (np.arange(shape[0]) + 0.5)
    lon = lon0 + CELL_DEG * (np.arange(shape[1]) + 0.5)
    lst_path = israel.write_israel_lst(
        folder / f"LST_{year}_NetCDF.nc", year, days, night, day, qa, lat, lon
    )
    fine = CELL_DEG / DEM_SUBDIV
    dem_path = write_cog(
        folder / "dem.tif",
        np.where(np.kron(sea, np.ones((DEM_SUBDIV, DEM_SUBDIV), bool)), 0.0, dem).astype(
            np.float32
        ),
        Affine(fine, 0, lon0, 0, -fine, lat0),
        "EPSG:4326",
        nodata=None,
        tags={"units": "m", "source": "lstfill demo (synthetic SRTM-like DEM)"},
    )
    return {"lst": lst_path, "dem": dem_path}


def write_israel_region(
    settings: Mapping[str, Any], lst_out: str | Path, dem_out: str | Path
) -> None:
    """The synthetic Israel-format region at the two paths (rule demo_israel)."""
    lst_out, dem_out = Path(lst_out), Path(dem_out)
    if lst_out.name != DEMO_LST_NAME or lst_out.parent != dem_out.parent:
        raise ValueError(f"demo files go to one folder as {DEMO_LST_NAME} and a DEM")
    paths = write_demo_israel(
        lst_out.parent,
        settings["seed"],
        shape=(settings["rows"], settings["cols"]),
        n_days=settings["n_days"],
        year=DEMO_YEAR,
    )
    if paths["dem"] != dem_out:
        paths["dem"].replace(dem_out)
