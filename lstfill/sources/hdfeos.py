"""HDF-EOS 2 grid files as the MODIS land products use them: HDF4 scientific data sets (SDS) on
a tile of the MODIS sinusoidal grid.

The georeferencing lives in the ``StructMetadata.0`` global attribute (an ODL text block with the
tile's corner coordinates), which this module parses itself, so real granules and the demo's
subsets are read the same way without GDAL's HDF4 driver; the acquisition date lives in
``CoreMetadata.0``. The writer produces files with the same SDS types, scaling attributes and
metadata text. The MODIS products themselves (SDS names, QC bits, granule names) are in
:mod:`lstfill.sources.modis`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from affine import Affine
from pyhdf.error import HDF4Error
from pyhdf.SD import SD, SDC
from pyproj import CRS

from lstfill.errors import InputError
from lstfill.io import atomic_output, check_file

MODIS_SPHERE_RADIUS = 6371007.181
SINUSOIDAL_PROJ4 = f"+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R={MODIS_SPHERE_RADIUS} +units=m +no_defs"
SINUSOIDAL_WKT = CRS.from_proj4(SINUSOIDAL_PROJ4).to_wkt()


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


# ------------------------------------------------------------------------------------ reading


def core_date(attrs: dict) -> date | None:
    """The acquisition date (RANGEBEGINNINGDATE) of a granule's ``CoreMetadata.0``, if any."""
    core = str(attrs.get("CoreMetadata.0", ""))
    m = re.search(
        r"OBJECT\s*=\s*RANGEBEGINNINGDATE.*?VALUE\s*=\s*\"(\d{4}-\d{2}-\d{2})\"", core, re.S
    )
    return None if m is None else date.fromisoformat(m.group(1))


def grid_for(path: Path, attrs: dict, grid_name: str, shape: tuple[int, int]) -> GridInfo:
    """The grid `grid_name` of a granule's ``StructMetadata.0`` (or its only grid), checked to
    match the data's `shape` and to be sinusoidal; InputError naming `path` otherwise."""
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
    """The values and attributes of the data set `name` of an open file."""
    try:
        sds = sd.select(name)
    except HDF4Error as exc:
        raise InputError(path, f"no data set {name}") from exc
    try:
        return np.asarray(sds.get()), sds.attributes()
    finally:
        sds.endaccess()


def unscale(raw: np.ndarray, attrs: dict) -> np.ndarray:
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


def read_granule(
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


def pack(name: str, values: np.ndarray, scale: float, fill: int, valid: tuple[int, int], dtype):
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


def write_granule(
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
