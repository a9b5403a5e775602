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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

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
from lstfill.gapfill.method.context_inference import (
    CAL_EDGES,
    calibrate,
    distance_px,
    halfwidth90,
    predict_anomaly,
)
from lstfill.gapfill.method.context_inputs import (
    ContextInputs,
    _numeric_names,
    _regressors,
    context_inputs,
    scene_channels,
    scene_offset,
)
from lstfill.gapfill.method.context_samples import (
    FixedSamples,
    GapSamples,
    _Prepared,
    validation_items,
)
from lstfill.gapfill.model import ContextUNet
from lstfill.training.loop import TrainResult
from lstfill.training.loop import fit as train_fit
from lstfill.training.rng import seed_everything
from lstfill.training.settings import TrainConfig

MODEL_NAME = "context_unet"
# The context model's training where it departs from the shared loop's defaults
# ($defs/training): few scenes, so small batches of large crops, a faster start, a plateau
# schedule and more patience. Options given to the model override these, one by one.
TRAINING: dict[str, Any] = {
    "epochs": 40,
    "batch_size": 16,
    "learning_rate": 2e-3,
    "weight_decay": 1e-5,
    "lr_schedule": "plateau",
    "lr_patience": 3,
    "patience": 8,
}


@dataclass(frozen=True)
class ContextConfig:
    """Settings of the context model: its network, inputs, training samples and inference, and
    its `training` (the shared loop's options; given as a mapping, its options go on top of
    `TRAINING`)."""

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
    # Training samples drawn per epoch, new ones every epoch (it sets the epoch's batches:
    # training.max_batches_per_epoch is samples_per_epoch // training.batch_size).
    samples_per_epoch: int = 256
    val_samples: int = 4
    val_crop: int = 256
    # Average the prediction over the 8 flips/rotations of the input (test-time augmentation).
    tta: bool = True
    tile: int = 256
    overlap: int = 32
    training: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(**TRAINING))

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigmas", tuple(float(s) for s in self.sigmas))
        if isinstance(self.training, Mapping):  # options on top of TRAINING
            training = TrainConfig.from_dict({**TRAINING, **self.training})
            object.__setattr__(self, "training", training)
        if self.crop < 2**self.depth or self.tile <= 2 * self.overlap:
            raise ValueError("crop must be >= 2**depth and tile > 2 * overlap")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["sigmas"] = list(self.sigmas)
        return d


def _sectioned(config: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint's config in `ContextConfig.to_dict`'s layout: those written before the
    training options had a section of their own list them at the top."""
    d = dict(config)
    if "training" not in d:
        options = {f.name for f in dataclasses.fields(TrainConfig)}
        d["training"] = {k: d.pop(k) for k in list(d) if k in options}
    return d


def masked_huber(pred: torch.Tensor, target: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """Weighted Huber loss: target holds [anomaly, weight] channels (B, 2, H, W)."""
    z, w = target[:, 0], target[:, 1]
    loss = F.huber_loss(pred[:, 0], z, reduction="none", delta=delta)
    return (loss * w).sum() / w.sum().clamp_min(1e-6)


class ContextFiller:
    """Fills an acquisition's gaps with a `ContextUNet` that reads its visible LST.

    `fit` trains on artificial gaps of the training acquisitions; `fill` predicts a scene.
    `hyper` are `ContextConfig`'s fields.
    """

    name: ClassVar[str] = MODEL_NAME

    def __init__(self, features: FeatureSet, **hyper: Any) -> None:
        self.features = features
        self.cfg = ContextConfig(**hyper)
        self.normaliser: Normaliser | None = None
        self.model: ContextUNet | None = None
        self.in_channels = 0
        self.calibration: list[float] = []

    # -- training -----------------------------------------------------------------------

    def _prepare(
        self,
        series: LstSeries,
        t: int,
        history: History,
        allowed: np.ndarray,
        unscored: np.ndarray | None = None,
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
            None if unscored is None else ~unscored,
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
        data: tuple[LstSeries, Sequence[int], Sequence[int], np.ndarray]
        | tuple[LstSeries, Sequence[int], Sequence[int], np.ndarray, np.ndarray],
        workdir: str | Path,
        *,
        progress: bool = True,
    ) -> TrainResult:
        """Train on artificial gaps of the training acquisitions, stop early on those of the
        validation ones, then calibrate the half-widths on the latter.

        `data` is (series, train_index, val_index, history_allowed[, unscored]):
        `history_allowed` (bool per acquisition) are the acquisitions whose LST may be read for
        the pattern and the temporal neighbours; `unscored` (bool per pixel, optional) are
        pixels never used as a loss target or calibration error (the test blocks of a spatial
        split); they remain inputs. Acquisitions with less than `min_valid` clear land are
        skipped as targets. Use a fresh `workdir` per run (training resumes from it).
        """
        series, train_index, val_index, history_allowed = data[:4]
        unscored = np.asarray(data[4], dtype=bool) if len(data) > 4 else None
        cfg, training = self.cfg, self.cfg.training
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
        prep_train = [self._prepare(series, a, history, allowed, unscored) for a in train]
        prep_val = [self._prepare(series, a, history, allowed, unscored) for a in val]
        pool = sorted(set(int(a) for a in train_index) | set(int(a) for a in val_index))
        donors = [~series.valid[d] & series.land for d in pool if 0.02 <= vf[d] <= 0.98]
        # the samples are drawn anew every epoch: one long dataset, `n_batches` an epoch
        n_batches = max(1, cfg.samples_per_epoch // training.batch_size)
        train_data = GapSamples(
            prep_train,
            donors,
            self.normaliser,
            cfg,
            n_batches * training.batch_size * training.epochs,
            training.seed,
        )
        val_items = validation_items(prep_val, donors, self.normaliser, cfg)
        self.in_channels = int(val_items[0][0].shape[0])
        seed_everything(training.seed)
        self.model = ContextUNet(self.in_channels, cfg.base, cfg.depth, cfg.dropout)
        delta = cfg.huber_delta
        result = train_fit(
            self.model,
            train_data,
            FixedSamples(val_items),
            lambda p, y: masked_huber(p, y, delta),
            dataclasses.replace(training, max_batches_per_epoch=n_batches),
            workdir,
            progress=progress,
        )
        self._calibrate(val_items)
        return result

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
            dists.append(distance_px(visible)[hidden])
        self.calibration = calibrate(np.concatenate(errors), np.concatenate(dists))

    def _mask_channel(self) -> int:
        """Index (from the end) of the visibility mask among the input channels."""
        return -1 - 2 * len(self.cfg.sigmas) - int(self.cfg.scene_regression)

    # -- prediction ---------------------------------------------------------------------

    def _predict_anomaly(self, x: np.ndarray) -> np.ndarray:
        """Standardised anomaly (H, W) of a (C, H, W) input, tiled with overlap when large."""
        if self.model is None:
            raise LstfillError("the context model is not trained; call fit or from_state first")
        cfg = self.cfg
        device = resolve_device(cfg.training.device)
        return predict_anomaly(
            self.model, x, tile=cfg.tile, overlap=cfg.overlap, tta=cfg.tta, device=device
        )

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
        return halfwidth90(self.calibration, visible, land)

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
            "extra": {"calibration_edges_px": list(CAL_EDGES), "halfwidth90": self.calibration},
        }

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], device: str | torch.device | None = None
    ) -> ContextFiller:
        """Rebuild a trained filler from `state()` or a checkpoint read by `load_checkpoint`;
        it predicts on `device` ("auto", "cpu" or "cuda"), by default its training device."""
        if state.get("model_name") != MODEL_NAME:
            raise LstfillError(f"not a {MODEL_NAME} checkpoint: {state.get('model_name')!r}")
        hyper = _sectioned(state["config"])
        if device is not None:
            hyper["training"] = {**hyper["training"], "device": str(device)}
        filler = cls(FeatureSet.from_dict(state["features"]), **hyper)
        filler.normaliser = Normaliser.from_dict(state["normalisation"])
        kw = state["model_kwargs"]
        filler.in_channels = int(kw["in_channels"])
        filler.model = ContextUNet(**kw)
        filler.model.load_state_dict(state["state_dict"])
        filler.model.eval()
        filler.calibration = [float(v) for v in state["extra"]["halfwidth90"]]
        return filler
