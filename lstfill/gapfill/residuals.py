"""Residual correction: pull a model's prediction onto the target scene's visible pixels.

A model (or baseline) predicts LST from covariates; its errors on one scene are spatially smooth
(weather it cannot know: a warmer afternoon, a passing air mass). The residuals pred - observed on
the scene's visible pixels are interpolated into the gaps and subtracted, the residual
interpolation step of gap-fill methods that merge a model with the clear pixels of the scene
(cf. Zhang et al. 2022, ESSD). The same correction is applied to every method compared.
"""

from __future__ import annotations

import numpy as np

from lstfill.filters import blend_toward, normalised_convolution

MODES = ("none", "offset", "smooth")
# Blend weight floor: w = G*m / (G*m + EPS). G*m is 1 inside a fully visible neighbourhood (the
# kernel sums to 1), so a pixel whose neighbourhood holds 5 % of the kernel's weight in visible
# pixels gets half local, half scene-mean residual.
EPS = 0.05


def correct_residuals(
    pred: np.ndarray,
    observed: np.ndarray,
    visible: np.ndarray,
    *,
    mode: str = "smooth",
    sigma_px: float = 8.0,
) -> np.ndarray:
    """`pred` (H, W) minus its residual field estimated from the `visible` pixels of `observed`.

    - "none": pred unchanged;
    - "offset": minus the mean residual (pred - observed) over visible pixels;
    - "smooth": minus a Gaussian normalised-convolution interpolation of the residuals
      (r_hat = G*(r m) / G*m, sigma `sigma_px`), blended toward the mean residual where few
      visible pixels are near (w = G*m / (G*m + EPS)).

    With no visible pixel the prediction is returned unchanged.
    """
    if mode not in MODES:
        raise ValueError(f"unknown residual correction mode {mode!r}; expected one of {MODES}")
    pred = np.asarray(pred)
    out_dtype = pred.dtype if pred.dtype.kind == "f" else np.float32
    if mode == "none":
        return pred.astype(out_dtype, copy=True)
    p = pred.astype(np.float64)
    obs = np.asarray(observed, dtype=np.float64)
    m = np.asarray(visible, dtype=bool) & np.isfinite(p) & np.isfinite(obs)
    if not m.any():
        return pred.astype(out_dtype, copy=True)
    r = np.where(m, p - obs, 0.0)
    global_r = float(r[m].mean())
    if mode == "offset":
        return (p - global_r).astype(out_dtype)
    if sigma_px <= 0:
        raise ValueError(f"sigma_px must be positive, got {sigma_px}")
    # Zero padding outside the grid: the edge is "not observed", so numerator and denominator
    # lose the same weight there and their ratio stays unbiased.
    local, weight = normalised_convolution(r, m, sigma_px, min_support=1e-12)
    r_hat = blend_toward(local, weight, global_r, EPS)
    return (p - r_hat).astype(out_dtype)
