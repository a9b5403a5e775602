"""The context U-Net's input channels of one acquisition: the standardised visible anomaly, its
Gaussian normalised convolutions at several scales (`lstfill.filters`), same-class neighbour
acquisitions, the scene-wide ridge regression, the covariates and the visibility mask."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lstfill.errors import LstfillError
from lstfill.gapfill.features import (
    FeatureSet,
    History,
    Normaliser,
    categorical_stack,
    is_daytime,
    numeric_stack,
)
from lstfill.gapfill.inputs import LstSeries

if TYPE_CHECKING:
    from lstfill.gapfill.method.context import ContextConfig

from lstfill.filters import blend_toward, normalised_convolution

# Support (G*m) below which a normalised-convolution value is blended toward 0 (the scene mean
# anomaly): w = G*m / (G*m + EPS), as in lstfill.gapfill.residuals.
_SUPPORT_EPS = 0.05


def _same_class(series: LstSeries, t: int, candidates: np.ndarray) -> np.ndarray:
    day = is_daytime(series)
    out = np.asarray(candidates, dtype=bool) & (day == day[t])
    out[t] = False
    return out


def _neighbour_channels(
    series: LstSeries,
    t: int,
    pattern: np.ndarray,
    candidates: np.ndarray,
    cfg: ContextConfig,
    normaliser: Normaliser,
) -> np.ndarray:
    """Nearest earlier and later clear anomaly of each pixel among `candidates` (same day/night
    class, within neighbour_max_days), standardised, with weights exp(-days / tau); (4, H, W)."""
    h, w = series.grid.shape
    out = np.zeros((4, h, w), dtype=np.float32)
    cand = _same_class(series, t, candidates)
    days = (series.times - series.times[t]).astype("timedelta64[s]").astype(np.float64) / 86400.0
    valid = series.valid
    for k, direction in enumerate((-1, 1)):
        order = [u for u in np.argsort(np.abs(days)) if cand[u] and np.sign(days[u]) == direction]
        anom = np.zeros((h, w), dtype=np.float32)
        weight = np.zeros((h, w), dtype=np.float32)
        filled = np.zeros((h, w), dtype=bool)
        for u in order:
            dt = abs(days[u])
            if dt > cfg.neighbour_max_days:
                break
            v = valid[u] & ~filled
            if not v.any():
                continue
            diff = series.lst[u] - pattern
            offset = float(np.median(diff[valid[u]]))
            anom[v] = normaliser.target(diff[v] - offset)
            weight[v] = math.exp(-dt / cfg.neighbour_tau_days)
            filled |= v
            if filled.all():
                break
        out[2 * k] = anom * (weight > 0)
        out[2 * k + 1] = weight
    return out


def _numeric_names(features: FeatureSet) -> list[str]:
    return [n for n in features.numeric if n != "lst_pattern"]


def scene_channels(
    series: LstSeries,
    t: int,
    pattern: np.ndarray,
    candidates: np.ndarray,
    normaliser: Normaliser,
    features: FeatureSet,
    cfg: ContextConfig,
) -> np.ndarray:
    """The channels of acquisition t that do not depend on its own LST, (C, H, W) float32:
    land, pattern (in anomaly units), covariates, one-hot classes and temporal neighbours."""
    land = series.land.astype(np.float32)
    parts = [land[None], (pattern / normaliser.target_std)[None].astype(np.float32)]
    names = _numeric_names(features)
    if names:
        parts.append(normaliser.numeric(numeric_stack(series, t, names), names))
    if features.categorical:
        codes = normaliser.categorical(
            categorical_stack(series, features.categorical), features.categorical
        )
        for i, n in enumerate(normaliser.n_classes(features.categorical)):
            onehot = codes[i][None] == np.arange(n)[:, None, None]
            parts.append(onehot.astype(np.float32))
    if cfg.neighbours:
        parts.append(_neighbour_channels(series, t, pattern, candidates, cfg, normaliser))
    return np.concatenate(parts, axis=0)


def scene_offset(lst_t: np.ndarray, visible: np.ndarray, pattern: np.ndarray) -> float | None:
    """Median of (LST - pattern) over the visible pixels; None when nothing is visible."""
    if not visible.any():
        return None
    return float(np.median(lst_t[visible] - pattern[visible]))


def scene_regression(
    anom: np.ndarray, visible: np.ndarray, regressors: np.ndarray, ridge: float
) -> np.ndarray:
    """Ridge fit (intercept unpenalised) of `anom` on the (K, H, W) `regressors` over the
    visible pixels, evaluated everywhere; zeros with too few visible pixels."""
    k = regressors.shape[0]
    n = int(visible.sum())
    if n < k + 10:
        return np.zeros(anom.shape, dtype=np.float32)
    design = np.concatenate([np.ones((n, 1)), regressors[:, visible].T.astype(np.float64)], 1)
    penalty = ridge * np.eye(k + 1)
    penalty[0, 0] = 0.0
    beta = np.linalg.solve(design.T @ design + penalty, design.T @ anom[visible])
    fitted = beta[0] + np.tensordot(beta[1:], regressors.astype(np.float64), axes=1)
    return fitted.astype(np.float32)


def lst_channels(
    lst_t: np.ndarray,
    visible: np.ndarray,
    pattern: np.ndarray,
    offset: float,
    normaliser: Normaliser,
    cfg: ContextConfig,
    regressors: np.ndarray | None = None,
) -> np.ndarray:
    """The channels made from the acquisition's visible LST, (2 + 2 * len(sigmas) [+ 1], H, W):
    standardised visible anomaly (0 where hidden), the mask, per sigma the normalised
    convolution of the anomaly and its support, and with `scene_regression` the regression of
    the anomaly on `regressors`."""
    anom = np.where(visible, normaliser.target(np.nan_to_num(lst_t - pattern - offset)), 0.0)
    anom = anom.astype(np.float32)
    parts = [anom[None], visible.astype(np.float32)[None]]
    for s in cfg.sigmas:
        local, sup = normalised_convolution(anom, visible, s, dtype=np.float32, min_support=1e-6)
        # far from any visible pixel the channel falls back to the scene's mean anomaly, 0
        est = blend_toward(local, sup, 0.0, _SUPPORT_EPS).astype(np.float32)
        parts.extend([est[None], sup[None]])
    if cfg.scene_regression:
        if regressors is None:
            raise ValueError("scene_regression needs the regressors")
        parts.append(scene_regression(anom, visible, regressors, cfg.ridge)[None])
    return np.concatenate(parts, axis=0)


def _regressors(static: np.ndarray, features: FeatureSet) -> np.ndarray:
    """The pattern and numeric covariate channels of `scene_channels` output."""
    return static[1 : 2 + len(_numeric_names(features))]


@dataclass
class ContextInputs:
    """Inputs of one acquisition and what turns the predicted anomaly back into LST."""

    x: np.ndarray  # (C, H, W) float32
    pattern: np.ndarray  # (H, W) K
    offset: float  # K
    visible: np.ndarray  # (H, W) bool


def context_inputs(
    series: LstSeries,
    t: int,
    history: History,
    normaliser: Normaliser,
    features: FeatureSet,
    cfg: ContextConfig,
    candidates: np.ndarray | None = None,
    fallback_offset: float | None = None,
) -> ContextInputs:
    """All input channels of acquisition t of `series` (whose hidden pixels are already NaN).

    `candidates` (bool per acquisition) are the acquisitions that may serve as temporal
    neighbours (default: all; t itself never). Without any visible pixel the offset falls back on
    `fallback_offset` or, if None, the median scene offset of the neighbour candidates.
    """
    if candidates is None:
        candidates = np.ones(len(series.times), dtype=bool)
    pattern = history.pattern(t)
    visible = series.valid[t]
    offset = scene_offset(series.lst[t], visible, pattern)
    if offset is None:
        offset = fallback_offset
    if offset is None:
        others = [u for u in np.flatnonzero(_same_class(series, t, candidates))]
        meds = [float(np.median(series.lst[u][series.valid[u]])) for u in others]
        meds = [m for m in meds if math.isfinite(m)] if meds else []
        if not meds:
            raise LstfillError(f"acquisition {series.ids[t]} has no clear pixel and no history")
        offset = float(np.median(meds) - np.median(pattern[series.land]))
    static = scene_channels(series, t, pattern, candidates, normaliser, features, cfg)
    regressors = _regressors(static, features)
    x = np.concatenate(
        [static, lst_channels(series.lst[t], visible, pattern, offset, normaliser, cfg, regressors)]
    )
    return ContextInputs(x=x, pattern=pattern, offset=offset, visible=visible)
