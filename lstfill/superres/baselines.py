"""The super-resolution baselines, each taking the method's inputs (coarse LST, fine NDVI).

- bicubic: a cubic B-spline through the coarse pixel centres (the fine grid is exactly nested in
  the coarse one: fine pixel (i, j) lies in coarse pixel (i // factor, j // factor), so the
  centre of coarse pixel k sits at fine coordinate (k + 0.5) * factor - 0.5);
- TsHARP / DisTrad (below); DMS (Gao et al. 2012) in `lstfill.superres.dms`.

`baseline_methods` is the registry the evaluation runs next to the SIF-NN-SR variants.

TsHARP / DisTrad: thermal sharpening by a scene-wide linear LST-vegetation relation.

Kustas, Norman, Anderson & French (2003), "Estimating subpixel surface temperatures and energy
fluxes from the vegetation index-radiometric temperature relationship", Remote Sens. Environ.
85:429-440 (DisTrad); Agam, Kustas, Anderson, Li & Neale (2007), "A vegetation index based
technique for spatial sharpening of thermal imagery", Remote Sens. Environ. 107:545-558 (TsHARP).

A line LST = a0 + a1 * basis is fitted between coarse LST and the block-aggregated basis
(NDVI, or fractional cover derived from it), evaluated on the fine basis, and the coarse
residual of the fit is added back block-wise so the output aggregates to the coarse input.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from scipy import ndimage as ndi

from lstfill.raster import block_mean, block_mean_t4, block_view, check_factor, fill_nearest

Predict = Callable[[np.ndarray, np.ndarray], np.ndarray]

# Coarse pixels of linear (odd-reflection) padding before the spline: the B-spline prefilter's
# boundary error decays by ~0.27 per coarse pixel, so 10 pixels leave < 1e-6 of a ramp's step.
_SPLINE_PAD = 10


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


def repeat_blocks(coarse: np.ndarray, factor: int) -> np.ndarray:
    """Each pixel of a coarse (h, w) array repeated over its factor x factor fine block."""
    return np.repeat(np.repeat(coarse, factor, axis=0), factor, axis=1)


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
        fine[repeat_blocks(invalid, factor)] = np.nan
    return fine


# --------------------------------------------------------------------------- TsHARP

Basis = Literal["ndvi", "fc"]
Aggregate = Literal["mean", "t4"]

# Exponent of the fractional-cover relation used by Agam et al. (2007), after Choudhury (1994).
FC_EXPONENT = 0.625


def fractional_cover(
    ndvi: np.ndarray, lower_pct: float = 2.0, upper_pct: float = 98.0
) -> np.ndarray:
    """Fractional vegetation cover f_c = 1 - ((NDVI_max - NDVI)/(NDVI_max - NDVI_min))^0.625.

    NDVI_min/NDVI_max are the scene's 2nd/98th NDVI percentiles (bare soil / full cover); the
    scaled NDVI is clipped to [0, 1], so f_c is in [0, 1]. NaN stays NaN.
    """
    ndvi = np.asarray(ndvi, dtype=np.float64)
    if not np.isfinite(ndvi).any():
        return np.full(ndvi.shape, np.nan, np.float32)
    lo, hi = np.nanpercentile(ndvi, [lower_pct, upper_pct])
    span = max(hi - lo, 1e-6)
    ratio = np.clip((hi - ndvi) / span, 0.0, 1.0)
    return (1.0 - ratio**FC_EXPONENT).astype(np.float32)


def _tsharp_inputs(
    lst_coarse: np.ndarray, ndvi_fine: np.ndarray, factor: int, basis: Basis
) -> tuple[np.ndarray, int, np.ndarray]:
    """Validate TsHARP's inputs: the coarse LST (float64), the factor and the fine basis (NDVI
    or f_c) as float32 (H, W)."""
    lst_c = check_coarse(lst_coarse)
    factor = check_factor(factor)
    ndvi = np.asarray(ndvi_fine, dtype=np.float32)
    if ndvi.ndim != 2:
        raise ValueError(f"fine NDVI must be 2-D (H, W), got shape {ndvi.shape}")
    check_fine_shape(ndvi.shape, lst_c.shape, factor, "fine NDVI")
    if basis == "ndvi":
        return lst_c, factor, ndvi
    if basis == "fc":
        return lst_c, factor, fractional_cover(ndvi)
    raise ValueError(f"basis must be 'ndvi' or 'fc', got {basis!r}")


def _fit_line(
    lst_c: np.ndarray, basis_fine: np.ndarray, factor: int, min_t: float, homogeneous_share: float
) -> tuple[float, float]:
    """Least-squares line through (block-mean basis, coarse LST) of the usable coarse pixels.

    Usable: finite LST >= min_t and a fully valid basis block; of these, only the
    `homogeneous_share` with the lowest within-block basis CV (std / |mean|) are kept.
    """
    if not 0.0 < homogeneous_share <= 1.0:
        raise ValueError(f"homogeneous_share must be in (0, 1], got {homogeneous_share}")
    blocks = block_view(basis_fine, factor)
    basis_c = blocks.mean(axis=(-3, -1), dtype=np.float64)
    usable = np.isfinite(lst_c) & (lst_c >= min_t) & np.isfinite(basis_c)
    x, y = basis_c[usable], lst_c[usable]
    if homogeneous_share < 1.0 and x.size:
        std = blocks.std(axis=(-3, -1), dtype=np.float64)[usable]
        with np.errstate(divide="ignore", invalid="ignore"):
            cv = np.where(np.abs(x) > 0, std / np.abs(x), np.inf)
        keep = np.argsort(cv, kind="stable")[: max(2, math.ceil(homogeneous_share * x.size))]
        x, y = x[keep], y[keep]
    if x.size < 2 or np.ptp(x) == 0:
        raise ValueError(
            f"TsHARP needs at least 2 usable coarse pixels with distinct basis values, "
            f"got {x.size} (finite LST >= {min_t} K and a fully valid basis block)"
        )
    a1, a0 = np.polyfit(x, y, 1)
    return float(a0), float(a1)


def fit_tsharp(
    lst_coarse: np.ndarray,
    ndvi_fine: np.ndarray,
    factor: int,
    *,
    basis: Basis = "ndvi",
    min_t: float = 270.0,
    homogeneous_share: float = 1.0,
) -> tuple[float, float]:
    """Fit the TsHARP line LST_c = a0 + a1 * basis_c on the coarse grid; return (a0, a1)."""
    lst_c, factor, basis_fine = _tsharp_inputs(lst_coarse, ndvi_fine, factor, basis)
    return _fit_line(lst_c, basis_fine, factor, min_t, homogeneous_share)


def _t4_offsets(
    pred: np.ndarray, target: np.ndarray, factor: int, iterations: int = 4
) -> np.ndarray:
    """Per-block offsets d with ((mean (pred + d)^4))^(1/4) = target (Newton's method)."""
    blocks = block_view(pred.astype(np.float64), factor)
    finite = np.isfinite(blocks)
    count = finite.sum(axis=(-3, -1))
    vals = np.where(finite, blocks, 0.0)
    offset = target - block_mean_t4(pred, factor, min_valid=1e-9).astype(np.float64)
    target4 = target**4
    for _ in range(iterations):
        shifted = vals + offset[:, None, :, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.where(finite, shifted**4, 0.0).sum(axis=(-3, -1)) / count - target4
            df = 4.0 * np.where(finite, shifted**3, 0.0).sum(axis=(-3, -1)) / count
            offset = offset - f / df
    return offset


def tsharp(
    lst_coarse: np.ndarray,
    ndvi_fine: np.ndarray,
    factor: int,
    *,
    basis: Basis = "ndvi",
    min_t: float = 270.0,
    aggregate: Aggregate = "mean",
    homogeneous_share: float = 1.0,
) -> np.ndarray:
    """Sharpen coarse LST (h, w) with fine NDVI (H, W) by TsHARP; return float32 (H, W) in K.

    The residual T_c - (a0 + a1 * basis_c) is added uniformly over each block, so the block
    aggregate of the output over its valid pixels equals the coarse input exactly: the plain
    mean for aggregate="mean" (the published method), (mean T^4)^(1/4) for aggregate="t4".
    Coarse pixels below `min_t` (likely cloud-contaminated) are left out of the fit but still
    sharpened. NaN where the fine NDVI or the coarse LST is NaN.
    """
    lst_c, factor, basis_fine = _tsharp_inputs(lst_coarse, ndvi_fine, factor, basis)
    a0, a1 = _fit_line(lst_c, basis_fine, factor, min_t, homogeneous_share)
    pred = (a0 + a1 * basis_fine.astype(np.float64)).astype(np.float32)
    if aggregate == "mean":
        offset = lst_c - block_mean(pred, factor, min_valid=1e-9).astype(np.float64)
    elif aggregate == "t4":
        offset = _t4_offsets(pred, lst_c, factor)
    else:
        raise ValueError(f"aggregate must be 'mean' or 't4', got {aggregate!r}")
    return (pred + repeat_blocks(offset, factor)).astype(np.float32)


def baseline_methods(cfg: dict, factor: int, **dms_settings: Any) -> dict[str, Predict]:
    """The classical baselines with the model's inputs: coarse LST and fine NDVI, set by the
    job's ``baselines`` block; `dms_settings` are further `DmsConfig` fields (n_jobs, seed)."""
    from lstfill.superres.dms import dms  # scikit-learn: evaluation only

    b = cfg["baselines"]
    return {
        "baseline_bicubic": lambda lst, ndvi: bicubic(lst, factor),
        "baseline_tsharp": lambda lst, ndvi: tsharp(
            lst, ndvi, factor, basis=b["tsharp_basis"], min_t=b["min_t"]
        ),
        "baseline_dms": lambda lst, ndvi: dms(
            lst,
            ndvi,
            factor,
            n_estimators=b["dms_estimators"],
            moving_window=b["dms_moving_window"],
            **dms_settings,
        ),
    }
