"""The Israel LST grid: EPSG:4326 cell centres on a regular spacing (about 1/120 degree, see
:mod:`lstfill.sources.israel`), their north-up transform, and a DEM block-averaged onto the cells.
"""

from __future__ import annotations

import numpy as np
import rasterio.warp
from affine import Affine
from pyproj import CRS
from rasterio.enums import Resampling

CRS_LATLON = "EPSG:4326"


def spacing(coord: np.ndarray) -> float:
    """Mean spacing of a regular coordinate (signed), from its end points."""
    c = np.asarray(coord, dtype=np.float64)
    return float((c[-1] - c[0]) / (len(c) - 1))


def grid_transform(lat: np.ndarray, lon: np.ndarray) -> Affine:
    """North-up transform of the cell edges of centres `lat`, `lon` (either order)."""
    dx = abs(spacing(lon))
    dy = abs(spacing(lat))
    west = float(np.min(lon)) - dx / 2
    north = float(np.max(lat)) + dy / 2
    return Affine(dx, 0.0, west, 0.0, -dy, north)


def _near_int(value: float, tol: float) -> int | None:
    """round(value) if `value` is within `tol` of an integer, else None."""
    r = round(value)
    return int(r) if abs(value - r) <= tol else None


def _block_ratio(dem_t: Affine, dst_t: Affine) -> tuple[int, int, int, int] | None:
    """(ry, rx, row0, col0) when DEM pixels subdivide the cells exactly, else None."""
    if dem_t.b != 0 or dem_t.d != 0 or dem_t.a <= 0 or dem_t.e >= 0:
        return None
    rx = _near_int(dst_t.a / dem_t.a, 1e-6 * dst_t.a / dem_t.a)
    ry = _near_int(dst_t.e / dem_t.e, 1e-6 * dst_t.e / dem_t.e)
    col0 = _near_int((dst_t.c - dem_t.c) / dem_t.a, 1e-3)
    row0 = _near_int((dst_t.f - dem_t.f) / dem_t.e, 1e-3)
    if not rx or not ry or col0 is None or row0 is None:
        return None
    return ry, rx, row0, col0


def _block_mean(dem: np.ndarray, shape: tuple[int, int], ratio: tuple[int, int, int, int]):
    """Mean of each ry x rx block of `dem` starting at (row0, col0), NaN ignored; outside = NaN."""
    ry, rx, row0, col0 = ratio
    h, w = shape
    window = np.full((h * ry, w * rx), np.nan, dtype=np.float32)
    r_lo, c_lo = max(row0, 0), max(col0, 0)
    r_hi, c_hi = min(row0 + h * ry, dem.shape[0]), min(col0 + w * rx, dem.shape[1])
    if r_hi > r_lo and c_hi > c_lo:
        window[r_lo - row0 : r_hi - row0, c_lo - col0 : c_hi - col0] = dem[r_lo:r_hi, c_lo:c_hi]
    valid = np.isfinite(window)
    np.copyto(window, np.float32(0), where=~valid)
    total = window.reshape(h, ry, w, rx).sum(axis=(1, 3), dtype=np.float64)
    count = valid.reshape(h, ry, w, rx).sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan).astype(np.float32)


def dem_on_grid(
    dem: np.ndarray,
    dem_transform: Affine,
    lat: np.ndarray,
    lon: np.ndarray,
    *,
    nodata: float | None = None,
    dem_crs: str = CRS_LATLON,
) -> np.ndarray:
    """The DEM block-averaged onto the LST cells with centres `lat` x `lon` (EPSG:4326).

    Each cell gets the mean of the DEM pixels inside it, NaN/`nodata` ignored, NaN where none.
    When the DEM pixels subdivide the cells exactly (e.g. 1 arc second into 30 arc seconds,
    30 x 30 pixels per cell, edges aligned) this is an exact reshape-mean; otherwise GDAL's
    average resampling, which weights pixels by the part of them inside the cell. Rows follow the
    order of `lat`, columns that of `lon`.
    """
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    data = np.asarray(dem, dtype=np.float32)
    if nodata is not None and not np.isnan(nodata):
        data = np.where(data == np.float32(nodata), np.float32(np.nan), data)
    dst_t = grid_transform(lat, lon)
    shape = (len(lat), len(lon))
    same_crs = CRS.from_user_input(dem_crs).equals(CRS.from_user_input(CRS_LATLON))
    ratio = _block_ratio(dem_transform, dst_t) if same_crs else None
    if ratio is not None:
        out = _block_mean(data, shape, ratio)
    else:
        out = np.full(shape, np.nan, dtype=np.float32)
        rasterio.warp.reproject(
            source=data,
            destination=out,
            src_transform=dem_transform,
            src_crs=dem_crs,
            src_nodata=np.nan,
            dst_transform=dst_t,
            dst_crs=CRS_LATLON,
            dst_nodata=np.nan,
            resampling=Resampling.average,
        )
    if lat[-1] > lat[0]:
        out = out[::-1]
    if lon[-1] < lon[0]:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)
