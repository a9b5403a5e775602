"""Tiled prediction of a whole scene with blended overlaps, so memory follows the tile, not the
scene.

A network sees the scene in tiles of a fixed size that overlap; each tile's output is weighted
by a window that is 1 inside and ramps down linearly over the overlap toward the tile's edges
(where a convolutional network sees least context), and the weighted outputs are averaged. A
tile edge that is also the scene's edge keeps full weight. Used by SIF-NN-SR and the gap-fill
context U-Net.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def tile_starts(n: int, tile: int, step: int) -> list[int]:
    """First index of each tile along an axis of length `n`: every `step`, the last flush with
    the end (one tile when `n <= tile`)."""
    if n <= tile:
        return [0]
    return sorted({*range(0, n - tile, step), n - tile})


def ramp(n: int, overlap: int) -> np.ndarray:
    """1-D blending weights of a tile of `n` pixels: linear ramps over `overlap` pixels at both
    ends, 1 inside."""
    w = np.ones(n, dtype=np.float32)
    if overlap > 0:
        up = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        w[:overlap] = np.minimum(w[:overlap], up)
        w[-overlap:] = np.minimum(w[-overlap:], up[::-1])
    return w


def predict_tiled(
    predict: Callable[[slice, slice], np.ndarray],
    shape: tuple[int, int],
    tile: int,
    overlap: int,
    *,
    scale: int = 1,
    dtype: type = np.float32,
) -> np.ndarray:
    """Blend `predict(rows, cols)` over tiles of an input of `shape` into one output.

    `predict` gets the tile's slices of the input and returns the tile's output, `scale` times
    finer than the input (super-resolution) or at the input's resolution (`scale` 1). Tiles are
    `tile` input pixels wide (less where the input is smaller) and step by `tile - overlap`.
    """
    h, w = shape
    th, tw = min(tile, h), min(tile, w)
    step_h, step_w = max(1, th - overlap), max(1, tw - overlap)
    wy = ramp(th * scale, overlap * scale if h > th else 0)
    wx = ramp(tw * scale, overlap * scale if w > tw else 0)
    weight = (wy[:, None] * wx[None, :]).astype(dtype)
    num = np.zeros((h * scale, w * scale), dtype=dtype)
    den = np.zeros_like(num)
    for r in tile_starts(h, th, step_h):
        for c in tile_starts(w, tw, step_w):
            out = predict(slice(r, r + th), slice(c, c + tw))
            rows = slice(r * scale, (r + th) * scale)
            cols = slice(c * scale, (c + tw) * scale)
            num[rows, cols] += out * weight
            den[rows, cols] += weight
    return num / den
