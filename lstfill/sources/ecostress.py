"""ECOSTRESS L2T LSTE v002 (ECO_L2T_LSTE): tiled land surface temperature COG layers.

A granule is a set of single-layer COGs named "<granule id>_<LAYER>.tif" on an MGRS tile's UTM
grid. The reader returns LST in kelvin with a validity mask built from the QC bit field and the
cloud and water layers; the writer produces the same files for the demo and for tests.
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
from lstfill.io import read_raster, write_cog
from lstfill.ranges import check_range, check_units
from lstfill.raster import Raster

LAYERS = ("LST", "LST_err", "QC", "cloud", "water", "height", "view_zenith")
FLOAT_LAYERS = ("LST", "LST_err", "height", "view_zenith")
# The float layers' lstfill variables, whose physical ranges (lstfill.ranges) are checked.
VARIABLES = {
    "LST": "lst",
    "LST_err": "lst_err",
    "height": "elevation",
    "view_zenith": "view_zenith",
}
QC_NODATA = 65535
MASK_NODATA = 255

# QC bit fields (first bit, field name) per the ECOSTRESS L2 LSTE user guide; each is 2 bits wide.
QC_FIELDS = (
    (0, "mandatory"),  # 0 best, 1 nominal, 2 cloud detected, 3 not produced
    (2, "data_quality"),  # 0 good, 1 missing stripe, 2 not set, 3 missing/bad data
    (4, "cloud_ocean"),  # not set (always 0) in v002
    (6, "iterations"),  # TES iterations: 0 slow convergence ... 3 fast convergence
    (8, "atm_opacity"),  # 0 >= 3 (warm humid) ... 3 < 0.1 (dry)
    (10, "mmd"),  # min-max emissivity difference class
    (12, "emis_accuracy"),  # emissivity accuracy class
    (14, "lst_accuracy"),  # 0 > 2 K ... 3 < 1 K
)

_ID = (
    r"ECOv002_L2T_LSTE_(?P<orbit>\d{5})_(?P<scene>\d{3})_(?P<tile>\d{2}[A-Z]{3})"
    r"_(?P<time>\d{8}T\d{6})_(?P<build>\d{4})_(?P<iteration>\d{2})"
)
_LAYER_ALT = "|".join(sorted(LAYERS, key=len, reverse=True))
_NAME_RE = re.compile(rf"^(?P<id>{_ID})(?:_(?P<layer>{_LAYER_ALT})\.tif)?$")
_TIME_FMT = "%Y%m%dT%H%M%S"


@dataclass(frozen=True)
class GranuleId:
    """The parts of an ECOSTRESS L2T granule id; `time` is the UTC acquisition start."""

    orbit: int
    scene: int
    tile: str
    time: datetime
    build: str
    iteration: str
    id: str


@dataclass
class EcostressScene:
    """One granule read: LST (K, NaN where not `valid`) and its companion layers."""

    gid: GranuleId
    time: datetime
    lst: Raster
    lst_err: Raster
    valid: np.ndarray
    cloud: np.ndarray
    water: np.ndarray
    height: Raster
    view_zenith: Raster
    qc: np.ndarray


def _utc(time: datetime) -> datetime:
    """`time` as an aware UTC datetime; naive times are taken to be UTC already."""
    return time.replace(tzinfo=UTC) if time.tzinfo is None else time.astimezone(UTC)


def granule_id(
    orbit: int,
    scene: int,
    tile: str,
    time: datetime,
    build: str = "0713",
    iteration: str = "01",
) -> str:
    """Granule id such as "ECOv002_L2T_LSTE_28527_009_32TPT_20230718T081442_0713_01"."""
    tile = tile.removeprefix("T")
    gid = (
        f"ECOv002_L2T_LSTE_{orbit:05d}_{scene:03d}_{tile}_"
        f"{_utc(time).strftime(_TIME_FMT)}_{build}_{iteration}"
    )
    parse_granule_id(gid)  # validates tile, build and iteration formats
    return gid


def parse_granule_id(name: str) -> GranuleId:
    """Parse a granule id or a layer file name "<id>_<LAYER>.tif"; ValueError on anything else."""
    match = _NAME_RE.match(Path(str(name)).name)
    if match is None:
        raise ValueError(f"not an ECOSTRESS L2T LSTE v002 granule id or layer file: {name!r}")
    return GranuleId(
        orbit=int(match["orbit"]),
        scene=int(match["scene"]),
        tile=match["tile"],
        time=datetime.strptime(match["time"], _TIME_FMT).replace(tzinfo=UTC),
        build=match["build"],
        iteration=match["iteration"],
        id=match["id"],
    )


def layer_path(folder: str | Path, gid: str, layer: str) -> Path:
    """Path of one layer file of granule `gid` in `folder`."""
    return Path(folder) / f"{gid}_{layer}.tif"


def _encode(layer: str, data: np.ndarray) -> tuple[np.ndarray, float | int]:
    """Cast a layer to its product dtype; NaN in integer layers becomes the layer's nodata."""
    arr = np.asarray(data)
    if layer in FLOAT_LAYERS:
        return arr.astype(np.float32), float("nan")
    nodata, dtype = (QC_NODATA, np.uint16) if layer == "QC" else (MASK_NODATA, np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.where(np.isnan(arr), nodata, arr)
    return arr.astype(dtype), nodata


def write_granule(
    dest_dir: str | Path,
    gid: str,
    layers: dict[str, np.ndarray],
    transform: Affine,
    crs: str,
) -> list[Path]:
    """Write one COG per layer as "<gid>_<LAYER>.tif" with the product's dtypes and nodata."""
    parse_granule_id(gid)
    unknown = set(layers) - set(LAYERS)
    if unknown:
        raise ValueError(f"unknown ECOSTRESS layers {sorted(unknown)}; known: {LAYERS}")
    shapes = {np.shape(a) for a in layers.values()}
    if len(shapes) != 1:
        raise ValueError(f"ECOSTRESS layers must share one shape, got {sorted(shapes)}")
    paths = []
    for layer in (name for name in LAYERS if name in layers):
        arr, nodata = _encode(layer, layers[layer])
        path = layer_path(dest_dir, gid, layer)
        write_cog(
            path, arr, transform, crs, nodata=nodata, tags={"granule_id": gid, "layer": layer}
        )
        paths.append(path)
    return paths


def decode_qc(qc: np.ndarray) -> dict[str, np.ndarray]:
    """Split the 16-bit QC layer into its eight 2-bit fields (uint8 arrays, values 0..3)."""
    qc = np.asarray(qc).astype(np.uint16)
    return {name: ((qc >> shift) & 0b11).astype(np.uint8) for shift, name in QC_FIELDS}


def _read_layer(
    folder: Path,
    gid: str,
    layer: str,
    expected_crs: str | CRS | None,
    ref: Raster | None,
    tolerance: float | None = None,
) -> Raster:
    """Read one layer; InputError when its grid differs from the reference (LST) layer, or its
    units or values are not physical (LST's values are checked by the caller, on QC-valid
    pixels only)."""
    path = layer_path(folder, gid, layer)
    data, transform, crs, nodata, tags = read_raster(path, expected_crs=expected_crs)
    raster = Raster(data, transform, crs.to_string(), nodata)
    if ref is not None:
        same = (
            data.shape == ref.data.shape
            and transform.almost_equals(ref.transform)
            and crs.equals(CRS.from_user_input(ref.crs))
        )
        if not same:
            raise InputError(
                path,
                f"layer {layer} grid ({data.shape}, {tuple(transform)[:6]}, {crs.to_string()}) "
                f"differs from the LST layer's ({ref.data.shape}, {tuple(ref.transform)[:6]}, "
                f"{ref.crs})",
            )
    if layer in FLOAT_LAYERS:
        out = data.astype(np.float32)
        if nodata is not None and not np.isnan(nodata):
            out[data == nodata] = np.nan
        variable, units = VARIABLES[layer], tags.get("units")
        if layer == "LST":
            check_units(variable, units, path, name=layer)
        else:
            out = check_range(out, variable, path, units, tolerance, name=layer)
        raster.data, raster.nodata = out, float("nan")
    elif not np.issubdtype(data.dtype, np.integer):
        raise InputError(path, f"layer {layer} must hold integers, found {data.dtype}")
    return raster


def read_granule(
    folder: str | Path,
    gid: str,
    expected_crs: str | CRS | None = None,
    max_mandatory_qa: int = 1,
    tolerance: float | None = None,
) -> EcostressScene:
    """Read all layers of granule `gid` from `folder` and build the valid-LST mask.

    Valid: finite LST, QC mandatory <= `max_mandatory_qa`, data quality != 3 (bad data),
    cloud == 0 and water == 0 (their nodata 255 counts as invalid), and LST in its physical
    range: above `tolerance` of the valid pixels out of range the granule is refused, below it
    those pixels are invalid (lstfill.ranges).
    """
    folder = Path(folder)
    parsed = parse_granule_id(gid)
    lst = _read_layer(folder, parsed.id, "LST", expected_crs, None, tolerance)
    r = {
        layer: _read_layer(folder, parsed.id, layer, expected_crs, lst, tolerance)
        for layer in LAYERS
        if layer != "LST"
    }
    qc = r["QC"].data
    fields = decode_qc(qc)
    cloud, water = r["cloud"].data, r["water"].data
    valid = (
        np.isfinite(lst.data)
        & (fields["mandatory"] <= max_mandatory_qa)
        & (fields["data_quality"] != 3)
        & (cloud == 0)
        & (water == 0)
    )
    lst.data = check_range(
        np.where(valid, lst.data, np.nan).astype(np.float32),
        "lst",
        layer_path(folder, parsed.id, "LST"),
        tolerance=tolerance,
        name="LST",
    )
    valid &= np.isfinite(lst.data)
    return EcostressScene(
        gid=parsed,
        time=parsed.time,
        lst=lst,
        lst_err=r["LST_err"],
        valid=valid,
        cloud=cloud == 1,
        water=water == 1,
        height=r["height"],
        view_zenith=r["view_zenith"],
        qc=qc.astype(np.uint16),
    )


def find_granules(folder: str | Path) -> list[str]:
    """Sorted ids of the granules in `folder` that have an LST layer file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "ECOSTRESS folder does not exist")
    ids = set()
    for path in folder.glob("ECOv002_L2T_LSTE_*_LST.tif"):
        try:
            ids.add(parse_granule_id(path.name).id)
        except ValueError:
            continue
    return sorted(ids)
