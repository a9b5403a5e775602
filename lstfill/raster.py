"""A georeferenced 2-D array and its resampling onto a region grid.

Readers of every provider format return `Raster`s in the provider's own CRS and grid; the cube
builder then puts each onto the region grid with the resampling that fits the variable
(average when coarsening reflectance, bilinear for smooth fields, nearest or mode for classes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine
from pyproj import CRS
from rasterio.warp import Resampling, reproject
from scipy import ndimage

from lstfill.grid import Grid

RESAMPLING = {
    "nearest": Resampling.nearest,
    "bilinear": Resampling.bilinear,
    "cubic": Resampling.cubic,
    "average": Resampling.average,
    "mode": Resampling.mode,
}


@dataclass
class Raster:
    """`data` (rows, cols) on a north-up `transform` in `crs`; float data marks nodata with NaN."""

    data: np.ndarray
    transform: Affine
    crs: str
    nodata: float | int | None = None

    @property
    def grid(self) -> Grid:
        return Grid(self.crs, self.transform, self.data.shape[1], self.data.shape[0])


def to_grid(
    raster: Raster,
    grid: Grid,
    method: str = "bilinear",
    dtype: np.dtype | type = np.float32,
    fill: float = np.nan,
) -> np.ndarray:
    """Resample `raster` onto `grid` with `method`; cells with no source data get `fill`.

    Float sources use NaN as nodata (so averages and bilinear weights skip it); integer sources
    use their `nodata` value. Identical grids are copied without resampling.
    """
    src = np.asarray(raster.data)
    src_crs = CRS.from_user_input(raster.crs)
    if (
        src.shape == grid.shape
        and raster.transform.almost_equals(grid.transform)
        and src_crs.equals(grid.pyproj_crs)
    ):
        out = src.astype(dtype, copy=True)
        if raster.nodata is not None and not np.isnan(raster.nodata):
            out = np.where(src == raster.nodata, fill, out).astype(dtype)
        return out
    if method not in RESAMPLING:
        raise ValueError(f"unknown resampling {method!r}; choose one of {sorted(RESAMPLING)}")
    if np.issubdtype(src.dtype, np.floating):
        src_nodata = np.nan
        src = src.astype(np.float32, copy=False)
        work_dtype = np.float32
        dst_nodata = np.nan
    else:
        src_nodata = raster.nodata
        work_dtype = src.dtype
        dst_nodata = raster.nodata if raster.nodata is not None else 0
    dst = np.full(grid.shape, dst_nodata, dtype=work_dtype)
    reproject(
        source=src,
        destination=dst,
        src_transform=raster.transform,
        src_crs=src_crs.to_wkt(),
        src_nodata=src_nodata,
        dst_transform=grid.transform,
        dst_crs=grid.pyproj_crs.to_wkt(),
        dst_nodata=dst_nodata,
        resampling=RESAMPLING[method],
    )
    if np.issubdtype(work_dtype, np.floating):
        return np.where(np.isnan(dst), fill, dst).astype(dtype)
    out = dst.astype(dtype)
    if raster.nodata is not None:
        out = np.where(dst == dst_nodata, fill, out).astype(dtype)
    return out


def fill_nearest(arr: np.ndarray) -> np.ndarray:
    """A copy of `arr` with every NaN replaced by the nearest finite value, so that a spline or
    a network can run over small holes (an all-NaN array is returned unchanged)."""
    invalid = ~np.isfinite(arr)
    if not invalid.any() or invalid.all():
        return np.array(arr, copy=True)
    idx = ndimage.distance_transform_edt(invalid, return_distances=False, return_indices=True)
    return arr[tuple(idx)]
