"""Per-pixel features of one acquisition, their normalisation and categorical encoding.

A feature is named by what it is, so a config (and a checkpoint) lists names, never positions:

- a dynamic cube variable (`b02`, `ndvi`, `t2m`, `gl_6h`, ...), taken at the acquisition;
- a static cube variable (`elevation`, `slope`, `tree_cover`, `biome`, ...);
- a time feature: `doy_sin`, `doy_cos` (day of year) and `tod_sin`, `tod_cos` (local solar time);
- `lst_pattern`: the pixel's persistent LST anomaly (its LST minus the scene median, averaged over
  other acquisitions of the same day/night class). It is LST *history*, never the acquisition's
  own LST, so a model using it still sees no LST of the date it fills.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lstfill.errors import InputError
from lstfill.gapfill.inputs import LstSeries
from lstfill.variables import HISTORY_FEATURES, TIME_FEATURES


@dataclass(frozen=True)
class FeatureSet:
    """The numeric and categorical features a model reads, in channel order."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, list[str]]:
        return {"numeric": list(self.numeric), "categorical": list(self.categorical)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSet:
        return cls(tuple(d.get("numeric", ())), tuple(d.get("categorical", ())))


def available_features(series: LstSeries) -> set[str]:
    """Every feature name this series can provide."""
    return series.variables() | set(TIME_FEATURES) | set(HISTORY_FEATURES)


def check_features(series: LstSeries, features: FeatureSet) -> None:
    """Raise InputError naming the series and every requested feature it lacks."""
    have = available_features(series)
    missing = [f for f in (*features.numeric, *features.categorical) if f not in have]
    if missing:
        raise InputError(
            series.source or "(series)",
            f"missing features {missing}; available: {sorted(have)}",
        )
    bad = [f for f in features.categorical if f not in series.static]
    if bad:
        raise InputError(series.source, f"categorical features must be static layers: {bad}")


def select_available(series: LstSeries, features: FeatureSet) -> FeatureSet:
    """`features` restricted to what the series holds (for cubes without S2 or INCA)."""
    have = available_features(series)
    return FeatureSet(
        tuple(f for f in features.numeric if f in have),
        tuple(f for f in features.categorical if f in series.static),
    )


def solar_hours(series: LstSeries) -> np.ndarray:
    """Local mean solar time (h) of each acquisition at the grid centre."""
    lon, _ = series.centre_lonlat()
    t = series.times.astype("datetime64[s]")
    utc_h = (t - t.astype("datetime64[D]")).astype(np.float64) / 3600.0
    return np.mod(utc_h + lon / 15.0, 24.0)


def day_of_year(series: LstSeries) -> np.ndarray:
    t = series.times.astype("datetime64[D]")
    years = t.astype("datetime64[Y]")
    return (t - years).astype(np.float64) + 1.0


def time_features(series: LstSeries) -> dict[str, np.ndarray]:
    """Cyclic day-of-year and time-of-day encodings, one value per acquisition."""
    doy = 2 * np.pi * (day_of_year(series) - 1) / 365.25
    tod = 2 * np.pi * solar_hours(series) / 24.0
    return {
        "doy_sin": np.sin(doy),
        "doy_cos": np.cos(doy),
        "tod_sin": np.sin(tod),
        "tod_cos": np.cos(tod),
    }


def is_daytime(series: LstSeries) -> np.ndarray:
    """Acquisitions between 06 and 18 h local solar time."""
    h = solar_hours(series)
    return (h >= 6.0) & (h < 18.0)


class History:
    """Per-pixel LST anomaly sums over the `allowed` acquisitions, by day/night class.

    `pattern(t)` leaves acquisition t out, so a training sample never sees its own target.
    """

    def __init__(self, series: LstSeries, allowed: np.ndarray) -> None:
        allowed = np.asarray(allowed, dtype=bool)
        if allowed.shape != (len(series.times),):
            raise ValueError("allowed must be one flag per acquisition")
        self.day = is_daytime(series)
        valid = series.valid
        lst = np.where(valid, series.lst, np.nan)
        with np.errstate(all="ignore"):
            med = np.nanmedian(lst.reshape(len(lst), -1), axis=1)
        self.anom = np.where(valid, lst - med[:, None, None], 0.0).astype(np.float32)
        self.valid = valid
        self.allowed = allowed
        h, w = series.grid.shape
        self.sums = np.zeros((2, h, w))
        self.counts = np.zeros((2, h, w))
        for t in np.flatnonzero(allowed):
            c = int(self.day[t])
            self.sums[c] += self.anom[t]
            self.counts[c] += valid[t]

    def class_pattern(self, day: bool) -> np.ndarray:
        """Mean anomaly over every allowed acquisition of the day (or night) class."""
        s, n = self.sums[int(day)], self.counts[int(day)]
        if not n.any():
            s, n = self.sums[1 - int(day)], self.counts[1 - int(day)]
        with np.errstate(all="ignore"):
            return np.where(n > 0, s / np.maximum(n, 1), 0.0).astype(np.float32)

    def pattern(self, t: int) -> np.ndarray:
        """Mean anomaly of each pixel over allowed acquisitions of t's class, t excluded."""
        c = int(self.day[t])
        s, n = self.sums[c].copy(), self.counts[c].copy()
        if self.allowed[t]:
            s -= self.anom[t]
            n -= self.valid[t]
        if not n.any():  # no acquisition of this class: fall back on the other one
            s, n = self.sums[1 - c], self.counts[1 - c]
        with np.errstate(all="ignore"):
            return np.where(n > 0, s / np.maximum(n, 1), 0.0).astype(np.float32)


class StoredPattern:
    """A fitted model's day and night `lst_pattern` maps, served like History.pattern."""

    def __init__(self, series: LstSeries, day: np.ndarray, night: np.ndarray) -> None:
        if day.shape != series.grid.shape:
            raise InputError(
                series.source, f"grid {series.grid.shape} differs from the model's {day.shape}"
            )
        self.is_day = is_daytime(series)
        self.maps = (night, day)

    def pattern(self, t: int) -> np.ndarray:
        return self.maps[int(self.is_day[t])]


def numeric_stack(
    series: LstSeries, t: int, names: Sequence[str], history: History | StoredPattern | None = None
) -> np.ndarray:
    """Raw (unnormalised) numeric features of acquisition `t`, (C, H, W) float32, NaN kept."""
    h, w = series.grid.shape
    out = np.empty((len(names), h, w), dtype=np.float32)
    tf: dict[str, np.ndarray] | None = None
    for i, name in enumerate(names):
        if name in series.dynamic:
            out[i] = series.dynamic[name][t]
        elif name in series.static:
            out[i] = series.static[name]
        elif name in TIME_FEATURES:
            tf = tf or time_features(series)
            out[i] = tf[name][t]
        elif name == "lst_pattern":
            if history is None:
                raise ValueError("lst_pattern needs a History of allowed acquisitions")
            out[i] = history.pattern(t)
        else:
            raise InputError(series.source, f"unknown feature {name!r}")
    return out


def categorical_stack(series: LstSeries, names: Sequence[str]) -> np.ndarray:
    """Raw class values of the categorical static layers, (K, H, W) int64 (-1 where NaN)."""
    h, w = series.grid.shape
    out = np.empty((len(names), h, w), dtype=np.int64)
    for i, name in enumerate(names):
        v = series.static[name]
        out[i] = np.where(np.isfinite(v), np.round(np.nan_to_num(v, nan=-1)), -1)
    return out


@dataclass
class Normaliser:
    """Standardisation of numeric features and the target, plus the categorical vocabularies.

    Fitted on training pixels only; stored in every checkpoint so prediction applies the same.
    """

    mean: dict[str, float]
    std: dict[str, float]
    target_mean: float
    target_std: float
    vocab: dict[str, list[int]]

    @classmethod
    def fit(
        cls,
        numeric: dict[str, np.ndarray],
        target: np.ndarray,
        categorical: dict[str, np.ndarray],
    ) -> Normaliser:
        """Statistics of 1-D samples per feature name (NaN ignored)."""
        mean, std = {}, {}
        for name, v in numeric.items():
            v = np.asarray(v, dtype=np.float64)
            v = v[np.isfinite(v)]
            mean[name] = float(v.mean()) if v.size else 0.0
            s = float(v.std()) if v.size else 1.0
            std[name] = s if s > 1e-6 else 1.0
        tgt = np.asarray(target, dtype=np.float64)
        tgt = tgt[np.isfinite(tgt)]
        if tgt.size == 0:
            raise ValueError("no finite target value to fit the normalisation on")
        vocab = {k: sorted(int(x) for x in np.unique(v) if x >= 0) for k, v in categorical.items()}
        return cls(mean, std, float(tgt.mean()), max(float(tgt.std()), 1e-3), vocab)

    def numeric(self, stack: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Standardise a (C, ...) stack in channel order `names`; NaN becomes 0 (the mean)."""
        m = np.array([self.mean[n] for n in names], dtype=np.float32)
        s = np.array([self.std[n] for n in names], dtype=np.float32)
        shape = (len(names),) + (1,) * (stack.ndim - 1)
        out = (stack - m.reshape(shape)) / s.reshape(shape)
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

    def categorical(self, stack: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Map class values to 1..n per layer (0 = unseen in training), same shape."""
        out = np.zeros(stack.shape, dtype=np.int64)
        for i, name in enumerate(names):
            classes = np.asarray(self.vocab[name], dtype=np.int64)
            if classes.size == 0:
                continue
            idx = np.searchsorted(classes, stack[i])
            idx_c = np.clip(idx, 0, classes.size - 1)
            out[i] = np.where(classes[idx_c] == stack[i], idx_c + 1, 0)
        return out

    def n_classes(self, names: Sequence[str]) -> list[int]:
        """Number of one-hot slots per categorical layer (classes + 1 for unseen)."""
        return [len(self.vocab[n]) + 1 for n in names]

    def target(self, y: np.ndarray) -> np.ndarray:
        return ((y - self.target_mean) / self.target_std).astype(np.float32)

    def untarget(self, z: np.ndarray) -> np.ndarray:
        return (z * self.target_std + self.target_mean).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "std": self.std,
            "target_mean": self.target_mean,
            "target_std": self.target_std,
            "vocab": self.vocab,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normaliser:
        return cls(
            dict(d["mean"]),
            dict(d["std"]),
            float(d["target_mean"]),
            float(d["target_std"]),
            {k: [int(x) for x in v] for k, v in d["vocab"].items()},
        )


def extract_patches(stack: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """(N, C, size, size) windows of a (C, H, W) stack centred on (rows, cols).

    Edges are padded by reflection so border pixels get full patches (ECOSTRESS tile borders
    are among the gaps the paper targets).
    """
    if size % 2 != 1:
        raise ValueError(f"patch size must be odd, got {size}")
    r = size // 2
    mode = "reflect" if min(stack.shape[1:]) > r else "edge"
    padded = np.pad(stack, ((0, 0), (r, r), (r, r)), mode=mode)
    dr, dc = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    rr = np.asarray(rows)[:, None, None] + dr[None]
    cc = np.asarray(cols)[:, None, None] + dc[None]
    return np.ascontiguousarray(padded[:, rr, cc].transpose(1, 0, 2, 3))
