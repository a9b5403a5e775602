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

from lstfill.device import resolve_device
from lstfill.errors import LstfillError
from lstfill.gapfill.features import (
    FeatureSet,
    History,
    Normaliser,
    check_features,
    numeric_stack,
)
from lstfill.gapfill.inputs import FillResult, LstSeries
from lstfill.gapfill.method.context_inputs import (
    ContextInputs,
    _numeric_names,
    _regressors,
    context_inputs,
    scene_channels,
    scene_offset,
)
from lstfill.gapfill.method.context_samples import (
    GapSamples,
    _blob_mask,
    _FixedSamples,
    _Prepared,
    _sample,
)
from lstfill.gapfill.model import ContextUNet
from lstfill.training.loop import TrainResult
from lstfill.training.loop import fit as train_fit
from lstfill.training.rng import seed_everything
from lstfill.training.settings import TrainConfig

MODEL_NAME = "context_unet"
# Distance-to-visible bin edges (px) of the calibrated 90 % half-width.
_CAL_EDGES = (1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 35.0, 60.0, math.inf)
_CAL_MIN_SAMPLES = 50


# --------------------------------------------------------------------------- network


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


# --------------------------------------------------------------------------- training data


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
