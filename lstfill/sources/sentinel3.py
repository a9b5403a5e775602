"""Sentinel-3 SYN L2 surface directional reflectance (SY_2_SYN), one multi-band GeoTIFF per day.

Each file is named "S3_SY_2_SYN_<YYYYMMDD>.tif" (the UTC day of the acquisitions it holds) and is
a uint16 Cloud-Optimised GeoTIFF on the region's grid: one band per reflectance band, named by
its Sentinel-2 equivalent (band description "B04", band tag SOURCE_BAND "SDR_Oa08"), with
reflectance = DN * SCALE and DN 0 = no data, then a last band "CLEAR" (1 clear surface, 0 cloud
or invalid). Dataset tags: PRODUCT, DATE (YYYY-MM-DD) and SCALE. The file's nodata value is 0,
which in the CLEAR band means "do not use" as well.

The Sentinel-3 bands closest to the Sentinel-2 ones (:data:`BANDS`) are the OLCI bands Oa04
(490 nm), Oa06 (560 nm), Oa08 (665 nm), Oa17 (865 nm) and the SLSTR nadir bands S5 (1613 nm)
and S6 (2256 nm); Oa04/06/08/17 are the bands EFAST (Senty et al. 2024) fuses. The names are
the SY_2_SYN product's variable names (Sentinel Hub calls them B04, B06, B08, B17, S5 and S6).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from lstfill.errors import InputError
from lstfill.io import check_file, write_cog
from lstfill.ranges import check_range
from lstfill.raster import Raster

PRODUCT = "SY_2_SYN"
BANDS: dict[str, str] = {
    "B02": "SDR_Oa04",
    "B03": "SDR_Oa06",
    "B04": "SDR_Oa08",
    "B08": "SDR_Oa17",
    "B11": "SDR_S5N",
    "B12": "SDR_S6N",
}
SCALE = 1e-4
CLEAR_BAND = "CLEAR"
MAX_DN = 65535

_NAME_RE = re.compile(rf"^S3_{PRODUCT}_(?P<day>\d{{8}})\.tif$")


@dataclass
class S3Day:
    """One day: reflectance (float32, NaN where DN 0 or not clear) per band and the clear mask."""

    day: date
    reflectance: dict[str, Raster]
    clear: Raster


def filename(day: date) -> str:
    """The file name of `day`: "S3_SY_2_SYN_YYYYMMDD.tif"."""
    return f"S3_{PRODUCT}_{day:%Y%m%d}.tif"


def parse_filename(name: str) -> date:
    """The day a file name of :func:`filename` holds; ValueError for any other name."""
    match = _NAME_RE.match(Path(name).name)
    if match is None:
        example = filename(date(2023, 7, 1))
        raise ValueError(f"not a Sentinel-3 day file name: {name!r} (expected e.g. {example!r})")
    try:
        return datetime.strptime(match["day"], "%Y%m%d").date()
    except ValueError as exc:
        raise ValueError(f"not a Sentinel-3 day file name: {name!r} ({exc})") from None


def find_days(folder: str | Path) -> dict[str, Path]:
    """{"YYYYMMDD": path} of the day files under `folder`, sorted; other files are ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "Sentinel-3 folder does not exist")
    days = {}
    for path in folder.iterdir():
        if not path.is_file():
            continue
        try:
            day = parse_filename(path.name)
        except ValueError:
            continue
        days[f"{day:%Y%m%d}"] = path
    return dict(sorted(days.items()))


def _to_dn(values: np.ndarray) -> np.ndarray:
    """Reflectance -> uint16 DN: NaN -> 0, valid values rounded and kept in 1..65535."""
    arr = np.asarray(values, dtype=np.float64)
    valid = np.isfinite(arr)
    dn = np.zeros(arr.shape, dtype=np.uint16)
    dn[valid] = np.clip(np.rint(arr[valid] / SCALE), 1, MAX_DN).astype(np.uint16)
    return dn


def write_day(
    path: str | Path,
    day: date,
    reflectance: dict[str, np.ndarray],
    clear: np.ndarray,
    transform: Affine,
    crs: str,
    tags: dict | None = None,
) -> Path:
    """Write one day file atomically (layout in the module docstring); returns `path`.

    `reflectance` maps Sentinel-2-equivalent band names (keys of :data:`BANDS`) to 2-D float
    reflectance (about 0..1.5; NaN = no data). Valid values become DNs >= 1 (0 stays "no data";
    values beyond the uint16 range are clipped). `clear` is 1 (or True) where the surface is
    clear. Bands are written in :data:`BANDS` order; `tags` are added to the dataset tags.
    """
    path = Path(path)
    try:
        named = parse_filename(path.name)
    except ValueError:
        named = None
    if named is not None and named != day:
        raise ValueError(f"{path.name} names {named}, but the data are of {day}")
    if not reflectance:
        raise ValueError("write_day needs at least one reflectance band")
    unknown = sorted(set(reflectance) - set(BANDS))
    if unknown:
        raise ValueError(f"unknown Sentinel-3 band(s) {unknown}; known: {list(BANDS)}")
    mask = np.asarray(clear)
    if mask.ndim != 2:
        raise ValueError(f"clear must be 2-D, got shape {mask.shape}")
    names = [b for b in BANDS if b in reflectance]
    layers = []
    for band in names:
        data = np.asarray(reflectance[band])
        if data.shape != mask.shape:
            raise ValueError(f"band {band} has shape {data.shape}, clear has {mask.shape}")
        layers.append(_to_dn(data))
    layers.append((mask > 0).astype(np.uint16))
    band_tags = [{"SOURCE_BAND": BANDS[b]} for b in names]
    band_tags.append({"MEANING": "1 clear surface, 0 cloud or invalid"})
    dataset_tags = {"PRODUCT": PRODUCT, "DATE": day.isoformat(), "SCALE": SCALE, **(tags or {})}
    return write_cog(
        path,
        np.stack(layers),
        transform,
        crs,
        nodata=0,
        tags=dataset_tags,
        band_names=[*names, CLEAR_BAND],
        band_tags=band_tags,
    )


def _tag_day(path: Path, tags: dict[str, str]) -> date | None:
    text = tags.get("DATE")
    if text is None:
        return None
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    raise InputError(path, f"tag DATE={text!r} is not a date (expected YYYY-MM-DD)")


def _scale(path: Path, tags: dict[str, str]) -> float:
    text = tags.get("SCALE", str(SCALE))
    try:
        scale = float(text)
    except ValueError:
        raise InputError(path, f"tag SCALE={text!r} is not a number") from None
    if not np.isfinite(scale) or scale <= 0:
        raise InputError(path, f"tag SCALE must be positive, got {scale}")
    return scale


def _load(path: Path, named: date | None, bands: Sequence[str] | None) -> tuple:
    """(day, scale, CLEAR DNs, {band: DNs}, transform, crs) of a day file, checked."""
    with rasterio.open(path) as src:
        if src.crs is None:
            raise InputError(path, "raster has no CRS (truncated, or not a day file?)")
        crs = CRS.from_user_input(src.crs.to_wkt()).to_string()
        tags = dict(src.tags())
        names = [d or "" for d in src.descriptions]
        day = _tag_day(path, tags)
        if named is not None and day is not None and named != day:
            raise InputError(path, f"tag DATE={tags['DATE']} disagrees with the name ({named})")
        day = day or named
        if day is None:
            raise InputError(path, "neither the name nor a DATE tag says which day it holds")
        if CLEAR_BAND not in names:
            raise InputError(path, f"has no {CLEAR_BAND} band (its bands: {names})")
        have = [n for n in names if n != CLEAR_BAND]
        wanted = list(have) if bands is None else [str(b).upper() for b in bands]
        missing = [b for b in wanted if b not in have]
        if missing:
            raise InputError(
                path, f"has no band {', '.join(missing)} (its reflectance bands: {have})"
            )
        scale = _scale(path, tags)
        clear_dn = src.read(names.index(CLEAR_BAND) + 1)
        dns = {b: src.read(names.index(b) + 1) for b in wanted}
        return day, scale, clear_dn, dns, src.transform, crs


def read_day(
    path: str | Path, bands: Sequence[str] | None = None, tolerance: float | None = None
) -> S3Day:
    """Read a day file: reflectance of `bands` (default: every reflectance band in the file) as
    float32 with NaN where DN is 0 or the pixel is not clear, and the uint8 CLEAR mask.

    InputError naming the file when it is missing, unreadable or truncated, lacks a requested
    band or the CLEAR band, its DATE tag disagrees with its name, or more than `tolerance` of a
    band's clear pixels lie outside the physical range of reflectance (lstfill.ranges; fewer
    become NaN).
    """
    path = check_file(path)
    try:
        named: date | None = parse_filename(path.name)
    except ValueError:
        named = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            day, scale, clear_dn, dns, transform, crs = _load(path, named, bands)
    except InputError:
        raise
    except (RasterioError, OSError, ValueError) as exc:
        raise InputError(path, f"cannot read raster (corrupt or truncated?): {exc}") from None
    clear = clear_dn == 1
    reflectance = {}
    for band, dn in dns.items():
        if not np.issubdtype(dn.dtype, np.integer):
            raise InputError(path, f"band {band} must hold integer DNs, found {dn.dtype}")
        refl = dn.astype(np.float32) / np.float32(1 / scale)  # DN / 10000 rounds best
        refl[(dn == 0) | ~clear] = np.nan
        refl = check_range(refl, band.lower(), path, tolerance=tolerance, name=band)
        reflectance[band] = Raster(refl, transform, crs, float("nan"))
    return S3Day(
        day=day,
        reflectance=reflectance,
        clear=Raster(clear.astype(np.uint8), transform, crs, None),
    )
