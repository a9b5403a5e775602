"""Data Mining Sharpener (DMS) for thermal super-resolution.

Gao, Kustas & Anderson (2012), "A data mining approach for sharpening thermal satellite imagery
over land", Remote Sens. 4:3287-3319, doi:10.3390/rs4113287. Behaviour and defaults follow the
authors' reference implementation pyDMS (Guzinski, github.com/radosuav/pyDMS,
`DecisionTreeSharpener` as configured by its `run_pyDMS.py`); this is an independent
implementation of the published method, not a port.

1. Samples (section 2.2): every valid coarse pixel, its features the block means of the fine
   predictors, weighted by homogeneity (`homogeneity_weights` of the within-block coefficient
   of variation), so homogeneous pixels, whose aggregate features best describe their LST,
   dominate the fit.
2. Model (section 2.1): bagged regression trees with a ridge line per leaf
   (`lstfill.superres.dms_trees`), fitted between coarse LST and the aggregated predictors and
   applied to the fine predictors.
3. Local and global models (section 2.3): with `moving_window` > 0, a model with fewer leaves
   is also fitted on each window of that many coarse pixels (sampled over the window widened by
   `window_extension` of its side on each side) and applied to the window's fine pixels. Per
   coarse pixel, the local and global predictions are blended in T^4 with weights inversely
   proportional to the squares of their coarse residuals, interpolated to the fine grid.
4. Residual correction (section 2.4): the coarse residual T_c - (mean T^4)^(1/4), i.e. computed
   in radiance (T^4) space as a coarse sensor integrates, is interpolated by cubic convolution
   and added. One pass, as in the paper: it removes most of the residual without imposing the
   coarse noise exactly (forcing exact T^4 conservation scores worse against ASTER).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lstfill.raster import block_mean_t4, block_view, check_factor, fill_nearest
from lstfill.superres.baselines import check_coarse, check_fine_shape, repeat_blocks
from lstfill.superres.dms_trees import fit_bag, predict_fine, thread_map

log = logging.getLogger(__name__)

# Residual (K) below which a model counts as exact when blending local and global predictions.
_MIN_RESIDUAL = 1e-6
# Keys (1981) cubic convolution parameter; -0.5 is the third-order accurate choice (GDAL's cubic).
_KEYS_A = -0.5


@dataclass(frozen=True)
class DmsConfig:
    """All DMS settings, which `dms()` takes as keyword arguments (defaults: pyDMS's).

    `n_estimators` bagged trees of at most `global_leaves` leaves (`local_leaves` for the local
    models on windows of `moving_window` coarse pixels, sampled over the window widened by
    `window_extension` times its side per side; 0: global model only), leaves of at least
    `min_samples_leaf` samples (also the fewest samples a local window needs for a model), ridge
    lines of penalty `ridge_alpha` in the units of the predictors, clipped at `extrapolation`
    times the leaf's target range beyond it; samples at or above the
    `cv_threshold_percentile`-th CV get half weight; `residual_iterations` passes of residual
    correction (the paper uses one); `n_jobs` threads (-1: all available CPUs) over row chunks
    of `chunk_rows` fine rows.
    """

    n_estimators: int = 10
    moving_window: int = 0
    cv_threshold_percentile: float = 80.0
    extrapolation: float = 0.25
    seed: int = 0
    residual_correction: bool = True
    residual_iterations: int = 1
    global_leaves: int = 30
    local_leaves: int = 10
    min_samples_leaf: int = 10
    ridge_alpha: float = 1.0
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
        if self.min_samples_leaf < 1:
            raise ValueError(f"min_samples_leaf must be >= 1, got {self.min_samples_leaf}")
        if self.residual_iterations < 1:
            raise ValueError(f"residual_iterations must be >= 1, got {self.residual_iterations}")
        if self.chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {self.chunk_rows}")


@dataclass(frozen=True)
class _CoarseSamples:
    """Coarse training set over an (h, w) grid: where a sample exists, its features and CV."""

    mask: np.ndarray  # (h, w) bool, True where a sample exists
    features: np.ndarray  # (h, w, C) float32 block means (NaN where invalid)
    cv: np.ndarray  # (h, w) float64 coefficient of variation (> 0 where mask)


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


def coefficient_of_variation(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Within-block CV of the fine predictors, std / |mean| averaged over bands (last axis).

    0 for a uniform block, NaN where a band is NaN, inf where a band's block mean is 0.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.mean(np.asarray(std) / np.abs(mean), axis=-1)


def homogeneity_weights(cv: np.ndarray, percentile: float = 80.0) -> tuple[np.ndarray, float]:
    """Sample weights from positive, finite CVs of one training window; (weights, threshold).

    Gao et al. (2012, section 2.2) weight samples by homogeneity: w = 1/CV, min-max scaled to
    [0, 1] (the most homogeneous sample gets 1, the least 0), and halved for the samples whose
    CV is at or above the `percentile`-th CV of the window (the threshold), which pyDMS calls
    heterogeneous. A single sample, or equal CVs, get weight 1.
    """
    cv = np.asarray(cv, dtype=np.float64)
    if cv.size == 0:
        return np.empty(0), math.nan
    if not (np.isfinite(cv).all() and (cv > 0).all()):
        raise ValueError("homogeneity weights need positive, finite CVs")
    threshold = float(np.percentile(cv, percentile))
    inv = 1.0 / cv
    span = inv.max() - inv.min()
    if not span > 0:
        return np.ones_like(inv), threshold
    weights = (inv - inv.min()) / span
    return np.where(cv >= threshold, weights / 2.0, weights), threshold


def _coarse_samples(
    lst_c: np.ndarray, bands: np.ndarray, factor: int, chunk_rows: int
) -> _CoarseSamples:
    """Aggregate predictors; a sample is a coarse pixel with LST, features and a positive finite
    CV (as in pyDMS: a perfectly uniform block, often a fill value, has no finite 1/CV weight)."""
    mean, std = _block_stats(bands, factor, chunk_rows)
    cv = coefficient_of_variation(mean, std)
    mask = np.isfinite(lst_c) & np.isfinite(mean).all(axis=-1) & np.isfinite(cv) & (cv > 0)
    return _CoarseSamples(mask, mean.astype(np.float32), cv)


def _train_arrays(
    samples: _CoarseSamples,
    lst_c: np.ndarray,
    percentile: float,
    rows: slice = slice(None),
    cols: slice = slice(None),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Features, targets, homogeneity weights and CV threshold of the samples in a window (the
    threshold is the window's own, as in pyDMS)."""
    mask = samples.mask[rows, cols]
    weights, threshold = homogeneity_weights(samples.cv[rows, cols][mask], percentile)
    return samples.features[rows, cols][mask], lst_c[rows, cols][mask], weights, threshold


def moving_windows(
    h: int, w: int, size: int, extension: float
) -> list[tuple[tuple[slice, slice], tuple[slice, slice]]]:
    """(prediction window, sampling window) pairs, as coarse (rows, cols) slices, of square
    windows of `size` pixels tiling an (h, w) grid (edge windows smaller); each sampling window
    is its prediction window widened by `extension` * size per side (Gao et al. 2012, 2.3),
    truncated to whole pixels and to the grid."""
    ext = extension * size

    def widen(start: int, stop: int, n: int) -> slice:
        return slice(max(0, math.floor(start - ext)), min(n, math.floor(stop + ext)))

    out = []
    for r in range(0, h, size):
        for c in range(0, w, size):
            r1, c1 = min(h, r + size), min(w, c + size)
            out.append(
                ((slice(r, r1), slice(c, c1)), (widen(r, r + size, h), widen(c, c + size, w)))
            )
    return out


def _local_prediction(
    lst_c: np.ndarray, bands: np.ndarray, factor: int, samples: _CoarseSamples, cfg: DmsConfig
) -> tuple[np.ndarray, int]:
    """Moving-window models, each fitted on its sampling window and applied to its prediction
    window's fine pixels. Returns float32 (H, W) (NaN where no model: a window with fewer than
    `min_samples_leaf` samples gets none) and the number of local models fitted."""
    h, w = lst_c.shape
    out = np.full(bands.shape[1:], np.nan, dtype=np.float32)
    windows = moving_windows(h, w, cfg.moving_window, cfg.window_extension)

    def run(item: tuple[int, tuple[tuple[slice, slice], tuple[slice, slice]]]) -> bool:
        k, ((rows, cols), (s_rows, s_cols)) = item
        if samples.mask[s_rows, s_cols].sum() < max(2, cfg.min_samples_leaf):
            return False
        x, y, wt, _ = _train_arrays(samples, lst_c, cfg.cv_threshold_percentile, s_rows, s_cols)
        seed = int(np.random.SeedSequence(cfg.seed, spawn_key=(1, k)).generate_state(1)[0])
        bag = fit_bag(x, y, wt, cfg.local_leaves, cfg, seed, n_jobs=1)
        fine_rows = slice(rows.start * factor, rows.stop * factor)
        fine_cols = slice(cols.start * factor, cols.stop * factor)
        out[fine_rows, fine_cols] = predict_fine(
            bag, bands[:, fine_rows, fine_cols], cfg.chunk_rows, n_jobs=1
        )
        return True

    fitted = thread_map(run, enumerate(windows), cfg.n_jobs)
    return out, int(sum(fitted))


def _keys_kernel(s: np.ndarray) -> np.ndarray:
    """Keys (1981) cubic convolution kernel with a = -0.5."""
    s = np.abs(s)
    a = _KEYS_A
    near = ((a + 2.0) * s - (a + 3.0)) * s * s + 1.0
    far = ((a * s - 5.0 * a) * s + 8.0 * a) * s - 4.0 * a
    return np.where(s <= 1.0, near, np.where(s < 2.0, far, 0.0))


def _cubic_convolution_axis(arr: np.ndarray, factor: int, axis: int) -> np.ndarray:
    """Upsample one axis by `factor` with cubic convolution (edges replicated)."""
    a = np.moveaxis(arr, axis, -1)
    n = a.shape[-1]
    pad = np.pad(a, [(0, 0)] * (a.ndim - 1) + [(2, 2)], mode="edge")
    out = np.empty((*a.shape[:-1], n * factor))
    for j in range(factor):
        x = (j + 0.5) / factor - 0.5  # fine pixel centre, in coarse pixels from the centre
        base = math.floor(x)
        acc = np.zeros(a.shape)
        for m in range(-1, 3):  # the four coarse neighbours base-1 .. base+2
            acc += _keys_kernel(np.array(x - base - m)) * pad[..., base + m + 2 : base + m + 2 + n]
        out[..., j::factor] = acc
    return np.moveaxis(out, -1, axis)


def cubic_convolution(coarse: np.ndarray, factor: int) -> np.ndarray:
    """Cubic convolution (Keys 1981, a = -0.5; GDAL's "cubic") of a coarse (h, w) field at the
    centres of the nested (h*factor, w*factor) fine grid; float64.

    The interpolation pyDMS uses for its residual and blending weights: it passes through the
    coarse values like the cubic B-spline (`baselines.bicubic`) but with a compact kernel, so it
    overshoots less on noisy fields. Edges are replicated; NaN pixels are filled by their nearest
    valid neighbour so they do not spread, and fine pixels under a NaN coarse pixel are NaN.
    """
    arr = check_coarse(coarse)
    factor = check_factor(factor)
    invalid = ~np.isfinite(arr)
    if invalid.all():
        return np.full((arr.shape[0] * factor, arr.shape[1] * factor), np.nan)
    if invalid.any():
        arr = fill_nearest(arr)
    fine = _cubic_convolution_axis(_cubic_convolution_axis(arr, factor, 0), factor, 1)
    if invalid.any():
        fine[repeat_blocks(invalid, factor)] = np.nan
    return fine


def coarse_residual(lst_c: np.ndarray, pred: np.ndarray, factor: int) -> np.ndarray:
    """T_c - (mean T^4)^(1/4) of a fine prediction over its finite pixels, per coarse pixel
    (NaN where undefined): the residual in radiance space, as a coarse sensor aggregates."""
    return lst_c - block_mean_t4(pred, factor, min_valid=1e-9).astype(np.float64)


def local_weights(res_local: np.ndarray, res_global: np.ndarray) -> np.ndarray:
    """Weight of the local model per coarse pixel, 1/r_l^2 / (1/r_l^2 + 1/r_g^2) (Gao et al.
    2012, section 2.3): the model that reproduces the coarse LST better gets more weight. 0
    where there is no local prediction, 0.5 where neither residual is defined; residuals are
    floored at 1e-6 K so an exact model does not divide by zero."""
    inv_l = np.maximum(np.abs(res_local), _MIN_RESIDUAL) ** -2.0
    inv_g = np.maximum(np.abs(res_global), _MIN_RESIDUAL) ** -2.0
    w_local = inv_l / (inv_l + inv_g)
    w_local = np.where(np.isfinite(inv_g), w_local, 0.5)
    return np.where(np.isfinite(inv_l), w_local, np.where(np.isfinite(inv_g), 0.0, 0.5))


def blend(lst_c: np.ndarray, local: np.ndarray, glob: np.ndarray, factor: int) -> np.ndarray:
    """Blend local and global fine predictions in T^4 space with `local_weights`, interpolated
    to the fine grid by cubic convolution and clipped to [0, 1]; global where local is NaN."""
    weights = local_weights(
        coarse_residual(lst_c, local, factor), coarse_residual(lst_c, glob, factor)
    )
    wl = np.clip(cubic_convolution(weights, factor), 0.0, 1.0)
    wl = np.where(np.isfinite(local), wl, 0.0)
    loc4 = np.nan_to_num(local.astype(np.float64) ** 4)
    glob4 = glob.astype(np.float64) ** 4
    return ((wl * loc4 + (1.0 - wl) * glob4) ** 0.25).astype(np.float32)


def correct_residual(
    lst_c: np.ndarray, pred: np.ndarray, factor: int, iterations: int = 1
) -> np.ndarray:
    """Residual correction (Gao et al. 2012, section 2.4): add the coarse residual in radiance
    space (`coarse_residual`), interpolated by `cubic_convolution`, `iterations` times.

    Exact (the coarse T^4 means are restored) where the prediction is uniform in each block and
    the residual uniform over the grid; otherwise an interpolant does not preserve block means,
    so one pass leaves a small residual that further passes shrink.
    """
    for _ in range(iterations):
        pred = pred + cubic_convolution(coarse_residual(lst_c, pred, factor), factor)
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
    Sharpener (Gao et al. 2012); return float32 (H, W) in K. `settings` are `DmsConfig` fields.

    Bagged leaf-linear regression trees are fitted on the homogeneity-weighted coarse pixels
    and applied at fine scale; with `moving_window` > 0, local models on windows of that many
    coarse pixels are blended with the global one by their coarse residuals. The residual to the
    coarse LST (in T^4 aggregation) is interpolated by cubic convolution and added
    (`residual_iterations` passes; the paper uses one). NaN where any fine predictor or the
    coarse LST is NaN; coarse NaN pixels are not used for training. `n_jobs` threads (-1: all
    available CPUs) fit the trees and predict row chunks of `chunk_rows` fine rows; the result
    depends on neither. If `info` is a dict it receives diagnostics.
    """
    cfg = DmsConfig(**settings)
    lst_c = check_coarse(lst_coarse)
    factor = check_factor(factor)
    bands = _as_bands(predictors_fine, lst_c.shape, factor)
    samples = _coarse_samples(lst_c, bands, factor, cfg.chunk_rows)
    x, y, w, threshold = _train_arrays(samples, lst_c, cfg.cv_threshold_percentile)
    if len(y) < 2:
        raise ValueError(f"DMS needs at least 2 coarse training pixels, got {len(y)}")
    seed = int(np.random.SeedSequence(cfg.seed).generate_state(1)[0])
    bag = fit_bag(x, y, w, cfg.global_leaves, cfg, seed, cfg.n_jobs)
    pred = predict_fine(bag, bands, cfg.chunk_rows, cfg.n_jobs)
    n_local = 0
    if cfg.moving_window > 0:
        local, n_local = _local_prediction(lst_c, bands, factor, samples, cfg)
        if n_local:
            pred = blend(lst_c, local, pred, factor)
    rms_before = _rms(coarse_residual(lst_c, pred, factor))
    if cfg.residual_correction:
        pred = correct_residual(lst_c, pred, factor, cfg.residual_iterations)
    pred = pred.astype(np.float32, copy=False)  # the product, as the diagnostics see it
    pred[repeat_blocks(~np.isfinite(lst_c), factor)] = np.nan
    rms_after = _rms(coarse_residual(lst_c, pred, factor))
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
            cv_threshold=threshold,
            residual_rms_before=rms_before,
            residual_rms_after=rms_after,
        )
    return pred
