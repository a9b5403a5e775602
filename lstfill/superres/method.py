"""Train SIF-NN-SR on patch pairs and sharpen whole scenes tile by tile.

`Sharpener` bundles the U-Net, its normalisation statistics, the loss settings and the
resolution factor. Training uses the shared loop (`lstfill.training.fit`: device auto, early
stopping on the validation loss, resume) on random crops of the training patches with random
flips and quarter turns: the loss is self-supervised, so validation is the same loss on the
validation days' patches.

Prediction runs over scenes of any size in overlapping tiles blended with linear ramps, so the
compute memory depends on the tile size, not the scene; only the output and the weight sums
grow with the scene. Invalid input (cloudy coarse pixels, missing NDVI) is filled with the
nearest valid value for the network and NaN again in the product. With `registration`, the NDVI
is first shifted to the sub-pixel offset that best fits the coarse LST
(`lstfill.superres.registration`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from scipy import ndimage

from lstfill.device import resolve_device
from lstfill.errors import InputError
from lstfill.raster import fill_nearest
from lstfill.splits import TRAIN, VAL
from lstfill.superres import psf
from lstfill.superres.dataset import PatchPairDataset, PatchPairs
from lstfill.superres.model import LossConfig, SifLoss, SrUNet, WithGuide
from lstfill.superres.registration import RegistrationConfig, register_ndvi
from lstfill.tiling import predict_tiled
from lstfill.training.loop import TrainResult, fit
from lstfill.training.settings import TrainConfig

log = logging.getLogger(__name__)
MODEL_NAME = "sifnn_unet"
DEVICE_KEY = "superres.training.device"


@dataclass
class TileConfig:
    """Tiling of whole-scene prediction (coarse pixels)."""

    tile: int = 64
    overlap: int = 8


class Sharpener:
    """SIF-NN-SR behind the jobs' method interface (`lstfill.method.Method`): the U-Net with
    everything needed to train it (`training`, `crop`), apply it and store it."""

    name: ClassVar[str] = MODEL_NAME

    def __init__(
        self,
        loss: LossConfig,
        factor: int = 4,
        channels: tuple[int, ...] = (16, 32, 64, 128),
        residual: bool = True,
        norm: dict[str, float] | None = None,
        tiles: TileConfig | None = None,
        training: TrainConfig | None = None,
        crop: int | None = None,
        registration: RegistrationConfig | None = None,
    ) -> None:
        self.training = training or TrainConfig()
        self.registration = registration  # NDVI shift search before prediction; None = off
        self.crop = crop
        self.config: dict[str, Any] = {}  # stored in the checkpoint (the job's config)
        self.loss_cfg = loss
        self.factor = factor
        self.channels = tuple(channels)
        self.residual = residual
        self.net = SrUNet(factor, self.channels, residual)
        self.norm = norm
        self.tiles = tiles or TileConfig()
        self.history: list[dict[str, float]] = []

    # ------------------------------------------------------------------------ training
    def fit(
        self,
        data: tuple[PatchPairs, dict[str, float]],
        workdir: str | Path,
        *,
        progress: bool = True,
    ) -> TrainResult:
        """Train on the TRAIN patch pairs of `data` (pairs, normalisation), early stopping on
        the VAL patches' loss, with random crops of `crop` coarse pixels."""
        pairs, norm = data
        train_cfg, crop = self.training, self.crop
        if pairs.factor != self.factor:
            raise InputError("superres", f"patches have factor {pairs.factor}, model {self.factor}")
        self.norm = dict(norm)
        train = PatchPairDataset(pairs.subset(TRAIN), norm, crop, augment=True)
        val = PatchPairDataset(pairs.subset(VAL), norm, None, augment=False)
        loss = SifLoss(self.loss_cfg, self.factor)
        result = fit(WithGuide(self.net), train, val, loss, train_cfg, workdir, progress=progress)
        self.history = result.history
        return result

    # ----------------------------------------------------------------------- prediction
    def _normalised(self, lst: np.ndarray, ndvi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.norm is None:
            raise ValueError("the model has no normalisation statistics; train or load it first")
        n = self.norm
        return (
            (fill_nearest(lst) - n["lst_mean"]) / n["lst_std"],
            (fill_nearest(ndvi) - n["ndvi_mean"]) / n["ndvi_std"],
        )

    @torch.no_grad()
    def predict_full(
        self, lst: np.ndarray, ndvi: np.ndarray, device: str | torch.device = "cpu"
    ) -> np.ndarray:
        """Fine LST (K) at every pixel, inputs' holes filled; tiled with blended overlaps."""
        f = self.factor
        h, w = lst.shape
        if ndvi.shape != (h * f, w * f):
            raise ValueError(f"NDVI {ndvi.shape} does not match LST {lst.shape} x{f}")
        if not np.isfinite(lst).any():
            raise ValueError("the LST scene has no valid pixel")
        lst_n, ndvi_n = self._normalised(lst, ndvi)
        mult = max(1, self.net.multiple // f)  # coarse pixels per network size step
        tile = max(mult, self.tiles.tile - self.tiles.tile % mult)
        overlap = min(self.tiles.overlap, tile // 2)
        # pad the scene (edge values) to a multiple of `mult` and at least one tile
        ph = max(tile, -(-h // mult) * mult) - h
        pw = max(tile, -(-w // mult) * mult) - w
        lst_p = np.pad(lst_n, ((0, ph), (0, pw)), mode="edge")
        ndvi_p = np.pad(ndvi_n, ((0, ph * f), (0, pw * f)), mode="edge")
        dev = resolve_device(device)
        self.net.to(dev).eval()

        def sharpen_tile(rows: slice, cols: slice) -> np.ndarray:
            fine_rows = slice(rows.start * f, rows.stop * f)
            fine_cols = slice(cols.start * f, cols.stop * f)
            lr_t = torch.from_numpy(np.ascontiguousarray(lst_p[rows, cols]))
            nd_t = torch.from_numpy(np.ascontiguousarray(ndvi_p[fine_rows, fine_cols]))
            out = self.net(lr_t[None, None].to(dev), nd_t[None, None].to(dev))
            return out[0, 0].float().cpu().numpy()

        fine = predict_tiled(sharpen_tile, lst_p.shape, tile, overlap, scale=f)[: h * f, : w * f]
        return (fine * self.norm["lst_std"] + self.norm["lst_mean"]).astype(np.float32)

    def predict(
        self, lst: np.ndarray, ndvi: np.ndarray, device: str | torch.device = "cpu"
    ) -> np.ndarray:
        """Fine LST (K); NaN under invalid coarse pixels and where NDVI is missing. With
        `registration`, the NDVI is first shifted to its best sub-pixel fit on the LST."""
        guide = ndvi
        if self.registration is not None and self.registration.max_shift > 0:
            guide, _ = register_ndvi(lst, ndvi, self.factor, self.loss_cfg.mtf, self.registration)
        fine = self.predict_full(lst, guide, device)
        return mask_product(fine, lst, ndvi, self.factor)

    # ------------------------------------------------------------------------- storage
    def state(self) -> dict[str, Any]:
        """The keyword arguments of `save_checkpoint` for this model."""
        return {
            "model_name": MODEL_NAME,
            "model_kwargs": {
                "factor": self.factor,
                "channels": list(self.channels),
                "residual": self.residual,
            },
            "state_dict": self.net.state_dict(),
            "normalisation": dict(self.norm or {}),
            "features": {"inputs": ["lst_coarse", "ndvi_fine"]},
            "config": {"loss": self.loss_cfg.to_dict(), **self.config},
            "extra": {
                "history": self.history,
                "tiles": vars(self.tiles),
                "registration": vars(self.registration) if self.registration else None,
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], device: str | torch.device = "cpu") -> Sharpener:
        """The model of a checkpoint (its network on `device`)."""
        kw = state["model_kwargs"]
        loss = LossConfig(**state["config"]["loss"])
        tiles = TileConfig(**state["extra"].get("tiles", {}))
        model = cls(
            loss, kw["factor"], tuple(kw["channels"]), kw["residual"], state["normalisation"], tiles
        )
        model.net.load_state_dict(state["state_dict"])
        model.net.to(resolve_device(device))
        model.history = state["extra"].get("history", [])
        reg = state["extra"].get("registration")
        model.registration = RegistrationConfig(**reg) if reg else None
        return model


def mask_product(fine: np.ndarray, lst: np.ndarray, ndvi: np.ndarray, factor: int) -> np.ndarray:
    """`fine` with NaN under invalid coarse pixels and invalid NDVI."""
    bad = np.kron(~np.isfinite(lst), np.ones((factor, factor), dtype=bool)) | ~np.isfinite(ndvi)
    return np.where(bad, np.nan, fine).astype(np.float32)


def energy_residual(
    fine: np.ndarray, lst: np.ndarray, factor: int, mtf: float = 0.1, border: int = 2
) -> float:
    """RMS (K) of the PSF-degraded product minus the coarse input, over valid coarse pixels
    away from the scene edge and from invalid pixels (where the blur would reach NaN)."""
    filled = fill_nearest(np.asarray(fine, dtype=np.float32))
    coarse = psf.degrade_np(filled, factor, mtf)
    ok = np.isfinite(lst)
    bad = ~np.isfinite(np.asarray(fine).reshape(lst.shape[0], factor, lst.shape[1], factor))
    ok &= ~bad.any(axis=(1, 3))
    reach = int(np.ceil(3 * psf.psf_sigma(factor, mtf) / factor))
    ok = ndimage.binary_erosion(ok, iterations=max(reach, 1), border_value=0)
    if border:
        ok[:border], ok[-border:], ok[:, :border], ok[:, -border:] = False, False, False, False
    if not ok.any():
        return float("nan")
    d = coarse[ok] - lst[ok]
    return float(np.sqrt(np.mean(d**2)))


# Every SIF-NN-SR variant (superres.variants) is this one class with its own loss settings.
METHODS: dict[str, type[Sharpener]] = {"sifnn1": Sharpener, "sifnn2": Sharpener}


def sharpener_from_config(cfg: dict, variant: str, factor: int) -> Sharpener:
    """An untrained SIF-NN-SR `variant` of the `superres` config."""
    if variant not in cfg["variants"]:
        raise InputError("superres.variants", f"has no variant {variant!r}")
    loss = LossConfig(variant=variant, mtf=cfg["psf_mtf"], **cfg["variants"][variant])
    model = cfg["model"]
    sharpener = METHODS[variant](
        loss,
        factor,
        tuple(model["channels"]),
        model["residual"],
        tiles=TileConfig(**cfg["tiles"]),
        training=TrainConfig.from_dict(cfg["training"]),
        crop=cfg["crop"],
        registration=RegistrationConfig(**cfg.get("registration", {})),
    )
    sharpener.config = {"superres": cfg}
    return sharpener
