"""Baselines of the fusion job: each takes the fusion's inputs (fine scenes, coarse series, day).

- ``baseline_nearest``: per pixel, the clear fine observation nearest in time (what the cubes
  take today);
- ``baseline_linear``: per pixel, linear interpolation in time between the clear fine
  observations before and after the day (the nearest one where only one side has one);
- ``baseline_offset``: the nearest clear fine observation plus the coarse change since its date,
  both coarse values upsampled bilinearly (the simplest temporal-change fusion);
- ``baseline_coarse``: the coarse value of the day, upsampled bilinearly.

The coarse values are the method's own (:func:`lstfill.fusion.coarse.coarse_at`: composited and
smoothed as the settings say), so the offset and coarse baselines get the same coarse care as
EFAST. Fine scenes are small enough here (evaluation grids) to be held as arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from lstfill.fusion.coarse import CoarseSeries, coarse_at, interpolate_series
from lstfill.fusion.method import ArrayScene, EfastSettings
from lstfill.fusion.nesting import Upsampler


def _stack(scenes: Sequence[ArrayScene]) -> tuple[np.ndarray, np.ndarray]:
    days = np.array([s.day for s in scenes], dtype=np.float64)
    data = np.stack([np.where(s.mask, s.data, np.nan) for s in scenes]).astype(np.float32)
    return days, data  # (scenes,), (scenes, bands, rows, cols)


def _nearest_index(days: np.ndarray, data: np.ndarray, day: float) -> np.ndarray:
    """Per (band, pixel), the index of the valid scene nearest to `day` (-1: none); ties go to
    the earlier scene."""
    ok = np.isfinite(data)
    dist = np.where(ok, np.abs(days - day)[:, None, None, None], np.inf)
    # Earlier scenes first on ties: argmin takes the first minimum in scene order by time.
    order = np.argsort(days, kind="stable")
    idx = order[np.argmin(dist[order], axis=0)]
    return np.where(np.isfinite(dist.min(axis=0)), idx, -1)


def _take(data: np.ndarray, idx: np.ndarray) -> np.ndarray:
    safe = np.clip(idx, 0, len(data) - 1)
    out = np.take_along_axis(data, safe[None], axis=0)[0]
    return np.where(idx >= 0, out, np.nan)


def nearest(
    scenes: Sequence[ArrayScene], coarse: CoarseSeries, day: float, settings: EfastSettings
):
    days, data = _stack(scenes)
    return _take(data, _nearest_index(days, data, day))


def linear(scenes: Sequence[ArrayScene], coarse: CoarseSeries, day: float, settings: EfastSettings):
    days, data = _stack(scenes)
    order = np.argsort(days, kind="stable")
    out, _ = interpolate_series(days[order], data[order], [day])
    return out[0]


def _upsample(coarse_values: np.ndarray, shape: tuple[int, int], ratio: int) -> np.ndarray:
    up = Upsampler.for_block(slice(0, shape[0]), shape[1], coarse_values.shape[-2:], ratio)
    return up.masked(coarse_values)


def offset(scenes: Sequence[ArrayScene], coarse: CoarseSeries, day: float, settings: EfastSettings):
    days, data = _stack(scenes)
    idx = _nearest_index(days, data, day)
    shape = data.shape[2:]
    ratio = settings.ratio
    series, _ = coarse_at(coarse, [day, *days], settings)
    up_p = _upsample(series[0], shape, ratio)
    change = np.stack([up_p - _upsample(series[1 + i], shape, ratio) for i in range(len(days))])
    return _take(data, idx) + _take(change, idx)


def coarse(scenes: Sequence[ArrayScene], coarse: CoarseSeries, day: float, settings: EfastSettings):
    shape = scenes[0].data.shape[1:]
    series, _ = coarse_at(coarse, [day], settings)
    return _upsample(series[0], shape, settings.ratio)


Baseline = Callable[[Sequence[ArrayScene], CoarseSeries, float, EfastSettings], np.ndarray]
BASELINES: dict[str, Baseline] = {
    "baseline_nearest": nearest,
    "baseline_linear": linear,
    "baseline_offset": offset,
    "baseline_coarse": coarse,
}
