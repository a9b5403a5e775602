"""Gaussian normalised convolution (Knutsson & Westin 1993): local means over known pixels only.

A field known at a mask is smoothed as `G*(v·m) / G*m`: numerator and denominator lose the same
weight where pixels are unknown (or outside the grid, with zero padding), so the ratio is an
unbiased local mean whatever the gaps. `G*m`, the support, says how much of the kernel's weight
fell on known pixels; `blend_toward` uses it to fall back on a default far from any observation.
Used by the gap-fill residual correction and context channels, the masked SSIM and the fusion
job's coarse smoothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage


def normalised_convolution(
    values: np.ndarray,
    mask: np.ndarray,
    sigma: float | Sequence[float],
    *,
    mode: str = "constant",
    truncate: float = 4.0,
    dtype: type = np.float64,
    min_support: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(local mean, support) of `values` known at `mask`, in `dtype`.

    The local mean is NaN where the support is at most `min_support`; `mode` and `truncate` are
    scipy.ndimage.gaussian_filter's (zero padding by default: outside the grid is unknown).
    """
    mask = np.asarray(mask, dtype=bool)
    known = np.where(mask, values, 0.0).astype(dtype)
    support = ndimage.gaussian_filter(
        mask.astype(dtype), sigma, mode=mode, cval=0.0, truncate=truncate
    )
    num = ndimage.gaussian_filter(known, sigma, mode=mode, cval=0.0, truncate=truncate)
    with np.errstate(invalid="ignore", divide="ignore"):
        local = np.where(support > min_support, num / support, np.nan)
    return local.astype(dtype, copy=False), support


def blend_toward(
    local: np.ndarray, support: np.ndarray, fallback: float | np.ndarray, eps: float
) -> np.ndarray:
    """`w·local + (1 − w)·fallback` with `w = support / (support + eps)`: the local mean where
    the kernel saw many known pixels, the fallback where it saw few (and where `local` is NaN)."""
    w = support / (support + eps)
    return np.where(np.isfinite(local), w * local + (1.0 - w) * fallback, fallback)


def masked_gaussian(values: np.ndarray, sigma: float, *, truncate: float = 4.0) -> np.ndarray:
    """Gaussian smoothing of the last two axes that leaves NaN out of every mean and keeps NaN
    where it was (edge pixels repeated beyond the grid, scipy's "nearest" mode)."""
    if sigma <= 0:
        return values
    ok = np.isfinite(values)
    sig = (0.0,) * (values.ndim - 2) + (sigma, sigma)
    local, _ = normalised_convolution(
        values, ok, sig, mode="nearest", truncate=truncate, dtype=values.dtype.type
    )
    return np.where(ok, local, np.nan).astype(values.dtype, copy=False)
