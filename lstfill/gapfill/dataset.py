"""Patch samples for the gap-fill CNN: windows of features around clear pixels, with their LST.

Samples come from the training (and validation) acquisitions only, and within them from the
pixels whose whole window lies in that split's spatial blocks, so neither dates nor blocks leak
between splits. The normalisation statistics are fitted on the training samples alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from lstfill.errors import InputError
from lstfill.gapfill.features import (
    FeatureSet,
    History,
    Normaliser,
    categorical_stack,
    extract_patches,
    numeric_stack,
)
from lstfill.gapfill.inputs import LstSeries
from lstfill.io import load_netcdf, write_netcdf
from lstfill.splits import TRAIN, VAL, window_inside


@dataclass
class PatchSamples:
    """N patches: raw numeric (N, C, p, p), raw categorical (N, K, p, p), target LST (N,) in K,
    and where each came from (acquisition index, row, col)."""

    numeric: np.ndarray
    categorical: np.ndarray
    target: np.ndarray
    acquisition: np.ndarray
    row: np.ndarray
    col: np.ndarray

    def __len__(self) -> int:
        return len(self.target)

    @classmethod
    def concat(cls, parts: list[PatchSamples]) -> PatchSamples:
        fields = cls.__dataclass_fields__
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))


def sample_patches(
    series: LstSeries,
    index: np.ndarray,
    allowed_pixels: np.ndarray,
    features: FeatureSet,
    size: int,
    history: History | None,
    max_per_acquisition: int,
    rng: np.random.Generator,
) -> PatchSamples:
    """Patches centred on clear land pixels inside `allowed_pixels` of acquisitions `index`."""
    cat_all = categorical_stack(series, features.categorical)
    parts = []
    for t in index:
        ok = series.valid[t] & allowed_pixels
        rows, cols = np.nonzero(ok)
        if rows.size == 0:
            continue
        if rows.size > max_per_acquisition:
            pick = np.sort(rng.choice(rows.size, max_per_acquisition, replace=False))
            rows, cols = rows[pick], cols[pick]
        num = numeric_stack(series, int(t), features.numeric, history)
        parts.append(
            PatchSamples(
                numeric=extract_patches(num, rows, cols, size),
                categorical=extract_patches(cat_all, rows, cols, size),
                target=series.lst[t, rows, cols].astype(np.float32),
                acquisition=np.full(rows.size, t, dtype=np.int32),
                row=rows.astype(np.int32),
                col=cols.astype(np.int32),
            )
        )
    if not parts:
        raise InputError(series.source, "no clear pixel to sample patches from in this split")
    return PatchSamples.concat(parts)


def split_patches(
    series: LstSeries,
    train_index: np.ndarray,
    val_index: np.ndarray,
    history_allowed: np.ndarray,
    features: FeatureSet,
    *,
    size: int,
    max_per_acquisition: int,
    rng: np.random.Generator,
    blocks: np.ndarray | None = None,
) -> dict[str, Any]:
    """The training and validation patches, each from its own acquisitions and, given a block
    map `blocks`, from windows wholly inside its own blocks (anywhere on land without one); the
    normalisation fitted on the training patches; and the (night, day) LST patterns of the
    `history_allowed` acquisitions, which the `lst_pattern` feature of the patches reads."""
    history = History(series, history_allowed)
    if blocks is None:
        train_px = val_px = series.land
    else:
        train_px = window_inside(blocks, TRAIN, size // 2) & series.land
        val_px = window_inside(blocks, VAL, size // 2) & series.land
    args = (features, size, history, max_per_acquisition, rng)
    train = sample_patches(series, np.asarray(train_index), train_px, *args)
    val = sample_patches(series, np.asarray(val_index), val_px, *args)
    return {
        "train": train,
        "val": val,
        "norm": fit_normaliser(train, features),
        "patterns": (history.class_pattern(False), history.class_pattern(True)),
    }


def fit_normaliser(samples: PatchSamples, features: FeatureSet) -> Normaliser:
    """Statistics of the centre pixels of the training patches."""
    r = samples.numeric.shape[-1] // 2
    centre = samples.numeric[:, :, r, r]
    cat = samples.categorical[:, :, r, r]
    return Normaliser.fit(
        {n: centre[:, i] for i, n in enumerate(features.numeric)},
        samples.target,
        {n: cat[:, i] for i, n in enumerate(features.categorical)},
    )


class PatchDataset(torch.utils.data.TensorDataset):
    """Normalised tensors of a PatchSamples: items (numeric, categorical codes, target)."""

    def __init__(self, samples: PatchSamples, norm: Normaliser, features: FeatureSet) -> None:
        num = norm.numeric(samples.numeric.transpose(1, 0, 2, 3), features.numeric)
        cat = norm.categorical(samples.categorical.transpose(1, 0, 2, 3), features.categorical)
        super().__init__(
            torch.from_numpy(np.ascontiguousarray(num.transpose(1, 0, 2, 3))),
            torch.from_numpy(np.ascontiguousarray(cat.transpose(1, 0, 2, 3))),
            torch.from_numpy(norm.target(samples.target)),
        )


def write_patches(
    path: str | Path,
    splits: dict[str, PatchSamples],
    features: FeatureSet,
    norm: Normaliser,
    attrs: dict[str, Any],
    maps: dict[str, np.ndarray] | None = None,
) -> Path:
    """One NetCDF holding every split's patches (dimension `sample`, variable `split`) and
    per-pixel `maps` (y, x) such as the training split's LST pattern."""
    names = list(splits)
    allp = PatchSamples.concat([splits[n] for n in names])
    code = np.concatenate([np.full(len(splits[n]), i, dtype=np.int8) for i, n in enumerate(names)])
    p = allp.numeric.shape[-1]
    ds = xr.Dataset(
        {
            "numeric": (("sample", "feature", "py", "px"), allp.numeric),
            "categorical": (("sample", "category", "py", "px"), allp.categorical.astype(np.int32)),
            "lst": (("sample",), allp.target, {"units": "K", "long_name": "patch-centre LST"}),
            "acquisition": (("sample",), allp.acquisition),
            "row": (("sample",), allp.row),
            "col": (("sample",), allp.col),
            "split": (
                ("sample",),
                code,
                {"flag_values": list(range(len(names))), "flag_meanings": " ".join(names)},
            ),
        },
        coords={
            "feature": list(features.numeric),
            "category": list(features.categorical),
            "py": np.arange(p) - p // 2,
            "px": np.arange(p) - p // 2,
        },
        attrs={
            "title": "lstfill gap-fill patch dataset",
            "features": json.dumps(features.to_dict()),
            "normalisation": json.dumps(norm.to_dict()),
            **{k: json.dumps(v) if not isinstance(v, str) else v for k, v in attrs.items()},
        },
    )
    for name, arr in (maps or {}).items():
        ds[name] = (("y", "x"), np.asarray(arr))
    return write_netcdf(path, ds)


def read_patches(
    path: str | Path,
) -> tuple[dict[str, PatchSamples], FeatureSet, Normaliser, dict[str, np.ndarray], dict]:
    """The splits, features, normalisation, per-pixel maps and attributes of a patch dataset."""
    ds = load_netcdf(path, "patch dataset")
    try:
        features = FeatureSet.from_dict(json.loads(ds.attrs["features"]))
        norm = Normaliser.from_dict(json.loads(ds.attrs["normalisation"]))
        names = ds["split"].attrs["flag_meanings"].split()
    except KeyError as exc:
        raise InputError(path, f"not an lstfill patch dataset (missing {exc})") from exc
    code = ds["split"].values
    out = {}
    for i, name in enumerate(names):
        sel = code == i
        out[name] = PatchSamples(
            numeric=ds["numeric"].values[sel].astype(np.float32),
            categorical=ds["categorical"].values[sel].astype(np.int64),
            target=ds["lst"].values[sel].astype(np.float32),
            acquisition=ds["acquisition"].values[sel],
            row=ds["row"].values[sel],
            col=ds["col"].values[sel],
        )
    maps = {str(k): v.values for k, v in ds.data_vars.items() if v.dims == ("y", "x")}
    return out, features, norm, maps, dict(ds.attrs)
