"""MODIS day scenes and patch-pair datasets for super-resolution.

A *day scene* pairs one MOD11A1 day LST (1 km, QC-filtered, NaN where invalid) with the NDVI of
the same day's MOD09GQ (250 m, red/NIR, NaN where not produced) on the same sinusoidal tile, the
fine grid exactly `factor` times finer and aligned with the coarse one. Scenes are stored as
NetCDF (`lst` on `y_coarse, x_coarse`, `ndvi` on `y, x`, both grids' transforms and the CRS in
attributes).

The training set is a NetCDF of patch pairs: `size` x `size` coarse LST and the matching
(`size` * factor)^2 NDVI, cut with a stride from every scene and kept only when clean enough
(`max_invalid_lst`, `max_invalid_ndvi`; 0 = perfectly clean, as in SIF-NN-SR). Days, not
patches, are split into train / validation / test, so no day contributes to two splits.
Normalisation statistics (mean and std of LST and NDVI) come from the training patches only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine

from lstfill.cube import write_netcdf
from lstfill.errors import InputError
from lstfill.indices import normalised_difference
from lstfill.io import atomic_output, load_netcdf
from lstfill.raster import fill_nearest
from lstfill.sources import modis
from lstfill.splits import TEST, TRAIN, VAL

SPLIT_CODES = {"train": TRAIN, "val": VAL, "test": TEST}


@dataclass
class DayScene:
    """One day's coarse LST and fine NDVI on aligned sinusoidal grids."""

    date: dt.date
    lst: np.ndarray  # (h, w) K, NaN invalid
    ndvi: np.ndarray  # (h * factor, w * factor), NaN invalid
    transform: Affine  # of the coarse grid
    crs: str
    factor: int

    @property
    def fine_transform(self) -> Affine:
        return self.transform @ Affine.scale(1.0 / self.factor)


def modland_valid(qc: np.ndarray, max_modland_qa: int = 1) -> np.ndarray:
    """MOD09GQ QC_250m bits 0-1 (MODLAND QA): 0 ideal, 1 less than ideal, 2 not produced
    because of cloud, 3 not produced for other reasons. Valid where <= `max_modland_qa`."""
    return (np.asarray(qc).astype(np.uint16) & 0b11) <= max_modland_qa


def build_day_scene(
    lst_path: str | Path,
    refl_path: str | Path,
    *,
    max_lst_error_k: int = 2,
    max_modland_qa: int = 1,
) -> DayScene:
    """Read a MOD11A1 granule (day overpass) and the MOD09GQ granule of the same day and tile."""
    lst = modis.read_mod11a1(lst_path, "Day", max_lst_error_k)
    refl = modis.read_mod09gq(refl_path)
    if lst.date != refl.date:
        raise InputError(refl_path, f"is of {refl.date}, the LST granule {lst_path} of {lst.date}")
    h, w = lst.lst.data.shape
    hf, wf = refl.red.data.shape
    factor = hf // h
    if factor < 1 or (h * factor, w * factor) != (hf, wf):
        raise InputError(
            refl_path,
            f"grid {hf}x{wf} is not an integer multiple of the LST grid {h}x{w} of {lst_path}",
        )
    fine = lst.lst.transform @ Affine.scale(1.0 / factor)
    if not fine.almost_equals(refl.red.transform, precision=1e-3 * abs(fine.a)):
        raise InputError(refl_path, f"250 m grid is not aligned with the LST grid of {lst_path}")
    ok = modland_valid(refl.qc, max_modland_qa) & np.isfinite(refl.red.data)
    ndvi = np.where(ok, normalised_difference(refl.nir.data, refl.red.data), np.nan)
    return DayScene(
        date=lst.date,
        lst=lst.lst.data.astype(np.float32),
        ndvi=np.clip(ndvi, -1, 1).astype(np.float32),
        transform=lst.lst.transform,
        crs=lst.lst.crs,
        factor=factor,
    )


def _centres(transform: Affine, n_rows: int, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    x = transform.c + transform.a * (np.arange(n_cols) + 0.5)
    y = transform.f + transform.e * (np.arange(n_rows) + 0.5)
    return y, x


def write_day_scene(scene: DayScene, path: str | Path) -> Path:
    """Write a day scene as CF NetCDF (two grids; transforms and CRS as attributes)."""
    h, w = scene.lst.shape
    yc, xc = _centres(scene.transform, h, w)
    yf, xf = _centres(scene.fine_transform, h * scene.factor, w * scene.factor)
    ds = xr.Dataset(
        {
            "lst": (
                ("y_coarse", "x_coarse"),
                scene.lst,
                {"units": "K", "long_name": "MOD11A1 day land surface temperature"},
            ),
            "ndvi": (
                ("y", "x"),
                scene.ndvi,
                {"units": "1", "long_name": "NDVI from MOD09GQ red and NIR"},
            ),
        },
        coords={"y_coarse": yc, "x_coarse": xc, "y": yf, "x": xf},
        attrs={
            "Conventions": "CF-1.8",
            "date": scene.date.isoformat(),
            "crs_wkt": modis.SINUSOIDAL_WKT if scene.crs == modis.sinusoidal_crs() else scene.crs,
            "crs": scene.crs,
            "transform": list(scene.transform)[:6],
            "factor": scene.factor,
        },
    )
    return write_netcdf(ds, path)


def read_day_scene(path: str | Path) -> DayScene:
    """Read a day scene written by `write_day_scene`; InputError naming the file otherwise."""
    ds = load_netcdf(path, "MODIS day scene")
    for key in ("lst", "ndvi"):
        if key not in ds:
            raise InputError(path, f"has no variable {key!r}; is it a MODIS day scene?")
    for key in ("date", "transform", "factor", "crs"):
        if key not in ds.attrs:
            raise InputError(path, f"has no attribute {key!r}; is it a MODIS day scene?")
    return DayScene(
        date=dt.date.fromisoformat(ds.attrs["date"]),
        lst=ds["lst"].values.astype(np.float32),
        ndvi=ds["ndvi"].values.astype(np.float32),
        transform=Affine(*np.asarray(ds.attrs["transform"], dtype=float)),
        crs=str(ds.attrs["crs"]),
        factor=int(ds.attrs["factor"]),
    )


# ------------------------------------------------------------------------------ patch pairs


@dataclass
class PatchPairs:
    """Coarse LST patches (n, s, s), fine NDVI patches (n, s*f, s*f), split code, origin."""

    lst: np.ndarray
    ndvi: np.ndarray
    split: np.ndarray
    date: np.ndarray  # datetime64[D]
    origin: np.ndarray  # (n, 2) coarse row, col of the patch's upper-left pixel
    factor: int

    def subset(self, code: int) -> PatchPairs:
        keep = self.split == code
        return PatchPairs(
            self.lst[keep],
            self.ndvi[keep],
            self.split[keep],
            self.date[keep],
            self.origin[keep],
            self.factor,
        )

    def __len__(self) -> int:
        return len(self.lst)


def cut_patches(
    scene: DayScene, size: int, stride: int, max_invalid_lst: float, max_invalid_ndvi: float
) -> tuple[list[np.ndarray], list[np.ndarray], list[tuple[int, int]]]:
    """Clean-enough patch pairs of one scene (holes filled with the nearest valid value)."""
    f = scene.factor
    h, w = scene.lst.shape
    lst_ok = np.isfinite(scene.lst)
    ndvi_ok = np.isfinite(scene.ndvi)
    out_lst, out_ndvi, origins = [], [], []
    for r in range(0, h - size + 1, stride):
        for c in range(0, w - size + 1, stride):
            lo = lst_ok[r : r + size, c : c + size]
            no = ndvi_ok[r * f : (r + size) * f, c * f : (c + size) * f]
            if 1 - lo.mean() > max_invalid_lst or 1 - no.mean() > max_invalid_ndvi:
                continue
            if not lo.any() or not no.any():
                continue
            out_lst.append(fill_nearest(scene.lst[r : r + size, c : c + size]))
            fine = scene.ndvi[r * f : (r + size) * f, c * f : (c + size) * f]
            out_ndvi.append(fill_nearest(fine))
            origins.append((r, c))
    return out_lst, out_ndvi, origins


def split_days(
    dates: list[dt.date],
    valid_share: list[float],
    n_patches: list[int],
    *,
    n_val: int,
    n_test: int,
    min_valid_test: float = 0.5,
    seed: int = 0,
) -> dict[str, list[str]]:
    """Seeded split of days into train / val / test (ISO dates).

    Test days are drawn among days whose LST is at least `min_valid_test` valid (so there is
    something to score), validation days among the remaining days that yield patches (so early
    stopping has data); every other day trains.
    """
    rng = np.random.default_rng(seed)
    days = [d.isoformat() for d in dates]
    if len(set(days)) != len(days):
        raise InputError("superres", "two scenes of the same day")
    order = rng.permutation(len(days))
    test = [days[i] for i in order if valid_share[i] >= min_valid_test][:n_test]
    val = [days[i] for i in order if n_patches[i] > 0 and days[i] not in test][:n_val]
    train = [d for d, n in zip(days, n_patches, strict=True) if d not in test and d not in val]
    if len(test) < n_test or len(val) < n_val or not any(n_patches[days.index(d)] for d in train):
        raise InputError(
            "superres.split",
            f"{len(days)} MODIS days ({sum(v >= min_valid_test for v in valid_share)} at least "
            f"{min_valid_test:.0%} clear, {sum(n > 0 for n in n_patches)} with clean patches) "
            f"cannot give {n_test} test days, {n_val} validation days and training patches",
        )
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


def build_patch_pairs(scenes: list[DayScene], cfg: dict[str, Any]) -> PatchPairs:
    """Patch pairs of every scene, all labelled TRAIN until `split_codes` labels them."""
    lst, ndvi, dates, origins = [], [], [], []
    factors = {s.factor for s in scenes}
    if len(factors) != 1:
        raise InputError("superres", f"scenes mix resolution factors {sorted(factors)}")
    for scene in scenes:
        pl, pn, po = cut_patches(
            scene, cfg["patch_size"], cfg["stride"], cfg["max_invalid_lst"], cfg["max_invalid_ndvi"]
        )
        lst += pl
        ndvi += pn
        origins += po
        dates += [np.datetime64(scene.date, "D")] * len(pl)
    f = factors.pop()
    s = cfg["patch_size"]
    return PatchPairs(
        lst=np.asarray(lst, dtype=np.float32).reshape(-1, s, s),
        ndvi=np.asarray(ndvi, dtype=np.float32).reshape(-1, s * f, s * f),
        split=np.full(len(lst), TRAIN, dtype=np.int8),
        date=np.asarray(dates, dtype="datetime64[D]"),
        origin=np.asarray(origins, dtype=np.int32).reshape(-1, 2),
        factor=f,
    )


def split_codes(dates: np.ndarray, split: dict[str, list[str]]) -> np.ndarray:
    """TRAIN / VAL / TEST code of each patch from the split of its day."""
    code = {d: SPLIT_CODES[name] for name, days in split.items() for d in days}
    return np.array([code[str(d)] for d in dates.astype("datetime64[D]")], dtype=np.int8)


def normalisation(pairs: PatchPairs) -> dict[str, float]:
    """Mean and std of LST and NDVI over the training patches."""
    train = pairs.subset(TRAIN)
    if len(train) == 0:
        raise InputError(
            "superres",
            "no clean training patch: relax superres.max_invalid_lst "
            "or superres.max_invalid_ndvi, or lower patch_size",
        )
    return {
        "lst_mean": float(train.lst.mean()),
        "lst_std": float(max(train.lst.std(), 1e-3)),
        "ndvi_mean": float(train.ndvi.mean()),
        "ndvi_std": float(max(train.ndvi.std(), 1e-3)),
    }


def write_patch_pairs(pairs: PatchPairs, norm: dict[str, float], path: str | Path) -> Path:
    """Patch pairs and their normalisation statistics as NetCDF."""
    ds = xr.Dataset(
        {
            "lst": (("patch", "yc", "xc"), pairs.lst, {"units": "K"}),
            "ndvi": (("patch", "yf", "xf"), pairs.ndvi, {"units": "1"}),
            "split": (
                ("patch",),
                pairs.split,
                {"flag_values": "0 1 2", "flag_meanings": "train val test"},
            ),
            "date": (("patch",), pairs.date.astype("datetime64[ns]")),
            "origin": (("patch", "rc"), pairs.origin),
        },
        attrs={"factor": pairs.factor, **{f"norm_{k}": v for k, v in norm.items()}},
    )
    encoding = {"date": {"units": "days since 1970-01-01"}}
    for name in ("lst", "ndvi"):
        encoding[name] = {"zlib": True, "complevel": 4}
    with atomic_output(path) as tmp:
        ds.to_netcdf(tmp, encoding=encoding, engine="netcdf4")
    return Path(path)


def read_patch_pairs(path: str | Path) -> tuple[PatchPairs, dict[str, float]]:
    """Patch pairs and normalisation statistics written by `write_patch_pairs`."""
    ds = load_netcdf(path, "patch dataset")
    norm = {k[5:]: float(v) for k, v in ds.attrs.items() if k.startswith("norm_")}
    pairs = PatchPairs(
        lst=ds["lst"].values.astype(np.float32),
        ndvi=ds["ndvi"].values.astype(np.float32),
        split=ds["split"].values.astype(np.int8),
        date=ds["date"].values.astype("datetime64[D]"),
        origin=ds["origin"].values.astype(np.int32),
        factor=int(ds.attrs["factor"]),
    )
    return pairs, norm


def build_scene(lst_path: str | Path, refl_path: str | Path, out: str | Path, cfg: dict) -> Path:
    """MOD11A1 + MOD09GQ granules of one day -> day-scene NetCDF (the superres_scene step: here,
    not in `jobs`, so its many jobs start without PyTorch)."""
    scene = build_day_scene(
        lst_path,
        refl_path,
        max_lst_error_k=cfg["max_lst_error_k"],
        max_modland_qa=cfg["max_modland_qa"],
    )
    return write_day_scene(scene, out)
