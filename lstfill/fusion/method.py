"""EFAST: daily fine reflectance and NDVI from sparse fine scenes and a dense coarse series.

Senty et al. 2024, "Fast Fusion of Sentinel-2 and Sentinel-3 Time Series over Rangelands",
Remote Sensing 16:1833, sections 2.3-2.5, implemented from the paper's description:

1. the coarse series (its valid observations within ``1.5 * max_days`` of the prediction day)
   is brought, per coarse pixel, to the prediction day (``LR_p``) and to each fine acquisition
   day (``LR_i``): as in the published pre-processing, by a weighted composite (a temporal
   Gaussian of ``composite_days`` times a ramp in the distance to the nearest invalid coarse
   pixel, ``clip((d - 1) / composite_D, 0, 1)``, which keeps cloud edges out) followed by a
   spatial Gaussian of ``smooth_px`` coarse pixels, both against the coarse sensor's noise; with
   ``composite_days`` 0, by linear interpolation in time between the nearest valid dates
   (:mod:`lstfill.fusion.coarse`);
2. each fine acquisition within ``max_days`` gets a weight per coarse pixel: a ramp in the
   distance to the nearest cloudy coarse pixel, ``clip((d - 1) / D, 0, 1)``, times a temporal
   Gaussian ``exp(-t^2 / 2 sigma^2)``; weights are normalised per coarse pixel and acquisitions
   whose mean share is below ``min_importance`` are dropped;
3. the weights are upsampled bilinearly to the fine grid (:mod:`lstfill.fusion.nesting`) and
   give the weighted fine mosaic ``HR_m`` and the matching coarse mosaic ``LR_m`` (both over
   the fine pixels each acquisition really observed), and ``F = up(LR_p) + HR_m - LR_m``
   (eq. 2).

Where the published code needs more than three coarse dates per pixel and loops over pixels in
Python, this implementation is vectorised and takes any number of coarse dates: with an
observation on one side only, the nearest date is used and the pixel is flagged
(:data:`FLAG_COARSE_NEAREST`). Its acquisition threshold is an absolute share (drop an
acquisition contributing less than ``min_importance`` of the mosaic on average) instead of the
published ``2 / n``, which drops every acquisition when many clear scenes share the weight
evenly. Fine rows are processed in blocks, so memory does not grow with the fine scenes' size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from scipy import ndimage

from lstfill.fusion.coarse import CoarseSeries, coarse_at
from lstfill.fusion.nesting import Upsampler, block_count, coarse_shape

FLAG_NO_FINE = 1  # no fine acquisition has weight here: the product is NaN
FLAG_NO_COARSE = 2  # no coarse observation in the window: the product is NaN
FLAG_COARSE_NEAREST = 4  # a coarse value was taken from the nearest date (one side only)
BLOCK_PIXELS = 1_500_000  # fine pixels per block by default (a few arrays of 6 MB each)
FLAGS = {
    FLAG_NO_FINE: "no fine acquisition with weight (NaN)",
    FLAG_NO_COARSE: "no coarse observation within the window (NaN)",
    FLAG_COARSE_NEAREST: "coarse series from the nearest date, not interpolated",
}


@dataclass(frozen=True)
class EfastSettings:
    """The method's parameters (paper defaults; `ratio` is fine pixels per coarse pixel)."""

    ratio: int
    sigma: float = 20.0
    D: float = 15.0
    max_days: float = 30.0
    tolerance: float = 0.05
    min_importance: float = 0.02
    composite_days: float = 10.0
    composite_D: float = 20.0
    smooth_px: float = 1.0

    def __post_init__(self) -> None:
        if self.ratio < 1 or self.sigma <= 0 or self.D <= 0 or self.max_days <= 0:
            raise ValueError(f"invalid EFAST settings: {self}")
        if self.composite_days < 0 or self.composite_D <= 0 or self.smooth_px < 0:
            raise ValueError(f"invalid EFAST coarse settings: {self}")


class FineScene(Protocol):
    """One fine acquisition: its day and windowed readers of its values and validity."""

    day: float  # days since an epoch shared with the coarse series

    def valid(self, rows: slice) -> np.ndarray:
        """Boolean (rows, width): pixels the fine sensor observed clear."""
        ...

    def values(self, rows: slice) -> np.ndarray:
        """Float (bands, rows, width); NaN where not observed."""
        ...


@dataclass
class ArrayScene:
    """A fine scene held in memory (bands, height, width); `valid` defaults to all bands finite."""

    day: float
    data: np.ndarray
    mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.data = np.asarray(self.data, dtype=np.float32)
        if self.data.ndim == 2:
            self.data = self.data[None]
        if self.mask is None:
            self.mask = np.isfinite(self.data).all(axis=0)

    def valid(self, rows: slice) -> np.ndarray:
        return self.mask[rows]

    def values(self, rows: slice) -> np.ndarray:
        return self.data[:, rows]


@dataclass
class FusionInfo:
    """What one fused day rests on (written into the product's tags)."""

    day: float
    fine_days: list[float] = field(default_factory=list)
    importance: list[float] = field(default_factory=list)
    dropped_days: list[float] = field(default_factory=list)
    coarse_dates: int = 0
    coarse_nearest_share: float = 0.0
    settings: dict = field(default_factory=dict)


@dataclass
class FusionResult:
    """The fused day: `fused` (bands, rows, cols), `weight`, `days_to_fine`, `flag`."""

    fused: np.ndarray
    weight: np.ndarray
    days_to_fine: np.ndarray
    flag: np.ndarray
    info: FusionInfo


# --------------------------------------------------------------------------- weights


def masked_share(scene: FineScene, fine_shape: tuple[int, int], ratio: int, block_rows: int):
    """Per coarse pixel, the share of its fine pixels (inside the fine grid) not observed."""
    h, w = fine_shape
    ch, cw = coarse_shape(fine_shape, ratio)
    masked = np.zeros((ch, cw), dtype=np.int64)
    for r0 in range(0, h, block_rows):
        rows = slice(r0, min(h, r0 + block_rows))
        masked[r0 // ratio : r0 // ratio + math.ceil((rows.stop - r0) / ratio)] += block_count(
            ~np.asarray(scene.valid(rows), dtype=bool), ratio
        )
    inside = block_count(np.ones(fine_shape, dtype=bool), ratio)
    return masked / inside


def cloud_distance(cloudy: np.ndarray) -> np.ndarray:
    """Euclidean distance (coarse pixels) of every coarse pixel to the nearest cloudy one
    (0 on cloudy pixels, inf where the scene has none)."""
    if not cloudy.any():
        return np.full(cloudy.shape, np.inf)
    return ndimage.distance_transform_edt(~cloudy)


def acquisition_weights(
    distance: np.ndarray, offsets: np.ndarray, settings: EfastSettings
) -> tuple[np.ndarray, np.ndarray]:
    """(raw, normalised) weights (acquisitions, rows, cols) of the fine acquisitions per coarse
    pixel: distance ramp ``clip((d - 1) / D, 0, 1)`` times ``exp(-t^2 / 2 sigma^2)``; the
    normalised weights sum to 1 where any raw weight is positive, else 0."""
    ramp = np.clip((distance - 1.0) / settings.D, 0.0, 1.0)
    temporal = np.exp(-(np.asarray(offsets, dtype=np.float64) ** 2) / (2 * settings.sigma**2))
    raw = ramp * temporal[:, None, None]
    total = raw.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(total > 0, raw / np.where(total > 0, total, 1.0), 0.0)
    return raw, norm


# --------------------------------------------------------------------------- fusion


@dataclass
class _Plan:
    """Everything computed at coarse scale for one prediction day."""

    scenes: list[FineScene]
    offsets: np.ndarray  # fine day - prediction day, per selected scene
    raw: np.ndarray  # raw weights of the selected scenes (scenes, rows, cols)
    norm: np.ndarray  # normalised weights (scenes, rows, cols)
    lr_p: np.ndarray  # (bands, rows, cols)
    lr_i: np.ndarray  # (scenes, bands, rows, cols)
    coarse_flag: np.ndarray  # uint8 (rows, cols)


def plan_day(
    scenes: Sequence[FineScene],
    coarse: CoarseSeries,
    day: float,
    fine_shape: tuple[int, int],
    settings: EfastSettings,
    block_rows: int = 512,
) -> tuple[_Plan, FusionInfo]:
    """The coarse-scale part of EFAST for `day`: coarse interpolation, cloud distances, weights."""
    ratio = settings.ratio
    cshape = coarse_shape(fine_shape, ratio)
    if coarse.values.shape[2:] != cshape:
        raise ValueError(
            f"coarse grid {coarse.values.shape[2:]} does not nest in the fine grid {fine_shape} "
            f"at ratio {ratio} (expected {cshape})"
        )
    window = coarse.window(day, 1.5 * settings.max_days)
    near = [s for s in scenes if abs(s.day - day) <= settings.max_days]
    offsets = np.array([s.day - day for s in near], dtype=np.float64)
    targets = [day, *(s.day for s in near)]
    series, nearest = coarse_at(window, targets, settings)
    lr_p, lr_i = series[0], series[1:]
    coarse_flag = np.where(np.isnan(lr_p).all(axis=0), FLAG_NO_COARSE, 0).astype(np.uint8)
    coarse_flag |= np.where(nearest[0].any(axis=0), FLAG_COARSE_NEAREST, 0).astype(np.uint8)
    share = (
        np.stack([masked_share(s, fine_shape, ratio, block_rows) for s in near])
        if near
        else np.zeros((0, *cshape))
    )
    distance = np.stack([cloud_distance(m > settings.tolerance) for m in share]) if near else share
    raw, norm = acquisition_weights(distance, offsets, settings)
    importance = norm.reshape(len(near), -1).mean(axis=1) if near else np.zeros(0)
    keep = importance >= settings.min_importance
    info = FusionInfo(
        day=day,
        fine_days=[float(s.day) for s, k in zip(near, keep, strict=True) if k],
        importance=[float(v) for v in importance[keep]],
        dropped_days=[float(s.day) for s, k in zip(near, keep, strict=True) if not k],
        coarse_dates=len(window.days),
        coarse_nearest_share=float(nearest.any(axis=1).mean()) if nearest.size else 0.0,
        settings=asdict(settings),
    )
    plan = _Plan(
        scenes=[s for s, k in zip(near, keep, strict=True) if k],
        offsets=offsets[keep],
        raw=raw[keep],
        norm=norm[keep],
        lr_p=lr_p,
        lr_i=lr_i[keep],
        coarse_flag=coarse_flag,
    )
    return plan, info


def fuse_block(plan: _Plan, rows: slice, width: int, ratio: int) -> dict[str, np.ndarray]:
    """EFAST for one block of fine rows: fused bands, weight, days_to_fine and flag.

    Accumulates in place in float32 (one scratch array), so a block costs a few arrays of its
    own size whatever the number of scenes."""
    cshape = plan.lr_p.shape[1:]
    up = Upsampler.for_block(rows, width, cshape, ratio)
    h = rows.stop - rows.start
    bands = plan.lr_p.shape[0]
    acc = np.zeros((bands, h, width), dtype=np.float32)
    wsum = np.zeros((bands, h, width), dtype=np.float32)
    scratch = np.empty((bands, h, width), dtype=np.float32)
    weight = np.zeros((h, width), dtype=np.float32)
    nearest_day = np.full((h, width), np.inf, dtype=np.float32)
    for i, scene in enumerate(plan.scenes):
        if not plan.norm[i].any():
            continue
        w = up(plan.norm[i])
        valid = np.asarray(scene.valid(rows), dtype=bool) & (w > 0)
        np.subtract(scene.values(rows), up.masked(plan.lr_i[i]), out=scratch)
        ok = np.isfinite(scratch)
        ok &= valid
        np.multiply(scratch, w, out=scratch)
        np.add(acc, scratch, out=acc, where=ok)
        np.add(wsum, w, out=wsum, where=ok)
        np.add(weight, up(plan.raw[i]), out=weight, where=valid)
        np.minimum(nearest_day, np.float32(abs(plan.offsets[i])), out=nearest_day, where=valid)
    lr_p = up.masked(plan.lr_p)
    has = wsum > 0
    fused = np.full((bands, h, width), np.nan, dtype=np.float32)
    np.divide(acc, wsum, out=fused, where=has)
    np.add(fused, lr_p, out=fused, where=has)
    coarse_flag = plan.coarse_flag[rows.start // ratio : (rows.stop - 1) // ratio + 1]
    flag = np.repeat(np.repeat(coarse_flag, ratio, axis=1)[:, :width], ratio, axis=0)
    flag = flag[rows.start % ratio : rows.start % ratio + h].copy()
    flag[~has.any(axis=0)] |= FLAG_NO_FINE
    flag[np.isnan(lr_p).all(axis=0)] |= FLAG_NO_COARSE
    nearest_day[np.isinf(nearest_day)] = np.nan
    return {"fused": fused, "weight": weight, "days_to_fine": nearest_day, "flag": flag}


def fuse(
    scenes: Sequence[FineScene],
    coarse: CoarseSeries,
    day: float,
    fine_shape: tuple[int, int],
    settings: EfastSettings,
    *,
    block_rows: int | None = None,
    threads: int = 1,
    sink: Callable[[slice, dict[str, np.ndarray]], None] | None = None,
) -> FusionResult | FusionInfo:
    """Fuse `day` on the fine grid of shape `fine_shape` (see the module docstring).

    Fine rows are processed in blocks of `block_rows` (a multiple of the ratio; by default
    about :data:`BLOCK_PIXELS` fine pixels, so memory does not grow with the tile's width),
    `threads` at a time (NumPy releases the GIL). Without `sink` the whole day is returned
    as a FusionResult; with it, each block is handed to ``sink(rows, arrays)`` as it is done and
    only the FusionInfo is returned, so memory stays bounded by the block size.
    """
    ratio = settings.ratio
    if block_rows is None:
        block_rows = max(1, BLOCK_PIXELS // max(fine_shape[1], 1) // ratio) * ratio
    block_rows = max(ratio, block_rows // ratio * ratio)
    plan, info = plan_day(scenes, coarse, day, fine_shape, settings, block_rows)
    h, w = fine_shape
    blocks = [slice(r0, min(h, r0 + block_rows)) for r0 in range(0, h, block_rows)]
    if sink is None:
        parts: dict[slice, dict[str, np.ndarray]] = {}

        def store(rows: slice, arrays: dict[str, np.ndarray]) -> None:
            parts[rows.start] = arrays

        target = store
    else:
        target = sink

    def run(rows: slice) -> None:
        target(rows, fuse_block(plan, rows, w, ratio))

    if threads > 1 and len(blocks) > 1:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(run, blocks))
    else:
        for rows in blocks:
            run(rows)
    if sink is not None:
        return info
    ordered = [parts[b.start] for b in blocks]
    return FusionResult(
        fused=np.concatenate([p["fused"] for p in ordered], axis=1),
        weight=np.concatenate([p["weight"] for p in ordered], axis=0),
        days_to_fine=np.concatenate([p["days_to_fine"] for p in ordered], axis=0),
        flag=np.concatenate([p["flag"] for p in ordered], axis=0),
        info=info,
    )


@dataclass(frozen=True)
class Efast:
    """EFAST behind the jobs' method interface (`lstfill.method.Method`): nothing to train, its
    state is its settings, and `predict` is `fuse` with them."""

    settings: EfastSettings
    name: ClassVar[str] = "efast"

    def fit(self, data: Any, workdir: str | Path, *, progress: bool = True) -> None:
        """EFAST has no trained state."""
        return None

    def predict(
        self,
        scenes: Sequence[FineScene],
        coarse: CoarseSeries,
        day: float,
        fine_shape: tuple[int, int],
        **options: Any,
    ) -> FusionResult | FusionInfo:
        """The fused `day` (see `fuse`, whose keyword options it passes on)."""
        return fuse(scenes, coarse, day, fine_shape, self.settings, **options)

    def state(self) -> dict[str, Any]:
        return {
            "model_name": self.name,
            "model_kwargs": asdict(self.settings),
            "state_dict": {},
            "normalisation": {},
            "features": {},
            "config": {},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], device: Any = "cpu") -> Efast:
        return cls(EfastSettings(**state["model_kwargs"]))


METHODS: dict[str, type[Efast]] = {"efast": Efast}
