"""MODIS MOD11A1 (daily 1 km LST) and MOD09GQ (daily 250 m reflectance) granules.

Collection 6 / 6.1 granules are HDF4-EOS files holding scientific data sets (SDS) on a tile of the
MODIS sinusoidal grid; :mod:`lstfill.sources.hdfeos` reads and writes that format. This module
knows the products: their granule names, SDS names, scaling, fill values and QC bits. The writers
produce files with the same SDS names, data types, scaling attributes and metadata text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from lstfill.errors import InputError
from lstfill.ranges import check_range
from lstfill.raster import Raster
from lstfill.sources import hdfeos

# Re-exported: callers reprojecting MODIS scenes name the sinusoidal CRS as modis.*.
from lstfill.sources.hdfeos import SINUSOIDAL_WKT as SINUSOIDAL_WKT
from lstfill.sources.hdfeos import sinusoidal_crs as sinusoidal_crs

LST_GRID = "MODIS_Grid_Daily_1km_LST"
REFL_GRID = "MODIS_Grid_2D"
_LST_ERROR_CLASS = {1: 0, 2: 1, 3: 2}  # max LST error (K) -> highest allowed QC error class
_NAME_RE = re.compile(
    r"^(?P<product>M[OYC]D\w+)\.A(?P<year>\d{4})(?P<doy>\d{3})\.h(?P<h>\d{2})v(?P<v>\d{2})"
    r"\.(?P<collection>\d{3})\.(?P<prod_time>\d{13})(?:\.hdf)?$"
)


@dataclass
class ModisLST:
    """A MOD11A1 overpass: LST in K (NaN where fill or QC fails), raw QC, view time, validity."""

    date: date
    lst: Raster
    qc: np.ndarray
    view_time_h: np.ndarray
    valid: np.ndarray
    path: Path | None = None


@dataclass
class ModisRefl:
    """A MOD09GQ day: red (band 1) and NIR (band 2) surface reflectance, NaN where fill."""

    date: date
    red: Raster
    nir: Raster
    qc: np.ndarray
    path: Path | None = None


def granule_name(
    product: str,
    date: date,
    h: int,
    v: int,
    collection: str = "061",
    prod_time: datetime | None = None,
) -> str:
    """LP DAAC granule file name; `prod_time` defaults to midnight after the acquisition day."""
    if prod_time is None:
        prod_time = datetime(date.year, date.month, date.day) + timedelta(days=1)
    elif prod_time.tzinfo is not None:
        prod_time = prod_time.astimezone(UTC)
    return (
        f"{product}.A{date:%Y}{date.timetuple().tm_yday:03d}.h{h:02d}v{v:02d}."
        f"{collection}.{prod_time:%Y}{prod_time.timetuple().tm_yday:03d}{prod_time:%H%M%S}.hdf"
    )


def parse_granule_name(name: str | Path) -> dict:
    """Fields of a granule name: product, date, h, v, collection, prod_time (UTC).

    Raises ValueError for anything that is not a granule name.
    """
    m = _NAME_RE.match(Path(name).name)
    if m is None:
        raise ValueError(f"not a MODIS granule name: {name!r}")
    day = datetime.strptime(m["year"] + m["doy"], "%Y%j").date()
    prod = datetime.strptime(m["prod_time"], "%Y%j%H%M%S").replace(tzinfo=UTC)
    return {
        "product": m["product"],
        "date": day,
        "h": int(m["h"]),
        "v": int(m["v"]),
        "collection": m["collection"],
        "prod_time": prod,
    }


def decode_lst_qc(qc: np.ndarray) -> dict[str, np.ndarray]:
    """Bit fields of MOD11A1 QC_Day/QC_Night (user guide, table 10), each as uint8."""
    q = np.asarray(qc).astype(np.uint8)
    return {
        "mandatory": q & 0b11,  # 0 good, 1 other quality, 2 cloud, 3 not produced
        "data_quality": (q >> 2) & 0b11,  # 0 good, 1 other, 2-3 TBD
        "emis_error": (q >> 4) & 0b11,  # 0 <=0.01, 1 <=0.02, 2 <=0.04, 3 >0.04
        "lst_error": (q >> 6) & 0b11,  # 0 <=1 K, 1 <=2 K, 2 <=3 K, 3 >3 K
    }


def lst_qc_valid(qc: np.ndarray, max_lst_error_k: int = 2) -> np.ndarray:
    """True where QC says good quality, or other quality with good data and LST error small."""
    if max_lst_error_k not in _LST_ERROR_CLASS:
        raise ValueError(f"max_lst_error_k must be 1, 2 or 3, got {max_lst_error_k}")
    bits = decode_lst_qc(qc)
    other_ok = (
        (bits["mandatory"] == 1)
        & (bits["data_quality"] == 0)
        & (bits["lst_error"] <= _LST_ERROR_CLASS[max_lst_error_k])
    )
    return (bits["mandatory"] == 0) | other_ok


# ------------------------------------------------------------------------------------ reading


def _date_from(path: Path, attrs: dict) -> date:
    """The acquisition date from the granule name, else from ``CoreMetadata.0``."""
    try:
        return parse_granule_name(path.name)["date"]
    except ValueError:
        pass
    day = hdfeos.core_date(attrs)
    if day is None:
        raise InputError(path, "no acquisition date in the file name or CoreMetadata.0")
    return day


def read_mod11a1(
    path: str | Path,
    overpass: str = "Day",
    max_lst_error_k: int = 2,
    tolerance: float | None = None,
) -> ModisLST:
    """Read the `overpass` ("Day" or "Night") LST, QC and view time of a MOD11A1 granule.

    QC-valid LST must lie in its physical range (lstfill.ranges): above `tolerance` of the valid
    pixels outside it the granule is refused, below it those pixels are invalid.
    """
    if overpass not in ("Day", "Night"):
        raise ValueError(f"overpass must be 'Day' or 'Night', got {overpass!r}")
    path, attrs, sds = hdfeos.read_granule(
        path, [f"LST_{overpass}_1km", f"QC_{overpass}", f"{overpass}_view_time"]
    )
    (raw_lst, lst_attrs), (qc, _), (raw_time, time_attrs) = sds
    grid = hdfeos.grid_for(path, attrs, LST_GRID, raw_lst.shape)
    if qc.shape != raw_lst.shape or raw_time.shape != raw_lst.shape:
        raise InputError(path, "LST, QC and view-time data sets differ in shape")
    lst = hdfeos.unscale(raw_lst, lst_attrs)
    qc = qc.astype(np.uint8)
    valid = np.isfinite(lst) & lst_qc_valid(qc, max_lst_error_k)
    lst[~valid] = np.nan
    name = f"LST_{overpass}_1km"
    lst = check_range(lst, "lst", path, lst_attrs.get("units"), tolerance, name=name)
    valid &= np.isfinite(lst)
    return ModisLST(
        date=_date_from(path, attrs),
        lst=Raster(lst, grid.transform, grid.crs, nodata=np.nan),
        qc=qc,
        view_time_h=hdfeos.unscale(raw_time, time_attrs),
        valid=valid,
        path=path,
    )


def read_mod09gq(path: str | Path, tolerance: float | None = None) -> ModisRefl:
    """Read red and NIR surface reflectance (0..1, NaN where fill) and QC of a MOD09GQ granule.

    Reflectance must lie in its physical range (lstfill.ranges): above `tolerance` of a band's
    pixels outside it the granule is refused, below it those pixels become NaN.
    """
    names = ["sur_refl_b01_1", "sur_refl_b02_1", "QC_250m_1"]
    path, attrs, sds = hdfeos.read_granule(path, names)
    (raw_red, red_attrs), (raw_nir, nir_attrs), (qc, _) = sds
    grid = hdfeos.grid_for(path, attrs, REFL_GRID, raw_red.shape)
    if raw_nir.shape != raw_red.shape or qc.shape != raw_red.shape:
        raise InputError(path, "reflectance and QC data sets differ in shape")
    crs = grid.crs
    red, nir = (
        check_range(
            hdfeos.unscale(raw, a), "reflectance", path, a.get("units"), tolerance, name=name
        )
        for raw, a, name in ((raw_red, red_attrs, names[0]), (raw_nir, nir_attrs, names[1]))
    )
    return ModisRefl(
        date=_date_from(path, attrs),
        red=Raster(red, grid.transform, crs, nodata=np.nan),
        nir=Raster(nir, grid.transform, crs, nodata=np.nan),
        qc=qc.astype(np.uint16),
        path=path,
    )


def find_modis(folder: str | Path, product: str) -> list[Path]:
    """Granules of `product` (e.g. "MOD11A1") in `folder`, sorted by name."""
    return sorted(
        p
        for p in Path(folder).glob(f"{product}.A*.hdf")
        if not p.name.startswith(".") and _NAME_RE.match(p.name)
    )


# ------------------------------------------------------------------------------------ writing


def write_mod11a1(
    path: str | Path,
    date: date,
    lst_k: np.ndarray,
    qc: np.ndarray,
    view_time_h: np.ndarray,
    upper_left: tuple[float, float],
    lower_right: tuple[float, float],
    overpass: str = "Day",
) -> Path:
    """Write a MOD11A1-format granule (one overpass's LST, QC and view time), atomically.

    NaN in `lst_k` or `view_time_h` becomes the product's fill value; LST is quantised to 0.02 K
    and view time to 0.1 h as in the real product.
    """
    if overpass not in ("Day", "Night"):
        raise ValueError(f"overpass must be 'Day' or 'Night', got {overpass!r}")
    lst = hdfeos.pack(f"LST_{overpass}_1km", lst_k, 0.02, 0, (7500, 65535), np.uint16)
    vt = hdfeos.pack(f"{overpass}_view_time", view_time_h, 0.1, 255, (0, 240), np.uint8)
    sds = [
        (
            f"LST_{overpass}_1km",
            lst,
            {
                "long_name": f"Daily {overpass.lower()}time 1km grid Land-surface Temperature",
                "units": "K",
                "valid_range": (7500, 65535),
                "_FillValue": 0,
                "LST": "LST data * scale_factor",
                "scale_factor": 0.02,
                "scale_factor_err": 0.0,
                "add_offset_err": 0.0,
            },
        ),
        (
            f"QC_{overpass}",
            np.asarray(qc).astype(np.uint8),
            {
                "long_name": f"Quality control for {overpass.lower()}time LST and emissivity",
                "valid_range": (0, 255),
            },
        ),
        (
            f"{overpass}_view_time",
            vt,
            {
                "long_name": f"Time of {overpass.lower()}time Land-surface Temperature observation",
                "units": "hrs",
                "valid_range": (0, 240),
                "_FillValue": 255,
                "View_time": "View_time data * scale_factor",
                "scale_factor": 0.1,
                "scale_factor_err": 0.0,
                "add_offset_err": 0.0,
            },
        ),
    ]
    return hdfeos.write_granule(path, date, LST_GRID, upper_left, lower_right, sds)


def write_mod09gq(
    path: str | Path,
    date: date,
    red: np.ndarray,
    nir: np.ndarray,
    qc: np.ndarray,
    upper_left: tuple[float, float],
    lower_right: tuple[float, float],
) -> Path:
    """Write a MOD09GQ-format granule (bands 1 and 2 reflectance, QC), atomically.

    NaN reflectance becomes the fill value -28672; reflectance is quantised to 0.0001.
    """
    refl_attrs = {
        "units": "reflectance",
        "valid_range": (-100, 16000),
        "_FillValue": -28672,
        "scale_factor": 0.0001,
        "scale_factor_err": 0.0,
        "add_offset": 0.0,
        "add_offset_err": 0.0,
    }
    sds = [
        (
            "sur_refl_b01_1",
            hdfeos.pack("sur_refl_b01_1", red, 0.0001, -28672, (-100, 16000), np.int16),
            {"long_name": "250m Surface Reflectance Band 1 (620-670 nm)", **refl_attrs},
        ),
        (
            "sur_refl_b02_1",
            hdfeos.pack("sur_refl_b02_1", nir, 0.0001, -28672, (-100, 16000), np.int16),
            {"long_name": "250m Surface Reflectance Band 2 (841-876 nm)", **refl_attrs},
        ),
        (
            "QC_250m_1",
            np.asarray(qc).astype(np.uint16),
            {
                "long_name": "250m Reflectance Band Quality",
                "units": "bit field",
                "valid_range": (0, 4096),
                "_FillValue": 2995,
            },
        ),
    ]
    return hdfeos.write_granule(path, date, REFL_GRID, upper_left, lower_right, sds)
