"""Training samples of the context U-Net: random crops of clear acquisitions with gaps borrowed
from a donor acquisition's clouds (or synthetic blobs), the hidden pixels the targets; and the
fixed validation items, the same artificial gaps every epoch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset

from lstfill.errors import LstfillError
from lstfill.gapfill.features import Normaliser
from lstfill.gapfill.method.context_inputs import lst_channels, scene_offset

if TYPE_CHECKING:
    from lstfill.gapfill.method.context import ContextConfig


@dataclass
class _Prepared:
    """One training acquisition: its LST-independent channels and its observation."""

    static: np.ndarray  # (Cs, H, W)
    regressors: np.ndarray  # (K, H, W) view of static
    pattern: np.ndarray
    lst: np.ndarray
    valid: np.ndarray
    scored: np.ndarray | None = None  # pixels that may be loss targets (None: all)


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
    if prep.scored is not None:
        weight *= prep.scored
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


class FixedSamples(Dataset):
    """A dataset of given (input, target) pairs, the same every epoch."""

    def __init__(self, items: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.items[i]


def validation_items(
    prepared: Sequence[_Prepared],
    donors: Sequence[np.ndarray],
    normaliser: Normaliser,
    cfg: ContextConfig,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed artificial gaps (seeded, untransformed donors) on the validation scenes,
    centre-cropped to at most val_crop."""
    rng = np.random.default_rng([cfg.training.seed, 7919])
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
            x, y = _sample(prep, gaps, normaliser, cfg, cfg.visible_weight)
            items.append(
                (
                    torch.from_numpy(np.ascontiguousarray(x[:, rs, cs])),
                    torch.from_numpy(np.ascontiguousarray(y[:, rs, cs])),
                )
            )
    return items
