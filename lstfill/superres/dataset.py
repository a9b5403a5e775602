"""Patch-pair datasets for super-resolution: the training set of SIF-NN-SR.

The training set is a NetCDF of patch pairs: `size` x `size` coarse LST and the matching
(`size` * factor)^2 NDVI, cut with a stride from every day scene and kept only when clean enough
(`max_invalid_lst`, `max_invalid_ndvi`; 0 = perfectly clean, as in SIF-NN-SR). Days, not
patches, are split into train / validation / test (`lstfill.splits.split_days_by_share`), so no
day contributes to two splits. Normalisation statistics (mean and std of LST and NDVI) come from
the training patches only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch.utils.data import Dataset

from lstfill.errors import InputError
from lstfill.io import atomic_output, load_netcdf
from lstfill.raster import fill_nearest
from lstfill.splits import TRAIN
from lstfill.superres.inputs import DayScene


@dataclass
class PatchPairs:
    """Coarse LST patches (n, s, s), fine NDVI patches (n, s*f, s*f), split code, origin."""

    lst: np.ndarray
    ndvi: np.ndarray
    split: np.ndarray
    date: np.ndarray  # datetime64[D]
    origin: np.ndarray  # (n, 2) coarse row, col of the patch's upper-left pixel
    factor: int

    def subset(self, code: int) -> PatchPairs:
        keep = self.split == code
        return PatchPairs(
            self.lst[keep],
            self.ndvi[keep],
            self.split[keep],
            self.date[keep],
            self.origin[keep],
            self.factor,
        )

    def __len__(self) -> int:
        return len(self.lst)


def cut_patches(
    scene: DayScene, size: int, stride: int, max_invalid_lst: float, max_invalid_ndvi: float
) -> tuple[list[np.ndarray], list[np.ndarray], list[tuple[int, int]]]:
    """Clean-enough patch pairs of one scene (holes filled with the nearest valid value)."""
    f = scene.factor
    h, w = scene.lst.shape
    lst_ok = np.isfinite(scene.lst)
    ndvi_ok = np.isfinite(scene.ndvi)
    out_lst, out_ndvi, origins = [], [], []
    for r in range(0, h - size + 1, stride):
        for c in range(0, w - size + 1, stride):
            lo = lst_ok[r : r + size, c : c + size]
            no = ndvi_ok[r * f : (r + size) * f, c * f : (c + size) * f]
            if 1 - lo.mean() > max_invalid_lst or 1 - no.mean() > max_invalid_ndvi:
                continue
            if not lo.any() or not no.any():
                continue
            out_lst.append(fill_nearest(scene.lst[r : r + size, c : c + size]))
            fine = scene.ndvi[r * f : (r + size) * f, c * f : (c + size) * f]
            out_ndvi.append(fill_nearest(fine))
            origins.append((r, c))
    return out_lst, out_ndvi, origins


def build_patch_pairs(scenes: list[DayScene], cfg: dict[str, Any]) -> PatchPairs:
    """Patch pairs of every scene, all labelled TRAIN until `lstfill.splits.codes_by_day`
    labels them."""
    lst, ndvi, dates, origins = [], [], [], []
    factors = {s.factor for s in scenes}
    if len(factors) != 1:
        raise InputError("superres", f"scenes mix resolution factors {sorted(factors)}")
    for scene in scenes:
        pl, pn, po = cut_patches(
            scene, cfg["patch_size"], cfg["stride"], cfg["max_invalid_lst"], cfg["max_invalid_ndvi"]
        )
        lst += pl
        ndvi += pn
        origins += po
        dates += [np.datetime64(scene.date, "D")] * len(pl)
    f = factors.pop()
    s = cfg["patch_size"]
    return PatchPairs(
        lst=np.asarray(lst, dtype=np.float32).reshape(-1, s, s),
        ndvi=np.asarray(ndvi, dtype=np.float32).reshape(-1, s * f, s * f),
        split=np.full(len(lst), TRAIN, dtype=np.int8),
        date=np.asarray(dates, dtype="datetime64[D]"),
        origin=np.asarray(origins, dtype=np.int32).reshape(-1, 2),
        factor=f,
    )


def normalisation(pairs: PatchPairs) -> dict[str, float]:
    """Mean and std of LST and NDVI over the training patches."""
    train = pairs.subset(TRAIN)
    if len(train) == 0:
        raise InputError(
            "superres",
            "no clean training patch: relax superres.max_invalid_lst "
            "or superres.max_invalid_ndvi, or lower patch_size",
        )
    return {
        "lst_mean": float(train.lst.mean()),
        "lst_std": float(max(train.lst.std(), 1e-3)),
        "ndvi_mean": float(train.ndvi.mean()),
        "ndvi_std": float(max(train.ndvi.std(), 1e-3)),
    }


def write_patch_pairs(pairs: PatchPairs, norm: dict[str, float], path: str | Path) -> Path:
    """Patch pairs and their normalisation statistics as NetCDF."""
    ds = xr.Dataset(
        {
            "lst": (("patch", "yc", "xc"), pairs.lst, {"units": "K"}),
            "ndvi": (("patch", "yf", "xf"), pairs.ndvi, {"units": "1"}),
            "split": (
                ("patch",),
                pairs.split,
                {"flag_values": "0 1 2", "flag_meanings": "train val test"},
            ),
            "date": (("patch",), pairs.date.astype("datetime64[ns]")),
            "origin": (("patch", "rc"), pairs.origin),
        },
        attrs={"factor": pairs.factor, **{f"norm_{k}": v for k, v in norm.items()}},
    )
    encoding = {"date": {"units": "days since 1970-01-01"}}
    for name in ("lst", "ndvi"):
        encoding[name] = {"zlib": True, "complevel": 4}
    with atomic_output(path) as tmp:
        ds.to_netcdf(tmp, encoding=encoding, engine="netcdf4")
    return Path(path)


def read_patch_pairs(path: str | Path) -> tuple[PatchPairs, dict[str, float]]:
    """Patch pairs and normalisation statistics written by `write_patch_pairs`."""
    ds = load_netcdf(path, "patch dataset")
    norm = {k[5:]: float(v) for k, v in ds.attrs.items() if k.startswith("norm_")}
    pairs = PatchPairs(
        lst=ds["lst"].values.astype(np.float32),
        ndvi=ds["ndvi"].values.astype(np.float32),
        split=ds["split"].values.astype(np.int8),
        date=ds["date"].values.astype("datetime64[D]"),
        origin=ds["origin"].values.astype(np.int32),
        factor=int(ds.attrs["factor"]),
    )
    return pairs, norm


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
