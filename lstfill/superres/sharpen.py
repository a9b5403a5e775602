"""Train SIF-NN-SR on patch pairs and sharpen whole scenes tile by tile.

`Sharpener` bundles the U-Net, its normalisation statistics, the loss settings and the
resolution factor. Training uses the shared loop (`lstfill.training.fit`: device auto, early
stopping on the validation loss, resume) on random crops of the training patches with random
flips and quarter turns: the loss is self-supervised, so validation is the same loss on the
validation days' patches.

Prediction runs over scenes of any size in overlapping tiles blended with linear ramps, so the
compute memory depends on the tile size, not the scene; only the output and the weight sums
grow with the scene. Invalid input (cloudy coarse pixels, missing NDVI) is filled with the
nearest valid value for the network and NaN again in the product.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset

from lstfill.device import resolve_device
from lstfill.errors import InputError
from lstfill.raster import fill_nearest
from lstfill.splits import TRAIN, VAL
from lstfill.superres import psf
from lstfill.superres.data import PatchPairs
from lstfill.superres.model import LossConfig, SifLoss, SrUNet, WithGuide
from lstfill.training.checkpoint import load_checkpoint, save_checkpoint
from lstfill.training.loop import TrainResult, fit
from lstfill.training.settings import TrainConfig

log = logging.getLogger(__name__)
MODEL_NAME = "sifnn_unet"


class PatchPairDataset(Dataset):
    """Normalised (lr, ndvi, lr) items; with `crop` a random crop of that many coarse pixels
    and, with `augment`, a random flip and quarter turn (both drawn from torch's seeded RNG)."""

    def __init__(
        self, pairs: PatchPairs, norm: dict[str, float], crop: int | None, augment: bool
    ) -> None:
        self.lst = torch.from_numpy((pairs.lst - norm["lst_mean"]) / norm["lst_std"])[:, None]
        self.ndvi = torch.from_numpy((pairs.ndvi - norm["ndvi_mean"]) / norm["ndvi_std"])[:, None]
        self.factor = pairs.factor
        size = pairs.lst.shape[-1]
        self.crop = None if crop is None or crop >= size else crop
        self.augment = augment

    def __len__(self) -> int:
        return len(self.lst)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lr, nd = self.lst[i], self.ndvi[i]
        f = self.factor
        if self.crop is not None:
            r, c = (int(v) for v in torch.randint(0, lr.shape[-1] - self.crop + 1, (2,)))
            lr = lr[:, r : r + self.crop, c : c + self.crop]
            nd = nd[:, r * f : (r + self.crop) * f, c * f : (c + self.crop) * f]
        if self.augment:
            k = int(torch.randint(0, 4, (1,)))
            flip = bool(torch.randint(0, 2, (1,)))
            lr, nd = torch.rot90(lr, k, (1, 2)), torch.rot90(nd, k, (1, 2))
            if flip:
                lr, nd = lr.flip(-1), nd.flip(-1)
        return lr.contiguous(), nd.contiguous(), lr.contiguous()


@dataclass
class TileConfig:
    """Tiling of whole-scene prediction (coarse pixels)."""

    tile: int = 64
    overlap: int = 8


def _ramp(n: int, overlap: int) -> np.ndarray:
    """1-D blending weights: linear ramps over `overlap` pixels at both ends, 1 inside."""
    w = np.ones(n, dtype=np.float32)
    if overlap > 0:
        ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        w[:overlap] = np.minimum(w[:overlap], ramp)
        w[-overlap:] = np.minimum(w[-overlap:], ramp[::-1])
    return w


def _starts(n: int, tile: int, step: int) -> list[int]:
    if n <= tile:
        return [0]
    starts = list(range(0, n - tile, step)) + [n - tile]
    return sorted(set(starts))


class Sharpener:
    """SIF-NN-SR model with everything needed to train it, apply it and save it."""

    def __init__(
        self,
        loss: LossConfig,
        factor: int = 4,
        channels: tuple[int, ...] = (16, 32, 64, 128),
        residual: bool = True,
        norm: dict[str, float] | None = None,
        tiles: TileConfig | None = None,
    ) -> None:
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
        pairs: PatchPairs,
        norm: dict[str, float],
        train_cfg: TrainConfig,
        workdir: str | Path,
        crop: int | None = None,
        progress: bool = True,
    ) -> TrainResult:
        """Train on the TRAIN patches, early stopping on the VAL patches' loss."""
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
        hp, wp = lst_p.shape
        num = np.zeros((hp * f, wp * f), dtype=np.float32)
        den = np.zeros_like(num)
        dev = resolve_device(device)
        self.net.to(dev).eval()
        th, tw = min(tile, hp), min(tile, wp)
        step_h, step_w = max(1, th - overlap), max(1, tw - overlap)
        wy = _ramp(th * f, overlap * f if hp > th else 0)
        wx = _ramp(tw * f, overlap * f if wp > tw else 0)
        weight = wy[:, None] * wx[None, :]
        for r in _starts(hp, th, step_h):
            for c in _starts(wp, tw, step_w):
                lr_t = torch.from_numpy(np.ascontiguousarray(lst_p[r : r + th, c : c + tw]))
                nd_t = torch.from_numpy(
                    np.ascontiguousarray(ndvi_p[r * f : (r + th) * f, c * f : (c + tw) * f])
                )
                out = self.net(lr_t[None, None].to(dev), nd_t[None, None].to(dev))
                out = out[0, 0].float().cpu().numpy()
                num[r * f : (r + th) * f, c * f : (c + tw) * f] += out * weight
                den[r * f : (r + th) * f, c * f : (c + tw) * f] += weight
        fine = (num / den)[: h * f, : w * f]
        return (fine * self.norm["lst_std"] + self.norm["lst_mean"]).astype(np.float32)

    def predict(
        self, lst: np.ndarray, ndvi: np.ndarray, device: str | torch.device = "cpu"
    ) -> np.ndarray:
        """Fine LST (K); NaN under invalid coarse pixels and where NDVI is missing."""
        fine = self.predict_full(lst, ndvi, device)
        return mask_product(fine, lst, ndvi, self.factor)

    # ------------------------------------------------------------------------- storage
    def save(self, path: str | Path, config: dict[str, Any], extra: dict | None = None) -> None:
        save_checkpoint(
            path,
            model_name=MODEL_NAME,
            model_kwargs={
                "factor": self.factor,
                "channels": list(self.channels),
                "residual": self.residual,
            },
            state_dict=self.net.state_dict(),
            normalisation=dict(self.norm or {}),
            features={"inputs": ["lst_coarse", "ndvi_fine"]},
            config={"loss": self.loss_cfg.to_dict(), **config},
            extra={"history": self.history, "tiles": vars(self.tiles), **(extra or {})},
        )

    @classmethod
    def load(cls, path: str | Path) -> Sharpener:
        ckpt = load_checkpoint(path)
        if ckpt["model_name"] != MODEL_NAME:
            raise InputError(path, f"is a {ckpt['model_name']!r} checkpoint, not {MODEL_NAME!r}")
        kw = ckpt["model_kwargs"]
        loss = LossConfig(**ckpt["config"]["loss"])
        tiles = TileConfig(**ckpt["extra"].get("tiles", {}))
        model = cls(
            loss, kw["factor"], tuple(kw["channels"]), kw["residual"], ckpt["normalisation"], tiles
        )
        model.net.load_state_dict(ckpt["state_dict"])
        model.history = ckpt["extra"].get("history", [])
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
