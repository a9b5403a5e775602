"""A georeferenced 2-D array, its resampling onto a region grid, and block means.

Readers of every provider format return `Raster`s in the provider's own CRS and grid; the cube
builder then puts each onto the region grid with the resampling that fits the variable
(average when coarsening reflectance, bilinear for smooth fields, nearest or mode for classes).
`block_mean` / `block_mean_t4` aggregate a fine array onto a grid exactly `factor` times coarser
that it nests in (the super-resolution baselines, PSF checks and energy residuals).
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


def block_view(fine: np.ndarray, factor: int) -> np.ndarray:
    """View (..., H, W) as (..., h, factor, w, factor); ValueError if factor does not divide."""
    factor = check_factor(factor)
    if fine.ndim < 2:
        raise ValueError(f"fine array must have at least 2 dims, got shape {fine.shape}")
    height, width = fine.shape[-2:]
    if height % factor or width % factor:
        raise ValueError(f"factor {factor} does not divide the fine shape {(height, width)}")
    lead = fine.shape[:-2]
    return fine.reshape(*lead, height // factor, factor, width // factor, factor)


def _reduce_blocks(values: np.ndarray, factor: int, min_valid: float | None) -> np.ndarray:
    """Block mean of `values` (float64); NaN-aware only when a `min_valid` share is given."""
    blocks = block_view(values, factor)
    axes = (-3, -1)
    if min_valid is None:
        return blocks.mean(axis=axes, dtype=np.float64)
    if not 0.0 < min_valid <= 1.0:
        raise ValueError(f"min_valid must be a share in (0, 1], got {min_valid}")
    finite = np.isfinite(blocks)
    count = finite.sum(axis=axes)
    total = np.where(finite, blocks, 0.0).sum(axis=axes, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    return np.where(count >= min_valid * factor * factor - 1e-9, mean, np.nan)


def block_mean(fine: np.ndarray, factor: int, min_valid: float | None = None) -> np.ndarray:
    """Mean over factor x factor blocks of a (..., H, W) array, as float32 (..., h, w).

    A block is NaN if any of its pixels is NaN, unless `min_valid` (a share in (0, 1]) is given:
    then the mean of the finite pixels is returned where at least that share is finite.
    """
    return _reduce_blocks(np.asarray(fine), factor, min_valid).astype(np.float32)


def block_mean_t4(fine: np.ndarray, factor: int, min_valid: float | None = None) -> np.ndarray:
    """Radiance-consistent block aggregate of temperature, (mean T^4)^(1/4), as float32.

    Emitted longwave radiance scales with T^4 (Stefan-Boltzmann), so this is the temperature a
    coarse sensor would see over the block. NaN handling as in `block_mean`.
    """
    t4 = np.asarray(fine, dtype=np.float64) ** 4
    return (_reduce_blocks(t4, factor, min_valid) ** 0.25).astype(np.float32)


def check_factor(factor: int) -> int:
    """Return `factor` as an int, or raise ValueError if it is not a positive integer."""
    if isinstance(factor, bool) or int(factor) != factor or factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor!r}")
    return int(factor)
