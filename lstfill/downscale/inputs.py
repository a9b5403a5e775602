"""Reading the downscaling inputs: yearly Israel-format LST files (one grid for all) and the DEM
aligned onto their cells, and the days to sample."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lstfill.errors import InputError
from lstfill.io import read_raster
from lstfill.ranges import check_range
from lstfill.sources import israel, israel_grid


def grid_of(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(lat, lon) cell centres of a yearly file, north-up (reads one day only)."""
    year, days = israel.file_days(path)
    if len(days) == 0:
        raise InputError(path, "holds no day")
    one = israel.read_israel_lst(path, days=days[:1])
    return one.lat, one.lon


def check_same_grid(lst_files: Sequence[str | Path]) -> tuple[np.ndarray, np.ndarray]:
    """The common grid of all yearly files; InputError naming a file on another grid."""
    lat, lon = grid_of(lst_files[0])
    for path in lst_files[1:]:
        la, lo = grid_of(path)
        if (
            la.shape != lat.shape
            or lo.shape != lon.shape
            or not (np.allclose(la, lat, atol=1e-6) and np.allclose(lo, lon, atol=1e-6))
        ):
            raise InputError(path, f"is on another grid than {lst_files[0]}")
    return lat, lon


def read_dem(
    path: str | Path, lat: np.ndarray, lon: np.ndarray, tolerance: float | None = None
) -> np.ndarray:
    """The aligned DEM, checked to lie on the LST grid (shape and position) and in the physical
    range of elevation (lstfill.ranges, `tolerance`)."""
    data, transform, _, nodata, tags = read_raster(path, expected_crs=israel_grid.CRS_LATLON)
    shape = (len(lat), len(lon))
    if data.shape != shape or not transform.almost_equals(
        israel_grid.grid_transform(lat, lon), precision=1e-6
    ):
        raise InputError(path, f"DEM grid {data.shape} is not the LST grid {shape} of the files")
    out = data.astype(np.float32)
    if nodata is not None and not np.isnan(nodata):
        out[data == nodata] = np.nan
    return check_range(out, "elevation", path, tags.get("units"), tolerance)


def select_days(
    files: Sequence[str | Path], max_days: int | None
) -> list[tuple[Path, int, list[int]]]:
    """(file, year, days) to sample: all days of all files, or `max_days` spread evenly."""
    pairs = []
    for path in files:
        year, days = israel.file_days(path)
        pairs += [(Path(path), year, int(d)) for d in days]
    pairs.sort(key=lambda p: (p[1], p[2]))
    if not pairs:
        raise InputError(files[0], "the LST files hold no day")
    pairs = [pairs[i] for i in spread_indices(len(pairs), max_days)]
    out: dict[Path, tuple[int, list[int]]] = {}
    for path, year, day in pairs:
        out.setdefault(path, (year, []))[1].append(day)
    return [(path, year, days) for path, (year, days) in out.items()]


def spread_indices(n: int, max_days: int | None) -> np.ndarray:
    """Indices of the days kept among `n` sorted days: all, or `max_days` spread evenly."""
    if max_days is None or n <= max_days:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_days)).astype(int))


def yyyymmdd(year: int, doy: int) -> int:
    d = dt.date(year, 1, 1) + dt.timedelta(days=doy)
    return d.year * 10000 + d.month * 100 + d.day


def file_for_year(lst_files: Sequence[str | Path], year: int) -> Path:
    for path in lst_files:
        if israel.file_days(path)[0] == year:
            return Path(path)
    raise InputError(lst_files[0], f"no LST file of {year} among {[str(p) for p in lst_files]}")
