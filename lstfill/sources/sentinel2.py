"""Sentinel-2 L2A surface reflectance as per-band GeoTIFFs, one folder per scene.

Each scene folder is named like the product ("S2B_MSIL2A_20230701T101559_N0509_R065_T32TPT_
20230701T130012") and holds "T32TPT_20230701T101559_<BAND>_<RES>m.tif" files with uint16 digital
numbers (nodata 0). Since processing baseline 04.00 the DNs carry an offset:
reflectance = (DN + BOA_ADD_OFFSET) / BOA_QUANTIFICATION_VALUE with BOA_ADD_OFFSET = -1000.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from affine import Affine
from pyproj import CRS

from lstfill.errors import InputError
from lstfill.io import atomic_folder, read_raster, write_cog
from lstfill.ranges import check_range
from lstfill.raster import Raster

BANDS_10M = ("B02", "B03", "B04", "B08")
BANDS_20M = ("B11", "B12", "SCL")
REFLECTANCE_BANDS = BANDS_10M + ("B11", "B12")
# nodata, saturated/defective, cloud shadow, cloud medium/high probability, thin cirrus, snow
SCL_INVALID_DEFAULT = (0, 1, 3, 8, 9, 10, 11)
QUANTIFICATION = 10000
OFFSET_BASELINE = "04.00"  # first baseline whose DNs carry BOA_ADD_OFFSET = -1000
OFFSET_NEW = -1000

_TIME_FMT = "%Y%m%dT%H%M%S"
_NAME_RE = re.compile(
    r"^(?P<sc>S2[A-D])_MSIL2A_(?P<time>\d{8}T\d{6})_N(?P<baseline>\d{4})_R(?P<orbit>\d{3})"
    r"_T(?P<tile>\d{2}[A-Z]{3})_(?P<proc>\d{8}T\d{6})$"
)


@dataclass(frozen=True)
class SceneId:
    """The parts of an L2A product name; `baseline` as "05.09", `tile` without the "T"."""

    spacecraft: str
    time: datetime
    baseline: str
    rel_orbit: int
    tile: str
    name: str
    proc_time: datetime


@dataclass
class S2Scene:
    """Reflectance (0..1, NaN for DN 0) per band, the SCL layer and its clear-sky mask (20 m)."""

    scene: SceneId
    time: datetime
    reflectance: dict[str, Raster]
    scl: Raster
    clear: Raster


def _utc(time: datetime) -> datetime:
    """`time` as an aware UTC datetime; naive times are taken to be UTC already."""
    return time.replace(tzinfo=UTC) if time.tzinfo is None else time.astimezone(UTC)


def _baseline_digits(baseline: str) -> str:
    """ "05.09", "0509" or "N0509" -> "0509"."""
    digits = baseline.upper().removeprefix("N").replace(".", "")
    if not re.fullmatch(r"\d{4}", digits):
        raise ValueError(f"not a processing baseline: {baseline!r} (expected e.g. '05.09')")
    return digits


def default_offset(baseline: str) -> int:
    """BOA_ADD_OFFSET implied by a processing baseline: -1000 from 04.00 on, else 0."""
    new = _baseline_digits(baseline) >= _baseline_digits(OFFSET_BASELINE)
    return OFFSET_NEW if new else 0


def scene_name(
    spacecraft: str,
    time: datetime,
    baseline: str,
    rel_orbit: int,
    tile: str,
    proc_time: datetime,
) -> str:
    """Product name such as "S2B_MSIL2A_20230701T101559_N0509_R065_T32TPT_20230701T130012"."""
    name = (
        f"{spacecraft}_MSIL2A_{_utc(time).strftime(_TIME_FMT)}_N{_baseline_digits(baseline)}"
        f"_R{rel_orbit:03d}_T{tile.removeprefix('T')}_{_utc(proc_time).strftime(_TIME_FMT)}"
    )
    parse_scene_name(name)  # validates spacecraft and tile
    return name


def parse_scene_name(name: str) -> SceneId:
    """Parse an L2A product (or scene folder) name; ValueError on anything else."""
    match = _NAME_RE.match(Path(str(name)).name)
    if match is None:
        raise ValueError(f"not a Sentinel-2 L2A product name: {name!r}")
    digits = match["baseline"]
    return SceneId(
        spacecraft=match["sc"],
        time=datetime.strptime(match["time"], _TIME_FMT).replace(tzinfo=UTC),
        baseline=f"{digits[:2]}.{digits[2:]}",
        rel_orbit=int(match["orbit"]),
        tile=match["tile"],
        name=match.group(0),
        proc_time=datetime.strptime(match["proc"], _TIME_FMT).replace(tzinfo=UTC),
    )


def band_filename(tile: str, time: datetime, band: str, res_m: int) -> str:
    """Band file name such as "T32TPT_20230701T101559_B02_10m.tif"."""
    return f"T{tile.removeprefix('T')}_{_utc(time).strftime(_TIME_FMT)}_{band}_{res_m}m.tif"


def _band_res(band: str) -> int:
    if band in BANDS_10M:
        return 10
    if band in BANDS_20M:
        return 20
    raise ValueError(f"unknown Sentinel-2 band {band!r}; known: {BANDS_10M + BANDS_20M}")


def _as_uint16(band: str, data: np.ndarray) -> np.ndarray:
    arr = np.asarray(data)
    if not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() > 65535:
        raise ValueError(f"band {band}: DNs must be integers in 0..65535, got {arr.dtype}")
    return arr.astype(np.uint16)


def write_scene(
    dest_root: str | Path,
    scene: str,
    bands_dn: dict[str, np.ndarray],
    scl: np.ndarray,
    transform_10m: Affine,
    transform_20m: Affine,
    crs: str,
) -> Path:
    """Write folder `dest_root/scene` with one uint16 GeoTIFF per band and the uint8 SCL.

    The folder is built under a temporary name and renamed into place when complete.
    """
    sid = parse_scene_name(scene)
    offset = default_offset(sid.baseline)
    files: list[tuple[str, np.ndarray, dict[str, object]]] = []
    for band, data in bands_dn.items():
        _band_res(band)  # rejects unknown bands
        if band == "SCL":
            raise ValueError("pass SCL as `scl`, not in `bands_dn`")
        tags = {
            "BAND": band,
            "BOA_ADD_OFFSET": offset,
            "BOA_QUANTIFICATION_VALUE": QUANTIFICATION,
            "PROCESSING_BASELINE": sid.baseline,
        }
        files.append((band, _as_uint16(band, data), tags))
    scl_tags = {"BAND": "SCL", "PROCESSING_BASELINE": sid.baseline}
    scl = _as_uint16("SCL", scl)
    if scl.max() > 255:
        raise ValueError("SCL classes must fit in uint8")
    files.append(("SCL", scl.astype(np.uint8), scl_tags))
    for res in (10, 20):
        shapes = {arr.shape for band, arr, _ in files if _band_res(band) == res}
        if len(shapes) > 1:
            raise ValueError(f"{res} m bands must share one shape, got {sorted(shapes)}")
    final = Path(dest_root) / sid.name
    with atomic_folder(final) as staging:
        for band, arr, tags in files:
            res = _band_res(band)
            transform = transform_10m if res == 10 else transform_20m
            path = staging / band_filename(sid.tile, sid.time, band, res)
            write_cog(path, arr, transform, crs, nodata=0, tags=tags)
    return final


def _tag_number(path: Path, tags: dict[str, str], key: str, default: float) -> float:
    if key not in tags:
        return default
    try:
        return float(tags[key])
    except ValueError as exc:
        raise InputError(path, f"tag {key}={tags[key]!r} is not a number") from exc


def _same_grid(a: Raster, b: Raster) -> bool:
    return (
        a.data.shape == b.data.shape
        and a.transform.almost_equals(b.transform)
        and CRS.from_user_input(a.crs).equals(CRS.from_user_input(b.crs))
    )


def _check_grid(path: Path, raster: Raster, ref: Raster | None, what: str) -> None:
    if ref is not None and not _same_grid(raster, ref):
        raise InputError(
            path,
            f"grid ({raster.data.shape}, {tuple(raster.transform)[:6]}, {raster.crs}) differs "
            f"from the scene's other {what} bands ({ref.data.shape}, "
            f"{tuple(ref.transform)[:6]}, {ref.crs})",
        )


def read_scene(
    folder: str | Path,
    bands: tuple[str, ...] = REFLECTANCE_BANDS,
    expected_crs: str | CRS | None = None,
    scl_invalid: tuple[int, ...] = SCL_INVALID_DEFAULT,
    tolerance: float | None = None,
) -> S2Scene:
    """Read the reflectance of `bands` and the SCL of one scene folder.

    The offset comes from each file's BOA_ADD_OFFSET tag, falling back to the scene name's
    baseline. Reflectance is not clipped: it may be slightly negative or above 1 as in the product,
    within its physical range (lstfill.ranges): above `tolerance` of a band's pixels outside it
    the scene is refused (unscaled DNs, a wrong offset), below it those pixels become NaN.
    """
    folder = Path(folder)
    try:
        sid = parse_scene_name(folder.name)
    except ValueError as exc:
        raise InputError(folder, str(exc)) from exc

    def load(band: str) -> tuple[Path, Raster, dict[str, str]]:
        path = folder / band_filename(sid.tile, sid.time, band, _band_res(band))
        data, transform, crs, nodata, tags = read_raster(path, expected_crs=expected_crs)
        if not np.issubdtype(data.dtype, np.integer):
            raise InputError(path, f"band {band} must hold integer DNs, found {data.dtype}")
        return path, Raster(data, transform, crs.to_string(), 0 if nodata is None else nodata), tags

    _, scl, _ = load("SCL")
    refs: dict[int, Raster] = {20: scl}
    reflectance = {}
    for band in bands:
        if band == "SCL":
            continue
        path, dn, tags = load(band)
        res = _band_res(band)
        _check_grid(path, dn, refs.get(res), f"{res} m")
        refs.setdefault(res, dn)
        offset = _tag_number(path, tags, "BOA_ADD_OFFSET", default_offset(sid.baseline))
        quant = _tag_number(path, tags, "BOA_QUANTIFICATION_VALUE", QUANTIFICATION)
        if quant <= 0:
            raise InputError(path, f"BOA_QUANTIFICATION_VALUE must be positive, got {quant}")
        refl = (dn.data.astype(np.float32) + np.float32(offset)) / np.float32(quant)
        refl[dn.data == dn.nodata] = np.nan
        refl = check_range(refl, band.lower(), path, tags.get("units"), tolerance, name=band)
        reflectance[band] = Raster(refl.astype(np.float32), dn.transform, dn.crs, float("nan"))
    if 10 in refs:
        _check_extent(folder, refs[10], scl)
    clear = ~np.isin(scl.data, np.asarray(scl_invalid, dtype=np.int64))
    return S2Scene(
        scene=sid,
        time=sid.time,
        reflectance=reflectance,
        scl=Raster(scl.data.astype(np.uint8), scl.transform, scl.crs, 0),
        clear=Raster(clear, scl.transform, scl.crs, None),
    )


def _check_extent(folder: Path, r10: Raster, r20: Raster) -> None:
    """The 10 m and 20 m grids must cover the same extent (within one 20 m pixel)."""
    b10, b20 = r10.grid.bounds, r20.grid.bounds
    tol = abs(r20.transform.a)
    if not CRS.from_user_input(r10.crs).equals(CRS.from_user_input(r20.crs)) or any(
        abs(p - q) > tol for p, q in zip(b10, b20, strict=True)
    ):
        raise InputError(folder, f"10 m bands extent {b10} does not match 20 m extent {b20}")


def find_scenes(root: str | Path) -> list[str]:
    """Sorted names of the scene folders under `root` (folders named like L2A products)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "Sentinel-2 folder does not exist")
    names = []
    for path in root.iterdir():
        if path.is_dir() and _NAME_RE.match(path.name):
            names.append(path.name)
    return sorted(names)
