"""Baseline gap-fillers the model is compared with, each `fill(series, t) -> FillResult`.

- scene mean plus elevation lapse rate and INCA anomaly (`MeanLapse`): a robust per-scene linear
  fit of LST on elevation (and INCA air temperature) over the target's visible pixels;
- temporal interpolation (`fill_temporal`): per pixel, linear in time between the nearest
  earlier and later clear observations of the same day/night class;
- gradient boosting (`HGBBaseline`): a per-pixel regressor on the same features as the model,
  trained on other acquisitions, never on the target's LST.

`fill_with_correction` adds the residual correction (`residuals.correct_residuals`) to any of
them, so every method gets the same use of the target's visible pixels.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from lstfill.errors import LstfillError
from lstfill.gapfill.features import (
    FeatureSet,
    History,
    categorical_stack,
    check_features,
    is_daytime,
    numeric_stack,
)
from lstfill.gapfill.inputs import FillResult, LstSeries
from lstfill.gapfill.residuals import correct_residuals

Filler = Callable[[LstSeries, int], FillResult]

MIN_FIT_PIXELS = 10
MEAN_LAPSE_NAME = "scene mean plus elevation lapse rate and INCA anomaly"


def _same_class_others(series: LstSeries, t: int, strict: bool = False) -> np.ndarray:
    """Indices of the other acquisitions of t's day/night class (unless `strict`, all others
    when the class has no other acquisition)."""
    day = is_daytime(series)
    idx = np.array([i for i in range(len(series.times)) if i != t and day[i] == day[t]], int)
    if idx.size == 0 and not strict:
        idx = np.array([i for i in range(len(series.times)) if i != t], dtype=int)
    return idx


def _complete(pred: np.ndarray, series: LstSeries, t: int) -> np.ndarray:
    """`pred` made finite on every land pixel (holes get its own land mean, else the mean of all
    other clear observations) and NaN off land."""
    pred = np.asarray(pred, dtype=np.float32).copy()
    land = series.land
    holes = land & ~np.isfinite(pred)
    if holes.any():
        known = pred[land & np.isfinite(pred)]
        if known.size:
            fill = float(known.mean())
        else:
            others = np.delete(series.lst, t, axis=0)
            others = others[np.broadcast_to(land, others.shape) & np.isfinite(others)]
            if others.size == 0:
                raise LstfillError(f"{series.source}: no clear LST in the series to fill from")
            fill = float(others.mean())
        pred[holes] = fill
    pred[~land] = np.nan
    return pred


def climatology(series: LstSeries, t: int) -> np.ndarray:
    """Per-pixel mean LST of the other acquisitions of t's day/night class (of all others when
    the class has none); NaN where never clear."""
    idx = _same_class_others(series, t)
    if idx.size == 0:
        return np.full(series.grid.shape, np.nan, dtype=np.float32)
    stack = np.where(series.valid[idx], series.lst[idx], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
        return np.nanmean(stack, axis=0).astype(np.float32)


# --- (a) scene mean plus lapse rate -------------------------------------------------------------


def _covariate(series: LstSeries, t: int, name: str) -> np.ndarray:
    if name in series.static:
        return np.asarray(series.static[name], dtype=np.float64)
    return np.asarray(series.dynamic[name][t], dtype=np.float64)


@dataclass
class LapseFit:
    """LST = intercept + sum(coef[name] * (covariate - centre[name])) for one scene."""

    intercept: float
    coef: dict[str, float]
    centre: dict[str, float]
    n: int

    def predict(self, series: LstSeries, t: int) -> np.ndarray:
        out = np.full(series.grid.shape, self.intercept, dtype=np.float64)
        for name, b in self.coef.items():
            x = _covariate(series, t, name) - self.centre[name]
            out += b * np.nan_to_num(x, nan=0.0)  # a missing covariate counts as its mean
        return out


def _lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    design = np.column_stack([np.ones(len(y)), x])
    return np.linalg.lstsq(design, y, rcond=None)[0]


def fit_mean_lapse(
    series: LstSeries, t: int, covariates: Sequence[str] = ("elevation", "t2m")
) -> LapseFit | None:
    """Robust least-squares fit of the target's visible land LST on `covariates`.

    Covariates the series lacks, or without spatial variance over the fit pixels, are dropped.
    One refit after removing pixels with |residual| > 3 MAD-sigma. None with fewer than
    MIN_FIT_PIXELS visible pixels.
    """
    names = [c for c in covariates if c in series.static or c in series.dynamic]
    mask = series.valid[t].copy()
    cols = {c: _covariate(series, t, c) for c in names}
    for c in names:
        mask &= np.isfinite(cols[c])
    if mask.sum() < MIN_FIT_PIXELS:
        return None
    names = [c for c in names if np.std(cols[c][mask]) > 1e-6]
    y = series.lst[t][mask].astype(np.float64)
    centre = {c: float(cols[c][mask].mean()) for c in names}
    x = np.empty((y.size, 0))
    if names:
        x = np.column_stack([cols[c][mask] - centre[c] for c in names])
    beta = _lstsq(x, y)
    res = y - (beta[0] + x @ beta[1:])
    sigma = 1.4826 * float(np.median(np.abs(res - np.median(res))))
    keep = np.abs(res) <= 3.0 * sigma
    if sigma > 0 and MIN_FIT_PIXELS <= keep.sum() < keep.size:
        beta = _lstsq(x[keep], y[keep])
    return LapseFit(
        intercept=float(beta[0]),
        coef={c: float(b) for c, b in zip(names, beta[1:], strict=True)},
        centre=centre,
        n=int(mask.sum()),
    )


def fill_mean_lapse(
    series: LstSeries, t: int, *, covariates: Sequence[str] = ("elevation", "t2m")
) -> FillResult:
    """Scene mean plus elevation lapse rate and INCA anomaly, fitted on t's visible pixels.

    With fewer than MIN_FIT_PIXELS visible pixels there is no scene to fit: the per-pixel mean of
    the other acquisitions of the same day/night class is returned instead, without offset.
    """
    fit = fit_mean_lapse(series, t, covariates)
    pred = fit.predict(series, t) if fit is not None else climatology(series, t)
    return FillResult(_complete(pred, series, t))


@dataclass
class MeanLapse:
    """Filler: scene mean plus elevation lapse rate and INCA anomaly (see `fill_mean_lapse`)."""

    covariates: tuple[str, ...] = ("elevation", "t2m")
    name: str = MEAN_LAPSE_NAME

    def __call__(self, series: LstSeries, t: int) -> FillResult:
        return fill_mean_lapse(series, t, covariates=self.covariates)


# --- (b) temporal interpolation -----------------------------------------------------------------


def _nearest(valid: np.ndarray, last: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the index along axis 0 of the last (or first) True, and whether any is True."""
    n = valid.shape[0]
    if n == 0:
        shape = valid.shape[1:]
        return np.zeros(shape, dtype=int), np.zeros(shape, dtype=bool)
    if last:
        k = n - 1 - np.argmax(valid[::-1], axis=0)
    else:
        k = np.argmax(valid, axis=0)
    return k, valid.any(axis=0)


def fill_temporal(series: LstSeries, t: int) -> FillResult:
    """Per pixel, linear interpolation in time between the nearest earlier and the nearest later
    clear observation among the other acquisitions of t's day/night class; one side only gives
    that value; neither (or no other acquisition of the class) falls back on the scene
    mean-lapse prediction."""
    idx = _same_class_others(series, t, strict=True)
    secs = series.times.astype("datetime64[s]").astype(np.int64).astype(np.float64)
    idx = idx[np.argsort(secs[idx], kind="stable")]
    before, after = idx[secs[idx] <= secs[t]], idx[secs[idx] > secs[t]]
    valid = series.valid

    kb, has_b = _nearest(valid[before], last=True)
    ka, has_a = _nearest(valid[after], last=False)
    h, w = series.grid.shape
    rows, cols = np.indices((h, w))
    vb = series.lst[before][kb, rows, cols].astype(np.float64) if before.size else np.zeros((h, w))
    va = series.lst[after][ka, rows, cols].astype(np.float64) if after.size else np.zeros((h, w))
    tb = secs[before][kb] if before.size else np.zeros((h, w))
    ta = secs[after][ka] if after.size else np.ones((h, w))

    frac = (secs[t] - tb) / np.where(ta > tb, ta - tb, 1.0)
    pred = np.full((h, w), np.nan)
    both = has_b & has_a
    pred[both] = (vb + frac * (va - vb))[both]
    pred[has_b & ~has_a] = vb[has_b & ~has_a]
    pred[has_a & ~has_b] = va[has_a & ~has_b]
    missing = series.land & ~(has_b | has_a)
    if missing.any():
        pred[missing] = fill_mean_lapse(series, t).lst[missing]
    return FillResult(_complete(pred, series, t))


# --- (c) gradient boosting on the model's features ----------------------------------------------


class HGBBaseline:
    """HistGradientBoostingRegressor on the model's per-pixel features.

    Trained on the clear land pixels of `train_index`; categorical layers become codes 0..n-1 of
    their training vocabulary (unseen classes are missing). `fill` reads only the covariates of
    the target and the LST history of `history_allowed` acquisitions, never the target's LST.
    """

    name = "gradient boosting on the model features"

    def __init__(
        self,
        features: FeatureSet,
        *,
        max_iter: int = 300,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        max_samples: int = 200_000,
        seed: int = 0,
    ) -> None:
        self.features = features
        self.max_samples = max_samples
        self.seed = seed
        self.model = HistGradientBoostingRegressor(
            max_iter=max_iter,
            learning_rate=learning_rate,
            max_leaf_nodes=max_leaf_nodes,
            categorical_features=None,
            random_state=seed,
        )
        self.vocab: dict[str, np.ndarray] = {}
        self.history_allowed: np.ndarray | None = None
        self.fitted = False

    def _history(self, series: LstSeries) -> History | None:
        if "lst_pattern" not in self.features.numeric:
            return None
        assert self.history_allowed is not None
        if self.history_allowed.shape != (len(series.times),):
            raise ValueError("history_allowed must be one flag per acquisition of the series")
        return History(series, self.history_allowed)

    def _codes(self, series: LstSeries) -> np.ndarray:
        """(K, H, W) float codes of the categorical layers, NaN for unseen/missing classes."""
        raw = categorical_stack(series, self.features.categorical)
        out = np.full(raw.shape, np.nan, dtype=np.float32)
        for i, name in enumerate(self.features.categorical):
            classes = self.vocab[name]
            if classes.size == 0:
                continue
            pos = np.clip(np.searchsorted(classes, raw[i]), 0, classes.size - 1)
            out[i] = np.where(classes[pos] == raw[i], pos, np.nan)
        return out

    def _design(
        self, series: LstSeries, t: int, history: History | None, codes: np.ndarray
    ) -> np.ndarray:
        """(H*W, C+K) feature matrix of acquisition t."""
        num = numeric_stack(series, t, self.features.numeric, history)
        stack = np.concatenate([num, codes], axis=0)
        return stack.reshape(stack.shape[0], -1).T

    def fit(
        self, series: LstSeries, train_index: np.ndarray, history_allowed: np.ndarray
    ) -> HGBBaseline:
        """Fit on the clear land pixels of the acquisitions `train_index` (seeded subsample)."""
        check_features(series, self.features)
        self.history_allowed = np.asarray(history_allowed, dtype=bool).copy()
        raw = categorical_stack(series, self.features.categorical)
        land = series.land
        self.vocab = {
            name: np.unique(raw[i][land & (raw[i] >= 0)])
            for i, name in enumerate(self.features.categorical)
        }
        if any(v.size > 255 for v in self.vocab.values()):
            raise LstfillError("HGB baseline: a categorical layer has more than 255 classes")
        history = self._history(series)
        codes = self._codes(series)
        xs, ys = [], []
        for i in np.asarray(train_index, dtype=int):
            sel = series.valid[i].ravel()
            if not sel.any():
                continue
            xs.append(self._design(series, int(i), history, codes)[sel])
            ys.append(series.lst[i].ravel()[sel])
        if not xs:
            raise LstfillError("HGB baseline: no clear land pixel in the training acquisitions")
        x, y = np.concatenate(xs), np.concatenate(ys).astype(np.float64)
        if len(y) > self.max_samples:
            rng = np.random.default_rng(self.seed)
            keep = np.sort(rng.choice(len(y), size=self.max_samples, replace=False))
            x, y = x[keep], y[keep]
        n_num = len(self.features.numeric)
        mask = np.zeros(x.shape[1], dtype=bool)
        mask[n_num:] = True
        self.model.set_params(categorical_features=mask if mask.any() else None)
        self.model.fit(x, y)
        self.fitted = True
        return self

    def fill(self, series: LstSeries, t: int) -> FillResult:
        """Predict every land pixel of acquisition t from its covariates and LST history."""
        if not self.fitted:
            raise LstfillError("HGB baseline used before fit")
        history = self._history(series)
        x = self._design(series, t, history, self._codes(series))
        pred = self.model.predict(x).reshape(series.grid.shape)
        return FillResult(_complete(pred, series, t))

    __call__ = fill


# --- residual correction wrapper ----------------------------------------------------------------


def fill_with_correction(filler: Filler, mode: str = "smooth", sigma_px: float = 8.0) -> Filler:
    """`filler` followed by `correct_residuals` on the target's visible pixels."""

    def corrected(series: LstSeries, t: int) -> FillResult:
        result = filler(series, t)
        lst = correct_residuals(
            result.lst, series.lst[t], series.valid[t], mode=mode, sigma_px=sigma_px
        )
        return FillResult(_complete(lst, series, t), result.halfwidth90)

    corrected.__name__ = f"{getattr(filler, '__name__', type(filler).__name__)}+{mode}"
    return corrected
