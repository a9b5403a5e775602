"""MODIS MOD11A1 (daily 1 km LST) and MOD09GQ (daily 250 m reflectance) HDF4-EOS granules.

Collection 6 / 6.1 granules are HDF4 files holding scientific data sets (SDS) on a tile of the
MODIS sinusoidal grid. Their georeferencing lives in the ``StructMetadata.0`` global attribute
(an ODL text block with the tile's corner coordinates), which this module parses itself, so real
granules and the demo's subsets are read the same way without GDAL's HDF4 driver. The writers
produce files with the same SDS names, data types, scaling attributes and metadata text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
from affine import Affine
from pyhdf.error import HDF4Error
from pyhdf.SD import SD, SDC
from pyproj import CRS

from lstfill.errors import InputError
from lstfill.io import atomic_output, check_file
from lstfill.raster import Raster

MODIS_SPHERE_RADIUS = 6371007.181
SINUSOIDAL_PROJ4 = f"+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R={MODIS_SPHERE_RADIUS} +units=m +no_defs"
SINUSOIDAL_WKT = CRS.from_proj4(SINUSOIDAL_PROJ4).to_wkt()

LST_GRID = "MODIS_Grid_Daily_1km_LST"
REFL_GRID = "MODIS_Grid_2D"
_LST_ERROR_CLASS = {1: 0, 2: 1, 3: 2}  # max LST error (K) -> highest allowed QC error class
_NAME_RE = re.compile(
    r"^(?P<product>M[OYC]D\w+)\.A(?P<year>\d{4})(?P<doy>\d{3})\.h(?P<h>\d{2})v(?P<v>\d{2})"
    r"\.(?P<collection>\d{3})\.(?P<prod_time>\d{13})(?:\.hdf)?$"
)


@dataclass(frozen=True)
class GridInfo:
    """One grid of an HDF-EOS ``GridStructure``: size, corner coordinates (m) and projection."""

    name: str
    xdim: int
    ydim: int
    upper_left: tuple[float, float]
    lower_right: tuple[float, float]
    projection: str
    proj_params: tuple[float, ...]

    @property
    def transform(self) -> Affine:
        """North-up affine transform of the cell edges."""
        (ulx, uly), (lrx, lry) = self.upper_left, self.lower_right
        return Affine((lrx - ulx) / self.xdim, 0.0, ulx, 0.0, (lry - uly) / self.ydim, uly)

    @property
    def crs(self) -> str:
        """The grid's CRS as a PROJ string (only the MODIS sinusoidal projection is supported)."""
        if self.projection != "GCTP_SNSOID":
            raise ValueError(f"grid {self.name}: unsupported projection {self.projection}")
        radius = self.proj_params[0] if self.proj_params and self.proj_params[0] > 0 else None
        return sinusoidal_crs(radius or MODIS_SPHERE_RADIUS)


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


def sinusoidal_crs(radius: float = MODIS_SPHERE_RADIUS) -> str:
    """PROJ string of the MODIS sinusoidal projection on a sphere of `radius` metres."""
    return f"+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R={float(radius)} +units=m +no_defs"


def _pair(text: str) -> tuple[float, float]:
    a, b = (float(v) for v in text.strip("() ").split(","))
    return (a, b)


def parse_struct_metadata(text: str) -> dict[str, GridInfo]:
    """The grids described in an HDF-EOS ``StructMetadata.0`` text, keyed by grid name."""
    text = text.replace("\x00", "")
    grids: dict[str, GridInfo] = {}
    for block in re.finditer(r"GROUP=(GRID_\d+)\s*\n(.*?)END_GROUP=\1", text, re.S):
        body = block.group(2)

        def value(key: str, body: str = body, group: str = block.group(1)) -> str:
            m = re.search(rf"^\s*{key}=(.+?)\s*$", body, re.M)
            if m is None:
                raise ValueError(f"StructMetadata {group} lacks {key}")
            return m.group(1)

        name = value("GridName").strip('"')
        params = value("ProjParams").strip("() ")
        grids[name] = GridInfo(
            name=name,
            xdim=int(value("XDim")),
            ydim=int(value("YDim")),
            upper_left=_pair(value("UpperLeftPointMtrs")),
            lower_right=_pair(value("LowerRightMtrs")),
            projection=value("Projection"),
            proj_params=tuple(float(p) for p in params.split(",")) if params else (),
        )
    return grids


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
    try:
        return parse_granule_name(path.name)["date"]
    except ValueError:
        pass
    core = str(attrs.get("CoreMetadata.0", ""))
    m = re.search(
        r"OBJECT\s*=\s*RANGEBEGINNINGDATE.*?VALUE\s*=\s*\"(\d{4}-\d{2}-\d{2})\"", core, re.S
    )
    if m is None:
        raise InputError(path, "no acquisition date in the file name or CoreMetadata.0")
    return date.fromisoformat(m.group(1))


def _grid_for(path: Path, attrs: dict, grid_name: str, shape: tuple[int, int]) -> GridInfo:
    text = attrs.get("StructMetadata.0")
    if text is None:
        raise InputError(path, "no StructMetadata.0 attribute (not an HDF-EOS file?)")
    try:
        grids = parse_struct_metadata(str(text))
    except ValueError as exc:
        raise InputError(path, f"cannot parse StructMetadata.0: {exc}") from exc
    if grid_name in grids:
        grid = grids[grid_name]
    elif len(grids) == 1:
        grid = next(iter(grids.values()))
    else:
        raise InputError(path, f"StructMetadata.0 has no grid {grid_name} (has {sorted(grids)})")
    if (grid.ydim, grid.xdim) != shape:
        raise InputError(
            path,
            f"grid {grid.name} is {grid.ydim}x{grid.xdim} but the data are {shape[0]}x{shape[1]}",
        )
    if grid.projection != "GCTP_SNSOID":
        raise InputError(
            path, f"grid {grid.name} has projection {grid.projection}, not GCTP_SNSOID"
        )
    return grid


def _read_sds(path: Path, sd: SD, name: str) -> tuple[np.ndarray, dict]:
    try:
        sds = sd.select(name)
    except HDF4Error as exc:
        raise InputError(path, f"no data set {name}") from exc
    try:
        return np.asarray(sds.get()), sds.attributes()
    finally:
        sds.endaccess()


def _unscale(raw: np.ndarray, attrs: dict) -> np.ndarray:
    """raw * scale_factor + add_offset as float32; NaN at _FillValue or outside valid_range."""
    out = raw.astype(np.float64) * float(attrs.get("scale_factor", 1.0)) + float(
        attrs.get("add_offset", 0.0)
    )
    bad = np.zeros(raw.shape, dtype=bool)
    if "_FillValue" in attrs:
        bad |= raw == attrs["_FillValue"]
    if "valid_range" in attrs:
        lo, hi = attrs["valid_range"]
        bad |= (raw < lo) | (raw > hi)
    out[bad] = np.nan
    return out.astype(np.float32)


def _read_granule(
    path: str | Path, names: list[str]
) -> tuple[Path, dict, list[tuple[np.ndarray, dict]]]:
    """Open an HDF4 granule and read its global attributes and the data sets `names`."""
    path = check_file(path)
    try:
        sd = SD(str(path), SDC.READ)
    except HDF4Error as exc:
        raise InputError(path, f"cannot open HDF4 file (corrupt or truncated?): {exc}") from exc
    try:
        return path, sd.attributes(), [_read_sds(path, sd, name) for name in names]
    except HDF4Error as exc:
        raise InputError(path, f"cannot read HDF4 data (corrupt or truncated?): {exc}") from exc
    finally:
        sd.end()


def read_mod11a1(path: str | Path, overpass: str = "Day", max_lst_error_k: int = 2) -> ModisLST:
    """Read the `overpass` ("Day" or "Night") LST, QC and view time of a MOD11A1 granule."""
    if overpass not in ("Day", "Night"):
        raise ValueError(f"overpass must be 'Day' or 'Night', got {overpass!r}")
    path, attrs, sds = _read_granule(
        path, [f"LST_{overpass}_1km", f"QC_{overpass}", f"{overpass}_view_time"]
    )
    (raw_lst, lst_attrs), (qc, _), (raw_time, time_attrs) = sds
    grid = _grid_for(path, attrs, LST_GRID, raw_lst.shape)
    if qc.shape != raw_lst.shape or raw_time.shape != raw_lst.shape:
        raise InputError(path, "LST, QC and view-time data sets differ in shape")
    lst = _unscale(raw_lst, lst_attrs)
    qc = qc.astype(np.uint8)
    valid = np.isfinite(lst) & lst_qc_valid(qc, max_lst_error_k)
    lst[~valid] = np.nan
    return ModisLST(
        date=_date_from(path, attrs),
        lst=Raster(lst, grid.transform, grid.crs, nodata=np.nan),
        qc=qc,
        view_time_h=_unscale(raw_time, time_attrs),
        valid=valid,
        path=path,
    )


def read_mod09gq(path: str | Path) -> ModisRefl:
    """Read red and NIR surface reflectance (0..1, NaN where fill) and QC of a MOD09GQ granule."""
    path, attrs, sds = _read_granule(path, ["sur_refl_b01_1", "sur_refl_b02_1", "QC_250m_1"])
    (raw_red, red_attrs), (raw_nir, nir_attrs), (qc, _) = sds
    grid = _grid_for(path, attrs, REFL_GRID, raw_red.shape)
    if raw_nir.shape != raw_red.shape or qc.shape != raw_red.shape:
        raise InputError(path, "reflectance and QC data sets differ in shape")
    crs = grid.crs
    return ModisRefl(
        date=_date_from(path, attrs),
        red=Raster(_unscale(raw_red, red_attrs), grid.transform, crs, nodata=np.nan),
        nir=Raster(_unscale(raw_nir, nir_attrs), grid.transform, crs, nodata=np.nan),
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


def _struct_metadata(
    grid_name: str, shape: tuple[int, int], upper_left, lower_right, fields
) -> str:
    """HDF-EOS GridStructure text for one sinusoidal grid holding `fields` [(name, DFNT type)]."""
    ydim, xdim = shape
    objects = "".join(
        f"\t\t\tOBJECT=DataField_{i}\n"
        f'\t\t\t\tDataFieldName="{name}"\n'
        f"\t\t\t\tDataType={dfnt}\n"
        '\t\t\t\tDimList=("YDim","XDim")\n'
        f"\t\t\tEND_OBJECT=DataField_{i}\n"
        for i, (name, dfnt) in enumerate(fields, start=1)
    )
    return (
        "GROUP=SwathStructure\nEND_GROUP=SwathStructure\n"
        "GROUP=GridStructure\n"
        "\tGROUP=GRID_1\n"
        f'\t\tGridName="{grid_name}"\n'
        f"\t\tXDim={xdim}\n"
        f"\t\tYDim={ydim}\n"
        f"\t\tUpperLeftPointMtrs=({upper_left[0]:.6f},{upper_left[1]:.6f})\n"
        f"\t\tLowerRightMtrs=({lower_right[0]:.6f},{lower_right[1]:.6f})\n"
        "\t\tProjection=GCTP_SNSOID\n"
        f"\t\tProjParams=({MODIS_SPHERE_RADIUS:.6f},0,0,0,0,0,0,0,86400,0,0,0,0)\n"
        "\t\tSphereCode=-1\n"
        "\t\tGridOrigin=HDFE_GD_UL\n"
        "\t\tGROUP=Dimension\n\t\tEND_GROUP=Dimension\n"
        "\t\tGROUP=DataField\n"
        f"{objects}"
        "\t\tEND_GROUP=DataField\n"
        "\t\tGROUP=MergedFields\n\t\tEND_GROUP=MergedFields\n"
        "\tEND_GROUP=GRID_1\n"
        "END_GROUP=GridStructure\n"
        "GROUP=PointStructure\nEND_GROUP=PointStructure\n"
        "END\n"
    )


def _core_metadata(day: date) -> str:
    """A minimal ECS CoreMetadata.0 carrying the acquisition date range."""
    objs = [
        ("RANGEENDINGDATE", day.isoformat()),
        ("RANGEENDINGTIME", "23:59:59"),
        ("RANGEBEGINNINGDATE", day.isoformat()),
        ("RANGEBEGINNINGTIME", "00:00:00"),
    ]
    body = "".join(
        f"    OBJECT                 = {k}\n      NUM_VAL              = 1\n"
        f'      VALUE                = "{v}"\n    END_OBJECT             = {k}\n\n'
        for k, v in objs
    )
    return (
        "\nGROUP                  = INVENTORYMETADATA\n  GROUPTYPE            = MASTERGROUP\n\n"
        "  GROUP                  = RANGEDATETIME\n\n"
        f"{body}  END_GROUP              = RANGEDATETIME\n\n"
        "END_GROUP              = INVENTORYMETADATA\n\nEND\n"
    )


_SDC_TYPES = {
    np.dtype(np.uint8): (SDC.UINT8, "DFNT_UINT8"),
    np.dtype(np.uint16): (SDC.UINT16, "DFNT_UINT16"),
    np.dtype(np.int16): (SDC.INT16, "DFNT_INT16"),
}


def _pack(name: str, values: np.ndarray, scale: float, fill: int, valid: tuple[int, int], dtype):
    """Quantise `values` to `dtype` counts (NaN -> fill); ValueError outside valid_range."""
    v = np.asarray(values, dtype=np.float64)
    counts = np.round(v / scale)
    finite = np.isfinite(counts)
    out_of_range = finite & ((counts < valid[0]) | (counts > valid[1]))
    if out_of_range.any():
        bad = v[out_of_range][0]
        raise ValueError(
            f"{name}: value {bad} outside the valid range {valid[0] * scale}..{valid[1] * scale}"
        )
    return np.where(finite, counts, fill).astype(dtype)


def _write_hdf(
    path: str | Path,
    day: date,
    grid_name: str,
    upper_left: tuple[float, float],
    lower_right: tuple[float, float],
    sds_list: list[tuple[str, np.ndarray, dict]],
) -> Path:
    """Write SDSs (name, data, attributes) and HDF-EOS metadata to a new HDF4 file, atomically."""
    shape = sds_list[0][1].shape
    for name, data, _ in sds_list:
        if data.ndim != 2 or data.shape != shape:
            raise ValueError(f"{name}: expected a 2-D array of shape {shape}, got {data.shape}")
    fields = [(name, _SDC_TYPES[data.dtype][1]) for name, data, _ in sds_list]
    path = Path(path)
    with atomic_output(path) as tmp:
        sd = SD(str(tmp), SDC.WRITE | SDC.CREATE | SDC.TRUNC)
        try:
            for name, data, attrs in sds_list:
                sdc_type = _SDC_TYPES[data.dtype][0]
                sds = sd.create(name, sdc_type, data.shape)
                try:
                    sds.dim(0).setname(f"YDim:{grid_name}")
                    sds.dim(1).setname(f"XDim:{grid_name}")
                    for key, val in attrs.items():
                        if key == "_FillValue":
                            sds.setfillvalue(int(val))
                        elif isinstance(val, str):
                            sds.attr(key).set(SDC.CHAR8, val)
                        elif isinstance(val, float):
                            sds.attr(key).set(SDC.FLOAT64, val)
                        else:  # integers and ranges in the data set's own type
                            sds.attr(key).set(sdc_type, [int(x) for x in np.atleast_1d(val)])
                    sds[:] = data
                finally:
                    sds.endaccess()
            sd.attr("HDFEOSVersion").set(SDC.CHAR8, "HDFEOS_V2.19")
            struct = _struct_metadata(grid_name, shape, upper_left, lower_right, fields)
            sd.attr("StructMetadata.0").set(SDC.CHAR8, struct)
            sd.attr("CoreMetadata.0").set(SDC.CHAR8, _core_metadata(day))
        finally:
            sd.end()
    return path


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
    lst = _pack(f"LST_{overpass}_1km", lst_k, 0.02, 0, (7500, 65535), np.uint16)
    vt = _pack(f"{overpass}_view_time", view_time_h, 0.1, 255, (0, 240), np.uint8)
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
    return _write_hdf(path, date, LST_GRID, upper_left, lower_right, sds)


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
            _pack("sur_refl_b01_1", red, 0.0001, -28672, (-100, 16000), np.int16),
            {"long_name": "250m Surface Reflectance Band 1 (620-670 nm)", **refl_attrs},
        ),
        (
            "sur_refl_b02_1",
            _pack("sur_refl_b02_1", nir, 0.0001, -28672, (-100, 16000), np.int16),
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
    return _write_hdf(path, date, REFL_GRID, upper_left, lower_right, sds)
