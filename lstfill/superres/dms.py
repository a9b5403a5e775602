"""Data Mining Sharpener (DMS) for thermal super-resolution.

Gao, Kustas & Anderson (2012), "A data mining approach for sharpening thermal satellite imagery
over land", Remote Sens. 4:3287-3319, doi:10.3390/rs4113287.

Regression trees with a linear model in each leaf (`lstfill.superres.dms_trees`) are trained
between coarse LST and the fine predictors aggregated to the coarse grid (favouring homogeneous
coarse pixels), applied to the fine predictors, optionally blended with local (moving-window)
models, and finally corrected so the result aggregates back to the coarse observation (energy
conservation, in T^4 space). This module is that driver: the coarse samples and their weights,
the local models and their blending, and the residual correction.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lstfill.raster import block_mean_t4, block_view, check_factor
from lstfill.superres.baselines import bicubic, check_coarse, check_fine_shape, repeat_blocks
from lstfill.superres.dms_trees import fit_bag, predict_fine, thread_map

log = logging.getLogger(__name__)

# Lower bound on scaled homogeneity weights, so every training sample keeps some influence.
_MIN_WEIGHT = 1e-3
# Residual (K) below which a model counts as exact when blending local and global predictions.
_MIN_RESIDUAL = 1e-6


@dataclass(frozen=True)
class DmsConfig:
    """All DMS settings, which `dms()` takes as keyword arguments.

    `n_estimators` bagged trees of at most `global_leaves` leaves (`local_leaves` for the local
    models on windows of `moving_window` coarse pixels, widened by `window_extension` per side;
    0: global model only); samples above the `cv_threshold_percentile`-th CV get half weight;
    `residual_iterations` passes of residual correction (the paper uses one); `n_jobs` threads
    (-1: all available CPUs) over row chunks of `chunk_rows` fine rows.
    """

    n_estimators: int = 20
    moving_window: int = 0
    cv_threshold_percentile: float = 80.0
    extrapolation: float = 0.25
    seed: int = 0
    residual_correction: bool = True
    residual_iterations: int = 1
    global_leaves: int = 30
    local_leaves: int = 10
    min_samples_leaf: int = 10
    ridge_alpha: float = 1e-4
    window_extension: float = 0.25
    chunk_rows: int = 512
    n_jobs: int = -1

    def __post_init__(self) -> None:
        if self.n_estimators < 1:
            raise ValueError(f"n_estimators must be >= 1, got {self.n_estimators}")
        if self.moving_window < 0:
            raise ValueError(f"moving_window must be >= 0, got {self.moving_window}")
        if not 0.0 <= self.cv_threshold_percentile <= 100.0:
            raise ValueError("cv_threshold_percentile must be in [0, 100]")
        if self.extrapolation < 0 or self.ridge_alpha < 0 or self.window_extension < 0:
            raise ValueError("extrapolation, ridge_alpha and window_extension must be >= 0")
        if self.residual_iterations < 1:
            raise ValueError(f"residual_iterations must be >= 1, got {self.residual_iterations}")
        if self.chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {self.chunk_rows}")


@dataclass(frozen=True)
class _CoarseSamples:
    """Coarse training set: features, targets and homogeneity weights over a (h, w) mask."""

    mask: np.ndarray  # (h, w) bool, True where a sample exists
    features: np.ndarray  # (h, w, C) float32 block means (NaN where invalid)
    weights: np.ndarray  # (h, w) float64 (0 where no sample)
    cv_threshold: float


def _as_bands(
    predictors_fine: np.ndarray, coarse_shape: tuple[int, int], factor: int
) -> np.ndarray:
    """Validate fine predictors and return them as float32 (C, H, W)."""
    bands = np.asarray(predictors_fine, dtype=np.float32)
    if bands.ndim == 2:
        bands = bands[None]
    if bands.ndim != 3:
        raise ValueError(f"fine predictors must be (H, W) or (C, H, W), got shape {bands.shape}")
    check_fine_shape(bands.shape, coarse_shape, factor, "fine predictors")
    return bands


def _block_stats(bands: np.ndarray, factor: int, chunk_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Block mean and std of each band, as (h, w, C) float64; NaN if any fine pixel is NaN."""
    n_bands, height, width = bands.shape
    h, w = height // factor, width // factor
    mean = np.empty((h, w, n_bands))
    std = np.empty((h, w, n_bands))
    step = max(1, chunk_rows // factor)
    for b in range(n_bands):
        for r0 in range(0, h, step):
            r1 = min(h, r0 + step)
            view = block_view(bands[b, r0 * factor : r1 * factor], factor)
            mean[r0:r1, :, b] = view.mean(axis=(-3, -1), dtype=np.float64)
            std[r0:r1, :, b] = view.std(axis=(-3, -1), dtype=np.float64)
    return mean, std


def homogeneity_weights(cv: np.ndarray, percentile: float = 80.0) -> tuple[np.ndarray, float]:
    """Sample weights from the within-block coefficient of variation; return (weights, threshold).

    w = 1/CV min-max scaled to [0, 1] and halved above the `percentile`-th CV, so homogeneous
    coarse pixels, whose aggregate features best describe their LST, dominate the fit. CV is
    floored at the 1st percentile of its positive values (so a few perfectly uniform blocks,
    e.g. water, do not take all the weight) and weights at 1e-3 (so every sample is kept).
    """
    cv = np.asarray(cv, dtype=np.float64)
    if cv.size == 0:
        return np.empty(0), float("nan")
    threshold = float(np.percentile(cv, percentile))
    positive = cv[cv > 0]
    floor = float(np.percentile(positive, 1.0)) if positive.size else 1.0
    inv = 1.0 / np.maximum(cv, floor)
    span = inv.max() - inv.min()
    weights = (inv - inv.min()) / span if span > 0 else np.ones_like(inv)
    weights = np.where(cv > threshold, weights / 2.0, weights)
    return np.maximum(weights, _MIN_WEIGHT), threshold


def _coarse_samples(
    lst_c: np.ndarray, bands: np.ndarray, factor: int, cfg: DmsConfig
) -> _CoarseSamples:
    """Aggregate predictors, select valid coarse samples and weight them by homogeneity."""
    mean, std = _block_stats(bands, factor, cfg.chunk_rows)
    mask = np.isfinite(lst_c) & np.isfinite(mean).all(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = (std[mask] / np.maximum(np.abs(mean[mask]), 1e-12)).sum(axis=-1)
    w, threshold = homogeneity_weights(cv, cfg.cv_threshold_percentile)
    weights = np.zeros(lst_c.shape)
    weights[mask] = w
    return _CoarseSamples(mask, mean.astype(np.float32), weights, threshold)


def _train_arrays(
    samples: _CoarseSamples, lst_c: np.ndarray, rows: slice = slice(None), cols: slice = slice(None)
) -> tuple[np.ndarray, ...]:
    """Features, targets and weights of the training samples inside a coarse window."""
    mask = samples.mask[rows, cols]
    return (
        samples.features[rows, cols][mask],
        lst_c[rows, cols][mask],
        samples.weights[rows, cols][mask],
    )


def _windows(h: int, w: int, size: int) -> list[tuple[slice, slice]]:
    """Square coarse windows of `size` pixels tiling an (h, w) grid (edge windows smaller)."""
    return [
        (slice(r, min(h, r + size)), slice(c, min(w, c + size)))
        for r in range(0, h, size)
        for c in range(0, w, size)
    ]


def _local_prediction(
    lst_c: np.ndarray, bands: np.ndarray, factor: int, samples: _CoarseSamples, cfg: DmsConfig
) -> tuple[np.ndarray, int]:
    """Moving-window models: each trained on its window widened by `window_extension` per side
    and applied to the window's fine pixels. Returns float32 (H, W) (NaN where no model) and the
    number of local models fitted."""
    h, w = lst_c.shape
    size = cfg.moving_window
    ext = math.ceil(cfg.window_extension * size)
    out = np.full(bands.shape[1:], np.nan, dtype=np.float32)
    windows = _windows(h, w, size)

    def run(item: tuple[int, tuple[slice, slice]]) -> bool:
        k, (rows, cols) = item
        ext_rows = slice(max(0, rows.start - ext), min(h, rows.stop + ext))
        ext_cols = slice(max(0, cols.start - ext), min(w, cols.stop + ext))
        x, y, wt = _train_arrays(samples, lst_c, ext_rows, ext_cols)
        if len(y) < 2:
            return False
        seed = np.random.SeedSequence(cfg.seed, spawn_key=(1, k))
        models = fit_bag(x, y, wt, cfg.local_leaves, cfg, seed, n_jobs=1)
        fine_rows = slice(rows.start * factor, rows.stop * factor)
        fine_cols = slice(cols.start * factor, cols.stop * factor)
        out[fine_rows, fine_cols] = predict_fine(
            models, bands[:, fine_rows, fine_cols], cfg.chunk_rows, n_jobs=1
        )
        return True

    fitted = thread_map(run, enumerate(windows), cfg.n_jobs)
    return out, int(sum(fitted))


def _coarse_residual(lst_c: np.ndarray, pred: np.ndarray, factor: int) -> np.ndarray:
    """T_c - (mean T^4)^(1/4) of a fine prediction, per coarse pixel (NaN where undefined)."""
    return lst_c - block_mean_t4(pred, factor, min_valid=1e-9)


def _blend(
    lst_c: np.ndarray, local: np.ndarray, glob: np.ndarray, factor: int, chunk_rows: int
) -> np.ndarray:
    """Blend local and global fine predictions in T^4 space, weighting each coarse pixel by the
    inverse squared coarse residual of each model; falls back to global where local is NaN."""
    inv_l = np.maximum(np.abs(_coarse_residual(lst_c, local, factor)), _MIN_RESIDUAL) ** -2.0
    inv_g = np.maximum(np.abs(_coarse_residual(lst_c, glob, factor)), _MIN_RESIDUAL) ** -2.0
    w_local = inv_l / (inv_l + inv_g)
    w_local = np.where(np.isfinite(inv_g), w_local, 0.5)  # no coarse LST: equal weights
    w_local = np.where(np.isfinite(inv_l), w_local, 0.0)  # no local model output
    out = np.empty_like(glob)
    step = max(1, chunk_rows // factor)
    for r0 in range(0, lst_c.shape[0], step):
        rows = slice(r0 * factor, (r0 + step) * factor)
        wl = repeat_blocks(w_local[r0 : r0 + step], factor)
        loc4 = np.nan_to_num(local[rows].astype(np.float64) ** 4)
        glob4 = glob[rows].astype(np.float64) ** 4
        out[rows] = (wl * loc4 + (1.0 - wl) * glob4) ** 0.25
    return out


def _correct_residual(
    lst_c: np.ndarray, pred: np.ndarray, factor: int, iterations: int
) -> np.ndarray:
    """Energy conservation: add the bicubically interpolated coarse residual T_c - (mean T^4)^(1/4).

    A cubic interpolant does not preserve block means, so one pass leaves a small residual;
    each further pass shrinks it about threefold.
    """
    for _ in range(iterations):
        pred = pred + bicubic(_coarse_residual(lst_c, pred, factor), factor)
    return pred


def _rms(values: np.ndarray) -> float:
    """Root mean square of the finite values (NaN if none)."""
    finite = values[np.isfinite(values)]
    return float(np.sqrt(np.mean(finite**2))) if finite.size else float("nan")


def dms(
    lst_coarse: np.ndarray,
    predictors_fine: np.ndarray,
    factor: int,
    *,
    info: dict[str, Any] | None = None,
    **settings: Any,
) -> np.ndarray:
    """Sharpen coarse LST (h, w) with fine predictors (C, H, W) or (H, W) by the Data Mining
    Sharpener; return float32 (H, W) in K. `settings` are `DmsConfig` fields.

    Leaf-linear regression trees (bagged, seeded) are fitted on coarse pixels, weighted by
    homogeneity, and applied at fine scale; with `moving_window` > 0, local models on windows of
    that many coarse pixels are blended with the global one. The residual to the coarse LST
    (in T^4 aggregation) is interpolated bicubically and added (`residual_iterations` passes;
    the paper uses one). NaN where any fine predictor or the coarse LST is NaN; coarse NaN
    pixels are not used for training. `n_jobs` threads (-1: all available CPUs) fit the trees
    and predict row chunks of `chunk_rows` fine rows; the result depends on neither. If `info`
    is a dict it receives diagnostics.
    """
    cfg = DmsConfig(**settings)
    lst_c = check_coarse(lst_coarse)
    factor = check_factor(factor)
    bands = _as_bands(predictors_fine, lst_c.shape, factor)
    samples = _coarse_samples(lst_c, bands, factor, cfg)
    x, y, w = _train_arrays(samples, lst_c)
    if len(y) < 2:
        raise ValueError(f"DMS needs at least 2 coarse training pixels, got {len(y)}")
    models = fit_bag(x, y, w, cfg.global_leaves, cfg, np.random.SeedSequence(cfg.seed), cfg.n_jobs)
    pred = predict_fine(models, bands, cfg.chunk_rows, cfg.n_jobs)
    n_local = 0
    if cfg.moving_window > 0:
        local, n_local = _local_prediction(lst_c, bands, factor, samples, cfg)
        pred = _blend(lst_c, local, pred, factor, cfg.chunk_rows)
    rms_before = _rms(_coarse_residual(lst_c, pred, factor))
    if cfg.residual_correction:
        pred = _correct_residual(lst_c, pred, factor, cfg.residual_iterations)
    pred[repeat_blocks(~np.isfinite(lst_c), factor)] = np.nan
    rms_after = _rms(_coarse_residual(lst_c, pred, factor))
    log.debug(
        "DMS: %d samples, %d local models, coarse residual RMS %.3f K -> %.3f K",
        len(y),
        n_local,
        rms_before,
        rms_after,
    )
    if info is not None:
        info.update(
            n_samples=len(y),
            n_local_models=n_local,
            cv_threshold=samples.cv_threshold,
            residual_rms_before=rms_before,
            residual_rms_after=rms_after,
        )
    return pred.astype(np.float32, copy=False)
