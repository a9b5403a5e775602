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

import numpy as np
import xarray as xr
from affine import Affine

from lstfill.cube import write_cube
from lstfill.errors import InputError
from lstfill.indices import normalised_difference
from lstfill.io import load_netcdf
from lstfill.ranges import check_range
from lstfill.sources import modis


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
    tolerance: float | None = None,
) -> DayScene:
    """Read a MOD11A1 granule (day overpass) and the MOD09GQ granule of the same day and tile,
    both checked against their physical ranges with `tolerance` (lstfill.ranges)."""
    lst = modis.read_mod11a1(lst_path, "Day", max_lst_error_k, tolerance)
    refl = modis.read_mod09gq(refl_path, tolerance)
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
    return write_cube(ds, path)


def read_day_scene(path: str | Path, tolerance: float | None = None) -> DayScene:
    """Read a day scene written by `write_day_scene`; InputError naming the file otherwise, or
    when its LST or NDVI is not in its physical range and units (lstfill.ranges: more than
    `tolerance` out of range refuses the scene, fewer such values become NaN)."""
    ds = load_netcdf(path, "MODIS day scene")
    for key in ("lst", "ndvi"):
        if key not in ds:
            raise InputError(path, f"has no variable {key!r}; is it a MODIS day scene?")
    for key in ("date", "transform", "factor", "crs"):
        if key not in ds.attrs:
            raise InputError(path, f"has no attribute {key!r}; is it a MODIS day scene?")
    lst, ndvi = (
        check_range(ds[k].values.astype(np.float32), k, path, ds[k].attrs.get("units"), tolerance)
        for k in ("lst", "ndvi")
    )
    return DayScene(
        date=dt.date.fromisoformat(ds.attrs["date"]),
        lst=lst,
        ndvi=ndvi,
        transform=Affine(*np.asarray(ds.attrs["transform"], dtype=float)),
        crs=str(ds.attrs["crs"]),
        factor=int(ds.attrs["factor"]),
    )


# ------------------------------------------------------------------------------ patch pairs
