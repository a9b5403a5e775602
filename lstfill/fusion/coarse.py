"""The coarse series of the fusion job and its pre-processing: the observations of every coarse
pixel brought to any day, by composites (a temporal Gaussian times a ramp in the distance to
invalid pixels) and spatial smoothing as the published EFAST pre-processing does, or by linear
interpolation between the nearest valid dates (Senty et al. 2024, Remote Sens. 16:1833, 2.3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from lstfill.filters import masked_gaussian

if TYPE_CHECKING:
    from lstfill.fusion.method import EfastSettings


@dataclass
class CoarseSeries:
    """Coarse observations (dates, bands, rows, cols), NaN where cloudy or missing."""

    days: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        self.days = np.asarray(self.days, dtype=np.float64)
        self.values = np.asarray(self.values, dtype=np.float32)
        if self.values.ndim == 3:
            self.values = self.values[:, None]
        if self.values.ndim != 4 or len(self.days) != len(self.values):
            raise ValueError(
                f"coarse values must be (dates, bands, rows, cols) with one date each, got "
                f"{self.values.shape} for {len(self.days)} dates"
            )
        order = np.argsort(self.days, kind="stable")
        self.days, self.values = self.days[order], self.values[order]

    def window(self, day: float, half_width: float) -> CoarseSeries:
        keep = np.abs(self.days - day) <= half_width
        return CoarseSeries(self.days[keep], self.values[keep])


def interpolate_series(
    days: np.ndarray, values: np.ndarray, targets: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the series linearly interpolated to each target day from its valid dates.

    `values` is (dates, ...) with NaN where invalid; `days` ascending. With a valid date on one
    side only, that nearest date's value is used (second output True there); with none, NaN.
    Returns (interpolated (targets, ...), nearest-fallback mask (targets, ...)).
    """
    days = np.asarray(days, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    n = len(days)
    shape = values.shape[1:]
    if n == 0:
        empty = np.full((len(targets), *shape), np.nan, dtype=np.float32)
        return empty, np.zeros(empty.shape, dtype=bool)
    flat = values.reshape(n, -1)
    ok = np.isfinite(flat)
    index = np.arange(n)[:, None]
    prev_at = np.maximum.accumulate(np.where(ok, index, -1), axis=0)
    next_at = np.minimum.accumulate(np.where(ok, index, n)[::-1], axis=0)[::-1]
    cols = np.arange(flat.shape[1])
    out = np.full((len(targets), flat.shape[1]), np.nan, dtype=np.float32)
    nearest = np.zeros(out.shape, dtype=bool)
    for k, t in enumerate(targets):
        j_prev = int(np.searchsorted(days, t, side="right")) - 1
        j_next = int(np.searchsorted(days, t, side="left"))
        prev = prev_at[j_prev] if j_prev >= 0 else np.full(flat.shape[1], -1)
        nxt = next_at[j_next] if j_next < n else np.full(flat.shape[1], n)
        has_prev, has_next = prev >= 0, nxt < n
        vp = flat[np.clip(prev, 0, n - 1), cols]
        vn = flat[np.clip(nxt, 0, n - 1), cols]
        dp, dn = days[np.clip(prev, 0, n - 1)], days[np.clip(nxt, 0, n - 1)]
        span = dn - dp
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(span > 0, (t - dp) / np.where(span > 0, span, 1), 0.0)
        both = has_prev & has_next
        out[k] = np.where(both, vp + frac * (vn - vp), np.where(has_prev, vp, vn))
        out[k][~has_prev & ~has_next] = np.nan
        nearest[k] = has_prev ^ has_next
    return out.reshape(len(targets), *shape), nearest.reshape(len(targets), *shape)


def composite_series(
    days: np.ndarray, values: np.ndarray, targets: Sequence[float], sigma_days: float, D: float
) -> np.ndarray:
    """Per pixel, the weighted mean of the valid observations for each target day: weight
    ``exp(-dt^2 / 2 sigma^2)`` times ``clip((d - 1) / D, 0, 1)``, d being the distance (pixels)
    to the nearest invalid pixel of that date (the image border does not count as invalid);
    NaN where no observation has weight. `values` is (dates, bands, rows, cols)."""
    days = np.asarray(days, dtype=np.float64)
    out = np.full((len(targets), *values.shape[1:]), np.nan, dtype=np.float32)
    if len(days) == 0:
        return out
    ok = np.isfinite(values)
    score = np.empty(values.shape, dtype=np.float32)
    for j in range(len(days)):
        for b in range(values.shape[1]):
            invalid = ~ok[j, b]
            if not invalid.any():
                score[j, b] = 1.0
            elif invalid.all():
                score[j, b] = 0.0
            else:
                d = ndimage.distance_transform_edt(~invalid)
                score[j, b] = np.clip((d - 1.0) / D, 0.0, 1.0)
    filled = np.where(ok, values, 0.0).astype(np.float32)
    for k, t in enumerate(targets):
        temporal = np.exp(-((days - t) ** 2) / (2 * sigma_days**2)).astype(np.float32)
        w = score * temporal[:, None, None, None]
        total = w.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[k] = np.where(total > 1e-6, (w * filled).sum(axis=0) / total, np.nan)
    return out


def coarse_at(
    coarse: CoarseSeries, targets: Sequence[float], settings: EfastSettings
) -> tuple[np.ndarray, np.ndarray]:
    """The coarse series at each target day (targets, bands, rows, cols) and where that value
    rests on observations of one side only (composited or interpolated, see the module
    docstring)."""
    linear, nearest = interpolate_series(coarse.days, coarse.values, targets)
    if settings.composite_days > 0:
        series = composite_series(
            coarse.days, coarse.values, targets, settings.composite_days, settings.composite_D
        )
        series = np.where(np.isfinite(series), series, linear)
    else:
        series = linear
    # kernel 4 sigma + 1 wide (truncate 2), as the published pre-processing uses
    return masked_gaussian(series, settings.smooth_px, truncate=2.0), nearest
