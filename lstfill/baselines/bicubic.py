"""Bicubic upsampling and block aggregation between a coarse grid and an aligned fine grid.

The fine grid is exactly nested in the coarse one: fine pixel (i, j) lies in coarse pixel
(i // factor, j // factor), so the centre of coarse pixel k sits at fine coordinate
(k + 0.5) * factor - 0.5. These helpers are shared by the thermal-sharpening baselines.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from lstfill.raster import fill_nearest

# Coarse pixels of linear (odd-reflection) padding before the spline: the B-spline prefilter's
# boundary error decays by ~0.27 per coarse pixel, so 10 pixels leave < 1e-6 of a ramp's step.
_SPLINE_PAD = 10


def check_factor(factor: int) -> int:
    """Return `factor` as an int, or raise ValueError if it is not a positive integer."""
    if isinstance(factor, bool) or int(factor) != factor or factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor!r}")
    return int(factor)


def check_coarse(lst_coarse: np.ndarray) -> np.ndarray:
    """Return the coarse LST as a float64 2-D array, or raise ValueError for the wrong dims."""
    arr = np.asarray(lst_coarse, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"coarse LST must be 2-D (h, w), got shape {arr.shape}")
    return arr


def check_fine_shape(
    fine_shape: tuple[int, ...],
    coarse_shape: tuple[int, int],
    factor: int,
    name: str = "fine array",
) -> None:
    """Raise ValueError unless the last two dims of `fine_shape` are coarse_shape * factor."""
    expected = (coarse_shape[0] * factor, coarse_shape[1] * factor)
    if tuple(fine_shape[-2:]) != expected:
        raise ValueError(
            f"{name} has spatial shape {tuple(fine_shape[-2:])}, expected {expected} "
            f"(coarse {tuple(coarse_shape)} x factor {factor})"
        )


def _blocks(fine: np.ndarray, factor: int) -> np.ndarray:
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
    blocks = _blocks(values, factor)
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


def bicubic(lst_coarse: np.ndarray, factor: int) -> np.ndarray:
    """Cubic-spline upsampling of a coarse (h, w) field to the aligned (h*factor, w*factor) grid.

    Samples the spline through the coarse pixel centres at the fine pixel centres
    (`scipy.ndimage.zoom(grid_mode=True)`). The field is first padded by odd reflection so a
    linear ramp is reproduced up to the border, and NaN pixels are filled by their nearest valid
    neighbour so the spline does not spread them; fine pixels under a NaN coarse pixel are NaN.
    """
    coarse = check_coarse(lst_coarse)
    factor = check_factor(factor)
    invalid = ~np.isfinite(coarse)
    if invalid.all():
        return np.full((coarse.shape[0] * factor, coarse.shape[1] * factor), np.nan, np.float32)
    filled = np.pad(fill_nearest(coarse), _SPLINE_PAD, mode="reflect", reflect_type="odd")
    fine = ndi.zoom(filled, factor, order=3, mode="nearest", grid_mode=True)
    crop = _SPLINE_PAD * factor
    fine = fine[crop:-crop, crop:-crop].astype(np.float32)
    if invalid.any():
        fine[np.repeat(np.repeat(invalid, factor, axis=0), factor, axis=1)] = np.nan
    return fine
