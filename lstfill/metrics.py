"""Error metrics of a predicted field against a reference, shared by every lstfill evaluation.

All functions compare only pixels where both the prediction and the truth are finite, and return
plain Python floats so results serialise straight to JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


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
