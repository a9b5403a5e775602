"""Inference of the context U-Net: the standardised anomaly of a whole scene in overlapping tiles,
averaged over the 8 flips/rotations of the input (test-time augmentation), and the 90 %
half-widths calibrated by distance to the nearest visible pixel. The tiles and their blending
are `lstfill.tiling.predict_tiled`'s, shared with SIF-NN-SR.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from lstfill.tiling import predict_tiled

# Distance-to-visible bin edges (px) of the calibrated 90 % half-width.
CAL_EDGES = (1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 35.0, 60.0, math.inf)
_CAL_MIN_SAMPLES = 50


def distance_px(visible: np.ndarray) -> np.ndarray:
    """Distance (px) of every pixel to the nearest visible one (0 on visible pixels; inf
    everywhere when none is visible)."""
    if visible.all() or not visible.any():
        return np.zeros(visible.shape) if visible.any() else np.full(visible.shape, np.inf)
    return ndimage.distance_transform_edt(~visible)


def calibrate(errors: np.ndarray, distance: np.ndarray) -> list[float]:
    """90 % quantile of |error| per distance bin, non-decreasing with distance; sparse bins
    take the previous bin's value."""
    values: list[float] = []
    lo = 0.0
    overall = float(np.quantile(np.abs(errors), 0.9)) if errors.size else 1.0
    for hi in CAL_EDGES:
        sel = (distance >= lo) & (distance < hi)
        if sel.sum() >= _CAL_MIN_SAMPLES:
            v = float(np.quantile(np.abs(errors[sel]), 0.9))
        else:
            v = values[-1] if values else overall
        values.append(max(v, values[-1] if values else 0.0, 1e-3))
        lo = hi
    return values


def halfwidth90(calibration: list[float], visible: np.ndarray, land: np.ndarray) -> np.ndarray:
    """The calibrated half-width of each pixel's distance bin (visible pixels get the smallest,
    that of gaps next to observations); NaN off land."""
    idx = np.searchsorted(np.asarray(CAL_EDGES), distance_px(visible), side="right")
    idx = np.clip(idx, 0, len(calibration) - 1)
    hw = np.asarray(calibration, dtype=np.float32)[idx]
    return np.where(land, hw, np.nan).astype(np.float32)


def dihedral_mean(model: nn.Module, x: torch.Tensor, tta: bool) -> torch.Tensor:
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


def predict_anomaly(
    model: nn.Module,
    x: np.ndarray,
    *,
    tile: int,
    overlap: int,
    tta: bool,
    device: torch.device,
) -> np.ndarray:
    """Standardised anomaly (H, W) of a (C, H, W) input, in blended tiles when it is larger
    than `tile`."""
    model = model.to(device).eval()

    def run(rows: slice, cols: slice) -> np.ndarray:
        xt = torch.from_numpy(np.ascontiguousarray(x[:, rows, cols]))[None].to(device)
        return dihedral_mean(model, xt, tta)[0, 0].cpu().numpy()

    with torch.no_grad():
        return predict_tiled(run, x.shape[1:], tile, overlap)
