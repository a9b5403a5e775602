"""Climatology plus anomaly: the first baseline of gap-filling (DESIGN: baselines).

A pixel's expected LST on a date is its climatology: the mean of its clear observations on the
training days of the same day/night class, weighted by a Gaussian in day-of-year distance when
the class has enough days to resolve a seasonal cycle (Crosson et al. 2012 and Metz et al. 2014
fill MODIS LST from such a climatology plus the scene's departure from it). The target's own
visible pixels give that day's departure, the anomaly, which is interpolated into the gaps by
Gaussian normalised convolution (Knutsson & Westin 1993) and added back; far from any visible
pixel the scene's mean anomaly is used.

Both smoothing scales, the day-of-year bandwidth and the anomaly's spatial sigma, are tuned on
the `fit` acquisitions only (the training days): they are hidden under each other's clouds (the
evaluation protocol, restricted to training days) and each is filled from a climatology that
leaves it out. At `fill` the climatology reads every acquisition of the series but the target,
the history the context model and the temporal baseline read too (the evaluation protocol
allows any date but the target's), so the baseline gets the same inputs as the model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lstfill.errors import LstfillError
from lstfill.filters import normalised_convolution
from lstfill.gapfill.baselines import _complete
from lstfill.gapfill.features import is_daytime
from lstfill.gapfill.inputs import FillResult, LstSeries

NAME = "per-pixel climatology plus the target's interpolated anomaly"
# Day-of-year bandwidths (days) tried; inf is the plain per-pixel mean of the class.
BANDWIDTHS_DAYS = (math.inf, 60.0, 30.0, 15.0)
SIGMAS_PX = (2.0, 4.0, 8.0, 16.0, 32.0)
# A class needs this many training acquisitions before a seasonal weighting is tried.
MIN_SEASONAL_DAYS = 12
# Tuning pairs: targets at least this clear, donors in this clear range, at most this many pairs.
TUNE_TARGET_MIN = 0.5
TUNE_DONOR_RANGE = (0.2, 0.9)
TUNE_MAX_PAIRS = 24


def day_of_year(times: np.ndarray) -> np.ndarray:
    """Fractional day of year (0-based) of datetime64 values."""
    t = np.asarray(times, dtype="datetime64[s]")
    start = t.astype("datetime64[Y]").astype("datetime64[s]")
    return (t - start).astype(np.float64) / 86400.0


def doy_weights(doy: np.ndarray, target_doy: float, bandwidth: float) -> np.ndarray:
    """Gaussian weights in circular day-of-year distance (365.25-day year); 1 for inf."""
    if math.isinf(bandwidth):
        return np.ones(len(doy))
    d = np.abs(np.asarray(doy, dtype=np.float64) - target_doy) % 365.25
    d = np.minimum(d, 365.25 - d)
    return np.exp(-0.5 * (d / bandwidth) ** 2)


def weighted_climatology(
    lst: np.ndarray, valid: np.ndarray, weights: np.ndarray, min_weight: float = 1e-3
) -> np.ndarray:
    """Per-pixel weighted mean of `lst` (N, H, W) over its `valid` entries; NaN where the summed
    weight of valid entries is below `min_weight`."""
    w = np.asarray(weights, dtype=np.float64)[:, None, None] * valid
    num = np.einsum("nhw,nhw->hw", w, np.where(valid, lst, 0.0).astype(np.float64))
    den = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den >= min_weight, num / den, np.nan)


def interpolate_anomaly(anomaly: np.ndarray, visible: np.ndarray, sigma_px: float) -> np.ndarray:
    """The anomaly known at `visible` pixels spread over the grid: Gaussian normalised
    convolution, the mean visible anomaly where no visible pixel lies within the kernel's
    reach; zeros when nothing is visible."""
    visible = np.asarray(visible, dtype=bool) & np.isfinite(anomaly)
    if not visible.any():
        return np.zeros(anomaly.shape)
    local, _ = normalised_convolution(anomaly, visible, sigma_px, min_support=1e-9)
    return np.where(np.isfinite(local), local, float(anomaly[visible].mean()))


@dataclass
class ClimatologyAnomaly:
    """Filler: per-pixel climatology of the training days (day/night class, day-of-year
    weighted) plus the target's visible anomaly interpolated into the gaps.

    `fit` tunes `bandwidth_days` and `sigma_px` on the acquisitions it is given; `fill(series,
    t)` reads every other acquisition's LST and the target's visible pixels.
    """

    bandwidth_days: float = math.inf
    sigma_px: float = 8.0
    bandwidths: Sequence[float] = BANDWIDTHS_DAYS
    sigmas: Sequence[float] = SIGMAS_PX
    seed: int = 0
    name: str = NAME

    def __post_init__(self) -> None:
        self.tuning: dict[str, float] = {}

    @staticmethod
    def _sources(series: LstSeries, t: int, allowed: np.ndarray | None = None) -> np.ndarray:
        """The acquisitions of t's day/night class (among `allowed`, default all), t left out
        (both classes when t's has none)."""
        day = is_daytime(series)
        n = len(series.times)
        allowed = np.ones(n, dtype=bool) if allowed is None else np.asarray(allowed).copy()
        allowed[t] = False
        same = np.flatnonzero(allowed & (day == day[t]))
        return same if same.size else np.flatnonzero(allowed)

    def climatology(
        self,
        series: LstSeries,
        t: int,
        bandwidth: float | None = None,
        allowed: np.ndarray | None = None,
    ) -> np.ndarray:
        """The climatology of acquisition t's date from the `allowed` acquisitions (default
        all) but t (K, NaN where never clear); pixels whose seasonal weights are all negligible
        take the class's plain mean."""
        idx = self._sources(series, t, allowed)
        if idx.size == 0:
            return np.full(series.grid.shape, np.nan)
        h = self.bandwidth_days if bandwidth is None else bandwidth
        lst, valid = series.lst[idx], series.valid[idx]
        doy = day_of_year(series.times)
        clim = weighted_climatology(lst, valid, doy_weights(doy[idx], doy[t], h))
        if not math.isinf(h):
            plain = weighted_climatology(lst, valid, np.ones(idx.size))
            clim = np.where(np.isfinite(clim), clim, plain)
        return clim

    def fill(self, series: LstSeries, t: int) -> FillResult:
        """Climatology plus the target's anomaly, smoothed with `sigma_px` into the gaps."""
        clim = self.climatology(series, t)
        visible = series.valid[t] & np.isfinite(clim)
        anomaly = np.where(visible, series.lst[t] - clim, np.nan)
        pred = clim + interpolate_anomaly(anomaly, visible, self.sigma_px)
        return FillResult(_complete(pred, series, t))

    __call__ = fill

    def fit(self, series: LstSeries, allowed: np.ndarray) -> ClimatologyAnomaly:
        """Tune the two scales on artificial gaps among the `allowed` acquisitions (bool per
        acquisition), each filled from the others; without a tuning pair they stay as given."""
        allowed = np.asarray(allowed, dtype=bool)
        if allowed.shape != (len(series.times),):
            raise ValueError("allowed must be one flag per acquisition of the series")
        if not allowed.any():
            raise LstfillError("climatology baseline: no acquisition to tune on")
        day = is_daytime(series)
        n_class = min(int((allowed & day).sum()), int((allowed & ~day).sum()) or 10**9)
        bandwidths = [h for h in self.bandwidths if math.isinf(h) or n_class >= MIN_SEASONAL_DAYS]
        pairs = self._tuning_pairs(series, allowed)
        if not pairs:
            return self
        scores = np.zeros((len(bandwidths), len(self.sigmas)))
        for t, d in pairs:
            hidden = series.valid[t] & ~series.valid[d]
            visible = series.valid[t] & ~hidden
            truth = series.lst[t][hidden]
            for i, h in enumerate(bandwidths):
                clim = self.climatology(series, t, h, allowed)
                seen = visible & np.isfinite(clim)
                anomaly = np.where(seen, series.lst[t] - clim, np.nan)
                for j, s in enumerate(self.sigmas):
                    pred = clim + interpolate_anomaly(anomaly, seen, s)
                    err = pred[hidden] - truth
                    err = err[np.isfinite(err)]  # pixels never clear on another day: no score
                    scores[i, j] += float(np.sqrt(np.mean(err**2))) if err.size else 0.0
        i, j = np.unravel_index(int(np.argmin(scores)), scores.shape)
        self.bandwidth_days, self.sigma_px = float(bandwidths[i]), float(self.sigmas[j])
        self.tuning = {
            "bandwidth_days": self.bandwidth_days,
            "sigma_px": self.sigma_px,
            "tuning_pairs": len(pairs),
            "tuning_rmse": float(scores[i, j] / len(pairs)),
        }
        return self

    def _tuning_pairs(self, series: LstSeries, allowed: np.ndarray) -> list[tuple[int, int]]:
        """(target, donor) pairs among the allowed acquisitions, at most TUNE_MAX_PAIRS (seeded),
        each hiding at least 16 pixels and leaving at least 16 visible."""
        vf = series.valid_fraction()
        idx = np.flatnonzero(allowed)
        targets = idx[vf[idx] >= TUNE_TARGET_MIN]
        lo, hi = TUNE_DONOR_RANGE
        donors = idx[(vf[idx] >= lo) & (vf[idx] <= hi)]
        valid = series.valid
        pairs = []
        for t in targets:
            for d in donors:
                hidden = valid[t] & ~valid[d]
                if t != d and hidden.sum() >= 16 and (valid[t] & valid[d]).sum() >= 16:
                    pairs.append((int(t), int(d)))
        if len(pairs) > TUNE_MAX_PAIRS:
            rng = np.random.default_rng(self.seed)
            keep = np.sort(rng.choice(len(pairs), TUNE_MAX_PAIRS, replace=False))
            pairs = [pairs[k] for k in keep]
        return pairs
