"""Samples of the downscaling job: one per 1 km pixel whose whole 9x9 neighbourhood is valid.

The target is the pixel's LST deviation from its window's mean LST, so the model learns the
sub-window structure that topography explains (the window mean is a feature, not the target).
Features follow the Bar-Ilan MSc seed: cyclic day of year and time of day, the centre's position,
the window's mean LST and height, and the 81 height differences from the window's mean height.
Scaling, splits and the cached sample file live here too, so every caller shares them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from numpy.lib.stride_tricks import sliding_window_view

from lstfill.config import load_schema
from lstfill.errors import ConfigError, InputError, LstfillError
from lstfill.io import json_ready, load_netcdf, write_netcdf
from lstfill.splits import DROPPED, SPLIT_NAMES, split_by_day, split_by_space

RADIUS = 4
DAYS_PER_YEAR = 365.25
HOURS_PER_DAY = 24.0


def feature_names(radius: int = RADIUS) -> list[str]:
    """Column names for a (2·radius+1)² window: 8 scalars then the row-major height diffs."""
    n = (2 * radius + 1) ** 2
    width = len(str(n - 1))
    hd = [f"hd_{i:0{width}d}" for i in range(n)]
    return ["day_sin", "day_cos", "tod_sin", "tod_cos", "lat", "lon", "lst_avg", "height_avg", *hd]


FEATURES: list[str] = feature_names(RADIUS)
GROUPS: dict[str, list[str]] = {
    "time": ["day_sin", "day_cos", "tod_sin", "tod_cos"],
    "position": ["lat", "lon"],
    "lst_mean": ["lst_avg"],
    "height_mean": ["height_avg"],
    "height_diffs": [c for c in FEATURES if c.startswith("hd_")],
}


# ---------------------------------------------------------------------------------------------
# samples


def _box_sum(a: np.ndarray, radius: int) -> np.ndarray:
    """Sum of `a` over every full (2·radius+1)² window, (H-2r, W-2r); exact for integers."""
    k = 2 * radius + 1
    c = np.zeros((a.shape[0] + 1, a.shape[1] + 1), dtype=np.int64)
    c[1:, 1:] = a.astype(np.int64).cumsum(0).cumsum(1)
    return c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]


def valid_centres(lst: np.ndarray, dem: np.ndarray, radius: int = RADIUS) -> np.ndarray:
    """(row, col) int32 of every pixel whose full window lies in the grid, finite in LST and DEM."""
    k = 2 * radius + 1
    if lst.shape[0] < k or lst.shape[1] < k:
        return np.zeros((0, 2), dtype=np.int32)
    bad = ~(np.isfinite(lst) & np.isfinite(dem))
    rows, cols = np.nonzero(_box_sum(bad, radius) == 0)
    return np.stack([rows + radius, cols + radius], axis=1).astype(np.int32)


def _windows(a: np.ndarray, rc: np.ndarray, radius: int) -> np.ndarray:
    """The flattened row-major windows of `a` centred on `rc`, (n, (2r+1)²) float64."""
    k = 2 * radius + 1
    if len(rc) == 0:
        return np.zeros((0, k * k))
    view = sliding_window_view(np.asarray(a, dtype=np.float64), (k, k))
    return view[rc[:, 0] - radius, rc[:, 1] - radius].reshape(len(rc), k * k)


def window_samples(
    lst: np.ndarray,
    dem: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    doy: int,
    hour: float,
    *,
    radius: int = RADIUS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One day's samples: X float32 (n, len(FEATURES)), target y float32 (n,) in K and the centres
    rc int32 (n, 2), for every pixel whose full window has finite LST (K) and DEM (m).

    `lat` / `lon` are the rows' and columns' centres of a lat/lon grid, (H,) and (W,), or each
    pixel's centre, both (H, W), for a projected grid (e.g. UTM). `doy` is the 0-based day of
    year, `hour` the overpass' local solar time (e.g. 1.5, 13.5).
    """
    lst = np.asarray(lst, dtype=np.float64)
    dem = np.asarray(dem, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    if lst.ndim != 2 or dem.shape != lst.shape:
        raise ValueError(f"lst {lst.shape} and dem {dem.shape} must be the same 2-D grid")
    per_pixel = lat.shape == lon.shape == lst.shape
    if not per_pixel and (lat.shape != (lst.shape[0],) or lon.shape != (lst.shape[1],)):
        raise ValueError(f"lat {lat.shape} / lon {lon.shape} do not match the grid {lst.shape}")
    rc = valid_centres(lst, dem, radius)
    n = len(rc)
    lst_win = _windows(lst, rc, radius)
    dem_win = _windows(dem, rc, radius)
    lst_avg = lst_win.mean(axis=1)
    height_avg = dem_win.mean(axis=1)
    day = 2 * np.pi * doy / DAYS_PER_YEAR
    tod = 2 * np.pi * hour / HOURS_PER_DAY
    scalars = np.empty((n, 8), dtype=np.float64)
    scalars[:, 0:4] = [np.sin(day), np.cos(day), np.sin(tod), np.cos(tod)]
    scalars[:, 4] = lat[rc[:, 0], rc[:, 1]] if per_pixel else lat[rc[:, 0]]
    scalars[:, 5] = lon[rc[:, 0], rc[:, 1]] if per_pixel else lon[rc[:, 1]]
    scalars[:, 6] = lst_avg
    scalars[:, 7] = height_avg
    X = np.concatenate([scalars, dem_win - height_avg[:, None]], axis=1).astype(np.float32)
    y = (lst[rc[:, 0], rc[:, 1]] - lst_avg).astype(np.float32)
    return X, y, rc


# ---------------------------------------------------------------------------------------------
# scaling

METHODS = ("normalize", "standardize", "raw")
# config key (as in the seed's YAML) -> the columns it scales; height_diffs share one scaler
SCALING_KEYS: dict[str, list[str]] = {
    "day_sin": ["day_sin"],
    "day_cos": ["day_cos"],
    "tod_sin": ["tod_sin"],
    "tod_cos": ["tod_cos"],
    "lat": ["lat"],
    "long": ["lon"],
    "lst_avg": ["lst_avg"],
    "height_avg": ["height_avg"],
    "height_diffs": GROUPS["height_diffs"],
}
DEFAULT_METHODS = {"tod_sin": "raw", "tod_cos": "raw"}


def image_samples(
    lst: np.ndarray,
    dem: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    doy: int,
    hour: float,
    *,
    radius: int,
    cap: int | None,
    date: int,
    band_index: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`window_samples` of one image (one day's band), at most `cap` of them: a random subset
    drawn by a generator seeded by (`date`, `band_index`), so the same image always keeps the
    same samples."""
    X, y, rc = window_samples(lst, dem, lat, lon, doy, hour, radius=radius)
    if cap is not None and len(y) > cap:
        rng = np.random.default_rng([date, band_index])
        keep = np.sort(rng.choice(len(y), cap, replace=False))
        X, y, rc = X[keep], y[keep], rc[keep]
    return X, y, rc


def stack_images(
    images: Sequence[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(X, y, meta) of the images' samples, given per image as (date YYYYMMDD, band index, X,
    y, rc): meta holds each sample's date, band, row and column."""
    meta = {
        "date": np.concatenate([np.full(len(rc), d, np.int32) for d, _, _, _, rc in images]),
        "band": np.concatenate([np.full(len(rc), b, np.int8) for _, b, _, _, rc in images]),
        "row": np.concatenate([rc[:, 0] for *_, rc in images]).astype(np.int32),
        "col": np.concatenate([rc[:, 1] for *_, rc in images]).astype(np.int32),
    }
    X = np.concatenate([X for _, _, X, _, _ in images])
    y = np.concatenate([y for _, _, _, y, _ in images])
    return X, y, meta


def _key_columns(key: str, columns: Sequence[str]) -> list[str]:
    """The columns scaled by config `key` (height_diffs: every hd_ column, whatever the radius)."""
    if key == "height_diffs":
        return [c for c in columns if c.startswith("hd_")]
    return SCALING_KEYS[key]


def check_methods(methods: dict[str, str]) -> dict[str, str]:
    """`methods` with the defaults filled in; ConfigError naming any unknown key or method, or a
    missing key."""
    for key, method in methods.items():
        if key not in SCALING_KEYS:
            raise ConfigError(key, f"unknown feature; expected one of {sorted(SCALING_KEYS)}")
        if method not in METHODS:
            raise ConfigError(key, f"unknown scaling method {method!r}; expected one of {METHODS}")
    full = {**DEFAULT_METHODS, **methods}
    for key in SCALING_KEYS:
        if key not in full:
            raise ConfigError(key, f"missing scaling method; expected one of {METHODS}")
    return full


@dataclass
class Scaler:
    """Per-column affine scaling (x - offset) / scale, fitted on training samples only."""

    columns: list[str]
    methods: dict[str, str]
    offset: np.ndarray
    scale: np.ndarray = field(repr=False)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scaled copy of `X` (n, len(columns)), float32."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != len(self.columns):
            raise ValueError(f"X has shape {X.shape}, expected (n, {len(self.columns)})")
        return ((X - self.offset) / self.scale).astype(np.float32)

    def inverse_transform(self, Xs: np.ndarray) -> np.ndarray:
        """Undo `transform`, float32."""
        return (np.asarray(Xs) * self.scale + self.offset).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (stored beside a trained model)."""
        return {
            "columns": list(self.columns),
            "methods": dict(self.methods),
            "offset": [float(v) for v in self.offset],
            "scale": [float(v) for v in self.scale],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scaler:
        """Inverse of `to_dict`."""
        offset = np.asarray(d["offset"], dtype=np.float64)
        scale = np.asarray(d["scale"], dtype=np.float64)
        if not len(d["columns"]) == len(offset) == len(scale):
            raise ValueError("scaler columns, offset and scale differ in length")
        return cls(list(d["columns"]), check_methods(dict(d["methods"])), offset, scale)


def _fit_block(block: np.ndarray, method: str) -> tuple[float, float]:
    """(offset, scale) of one method over all values of `block`; a zero range scales by 1."""
    if method == "raw":
        return 0.0, 1.0
    if method == "normalize":
        lo, hi = float(block.min()), float(block.max())
        return lo, (hi - lo) or 1.0
    return float(block.mean()), float(block.std()) or 1.0


def fit_scaler(
    X: np.ndarray, methods: dict[str, str], *, columns: Sequence[str] = FEATURES
) -> Scaler:
    """Fit the scaling named per config key in `methods` (seed YAML keys) on training `X`.

    The height differences share one offset and scale over all their columns, so a window's
    shape is preserved.
    """
    methods = check_methods(methods)
    X = np.asarray(X, dtype=np.float64)
    columns = list(columns)
    if X.ndim != 2 or X.shape[1] != len(columns) or len(X) == 0:
        raise ValueError(f"X has shape {X.shape}, expected (n > 0, {len(columns)})")
    offset = np.zeros(len(columns))
    scale = np.ones(len(columns))
    for key, method in methods.items():
        idx = [columns.index(c) for c in _key_columns(key, columns)]
        offset[idx], scale[idx] = _fit_block(X[:, idx], method)
    return Scaler(columns, methods, offset, scale)


# ---------------------------------------------------------------------------------------------
# splits


# ---------------------------------------------------------------------------------------------
# cache

_RESERVED = {"X", "y", "feature", "sample"}


def write_samples(
    path: str | Path,
    X: np.ndarray,
    y: np.ndarray,
    meta: dict[str, np.ndarray],
    params: dict[str, Any],
    *,
    columns: Sequence[str] = FEATURES,
) -> Path:
    """Write samples as NetCDF (dims sample, feature), atomically; `meta` holds 1-D per-sample
    arrays (day, row, col, hour, ...), `params` is stored as a JSON attribute."""
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32)
    n = len(y)
    if X.shape != (n, len(columns)):
        raise ValueError(f"X has shape {X.shape}, expected ({n}, {len(columns)})")
    data = {
        "X": (("sample", "feature"), X),
        "y": (("sample",), y, {"units": "K", "long_name": "LST minus window-mean LST"}),
    }
    for key, arr in meta.items():
        arr = np.asarray(arr)
        if key in _RESERVED or arr.shape != (n,):
            raise ValueError(f"meta {key!r}: need a new name and shape ({n},), got {arr.shape}")
        data[key] = (("sample",), arr)
    ds = xr.Dataset(
        data,
        coords={"feature": list(columns)},
        attrs={
            "title": "lstfill downscaling samples",
            "params": json.dumps(json_ready(params), sort_keys=True, default=str),
            "meta": json.dumps(list(meta)),
        },
    )
    return write_netcdf(path, ds)


def read_samples(
    path: str | Path,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    """(X, y, meta, params) of a sample file written by `write_samples`."""
    ds = load_netcdf(path, "sample file")
    try:
        params = json.loads(ds.attrs["params"])
        keys = json.loads(ds.attrs["meta"])
        X = ds["X"].values.astype(np.float32)
        y = ds["y"].values.astype(np.float32)
        meta = {k: ds[k].values for k in keys}
    except KeyError as exc:
        raise InputError(path, f"not an lstfill sample file (missing {exc})") from exc
    return X, y, meta, params


def day_runs(dates: np.ndarray, gap: int) -> np.ndarray:
    """Run index (0, 1, ...) of each YYYYMMDD date: sorted distinct days at most `gap` days after
    the previous one continue its run (`gap` 0: every day is its own run)."""
    dates = np.asarray(dates)
    uniq, inverse = np.unique(dates, return_inverse=True)
    days = np.array(
        [np.datetime64(f"{d // 10000:04d}-{d // 100 % 100:02d}-{d % 100:02d}") for d in uniq]
    ).astype("datetime64[D]")
    new_run = np.diff(days).astype(np.int64) > gap
    run = np.concatenate([[0], np.cumsum(new_run)]).astype(np.int64)
    return run[inverse.reshape(dates.shape)]


@cache
def _schema_day_run_gap() -> int:
    split = load_schema()["properties"]["downscale"]["properties"]["split"]
    return int(split["properties"]["day_run_gap"]["default"])


def day_run_gap(split: Mapping[str, Any]) -> int:
    """`split["day_run_gap"]`, or the schema default where a split block lacks it."""
    return int(split.get("day_run_gap", _schema_day_run_gap()))


def split_codes(
    meta: Mapping[str, np.ndarray], params: Mapping[str, Any], split: Mapping[str, Any], kind: str
) -> np.ndarray:
    """TRAIN/VAL/TEST (or DROPPED) per sample for the `kind` ("day" or "space") split; the day
    split assigns whole runs of days (`day_runs` with `day_run_gap(split)`)."""
    ratios = [float(r) for r in split["ratios"]]
    if kind == "day":
        gap = day_run_gap(split)
        runs = day_runs(meta["date"], gap)
        n_runs = len(np.unique(runs))
        if n_runs < 3:
            raise LstfillError(
                f"day split: {len(np.unique(meta['date']))} days in {n_runs} run(s) of days at "
                f"most {gap} days apart cannot give a train, val and test run each; raise "
                "downscale.max_days or lower downscale.split.day_run_gap"
            )
        return split_by_day(runs, tuple(ratios), split["seed"])
    if kind == "space":
        total = sum(ratios)
        rc = np.stack([meta["row"], meta["col"]], axis=1)
        return split_by_space(
            rc,
            tuple(params["grid_shape"]),
            split["block_size"],
            ratios[1] / total,
            ratios[2] / total,
            split["seed"],
            radius=int(params["radius"]),
        )
    raise ConfigError("downscale.split.kinds", f"unknown split {kind!r} (space or day)")


def split_counts(codes: np.ndarray) -> dict[str, int]:
    counts = {name: int((codes == code).sum()) for code, name in SPLIT_NAMES.items()}
    counts["dropped"] = int((codes == DROPPED).sum())
    return counts


def need_all_splits(codes: np.ndarray, kind: str, samples: str | Path) -> None:
    counts = split_counts(codes)
    empty = [name for name in ("train", "val", "test") if counts[name] == 0]
    if empty:
        raise LstfillError(
            f"{samples}: the {kind} split leaves no {', '.join(empty)} samples ({counts}); "
            "use more days, a larger region or a smaller downscale.split.block_size"
        )
