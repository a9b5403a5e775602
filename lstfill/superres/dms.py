"""Data Mining Sharpener (DMS) for thermal super-resolution.

Gao, Kustas & Anderson (2012), "A data mining approach for sharpening thermal satellite imagery
over land", Remote Sens. 4:3287-3319, doi:10.3390/rs4113287.

Regression trees with a linear model in each leaf are trained between coarse LST and the fine
predictors aggregated to the coarse grid (favouring homogeneous coarse pixels), applied to the
fine predictors, optionally blended with local (moving-window) models, and finally corrected so
the result aggregates back to the coarse observation (energy conservation, in T^4 space).

Implemented from the paper's description: a bag of trees (bootstrap samples) replaces the
Cubist rule-based model; leaf models are weighted ridge-stabilised least squares whose output is
clipped to the leaf's target range widened by `extrapolation` on each side.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from sklearn.tree import DecisionTreeRegressor

from lstfill.raster import block_mean_t4, block_view, check_factor
from lstfill.superres.baselines import bicubic, check_coarse, check_fine_shape

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_R = TypeVar("_R")

# Lower bound on scaled homogeneity weights, so every training sample keeps some influence.
_MIN_WEIGHT = 1e-3
# Residual (K) below which a model counts as exact when blending local and global predictions.
_MIN_RESIDUAL = 1e-6


@dataclass(frozen=True)
class DmsConfig:
    """All DMS settings; `dms()` exposes the common ones as keyword arguments."""

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
class _LeafLinearTree:
    """A fitted regression tree plus per-node linear models indexed by `tree.apply` leaf id."""

    tree: DecisionTreeRegressor
    coef: np.ndarray  # (n_nodes, C) float64
    intercept: np.ndarray  # (n_nodes,) float64
    lo: np.ndarray  # (n_nodes,) lower clip bound
    hi: np.ndarray  # (n_nodes,) upper clip bound


@dataclass(frozen=True)
class _CoarseSamples:
    """Coarse training set: features, targets and homogeneity weights over a (h, w) mask."""

    mask: np.ndarray  # (h, w) bool, True where a sample exists
    features: np.ndarray  # (h, w, C) float32 block means (NaN where invalid)
    weights: np.ndarray  # (h, w) float64 (0 where no sample)
    cv_threshold: float


def _n_workers(n_jobs: int) -> int:
    """Number of worker threads for `n_jobs` (-1 = all CPUs available to this process)."""
    if n_jobs == -1 or n_jobs == 0:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - non-Linux
            return max(1, os.cpu_count() or 1)
    return max(1, n_jobs)


def _map(fn: Callable[[_T], _R], items: Iterable[_T], n_jobs: int) -> list[_R]:
    """Ordered map, on a thread pool when n_jobs > 1 (trees and numpy release the GIL)."""
    items = list(items)
    workers = min(_n_workers(n_jobs), len(items))
    if workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


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


def _leaf_models(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    leaf: np.ndarray,
    n_nodes: int,
    alpha: float,
    extrapolation: float,
) -> tuple[np.ndarray, ...]:
    """Weighted ridge line per leaf (normal equations via bincount, one batched solve).

    Features are standardised for the solve (alpha is relative to the leaf weight in
    standardised units, the intercept is not penalised) and mapped back. Returns coef,
    intercept, lo, hi arrays indexed by node id.
    """
    n_feat = x.shape[1]
    mu, sd = x.mean(axis=0), x.std(axis=0)
    sd[sd == 0] = 1.0
    design = np.column_stack([np.ones(len(x)), (x - mu) / sd])
    gram = np.empty((n_nodes, n_feat + 1, n_feat + 1))
    rhs = np.empty((n_nodes, n_feat + 1))
    for p in range(n_feat + 1):
        wp = w * design[:, p]
        rhs[:, p] = np.bincount(leaf, weights=wp * y, minlength=n_nodes)
        for q in range(p, n_feat + 1):
            gram[:, p, q] = gram[:, q, p] = np.bincount(leaf, wp * design[:, q], n_nodes)
    total = gram[:, 0, 0]
    idx = np.arange(1, n_feat + 1)
    gram[:, idx, idx] += alpha * total[:, None] + 1e-12
    used = total > 0
    beta = np.zeros((n_nodes, n_feat + 1))
    beta[used] = np.linalg.solve(gram[used], rhs[used][..., None])[..., 0]
    coef = beta[:, 1:] / sd
    intercept = beta[:, 0] - coef @ mu
    lo, hi = np.full(n_nodes, np.inf), np.full(n_nodes, -np.inf)
    np.minimum.at(lo, leaf, y)
    np.maximum.at(hi, leaf, y)
    margin = extrapolation * np.where(used, hi - lo, 0.0)
    return coef, intercept, lo - margin, hi + margin


def _fit_tree(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    max_leaves: int,
    cfg: DmsConfig,
    seed: np.random.SeedSequence,
) -> _LeafLinearTree:
    """Fit one bagged member: a tree on a bootstrap sample, then linear models in its leaves.

    The bootstrap is expressed as multiplicity weights on the distinct drawn samples (as in
    random forests): the same weighted fit as on duplicated rows, on ~63 % of the rows.
    """
    rng = np.random.default_rng(seed)
    counts = np.bincount(rng.integers(0, len(y), len(y)), minlength=len(y))
    drawn = np.flatnonzero(counts)
    xb, yb, wb = x[drawn], y[drawn], w[drawn] * counts[drawn]
    tree = DecisionTreeRegressor(
        max_leaf_nodes=max(2, max_leaves),
        min_samples_leaf=cfg.min_samples_leaf,
        random_state=int(rng.integers(2**31 - 1)),
    )
    tree.fit(xb, yb, sample_weight=wb)
    leaf = tree.apply(xb)
    coef, intercept, lo, hi = _leaf_models(
        xb.astype(np.float64),
        yb,
        wb,
        leaf,
        tree.tree_.node_count,
        cfg.ridge_alpha,
        cfg.extrapolation,
    )
    return _LeafLinearTree(tree, coef, intercept, lo, hi)


def _fit_bag(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    max_leaves: int,
    cfg: DmsConfig,
    seed: np.random.SeedSequence,
    n_jobs: int,
) -> list[_LeafLinearTree]:
    """Fit `cfg.n_estimators` bagged leaf-linear trees; deterministic given `seed`."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    seeds = seed.spawn(cfg.n_estimators)
    return _map(lambda s: _fit_tree(x, y, w, max_leaves, cfg, s), seeds, n_jobs)


def _predict_pixels(models: list[_LeafLinearTree], x: np.ndarray) -> np.ndarray:
    """Mean prediction of the bag for finite float32 features x (n, C); float64 (n,)."""
    x64 = x.astype(np.float64)
    total = np.zeros(len(x))
    for m in models:
        leaf = m.tree.apply(x, check_input=False)
        pred = m.intercept[leaf] + np.einsum("nc,nc->n", x64, m.coef[leaf])
        total += np.clip(pred, m.lo[leaf], m.hi[leaf])
    return total / len(models)


def _predict_fine(
    models: list[_LeafLinearTree], bands: np.ndarray, chunk_rows: int, n_jobs: int
) -> np.ndarray:
    """Apply the bag to fine predictors (C, H, W) in row chunks; float32 (H, W), NaN if invalid."""
    out = np.full(bands.shape[1:], np.nan, dtype=np.float32)

    def run(r0: int) -> None:
        chunk = bands[:, r0 : r0 + chunk_rows]
        valid = np.isfinite(chunk).all(axis=0)
        if valid.any():
            x = np.ascontiguousarray(chunk[:, valid].T)
            out[r0 : r0 + chunk_rows][valid] = _predict_pixels(models, x)

    _map(run, range(0, bands.shape[1], chunk_rows), n_jobs)
    return out


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
        models = _fit_bag(x, y, wt, cfg.local_leaves, cfg, seed, n_jobs=1)
        fine_rows = slice(rows.start * factor, rows.stop * factor)
        fine_cols = slice(cols.start * factor, cols.stop * factor)
        out[fine_rows, fine_cols] = _predict_fine(
            models, bands[:, fine_rows, fine_cols], cfg.chunk_rows, n_jobs=1
        )
        return True

    fitted = _map(run, enumerate(windows), cfg.n_jobs)
    return out, int(sum(fitted))


def _model_residual(lst_c: np.ndarray, pred: np.ndarray, factor: int) -> np.ndarray:
    """|T_c - (mean T^4)^(1/4) of a fine prediction| per coarse pixel (NaN where undefined)."""
    return np.abs(lst_c - block_mean_t4(pred, factor, min_valid=1e-9))


def _blend(
    lst_c: np.ndarray, local: np.ndarray, glob: np.ndarray, factor: int, chunk_rows: int
) -> np.ndarray:
    """Blend local and global fine predictions in T^4 space, weighting each coarse pixel by the
    inverse squared coarse residual of each model; falls back to global where local is NaN."""
    inv_l = np.maximum(_model_residual(lst_c, local, factor), _MIN_RESIDUAL) ** -2.0
    inv_g = np.maximum(_model_residual(lst_c, glob, factor), _MIN_RESIDUAL) ** -2.0
    w_local = inv_l / (inv_l + inv_g)
    w_local = np.where(np.isfinite(inv_g), w_local, 0.5)  # no coarse LST: equal weights
    w_local = np.where(np.isfinite(inv_l), w_local, 0.0)  # no local model output
    out = np.empty_like(glob)
    step = max(1, chunk_rows // factor)
    for r0 in range(0, lst_c.shape[0], step):
        rows = slice(r0 * factor, (r0 + step) * factor)
        wl = np.repeat(np.repeat(w_local[r0 : r0 + step], factor, axis=0), factor, axis=1)
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
        pred = pred + bicubic(lst_c - block_mean_t4(pred, factor, min_valid=1e-9), factor)
    return pred


def _rms(values: np.ndarray) -> float:
    """Root mean square of the finite values (NaN if none)."""
    finite = values[np.isfinite(values)]
    return float(np.sqrt(np.mean(finite**2))) if finite.size else float("nan")


def sharpen_dms(
    lst_coarse: np.ndarray,
    predictors_fine: np.ndarray,
    factor: int,
    config: DmsConfig | None = None,
    info: dict[str, Any] | None = None,
) -> np.ndarray:
    """DMS with a full `DmsConfig`; see `dms`. If `info` is a dict it receives diagnostics."""
    cfg = config or DmsConfig()
    lst_c = check_coarse(lst_coarse)
    factor = check_factor(factor)
    bands = _as_bands(predictors_fine, lst_c.shape, factor)
    samples = _coarse_samples(lst_c, bands, factor, cfg)
    x, y, w = _train_arrays(samples, lst_c)
    if len(y) < 2:
        raise ValueError(f"DMS needs at least 2 coarse training pixels, got {len(y)}")
    models = _fit_bag(x, y, w, cfg.global_leaves, cfg, np.random.SeedSequence(cfg.seed), cfg.n_jobs)
    pred = _predict_fine(models, bands, cfg.chunk_rows, cfg.n_jobs)
    n_local = 0
    if cfg.moving_window > 0:
        local, n_local = _local_prediction(lst_c, bands, factor, samples, cfg)
        pred = _blend(lst_c, local, pred, factor, cfg.chunk_rows)
    rms_before = _rms(lst_c - block_mean_t4(pred, factor, min_valid=1e-9))
    if cfg.residual_correction:
        pred = _correct_residual(lst_c, pred, factor, cfg.residual_iterations)
    pred[np.repeat(np.repeat(~np.isfinite(lst_c), factor, axis=0), factor, axis=1)] = np.nan
    rms_after = _rms(lst_c - block_mean_t4(pred, factor, min_valid=1e-9))
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


def dms(
    lst_coarse: np.ndarray,
    predictors_fine: np.ndarray,
    factor: int,
    *,
    n_estimators: int = 20,
    moving_window: int = 0,
    cv_threshold_percentile: float = 80.0,
    extrapolation: float = 0.25,
    seed: int = 0,
    residual_correction: bool = True,
    residual_iterations: int = 1,
    chunk_rows: int = 512,
    n_jobs: int = -1,
    info: dict[str, Any] | None = None,
) -> np.ndarray:
    """Sharpen coarse LST (h, w) with fine predictors (C, H, W) or (H, W) by the Data Mining
    Sharpener; return float32 (H, W) in K.

    Leaf-linear regression trees (bagged, seeded) are fitted on coarse pixels, weighted by
    homogeneity, and applied at fine scale; with `moving_window` > 0, local models on windows of
    that many coarse pixels are blended with the global one. The residual to the coarse LST
    (in T^4 aggregation) is interpolated bicubically and added (`residual_iterations` passes;
    the paper uses one). NaN where any fine predictor or the coarse LST is NaN; coarse NaN
    pixels are not used for training. `n_jobs` threads (-1: all available CPUs) fit the trees
    and predict row chunks of `chunk_rows` fine rows; the result depends on neither.
    """
    cfg = DmsConfig(
        n_estimators=n_estimators,
        moving_window=moving_window,
        cv_threshold_percentile=cv_threshold_percentile,
        extrapolation=extrapolation,
        seed=seed,
        residual_correction=residual_correction,
        residual_iterations=residual_iterations,
        chunk_rows=chunk_rows,
        n_jobs=n_jobs,
    )
    return sharpen_dms(lst_coarse, predictors_fine, factor, cfg, info)
