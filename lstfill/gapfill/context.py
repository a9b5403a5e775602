"""Gap-filling with scene context: a U-Net that reads the acquisition's own visible LST.

Kustura et al.'s patch CNN predicts a pixel's LST from covariates alone, so everything it knows
about the day's weather must be added afterwards by a residual correction. This model instead
receives, for the whole scene, what the acquisition itself shows: its visible LST as an anomaly
from the pixel's persistent pattern (`History.pattern`), the visibility mask, multi-scale
normalised-convolution interpolations of that anomaly (Knutsson & Westin 1993), a per-scene
ridge regression of the visible anomaly on the pattern and covariates (the day's own contrast
and lapse rate), the nearest earlier/later clear anomaly of each pixel from other acquisitions
of the same day/night class, the pattern itself and the covariates of a `FeatureSet`. It
predicts the standardised anomaly at every pixel; the LST is the scene offset (median visible LST
minus pattern) plus the pattern plus the anomaly.

Why a mask channel and precomputed interpolations rather than partial convolutions (Liu et al.
2018, "Image inpainting for irregular holes using partial convolutions"): the gaps here are large
(clouds span tens of pixels) and training scenes are few, so a network that has to propagate
context across a gap through many masked layers learns slowly; the normalised convolutions hand
it the context at 2-16 px scales with their support (how much visible data backs each value),
and the U-Net (plus a linear 1x1 path from the inputs) learns how to weigh them against the
covariates and the temporal neighbours. The mask channel tells it which inputs are observations.

Training imitates the evaluation protocol: a training acquisition's clear pixels are hidden under
the real cloud mask of another acquisition (randomly flipped and shifted), and a Huber loss is
taken on the hidden pixels (plus a small weight on the visible ones, so that the raw output is
sensible there too; the product keeps the observations at visible pixels). Huber rather than
L2 because MODIS/ECOSTRESS cloud masks miss some cloud edges, whose cold outliers should not
dominate; rather than L1 because the evaluation scores RMSE.

Leakage: `fill` reads only the series it is given, whose target pixels to be filled are NaN; the
target's own LST enters only through its visible pixels. During `fit` the temporal neighbours
and the pattern come from the `history_allowed` acquisitions only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from scipy import ndimage
from torch import nn
from torch.utils.data import Dataset

from lstfill.device import resolve_device
from lstfill.errors import LstfillError
from lstfill.gapfill.features import (
    FeatureSet,
    History,
    Normaliser,
    categorical_stack,
    check_features,
    is_daytime,
    numeric_stack,
)
from lstfill.gapfill.series import FillResult, LstSeries
from lstfill.training.loop import TrainResult
from lstfill.training.loop import fit as train_fit
from lstfill.training.rng import seed_everything
from lstfill.training.settings import TrainConfig

MODEL_NAME = "context_unet"
# Support (G*m) below which a normalised-convolution value is blended toward 0 (the scene mean
# anomaly): w = G*m / (G*m + EPS), as in lstfill.gapfill.residuals.
_SUPPORT_EPS = 0.05
# Distance-to-visible bin edges (px) of the calibrated 90 % half-width.
_CAL_EDGES = (1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 35.0, 60.0, math.inf)
_CAL_MIN_SAMPLES = 50


# --------------------------------------------------------------------------- network


def _group_norm(channels: int) -> nn.GroupNorm:
    groups = math.gcd(channels, 8)
    return nn.GroupNorm(groups, channels)


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, dropout: float) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, 3, padding=1),
            _group_norm(cout),
            nn.SiLU(),
            nn.Conv2d(cout, cout, 3, padding=1),
            _group_norm(cout),
            nn.SiLU(),
        ]
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


class ContextUNet(nn.Module):
    """A small U-Net from the context channels (B, C, H, W) to the anomaly (B, 1, H, W).

    Any H, W: the input is padded (replicate) to a multiple of 2**depth and the output cropped
    back. A linear 1x1 path from the inputs is added to the U-Net's output so that the
    interpolated anomalies pass straight through at initialisation and the network learns a
    correction to them.
    """

    def __init__(
        self, in_channels: int, base: int = 32, depth: int = 3, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if depth < 1 or base < 1:
            raise ValueError(f"depth and base must be >= 1, got {depth}, {base}")
        self.depth = depth
        widths = [base * 2**i for i in range(depth + 1)]
        self.enc = nn.ModuleList()
        cin = in_channels
        for w in widths[:-1]:
            self.enc.append(_DoubleConv(cin, w, 0.0))
            cin = w
        self.bottom = _DoubleConv(widths[-2], widths[-1], dropout)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in range(depth - 1, -1, -1):
            self.up.append(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2))
            self.dec.append(_DoubleConv(2 * widths[i], widths[i], 0.0))
        self.head = nn.Conv2d(widths[0], 1, 1)
        self.linear = nn.Conv2d(in_channels, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = 2**self.depth
        ph, pw = (-h) % m, (-w) % m
        xp = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
        skips = []
        y = xp
        for block in self.enc:
            y = block(y)
            skips.append(y)
            y = F.max_pool2d(y, 2)
        y = self.bottom(y)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips), strict=True):
            y = dec(torch.cat([up(y), skip], dim=1))
        out = self.head(y) + self.linear(xp)
        return out[..., :h, :w]


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class ContextConfig:
    """Hyper-parameters of the context model (network, inputs, training, inference)."""

    base: int = 32
    depth: int = 3
    dropout: float = 0.0
    crop: int = 64
    # Normalised-convolution scales (px) of the visible anomaly.
    sigmas: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0)
    neighbours: bool = True
    # Add a channel with a per-scene ridge regression of the visible anomaly on the pattern
    # and the numeric covariates (the day's own contrast and lapse rate).
    scene_regression: bool = True
    ridge: float = 1.0
    neighbour_tau_days: float = 3.0
    neighbour_max_days: float = 16.0
    # Acquisitions with less clear land than this are not used as training targets.
    min_valid: float = 0.5
    visible_weight: float = 0.1
    huber_delta: float = 1.0
    # Share of training samples whose gaps are synthetic blobs instead of a donor's clouds.
    synthetic_mask_share: float = 0.0
    epochs: int = 40
    samples_per_epoch: int = 256
    batch_size: int = 16
    learning_rate: float = 2e-3
    weight_decay: float = 1e-5
    patience: int = 8
    lr_patience: int = 3
    val_samples: int = 4
    val_crop: int = 256
    # Average the prediction over the 8 flips/rotations of the input (test-time augmentation).
    tta: bool = True
    tile: int = 256
    overlap: int = 32
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigmas", tuple(float(s) for s in self.sigmas))
        if self.crop < 2**self.depth or self.tile <= 2 * self.overlap:
            raise ValueError("crop must be >= 2**depth and tile > 2 * overlap")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["sigmas"] = list(self.sigmas)
        return d


# --------------------------------------------------------------------------- input channels


def _support(mask: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(mask.astype(np.float32), sigma, mode="constant", cval=0.0)


def normalised_convolution(
    values: np.ndarray, mask: np.ndarray, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian normalised convolution of `values` known at `mask`: (estimate, support).

    estimate = G*(v m) / G*m, blended toward 0 where the support G*m is small (few known
    pixels nearby), so far from any observation it falls back to the scene mean anomaly.
    """
    support = _support(mask, sigma)
    num = ndimage.gaussian_filter(
        np.where(mask, values, 0.0).astype(np.float32), sigma, mode="constant", cval=0.0
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        est = np.where(support > 1e-6, num / np.maximum(support, 1e-12), 0.0)
    blend = support / (support + _SUPPORT_EPS)
    return (est * blend).astype(np.float32), support.astype(np.float32)


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
        est, sup = normalised_convolution(anom, visible, s)
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


# --------------------------------------------------------------------------- training data


@dataclass
class _Prepared:
    """One training acquisition: its LST-independent channels and its observation."""

    static: np.ndarray  # (Cs, H, W)
    regressors: np.ndarray  # (K, H, W) view of static
    pattern: np.ndarray
    lst: np.ndarray
    valid: np.ndarray


def _transform_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A donor's gap mask randomly flipped and cyclically shifted (clouds elsewhere)."""
    m = mask
    if rng.random() < 0.5:
        m = m[::-1]
    if rng.random() < 0.5:
        m = m[:, ::-1]
    h, w = m.shape
    return np.roll(m, (int(rng.integers(h)), int(rng.integers(w))), axis=(0, 1))


def _blob_mask(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Synthetic cloud-like gaps: smoothed noise above a random quantile (20-70 % covered)."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), rng.uniform(2.0, 8.0), mode="wrap")
    return noise > np.quantile(noise, 1.0 - rng.uniform(0.2, 0.7))


def _sample(
    prep: _Prepared,
    gaps: np.ndarray,
    normaliser: Normaliser,
    cfg: ContextConfig,
    visible_weight: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Full-scene (inputs, [target, weight]) of a prepared acquisition under artificial gaps."""
    hidden = prep.valid & gaps
    visible = prep.valid & ~hidden
    offset = scene_offset(prep.lst, visible, prep.pattern)
    if offset is None:
        offset = scene_offset(prep.lst, prep.valid, prep.pattern) or 0.0
    x = np.concatenate(
        [
            prep.static,
            lst_channels(prep.lst, visible, prep.pattern, offset, normaliser, cfg, prep.regressors),
        ]
    )
    z = np.where(
        prep.valid, normaliser.target(np.nan_to_num(prep.lst - prep.pattern - offset)), 0.0
    )
    weight = hidden.astype(np.float32) + visible_weight * visible.astype(np.float32)
    return x, np.stack([z.astype(np.float32), weight])


def _crop_box(shape: tuple[int, int], size: int, centre: tuple[int, int]) -> tuple[slice, slice]:
    h, w = shape
    r0 = int(np.clip(centre[0] - size // 2, 0, h - size))
    c0 = int(np.clip(centre[1] - size // 2, 0, w - size))
    return slice(r0, r0 + size), slice(c0, c0 + size)


class GapSamples(Dataset):
    """Training samples generated on the fly: item i is fully determined by (seed, i).

    A sample hides a random prepared acquisition's pixels under a random donor's gaps (flipped
    and shifted), builds the inputs on the full scene (so the normalised convolutions see the
    same context as at prediction), then takes a crop centred near a hidden pixel and applies a
    random flip / rot90. Make the dataset longer than one epoch (and cap batches per epoch) so
    that every epoch draws new samples.
    """

    def __init__(
        self,
        prepared: Sequence[_Prepared],
        donors: Sequence[np.ndarray],
        normaliser: Normaliser,
        cfg: ContextConfig,
        length: int,
        seed: int,
    ) -> None:
        if not prepared:
            raise LstfillError("no training acquisition for the context model")
        self.prepared = list(prepared)
        self.donors = list(donors)
        self.normaliser = normaliser
        self.cfg = cfg
        self.length = length
        self.seed = seed
        h, w = self.prepared[0].lst.shape
        self.size = min(cfg.crop, h, w)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, int(i)])
        hidden = np.zeros(1, dtype=bool)
        for _ in range(10):
            prep = self.prepared[int(rng.integers(len(self.prepared)))]
            if not self.donors or rng.random() < self.cfg.synthetic_mask_share:
                gaps = _blob_mask(prep.lst.shape, rng)
            else:
                gaps = _transform_mask(self.donors[int(rng.integers(len(self.donors)))], rng)
            hidden = prep.valid & gaps
            if hidden.sum() >= 16 and (prep.valid & ~gaps).sum() >= 16:
                break
        x, y = _sample(prep, gaps, self.normaliser, self.cfg, self.cfg.visible_weight)
        rows, cols = np.nonzero(hidden) if hidden.any() else np.nonzero(prep.valid)
        k = int(rng.integers(len(rows)))
        jitter = rng.integers(-self.size // 4, self.size // 4 + 1, size=2)
        rs, cs = _crop_box(prep.lst.shape, self.size, (rows[k] + jitter[0], cols[k] + jitter[1]))
        x, y = x[:, rs, cs], y[:, rs, cs]
        if rng.random() < 0.5:
            x, y = x[:, ::-1], y[:, ::-1]
        if rng.random() < 0.5:
            x, y = x[:, :, ::-1], y[:, :, ::-1]
        k90 = int(rng.integers(4))
        if k90:
            x, y = np.rot90(x, k90, axes=(1, 2)), np.rot90(y, k90, axes=(1, 2))
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))


class _FixedSamples(Dataset):
    def __init__(self, items: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.items[i]


def masked_huber(pred: torch.Tensor, target: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """Weighted Huber loss: target holds [anomaly, weight] channels (B, 2, H, W)."""
    z, w = target[:, 0], target[:, 1]
    loss = F.huber_loss(pred[:, 0], z, reduction="none", delta=delta)
    return (loss * w).sum() / w.sum().clamp_min(1e-6)


# --------------------------------------------------------------------------- filler


def _distance_px(visible: np.ndarray) -> np.ndarray:
    if visible.all() or not visible.any():
        return np.zeros(visible.shape) if visible.any() else np.full(visible.shape, np.inf)
    return ndimage.distance_transform_edt(~visible)


def _calibrate(errors: np.ndarray, distance: np.ndarray) -> list[float]:
    """90 % quantile of |error| per distance bin, non-decreasing with distance; sparse bins
    take the previous bin's value."""
    values: list[float] = []
    lo = 0.0
    overall = float(np.quantile(np.abs(errors), 0.9)) if errors.size else 1.0
    for hi in _CAL_EDGES:
        sel = (distance >= lo) & (distance < hi)
        if sel.sum() >= _CAL_MIN_SAMPLES:
            v = float(np.quantile(np.abs(errors[sel]), 0.9))
        else:
            v = values[-1] if values else overall
        values.append(max(v, values[-1] if values else 0.0, 1e-3))
        lo = hi
    return values


def _dihedral_mean(model: nn.Module, x: torch.Tensor, tta: bool) -> torch.Tensor:
    """model(x), or its mean over the 8 flips/rotations of x (each transformed back)."""
    if not tta:
        return model(x)
    total = torch.zeros(x.shape[0], 1, *x.shape[-2:], dtype=x.dtype, device=x.device)
    for k in range(4):
        for flip in (False, True):
            xi = torch.rot90(x, k, (2, 3))
            xi = xi.flip(3) if flip else xi
            y = model(xi)
            y = y.flip(3) if flip else y
            total += torch.rot90(y, -k, (2, 3))
    return total / 8.0


class ContextFiller:
    """Fills an acquisition's gaps with a `ContextUNet` that reads its visible LST.

    `fit` trains on artificial gaps of the training acquisitions; `fill` predicts a scene.
    """

    def __init__(self, features: FeatureSet, **hyper: Any) -> None:
        self.features = features
        self.cfg = ContextConfig(**hyper)
        self.normaliser: Normaliser | None = None
        self.model: ContextUNet | None = None
        self.in_channels = 0
        self.calibration: list[float] = []

    # -- training -----------------------------------------------------------------------

    def _prepare(
        self, series: LstSeries, t: int, history: History, allowed: np.ndarray
    ) -> _Prepared:
        assert self.normaliser is not None
        pattern = history.pattern(t)
        static = scene_channels(
            series, t, pattern, allowed, self.normaliser, self.features, self.cfg
        )
        return _Prepared(
            static,
            _regressors(static, self.features),
            pattern,
            series.lst[t].copy(),
            series.valid[t].copy(),
        )

    def _fit_normaliser(self, series: LstSeries, train: Sequence[int], history: History) -> None:
        names = _numeric_names(self.features)
        numeric: dict[str, list[np.ndarray]] = {n: [] for n in names}
        target: list[np.ndarray] = []
        for a in train:
            valid = series.valid[a]
            stack = numeric_stack(series, a, names)
            for i, n in enumerate(names):
                numeric[n].append(stack[i][series.land])
            pattern = history.pattern(a)
            offset = scene_offset(series.lst[a], valid, pattern)
            target.append(series.lst[a][valid] - pattern[valid] - offset)
        cats = {n: series.static[n][series.land] for n in self.features.categorical}
        self.normaliser = Normaliser.fit(
            {n: np.concatenate(v) for n, v in numeric.items()}, np.concatenate(target), cats
        )

    def fit(
        self,
        series: LstSeries,
        train_index: Sequence[int],
        val_index: Sequence[int],
        history_allowed: np.ndarray,
        workdir: str | Path,
        *,
        progress: bool = False,
    ) -> TrainResult:
        """Train on artificial gaps of `train_index`, stop early on those of `val_index`.

        `history_allowed` (bool per acquisition) are the acquisitions whose LST may be read for
        the pattern and the temporal neighbours; acquisitions with less than `min_valid` clear
        land are skipped as targets. Use a fresh `workdir` per run (training resumes from it).
        """
        cfg = self.cfg
        check_features(series, self.features)
        allowed = np.asarray(history_allowed, dtype=bool)
        vf = series.valid_fraction()
        train = [int(a) for a in train_index if vf[a] >= cfg.min_valid]
        val = [int(a) for a in val_index if vf[a] >= cfg.min_valid]
        if not train or not val:
            raise LstfillError(
                f"context model needs training and validation acquisitions with >= "
                f"{cfg.min_valid:.0%} clear land (got {len(train)} and {len(val)})"
            )
        history = History(series, allowed)
        self._fit_normaliser(series, train, history)
        assert self.normaliser is not None
        prep_train = [self._prepare(series, a, history, allowed) for a in train]
        prep_val = [self._prepare(series, a, history, allowed) for a in val]
        pool = sorted(set(int(a) for a in train_index) | set(int(a) for a in val_index))
        donors = [~series.valid[d] & series.land for d in pool if 0.02 <= vf[d] <= 0.98]
        n_batches = max(1, cfg.samples_per_epoch // cfg.batch_size)
        train_data = GapSamples(
            prep_train,
            donors,
            self.normaliser,
            cfg,
            n_batches * cfg.batch_size * cfg.epochs,
            cfg.seed,
        )
        val_items = self._validation_items(prep_val, donors)
        self.in_channels = int(val_items[0][0].shape[0])
        seed_everything(cfg.seed)
        self.model = ContextUNet(self.in_channels, cfg.base, cfg.depth, cfg.dropout)
        tcfg = TrainConfig(
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            learning_rate=cfg.learning_rate,
            weight_decay=cfg.weight_decay,
            lr_schedule="plateau",
            lr_patience=cfg.lr_patience,
            patience=cfg.patience,
            seed=cfg.seed,
            device=cfg.device,
            max_batches_per_epoch=n_batches,
        )
        delta = cfg.huber_delta
        result = train_fit(
            self.model,
            train_data,
            _FixedSamples(val_items),
            lambda p, y: masked_huber(p, y, delta),
            tcfg,
            workdir,
            progress=progress,
        )
        self._calibrate(val_items)
        return result

    def _validation_items(
        self, prepared: Sequence[_Prepared], donors: Sequence[np.ndarray]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Fixed artificial gaps (seeded, untransformed donors) on the validation scenes,
        centre-cropped to at most val_crop."""
        assert self.normaliser is not None
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, 7919])
        items = []
        for prep in prepared:
            h, w = prep.lst.shape
            ch, cw = min(h, cfg.val_crop), min(w, cfg.val_crop)
            rs = slice((h - ch) // 2, (h - ch) // 2 + ch)
            cs = slice((w - cw) // 2, (w - cw) // 2 + cw)
            usable = [d for d in donors if (prep.valid & d).sum() >= 16]
            for _ in range(cfg.val_samples):
                if usable:
                    gaps = usable[int(rng.integers(len(usable)))]
                else:
                    gaps = _blob_mask(prep.lst.shape, rng)
                x, y = _sample(prep, gaps, self.normaliser, cfg, cfg.visible_weight)
                items.append(
                    (
                        torch.from_numpy(np.ascontiguousarray(x[:, rs, cs])),
                        torch.from_numpy(np.ascontiguousarray(y[:, rs, cs])),
                    )
                )
        return items

    def _calibrate(self, items: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Half-widths that hold 90 % of the validation errors (K) per distance-to-visible bin."""
        assert self.normaliser is not None
        errors, dists = [], []
        for x, y in items:
            pred = self._predict_anomaly(x.numpy())
            hidden = (y[1] == 1.0).numpy()
            visible = x[self._mask_channel()].numpy() > 0.5
            err = (pred - y[0].numpy()) * self.normaliser.target_std
            errors.append(err[hidden])
            dists.append(_distance_px(visible)[hidden])
        self.calibration = _calibrate(np.concatenate(errors), np.concatenate(dists))

    def _mask_channel(self) -> int:
        """Index (from the end) of the visibility mask among the input channels."""
        return -1 - 2 * len(self.cfg.sigmas) - int(self.cfg.scene_regression)

    # -- prediction ---------------------------------------------------------------------

    def _predict_anomaly(self, x: np.ndarray) -> np.ndarray:
        """Standardised anomaly (H, W) of a (C, H, W) input, tiled with overlap when large."""
        if self.model is None:
            raise LstfillError("the context model is not trained; call fit or from_state first")
        cfg = self.cfg
        device = resolve_device(cfg.device)
        model = self.model.to(device).eval()
        _, h, w = x.shape
        tile, ov = cfg.tile, cfg.overlap
        out = np.zeros((h, w), dtype=np.float64)
        acc = np.zeros((h, w), dtype=np.float64)
        step = tile - 2 * ov
        r_starts = [0] if h <= tile else [*range(0, h - tile, step), h - tile]
        c_starts = [0] if w <= tile else [*range(0, w - tile, step), w - tile]
        with torch.no_grad():
            for r0 in r_starts:
                for c0 in c_starts:
                    rs, cs = slice(r0, min(r0 + tile, h)), slice(c0, min(c0 + tile, w))
                    xt = torch.from_numpy(np.ascontiguousarray(x[:, rs, cs]))[None].to(device)
                    p = _dihedral_mean(model, xt, cfg.tta)[0, 0].cpu().numpy().astype(np.float64)
                    th, tw = p.shape
                    dr = np.minimum(np.arange(th), np.arange(th)[::-1])
                    dc = np.minimum(np.arange(tw), np.arange(tw)[::-1])
                    win = np.minimum(np.minimum.outer(dr, dc) + 1, ov + 1) / (ov + 1)
                    out[rs, cs] += p * win
                    acc[rs, cs] += win
        return (out / acc).astype(np.float32)

    def predict(self, series: LstSeries, t: int) -> tuple[np.ndarray, ContextInputs]:
        """The model's LST (K) at every pixel (visible ones included) and its inputs."""
        if self.normaliser is None:
            raise LstfillError("the context model is not trained; call fit or from_state first")
        check_features(series, self.features)
        history = History(series, np.ones(len(series.times), dtype=bool))
        inputs = context_inputs(series, t, history, self.normaliser, self.features, self.cfg)
        z = self._predict_anomaly(inputs.x)
        lst = inputs.offset + inputs.pattern + self.normaliser.untarget(z)
        return lst.astype(np.float32), inputs

    def fill(self, series: LstSeries, t: int) -> FillResult:
        """Acquisition t gap-filled: observations kept where visible, the model elsewhere on
        land (NaN off land); halfwidth90 from the distance-to-visible calibration."""
        pred, inputs = self.predict(series, t)
        return self.finish(series, t, pred, inputs.visible)

    def finish(
        self, series: LstSeries, t: int, pred: np.ndarray, visible: np.ndarray
    ) -> FillResult:
        """The product from a `predict` output: observations where visible, `pred` elsewhere on
        land, NaN off land, with the calibrated half-widths."""
        lst = np.where(visible, series.lst[t], pred)
        lst = np.where(series.land, lst, np.nan).astype(np.float32)
        return FillResult(lst=lst, halfwidth90=self.halfwidth90(visible, series.land))

    def halfwidth90(self, visible: np.ndarray, land: np.ndarray) -> np.ndarray:
        """Calibrated 90 % half-width by distance to the nearest visible pixel; visible pixels
        get the smallest one (that of gaps next to observations)."""
        if not self.calibration:
            raise LstfillError("the context model is not calibrated")
        dist = _distance_px(visible)
        idx = np.searchsorted(np.asarray(_CAL_EDGES), dist, side="right")
        idx = np.clip(idx, 0, len(self.calibration) - 1)
        hw = np.asarray(self.calibration, dtype=np.float32)[idx]
        return np.where(land, hw, np.nan).astype(np.float32)

    # -- persistence --------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Keyword arguments of `lstfill.training.save_checkpoint` describing this model."""
        if self.model is None or self.normaliser is None:
            raise LstfillError("the context model is not trained")
        cfg = self.cfg
        return {
            "model_name": MODEL_NAME,
            "model_kwargs": {
                "in_channels": self.in_channels,
                "base": cfg.base,
                "depth": cfg.depth,
                "dropout": cfg.dropout,
            },
            "state_dict": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "normalisation": self.normaliser.to_dict(),
            "features": self.features.to_dict(),
            "config": cfg.to_dict(),
            "extra": {"calibration_edges_px": list(_CAL_EDGES), "halfwidth90": self.calibration},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ContextFiller:
        """Rebuild a trained filler from `state()` or a checkpoint read by `load_checkpoint`."""
        if state.get("model_name") != MODEL_NAME:
            raise LstfillError(f"not a {MODEL_NAME} checkpoint: {state.get('model_name')!r}")
        filler = cls(FeatureSet.from_dict(state["features"]), **state["config"])
        filler.normaliser = Normaliser.from_dict(state["normalisation"])
        kw = state["model_kwargs"]
        filler.in_channels = int(kw["in_channels"])
        filler.model = ContextUNet(**kw)
        filler.model.load_state_dict(state["state_dict"])
        filler.model.eval()
        filler.calibration = [float(v) for v in state["extra"]["halfwidth90"]]
        return filler
