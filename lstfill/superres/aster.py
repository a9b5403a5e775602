"""The MODIS/ASTER pair set and its protocol: x4 MODIS LST super-resolution scored on ASTER LST.

The pair set (SIF-NN-SR's test pairs as GeoTIFFs, see its README) is DATA_DIR/pairs/NNN/
{lst_1km.tif (64x64), ndvi_250m.tif (256x256), aster_lst.tif, meta.json} plus manifest.csv.

Placement ("lst_aligned"), the same for every method: every method works on the fine grid
aligned with the LST pixels (origin = LST origin, pixel = LST pixel / 4, i.e.
`lst_transform @ Affine.scale(0.25)`). The NDVI raster lies r rows south and c columns east of
that origin on this grid (r, c in 0..3, from manifest.csv / meta.json, checked against the two
GeoTIFF transforms), so each method gets the NDVI shifted down r rows and right c columns, the
first r rows / c columns padded by edge replication. Each method sharpens (64x64 LST, aligned
256x256 NDVI), and its 256x256 output is georeferenced with the aligned-grid transform.

Scoring, per pair: each output is reprojected (bilinear, NaN nodata) from the sinusoidal grid to
the ASTER grid; pixels where ASTER is finite and >= 270 K and every method's reprojected output
is finite are scored, the same pixels for every method of a pair, with
`lstfill.superres.evaluate.quality_metrics` (FRR relative to the reprojected bicubic), plus the
energy-conservation residual of the product on its own fine grid (`energy_residual`, MTF 0.1).
Means over pairs are unweighted; "wins" is the share of pairs whose RMSE is below bicubic's.

Reference rows (not competitors, no wins): the README's protocol, bicubic placed on the NDVI
grid and each scored on its own footprint (ASTER valid, >= 270 K, prediction finite):
`reference_bicubic_ndvi_grid` is the README's recipe, `scipy.ndimage.zoom(order=3,
mode="nearest")` (corner-aligned: it stretches the field by 255/252 relative to pixel centres),
which reproduces the README's 2.565 K; `reference_lstfill_bicubic_ndvi_grid` is lstfill's
pixel-centre bicubic on the NDVI grid, so that its difference to `baseline_bicubic` isolates the
placement.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from rasterio.warp import Resampling, reproject
from scipy import ndimage

from lstfill.io import read_raster
from lstfill.metrics import finite_mean
from lstfill.ranges import check_range
from lstfill.raster import Raster
from lstfill.superres.baselines import Predict, bicubic
from lstfill.superres.evaluate import quality_metrics
from lstfill.superres.method import energy_residual

FACTOR = 4
MIN_T = 270.0  # ASTER pixels below this are cloud / swath-edge artefacts (README)
MTF = 0.1  # sensor PSF of the energy residual (and of the models' loss)
PLACEMENT = "lst_aligned"
FILES = ("lst_1km.tif", "ndvi_250m.tif", "aster_lst.tif")
BICUBIC = "baseline_bicubic"
REF_README = "reference_bicubic_ndvi_grid"
REF_LSTFILL = "reference_lstfill_bicubic_ndvi_grid"
METRICS = ("rmse", "bias", "rmse_debiased", "psnr", "ssim", "gssim", "frr", "energy_residual")

# ------------------------------------------------------------------------------ the pair set


@dataclass
class Pair:
    """One MODIS/ASTER pair; `shift` = (r, c): NDVI origin south / east of the LST origin."""

    id: str
    lst: Raster
    ndvi: Raster
    aster: Raster
    shift: tuple[int, int]

    @property
    def aligned_transform(self) -> Affine:
        return self.lst.transform @ Affine.scale(1.0 / FACTOR)

    @property
    def ndvi_aligned(self) -> np.ndarray:
        return shift_down_right(self.ndvi.data, *self.shift)


def shift_down_right(arr: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """`arr` moved `rows` down and `cols` right, same shape: the first rows / columns repeat the
    edge, the last ones drop out."""
    h, w = arr.shape
    return np.pad(arr, ((rows, 0), (cols, 0)), mode="edge")[:h, :w]


def _read(path: Path) -> Raster:
    data, transform, crs, _, _ = read_raster(path)
    return Raster(data.astype(np.float32), transform, crs.to_wkt())


def read_manifest_offsets(data_dir: Path) -> dict[int, tuple[int, int]]:
    """(r, c) per pair id from manifest.csv (empty when there is no manifest)."""
    path = data_dir / "manifest.csv"
    if not path.exists():
        return {}
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {
        int(row["id"]): (
            -round(float(row["lst_minus_ndvi_origin_rows"])),
            -round(float(row["lst_minus_ndvi_origin_cols"])),
        )
        for row in rows
    }


def read_meta_offset(pair_dir: Path) -> tuple[int, int] | None:
    """(r, c) from meta.json, or None when absent."""
    path = pair_dir / "meta.json"
    if not path.exists():
        return None
    off = json.loads(path.read_text()).get("lst_origin_minus_ndvi_origin_fine_px")
    if off is None:
        return None
    return -round(float(off["rows"])), -round(float(off["cols"]))


def grid_offset(lst: Raster, ndvi: Raster) -> tuple[int, int]:
    """(r, c): the NDVI origin in fine pixels south / east of the LST origin, from the
    transforms; ValueError unless the grids are nested with an integer offset in 0..3."""
    fine = lst.transform @ Affine.scale(1.0 / FACTOR)
    if not np.allclose([ndvi.transform.a, ndvi.transform.e], [fine.a, fine.e], rtol=1e-6):
        raise ValueError(f"NDVI pixel {ndvi.transform.a} is not the LST pixel / {FACTOR}")
    rows = (ndvi.transform.f - fine.f) / fine.e
    cols = (ndvi.transform.c - fine.c) / fine.a
    r, c = round(rows), round(cols)
    if abs(rows - r) > 1e-3 or abs(cols - c) > 1e-3 or not (0 <= r < FACTOR and 0 <= c < FACTOR):
        raise ValueError(f"NDVI origin offset ({rows:.4f}, {cols:.4f}) fine px is not in 0..3")
    return r, c


def _check(raster: Raster, variable: str, path: Path, *, blank: bool = True) -> Raster:
    raster.data = check_range(raster.data, variable, path, name=path.name, blank=blank)
    return raster


def load_pair(pair_dir: Path, manifest: dict[int, tuple[int, int]]) -> Pair:
    """One pair, its offset from the transforms; ValueError where manifest.csv or meta.json
    states another, InputError where a raster is not in its physical range (lstfill.ranges).

    Stray out-of-range pixels become NaN in NDVI and ASTER LST (ASTER below 270 K is never
    scored anyway) but are kept, and logged, in the MODIS LST: the set's README documents one
    (a 402 K pixel of pair 15), and the published protocol scores the methods on it as it is.
    """
    lst, ndvi, aster = (_read(pair_dir / name) for name in FILES)
    lst = _check(lst, "lst", pair_dir / FILES[0], blank=False)
    ndvi = _check(ndvi, "ndvi", pair_dir / FILES[1])
    aster = _check(aster, "lst", pair_dir / FILES[2])
    if ndvi.data.shape != (lst.data.shape[0] * FACTOR, lst.data.shape[1] * FACTOR):
        raise ValueError(f"{pair_dir}: NDVI {ndvi.data.shape} is not LST {lst.data.shape} x4")
    shift = grid_offset(lst, ndvi)
    for source, stated in (
        ("manifest.csv", manifest.get(int(pair_dir.name))),
        ("meta.json", read_meta_offset(pair_dir)),
    ):
        if stated is not None and stated != shift:
            raise ValueError(f"{pair_dir}: {source} gives offset {stated}, transforms {shift}")
    return Pair(pair_dir.name, lst, ndvi, aster, shift)


def load_pairs(data_dir: Path) -> list[Pair]:
    """Every complete pair under DATA_DIR/pairs, in sorted id order."""
    root = data_dir / "pairs"
    if not root.is_dir():
        return []
    manifest = read_manifest_offsets(data_dir)
    dirs = sorted(d for d in root.iterdir() if d.is_dir() and all((d / f).exists() for f in FILES))
    return [load_pair(d, manifest) for d in dirs]


# ------------------------------------------------------------------------------ scoring


def readme_bicubic(lst: np.ndarray) -> np.ndarray:
    """The README's bicubic: scipy zoom, order 3, mode "nearest" (corner-aligned)."""
    return ndimage.zoom(lst.astype(np.float32), FACTOR, order=3, mode="nearest")


def to_aster(fine: np.ndarray, transform: Affine, pair: Pair) -> np.ndarray:
    """`fine` (on the sinusoidal grid `transform`) bilinearly reprojected to the ASTER grid."""
    dst = np.full(pair.aster.data.shape, np.nan, dtype=np.float32)
    reproject(
        source=np.ascontiguousarray(fine, dtype=np.float32),
        destination=dst,
        src_transform=transform,
        src_crs=pair.lst.crs,
        dst_transform=pair.aster.transform,
        dst_crs=pair.aster.crs,
        resampling=Resampling.bilinear,
        src_nodata=np.nan,
        dst_nodata=np.nan,
    )
    return dst


def aster_valid(pair: Pair) -> np.ndarray:
    a = pair.aster.data
    return np.isfinite(a) & (a >= MIN_T)


def score_methods(
    pair: Pair, products: dict[str, np.ndarray]
) -> tuple[int, dict[str, dict[str, float]]]:
    """Metrics of every product on the pixels valid for ASTER and every product."""
    warped = {k: to_aster(v, pair.aligned_transform, pair) for k, v in products.items()}
    mask = aster_valid(pair)
    for w in warped.values():
        mask &= np.isfinite(w)
    scores = {}
    for name, w in warped.items():
        q = quality_metrics(w, pair.aster.data, bicubic=warped[BICUBIC], mask=mask)
        q["energy_residual"] = energy_residual(products[name], pair.lst.data, FACTOR, mtf=MTF)
        scores[name] = q
    return int(mask.sum()), scores


def score_references(pair: Pair) -> dict[str, dict[str, float]]:
    """The README protocol: bicubic on the NDVI grid, scored on its own footprint."""
    out = {}
    for name, fine in (
        (REF_README, readme_bicubic(pair.lst.data)),
        (REF_LSTFILL, bicubic(pair.lst.data, FACTOR)),
    ):
        w = to_aster(fine, pair.ndvi.transform, pair)
        mask = aster_valid(pair) & np.isfinite(w)
        q = quality_metrics(w, pair.aster.data, bicubic=None, mask=mask)
        q["energy_residual"] = math.nan  # the NDVI grid is not nested in the LST grid
        out[name] = q
    return out


def run_pair(pair: Pair, methods: dict[str, Predict], seconds: dict[str, float]) -> dict[str, Any]:
    """Every method on one pair (its seconds added to `seconds`), scored: the pair's row."""
    products = {}
    for name, method in methods.items():
        t0 = time.perf_counter()
        products[name] = method(pair.lst.data, pair.ndvi_aligned)
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0
    n, scores = score_methods(pair, products)
    refs = score_references(pair)
    keep = (*METRICS, "n")
    return {
        "id": pair.id,
        "n": n,
        "shift_rows_cols": list(pair.shift),
        "methods": {k: {m: v[m] for m in keep} for k, v in scores.items()},
        "reference": {k: {m: v[m] for m in keep} for k, v in refs.items()},
    }


def summarise(rows: list[dict[str, Any]], key: str, name: str, wins: bool) -> dict[str, Any]:
    """Means over the pairs' rows of method `name` (under `key`: "methods" or "reference"), the
    median RMSE and, with `wins`, the pairs whose RMSE is below bicubic's."""
    vals = {m: [r[key][name][m] for r in rows] for m in METRICS}
    rmse = np.asarray(vals["rmse"], dtype=np.float64)
    out: dict[str, Any] = {f"{m}_mean": finite_mean(vals[m]) for m in METRICS}
    out["rmse_median"] = float(np.nanmedian(rmse)) if np.isfinite(rmse).any() else math.nan
    if wins:
        ref = np.asarray([r[key][BICUBIC]["rmse"] for r in rows], dtype=np.float64)
        count = int(np.sum(rmse < ref))
        out["wins_vs_bicubic_count"] = count
        out["wins_vs_bicubic"] = count / len(rows) if rows else math.nan
    return out


def score_pairs(
    pairs: list[Pair], methods: dict[str, Predict]
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Every method on every pair: (the pairs' rows, each method's summary with its
    predict_seconds, each reference row's summary)."""
    seconds: dict[str, float] = {}
    rows = [run_pair(p, methods, seconds) for p in pairs]
    summary = {name: summarise(rows, "methods", name, wins=True) for name in methods}
    refs = {
        name: summarise(rows, "reference", name, wins=False) for name in (REF_README, REF_LSTFILL)
    }
    for name, secs in seconds.items():
        summary[name]["predict_seconds"] = secs
    return rows, summary, refs
