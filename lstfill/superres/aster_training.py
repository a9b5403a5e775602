"""The SIF-NN-SR variants of the MODIS/ASTER protocol (`lstfill.superres.aster`), trained
self-supervised on the pair set's MODIS, or loaded from their checkpoints.

Training reads the MODIS LST and the aligned MODIS NDVI of the pairs only: one 64x64 patch per
pair, a seeded ~15 % of the pairs (at least 2) held out as validation for early stopping on the
self-supervised loss, normalisation from the training patches. **The models never see ASTER**
(no training target, no early stopping, no statistics, no hyper-parameter choice). Everything is
seeded (split, weight initialisation, crops), so a rerun gives the same models on the same
machine and library versions.

With 36 training pairs and batch 8 an epoch is one pass (5 batches of 32 x 32 coarse-pixel
crops), and EPOCHS = 40 sets the length (early stopping, patience 8, on the self-supervised
validation loss). `quick` (a tiny U-Net, one epoch of one batch) is a smoke test.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from lstfill.method import load_method
from lstfill.raster import fill_nearest
from lstfill.splits import TRAIN, VAL
from lstfill.superres.aster import FACTOR, MTF, Pair
from lstfill.superres.dataset import PatchPairs, normalisation
from lstfill.superres.method import METHODS, Sharpener
from lstfill.superres.model import LossConfig
from lstfill.superres.registration import RegistrationConfig
from lstfill.training.checkpoint import save_checkpoint
from lstfill.training.rng import seed_everything
from lstfill.training.settings import TrainConfig

log = logging.getLogger(__name__)

SEED = 0
# Loss of each trained variant: the paper's alpha and gamma (its shipped SIF-NN-SR1 / SR2
# settings). gamma "patch" (each patch's own coarse LST-NDVI slope, which the demo needs) was
# tried first on these 42 dev pairs and lost to bicubic (2.76 / 2.56 K against 2.46 K), so the
# paper's fixed gains are the benchmark's setting; the 41 holdout pairs were never scored.
VARIANTS: dict[str, dict[str, Any]] = {
    "sifnn1": {"alpha": 0.99, "gamma": -0.5},
    "sifnn2": {"alpha": 0.5, "gamma": -0.25},
}
CHANNELS = (16, 32, 64, 128)
QUICK_CHANNELS = (8, 16)
CROP = 32  # coarse pixels per training crop
EPOCHS = 40
MAX_BATCHES_PER_EPOCH = 5
VAL_SHARE = 0.15
MIN_VAL = 2
# Prediction shifts the NDVI by the sub-pixel offset (0.5 fine px steps, at most 1 px) that best
# fits the coarse LST (`lstfill.superres.registration`; self-supervised, grid fixed a priori).
REGISTRATION = RegistrationConfig(max_shift=1.0, step=0.5)
TRAIN_SETTINGS: dict[str, Any] = {
    "batch_size": 8,
    "learning_rate": 1e-3,
    "lr_schedule": "plateau",
    "lr_patience": 3,
    "patience": 8,
    "seed": SEED,
    "device": "cpu",
}


def patch_pairs(pairs: list[Pair], seed: int) -> PatchPairs:
    """One patch per pair (LST, aligned NDVI); a seeded ~VAL_SHARE of the pairs is VAL."""
    n = len(pairs)
    if n < 2:
        raise ValueError("training needs at least 2 pairs (one to train, one to validate)")
    n_val = min(max(MIN_VAL, round(VAL_SHARE * n)), n - 1)
    split = np.full(n, TRAIN, dtype=np.int8)
    split[np.random.default_rng(seed).choice(n, n_val, replace=False)] = VAL
    return PatchPairs(
        lst=np.stack([fill_nearest(p.lst.data) for p in pairs]).astype(np.float32),
        ndvi=np.stack([fill_nearest(p.ndvi_aligned) for p in pairs]).astype(np.float32),
        split=split,
        date=np.datetime64("2000-01-01", "D") + np.arange(n).astype("timedelta64[D]"),
        origin=np.zeros((n, 2), dtype=np.int32),
        factor=FACTOR,
    )


def train_config(quick: bool) -> TrainConfig:
    if quick:
        return TrainConfig(epochs=1, max_batches_per_epoch=1, **TRAIN_SETTINGS)
    return TrainConfig(epochs=EPOCHS, max_batches_per_epoch=MAX_BATCHES_PER_EPOCH, **TRAIN_SETTINGS)


def loss_config(variant: str) -> LossConfig:
    return LossConfig(variant=variant, mtf=MTF, **VARIANTS[variant])


def train_variant(
    variant: str, pp: PatchPairs, cfg: TrainConfig, channels: tuple[int, ...], out: Path
) -> tuple[Sharpener, dict[str, Any]]:
    """Train one variant from a fresh work directory, save it to `out`; (model, info)."""
    seed_everything(SEED)
    model = Sharpener(
        loss_config(variant),
        factor=FACTOR,
        channels=channels,
        training=cfg,
        crop=CROP,
        registration=REGISTRATION,
    )
    norm = normalisation(pp)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"sr_{variant}_") as tmp:
        result = model.fit((pp, norm), tmp, progress=False)
    seconds = time.perf_counter() - start
    info = {
        "seconds": seconds,
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "stopped_early": result.stopped_early,
        "checkpoint": str(out),
    }
    model.config = {"benchmark": "sr_modis_aster", "training": dataclasses.asdict(cfg)}
    save_checkpoint(out, **model.state())
    return model, info


def train_models(
    pairs: list[Pair], out_json: Path, quick: bool
) -> tuple[dict[str, Sharpener], dict[str, Any]]:
    """Every variant trained on `pairs` and saved next to `out_json` (OUT_stem_<variant>.pt):
    (models by method name, what the training was)."""
    pp = patch_pairs(pairs, SEED)
    cfg = train_config(quick)
    channels = QUICK_CHANNELS if quick else CHANNELS
    models, infos = {}, {}
    for variant in VARIANTS:
        path = out_json.with_name(f"{out_json.stem}_{variant}.pt")
        models[f"model_{variant}"], infos[variant] = train_variant(variant, pp, cfg, channels, path)
        info = infos[variant]
        log.info(
            "trained %s: %.0f s, %s epochs (best %s, val loss %.5g) -> %s",
            variant,
            info["seconds"],
            info["epochs_run"],
            info["best_epoch"],
            info["best_val_loss"],
            path,
        )
    val_ids = [p.id for p, s in zip(pairs, pp.split, strict=True) if s == VAL]
    return models, {
        "trained": True,
        "channels": list(channels),
        "crop": CROP,
        "registration": dataclasses.asdict(REGISTRATION),
        "train": dataclasses.asdict(cfg),
        "val_ids": val_ids,
        "normalisation": normalisation(pp),
        "variants": infos,
    }


def load_models(paths: list[Path]) -> tuple[dict[str, Sharpener], dict[str, Any]]:
    """Saved variants by method name (model_<variant>, then _<file stem> on a clash) and where
    they came from; a checkpoint that stores no NDVI registration gets `REGISTRATION`."""
    models: dict[str, Sharpener] = {}
    sources: dict[str, str] = {}
    for path in paths:
        model = load_method(path, METHODS)
        if model.registration is None:
            model.registration = REGISTRATION
        name = f"model_{model.loss_cfg.variant}"
        if name in models:
            name = f"{name}_{path.stem}"
        models[name], sources[name] = model, str(path)
    regs = {k: dataclasses.asdict(m.registration) for k, m in models.items() if m.registration}
    return models, {"trained": False, "checkpoints": sources, "registration": regs}
