"""The coarse grid nested in the fine grid of the fusion: its shape, the fine pixels per coarse
block, and the bilinear upsampling of coarse arrays onto blocks of fine rows (pixel centres
aligned), which EFAST and the fusion baselines share."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def coarse_shape(fine_shape: tuple[int, int], ratio: int) -> tuple[int, int]:
    """The coarse grid over a fine grid: one coarse pixel per `ratio` x `ratio` block (edges
    rounded up, as :meth:`lstfill.grid.Grid.coarsen` does)."""
    return math.ceil(fine_shape[0] / ratio), math.ceil(fine_shape[1] / ratio)


def block_count(mask: np.ndarray, ratio: int) -> np.ndarray:
    """Per coarse pixel, the number of True fine pixels in its block (partial edge blocks too)."""
    h, w = mask.shape
    ch, cw = coarse_shape((h, w), ratio)
    m = np.asarray(mask, dtype=np.uint8)
    if (h, w) != (ch * ratio, cw * ratio):
        padded = np.zeros((ch * ratio, cw * ratio), dtype=np.uint8)
        padded[:h, :w] = m
        m = padded
    rows = m.reshape(ch, ratio, cw * ratio).sum(axis=1, dtype=np.int32)
    return rows.reshape(ch, cw, ratio).sum(axis=2)


def _axis_weights(start: int, stop: int, n_coarse: int, ratio: int):
    """Bilinear source indices and fractions of fine pixels start..stop along one axis, pixel
    centres aligned, clamped at the edges (nested grids: fine pixel i lies in coarse i // r)."""
    pos = (np.arange(start, stop) + 0.5) / ratio - 0.5
    pos = np.clip(pos, 0, n_coarse - 1)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_coarse - 1)
    return i0, i1, (pos - i0).astype(np.float32)


@dataclass(frozen=True)
class Upsampler:
    """Bilinear upsampling of coarse arrays onto a block of fine rows."""

    rows: tuple[np.ndarray, np.ndarray, np.ndarray]
    cols: tuple[np.ndarray, np.ndarray, np.ndarray]

    @classmethod
    def for_block(cls, rows: slice, width: int, coarse: tuple[int, int], ratio: int) -> Upsampler:
        return cls(
            _axis_weights(rows.start, rows.stop, coarse[0], ratio),
            _axis_weights(0, width, coarse[1], ratio),
        )

    def __call__(self, a: np.ndarray) -> np.ndarray:
        """(..., coarse rows, coarse cols) -> (..., block rows, width); NaN propagates."""
        r0, r1, fr = self.rows
        c0, c1, fc = self.cols
        a = np.asarray(a, dtype=np.float32)
        rows = a[..., r0, :] * (1 - fr)[:, None] + a[..., r1, :] * fr[:, None]
        return rows[..., c0] * (1 - fc) + rows[..., c1] * fc

    def masked(self, a: np.ndarray) -> np.ndarray:
        """Like calling it, but NaN coarse pixels are left out of the interpolation (the weights
        renormalised over the valid neighbours); NaN only where every neighbour is NaN."""
        ok = np.isfinite(a)
        if ok.all():
            return self(a)
        num = self(np.where(ok, a, 0.0))
        den = self(ok.astype(np.float32))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 1e-6, num / den, np.nan).astype(np.float32)
