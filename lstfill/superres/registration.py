"""Sub-pixel registration of the fine NDVI guide on the coarse LST, from the inputs alone.

The LST and NDVI products are gridded separately (MOD11 and MOD09 on the real data), so the
NDVI texture a guided sharpener copies can sit a fraction of a fine pixel away from the LST it
explains. `register_ndvi` shifts the NDVI over a fixed grid of sub-pixel offsets (bilinear,
edge values outside) and keeps the one whose PSF-degraded version (`psf.degrade`, the sensor
model of the loss) correlates most strongly, in absolute value, with the coarse LST; the
absolute value because the LST-NDVI relation turns positive where terrain dominates. The search
is self-supervised: it reads the coarse LST and the fine NDVI only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from lstfill.raster import fill_nearest
from lstfill.superres import psf


@dataclass
class RegistrationConfig:
    """Shift search of the NDVI guide (fine pixels): every multiple of `step` within
    +-`max_shift` in rows and columns; `max_shift` 0 turns it off."""

    max_shift: float = 0.0
    step: float = 0.5
    border: int = 3  # coarse pixels left out of the correlation on each side

    def offsets(self) -> list[float]:
        if self.max_shift <= 0:
            return [0.0]
        if self.step <= 0:
            raise ValueError(f"registration step must be > 0, got {self.step}")
        n = int(np.floor(self.max_shift / self.step + 1e-9))
        return [k * self.step for k in range(-n, n + 1)]


def shift_fine(ndvi: np.ndarray, rows: float, cols: float) -> np.ndarray:
    """`ndvi` moved `rows` down and `cols` right (bilinear, edge values outside); NaN stays NaN
    where it moves."""
    if rows == 0 and cols == 0:
        return np.array(ndvi, copy=True)
    filled = fill_nearest(np.asarray(ndvi, dtype=np.float32))
    out = ndimage.shift(filled, (rows, cols), order=1, mode="nearest")
    bad = ~np.isfinite(ndvi)
    if bad.any():
        moved = ndimage.shift(bad.astype(np.float32), (rows, cols), order=1, mode="nearest")
        out[moved > 0] = np.nan
    return out.astype(np.float32)


def _correlations(lst: np.ndarray, coarse: np.ndarray, border: int) -> np.ndarray:
    """Pearson correlation of the coarse LST with each of `coarse` (n, h, w) over valid coarse
    pixels `border` pixels away from the edge (NaN when fewer than 3 or constant)."""
    ok = np.isfinite(lst) & np.isfinite(coarse).all(axis=0)
    if border:
        ok[:border], ok[-border:], ok[:, :border], ok[:, -border:] = False, False, False, False
    if ok.sum() < 3:
        return np.full(len(coarse), np.nan)
    x = coarse[:, ok]
    y = np.asarray(lst, dtype=np.float64)[ok]
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean()
    den = np.sqrt((x * x).sum(axis=1) * (y * y).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (x @ y) / np.where(den > 0, den, 1.0), np.nan)


def _degrade_stack(fields: list[np.ndarray], factor: int, mtf: float) -> np.ndarray:
    """`psf.degrade` of every field at once (one batched blur), float64 (n, h, w)."""
    stack = np.stack([fill_nearest(np.asarray(f, dtype=np.float32)) for f in fields])
    with torch.no_grad():
        out = psf.degrade(torch.from_numpy(stack)[:, None], factor, psf.psf_sigma(factor, mtf))
    return out[:, 0].double().numpy()


def coarse_correlation(
    lst: np.ndarray, ndvi: np.ndarray, factor: int, mtf: float, border: int
) -> float:
    """Pearson correlation of the coarse LST with the PSF-degraded NDVI, over valid coarse
    pixels `border` pixels away from the edge (NaN when fewer than 3 or constant)."""
    return float(_correlations(lst, _degrade_stack([ndvi], factor, mtf), border)[0])


def register_ndvi(
    lst: np.ndarray, ndvi: np.ndarray, factor: int, mtf: float, cfg: RegistrationConfig
) -> tuple[np.ndarray, tuple[float, float]]:
    """The NDVI shifted to the offset (rows, cols) of `cfg`'s grid that maximises
    |corr(LST, degraded NDVI)|, and that offset; ties and undefined correlations keep the
    smaller shift (the unshifted NDVI first)."""
    offsets = cfg.offsets()
    cands = sorted(((r, c) for r in offsets for c in offsets), key=lambda rc: np.hypot(*rc))
    ndvi = np.asarray(ndvi, dtype=np.float32)
    shifted = [shift_fine(ndvi, r, c) if (r, c) != (0.0, 0.0) else ndvi for r, c in cands]
    corr = np.abs(_correlations(lst, _degrade_stack(shifted, factor, mtf), cfg.border))
    best, best_abs = 0, -1.0
    for i, value in enumerate(corr):
        if np.isfinite(value) and value > best_abs + 1e-9:
            best, best_abs = i, float(value)
    return shifted[best], cands[best]
