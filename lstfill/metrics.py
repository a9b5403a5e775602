"""Error metrics of a predicted field against a reference, shared by every lstfill evaluation.

All functions compare only pixels where both the prediction and the truth are finite, and return
plain Python floats so results serialise straight to JSON. The image metrics (RMSE, bias, ubRMSE,
PSNR; SSIM, Wang et al. 2004, IEEE TIP 13:600; GSSIM, the SSIM of Sobel gradient magnitudes) take
`pred` and `ref`, 2-D arrays of the same shape, and an optional boolean `mask` of the pixels to
score.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import ndimage


def _pairs(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flattened float64 (pred, truth) where both are finite."""
    p = np.asarray(pred, dtype=np.float64).ravel()
    t = np.asarray(truth, dtype=np.float64).ravel()
    if p.shape != t.shape:
        raise ValueError(f"pred and truth differ in size: {p.size} vs {t.size}")
    ok = np.isfinite(p) & np.isfinite(t)
    return p[ok], t[ok]


def regression_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """n, rmse, mae, bias (pred - truth), r2 and the shares within 1/2/3 K.

    With no sample every metric but `n` is NaN; `r2` is NaN with fewer than 2 samples or a
    constant truth (it is undefined there).
    """
    p, t = _pairs(pred, truth)
    n = p.size
    if n == 0:
        keys = ("rmse", "mae", "bias", "r2", "within_1k", "within_2k", "within_3k")
        return {"n": 0.0, **dict.fromkeys(keys, math.nan)}
    err = p - t
    abs_err = np.abs(err)
    ss_res = float(np.sum(err**2))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if n >= 2 and ss_tot > 0 else math.nan
    return {
        "n": float(n),
        "rmse": math.sqrt(ss_res / n),
        "mae": float(abs_err.mean()),
        "bias": float(err.mean()),
        "r2": r2,
        "within_1k": float(np.mean(abs_err <= 1.0)),
        "within_2k": float(np.mean(abs_err <= 2.0)),
        "within_3k": float(np.mean(abs_err <= 3.0)),
    }


def finite_mean(values: Iterable[float]) -> float:
    """Mean of the finite values (NaN if there is none): scores summarised over days or pairs."""
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    return float(finite.mean()) if finite.size else math.nan


def interval_coverage(pred: np.ndarray, truth: np.ndarray, halfwidth: np.ndarray) -> float:
    """Share of pixels whose truth lies within pred ± halfwidth (pixels with any NaN skipped)."""
    p = np.asarray(pred, dtype=np.float64).ravel()
    t = np.asarray(truth, dtype=np.float64).ravel()
    h = np.broadcast_to(np.asarray(halfwidth, dtype=np.float64), np.shape(pred)).ravel()
    ok = np.isfinite(p) & np.isfinite(t) & np.isfinite(h)
    if not ok.any():
        return math.nan
    return float(np.mean(np.abs(p[ok] - t[ok]) <= h[ok]))


def _label(lo: float, hi: float) -> str:
    def fmt(v: float) -> str:
        return f"{v:g}"

    return f"{fmt(lo)}+" if math.isinf(hi) else f"{fmt(lo)}-{fmt(hi)}"


def binned_metrics(
    pred: np.ndarray,
    truth: np.ndarray,
    values: np.ndarray,
    edges: Sequence[float],
    labels: Sequence[str] | None = None,
) -> dict[str, dict[str, float]]:
    """`regression_metrics` per bin [edges[i], edges[i+1]) of `values`; empty bins omitted.

    Labels default to "lo-hi" ("0-140") and "lo+" for an infinite upper edge ("700+").
    The last bin is closed on the right when its edge is finite.
    """
    edges = [float(e) for e in edges]
    if len(edges) < 2 or any(b <= a for a, b in zip(edges[:-1], edges[1:], strict=True)):
        raise ValueError(f"edges must be increasing with at least 2 values, got {edges}")
    n_bins = len(edges) - 1
    if labels is None:
        labels = [_label(edges[i], edges[i + 1]) for i in range(n_bins)]
    elif len(labels) != n_bins:
        raise ValueError(f"{len(labels)} labels for {n_bins} bins")
    p = np.asarray(pred, dtype=np.float64).ravel()
    t = np.asarray(truth, dtype=np.float64).ravel()
    v = np.asarray(values, dtype=np.float64).ravel()
    ok = np.isfinite(p) & np.isfinite(t) & ~np.isnan(v)
    out: dict[str, dict[str, float]] = {}
    for i in range(n_bins):
        lo, hi = edges[i], edges[i + 1]
        upper = v <= hi if i == n_bins - 1 else v < hi
        sel = ok & (v >= lo) & upper
        if sel.any():
            out[labels[i]] = regression_metrics(p[sel], t[sel])
    return out


_TRUNCATE = 3.5  # Gaussian window radius in sigmas: int(3.5 * 1.5 + 0.5) = 5, an 11x11 window


def _valid(
    pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 copies of (pred, ref) and the boolean mask of usable pixels (mask & both finite)."""
    p = np.asarray(pred, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    if p.ndim != 2 or p.shape != r.shape:
        raise ValueError(f"pred and ref must be 2-D of the same shape, got {p.shape} and {r.shape}")
    ok = np.isfinite(p) & np.isfinite(r)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != p.shape:
            raise ValueError(f"mask shape {m.shape} differs from image shape {p.shape}")
        ok &= m
    return p, r, ok


def _range(values: np.ndarray) -> float:
    """max - min of `values` (NaN when empty): the default PSNR / SSIM data range."""
    return float(values.max() - values.min()) if values.size else math.nan


def rmse(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Root-mean-square error over the scored pixels (NaN if none)."""
    p, r, ok = _valid(pred, ref, mask)
    return math.sqrt(float(np.mean((p[ok] - r[ok]) ** 2))) if ok.any() else math.nan


def bias(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean error pred - ref over the scored pixels (NaN if none)."""
    p, r, ok = _valid(pred, ref, mask)
    return float(np.mean(p[ok] - r[ok])) if ok.any() else math.nan


def rmse_debiased(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Unbiased RMSE (ubRMSE): RMSE after removing the mean bias, i.e. the error's std."""
    p, r, ok = _valid(pred, ref, mask)
    if not ok.any():
        return math.nan
    err = p[ok] - r[ok]
    return math.sqrt(float(np.mean((err - err.mean()) ** 2)))


def psnr(
    pred: np.ndarray,
    ref: np.ndarray,
    mask: np.ndarray | None = None,
    data_range: float | None = None,
) -> float:
    """Peak signal-to-noise ratio 10 log10(range^2 / MSE) in dB.

    `data_range` defaults to ref.max() - ref.min() over the scored pixels, as the SIF-NN-SR
    evaluation does per (pred, ref) pair. Returns inf for MSE = 0 and NaN with no pixel or a
    non-positive range.
    """
    p, r, ok = _valid(pred, ref, mask)
    if not ok.any():
        return math.nan
    rng = _range(r[ok]) if data_range is None else float(data_range)
    if not rng > 0:
        return math.nan
    mse = float(np.mean((p[ok] - r[ok]) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(rng**2 / mse)


def _local_mean(values: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-weighted mean of `values` over the valid pixels (normalised convolution).

    `values` must already be zero where invalid; `weight` is the Gaussian-filtered validity mask.
    Outside the image counts as invalid (constant-zero padding).
    """
    num = ndimage.gaussian_filter(values, sigma, mode="constant", cval=0.0, truncate=_TRUNCATE)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / weight


def ssim_map(
    pred: np.ndarray,
    ref: np.ndarray,
    mask: np.ndarray | None = None,
    data_range: float | None = None,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    min_window_valid: float = 0.99,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel SSIM (Wang et al. 2004) and the boolean mask of the pixels it is scored on.

    Local means, variances and the covariance use a Gaussian window (sigma, truncated at 3.5
    sigma: 11x11 for sigma = 1.5) and the population (1/N-weighted) form, as Wang et al. do, but by
    normalised convolution over the valid pixels only: the masked values and the mask are both
    filtered and divided, so NaN fill or masked areas do not bleed into nearby windows. A pixel
    is scored if it is valid and at least `min_window_valid` of its window weight is valid (the
    image outside its borders counts as invalid). Where the whole window is valid the map equals
    the standard Gaussian-window SSIM. `data_range` defaults to ref max - min over valid pixels.
    """
    p, r, ok = _valid(pred, ref, mask)
    rng = _range(r[ok]) if data_range is None else float(data_range)
    if not ok.any() or not rng > 0:
        return np.full(p.shape, math.nan), np.zeros(p.shape, dtype=bool)
    c1, c2 = (k1 * rng) ** 2, (k2 * rng) ** 2
    # Second moments about a common offset keep the variances precise at ~300 K magnitudes.
    offset = float(r[ok].mean())
    x = np.where(ok, p - offset, 0.0)
    y = np.where(ok, r - offset, 0.0)
    okf = ok.astype(np.float64)
    weight = ndimage.gaussian_filter(okf, sigma, mode="constant", cval=0.0, truncate=_TRUNCATE)
    mx, my = _local_mean(x, weight, sigma), _local_mean(y, weight, sigma)
    vx = np.maximum(_local_mean(x * x, weight, sigma) - mx * mx, 0.0)
    vy = np.maximum(_local_mean(y * y, weight, sigma) - my * my, 0.0)
    cxy = _local_mean(x * y, weight, sigma) - mx * my
    mx, my = mx + offset, my + offset
    luminance = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    structure = (2 * cxy + c2) / (vx + vy + c2)
    scored = ok & (weight >= min_window_valid)
    return np.where(scored, luminance * structure, math.nan), scored


def ssim(
    pred: np.ndarray,
    ref: np.ndarray,
    mask: np.ndarray | None = None,
    data_range: float | None = None,
    **window: float,
) -> float:
    """Mean SSIM (Wang et al. 2004, IEEE TIP 13:600) over the scored pixels of `ssim_map`, whose
    window options (sigma, k1, k2, min_window_valid) `window` passes on.

    NaN when no pixel has a sufficiently valid window or the data range is not positive.
    """
    smap, scored = ssim_map(pred, ref, mask, data_range, **window)
    return float(smap[scored].mean()) if scored.any() else math.nan


def gradient_magnitude(img: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude sqrt(Gx^2 + Gy^2) (scipy.ndimage.sobel, mode='nearest').

    NaN-propagating: a pixel whose 3x3 neighbourhood holds a NaN is NaN, so gradients are never
    taken across fill. Pixels on the image border use nearest-edge replication.
    """
    a = np.asarray(img, dtype=np.float64)
    bad = ~np.isfinite(a)
    filled = np.where(bad, 0.0, a)
    gx = ndimage.sobel(filled, axis=1, mode="nearest")
    gy = ndimage.sobel(filled, axis=0, mode="nearest")
    bad_near = ndimage.maximum_filter(bad, size=3, mode="nearest")
    return np.where(bad_near, math.nan, np.hypot(gx, gy))


def gssim(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Gradient SSIM: SSIM of the Sobel gradient magnitudes of pred and ref (SIF-NN-SR metric).

    Rewards sharp edges in the right places, which pixel SSIM on smooth LST barely sees. Pixels
    outside the scored set are set to NaN before the gradients, so the gradients are scored on
    the mask eroded by one pixel (no gradient straddles a mask edge); the data range is the
    reference gradient magnitude's max - min over that eroded mask.
    """
    p, r, ok = _valid(pred, ref, mask)
    gp = gradient_magnitude(np.where(ok, p, math.nan))
    gr = gradient_magnitude(np.where(ok, r, math.nan))
    return ssim(gp, gr)
