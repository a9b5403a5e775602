"""SRTMGL1 v003 elevation tiles (``N47E011.SRTMGL1.hgt.zip``) and other DEM files.

An SRTM ``.hgt`` file is a bare grid of big-endian int16 heights (m), 3601 x 3601 samples for a
1 x 1 degree tile at 1 arc second (1201 x 1201 for 3 arc seconds), void = -32768. Samples are
points: the first row lies on the tile's north edge and the last on its south edge, so adjacent
tiles share an edge row/column and the raster's cell edges sit half a sample outside the tile.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path

import numpy as np
from affine import Affine
from pyproj import CRS

from lstfill.errors import InputError
from lstfill.io import atomic_output, check_file, read_raster
from lstfill.ranges import check_range
from lstfill.raster import Raster

VOID = -32768
_SIZES = {3601: 3600, 1201: 1200}  # samples per side -> intervals per degree
_TILE_RE = re.compile(r"([NS])(\d{2})([EW])(\d{3})", re.I)


def tile_name(lat: int, lon: int) -> str:
    """Name of the tile whose south-west corner is (`lat`, `lon`), e.g. "N47E011"."""
    return f"{'N' if lat >= 0 else 'S'}{abs(lat):02d}{'E' if lon >= 0 else 'W'}{abs(lon):03d}"


def zip_name(lat: int, lon: int) -> str:
    """LP DAAC download name of a tile, e.g. "N47E011.SRTMGL1.hgt.zip"."""
    return f"{tile_name(lat, lon)}.SRTMGL1.hgt.zip"


def parse_tile_name(name: str) -> tuple[int, int]:
    """South-west corner (lat, lon) from a name containing e.g. "N47E011"; ValueError if none."""
    m = _TILE_RE.search(Path(name).name)
    if m is None:
        raise ValueError(f"no SRTM tile id like 'N47E011' in {name!r}")
    lat = int(m[2]) * (1 if m[1].upper() == "N" else -1)
    lon = int(m[4]) * (1 if m[3].upper() == "E" else -1)
    return lat, lon


def write_hgt_zip(path: str | Path, data: np.ndarray, lat: int, lon: int) -> Path:
    """Write a tile as a zip holding "<tile>.hgt" (big-endian int16, void -32768), atomically."""
    arr = np.asarray(data)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] not in _SIZES:
        raise ValueError(f"SRTM tile must be 3601x3601 (or 1201x1201), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"SRTM heights must be integers, got dtype {arr.dtype}")
    raw = arr.astype(">i2").tobytes()
    path = Path(path)
    with atomic_output(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.writestr(f"{tile_name(lat, lon)}.hgt", raw)
    return path


def _hgt_bytes(path: Path) -> tuple[bytes, str]:
    """The raw .hgt bytes and the .hgt member/file name."""
    if path.name.lower().endswith(".zip"):
        try:
            with zipfile.ZipFile(path) as zf:
                members = [n for n in zf.namelist() if n.lower().endswith(".hgt")]
                if len(members) != 1:
                    raise InputError(path, f"expected one .hgt file in the zip, found {members}")
                return zf.read(members[0]), members[0]
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise InputError(path, f"cannot read zip (corrupt or truncated?): {exc}") from exc
    return path.read_bytes(), path.name


def read_srtm(path: str | Path, tolerance: float | None = None) -> Raster:
    """Read a .hgt or .hgt.zip tile: float32 metres on EPSG:4326, NaN at voids; heights outside
    the physical range of elevation (lstfill.ranges) refuse the tile, or, when no more than
    `tolerance` of them, become NaN."""
    path = check_file(path)
    raw, member = _hgt_bytes(path)
    n = int(round((len(raw) / 2) ** 0.5))
    if n not in _SIZES or n * n * 2 != len(raw):
        raise InputError(path, f"{member} has {len(raw)} bytes, not a 3601x3601 or 1201x1201 tile")
    try:
        lat, lon = parse_tile_name(member)
    except ValueError:
        try:
            lat, lon = parse_tile_name(path.name)
        except ValueError as exc:
            raise InputError(path, "cannot tell the tile position from its name") from exc
    heights = np.frombuffer(raw, dtype=">i2").reshape(n, n)
    data = heights.astype(np.float32)
    data[heights == VOID] = np.nan
    data = check_range(data, "elevation", path, tolerance=tolerance, name=member)
    step = 1.0 / _SIZES[n]
    # pixel-is-point: sample (0, 0) is at (lon, lat + 1), its cell reaches half a step beyond
    transform = Affine(step, 0.0, lon - step / 2, 0.0, -step, lat + 1 + step / 2)
    return Raster(data, transform, "EPSG:4326", nodata=np.nan)


def read_dem(path: str | Path, tolerance: float | None = None) -> Raster:
    """Read a DEM: SRTM .hgt/.hgt.zip tiles or any GeoTIFF, as float32 metres with NaN nodata,
    checked against the physical range of elevation as :func:`read_srtm` does (an undeclared
    nodata value such as -9999 shows up there)."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".hgt", ".hgt.zip")):
        return read_srtm(path, tolerance)
    data, transform, crs, nodata, tags = read_raster(path)
    out = data.astype(np.float32)
    if nodata is not None and not np.isnan(nodata):
        out[data == nodata] = np.nan
    out = check_range(out, "elevation", path, tags.get("units"), tolerance)
    epsg = crs.to_epsg()
    return Raster(out, transform, f"EPSG:{epsg}" if epsg else crs.to_wkt(), nodata=np.nan)


def mosaic(rasters: list[Raster]) -> Raster:
    """Paste aligned rasters of one CRS and resolution into one covering all (first wins).

    Adjacent SRTM tiles share their edge samples, which land on the same output pixel; a void
    in one tile is filled from another where they overlap.
    """
    if not rasters:
        raise ValueError("mosaic needs at least one raster")
    first = rasters[0]
    crs = CRS.from_user_input(first.crs)
    res_x, res_y = first.transform.a, first.transform.e
    for r in rasters[1:]:
        if not CRS.from_user_input(r.crs).equals(crs):
            raise ValueError("mosaic: rasters are on different CRSs")
        if not (np.isclose(r.transform.a, res_x) and np.isclose(r.transform.e, res_y)):
            raise ValueError("mosaic: rasters have different resolutions")
    west = min(r.transform.c for r in rasters)
    north = max(r.transform.f for r in rasters)
    offsets = []
    for r in rasters:
        col = (r.transform.c - west) / res_x
        row = (r.transform.f - north) / res_y
        if abs(col - round(col)) > 1e-3 or abs(row - round(row)) > 1e-3:
            raise ValueError("mosaic: rasters are not aligned on a common grid")
        offsets.append((int(round(row)), int(round(col))))
    height = max(o[0] + r.data.shape[0] for o, r in zip(offsets, rasters, strict=True))
    width = max(o[1] + r.data.shape[1] for o, r in zip(offsets, rasters, strict=True))
    out = np.full((height, width), np.nan, dtype=np.float32)
    for (row, col), r in zip(offsets, rasters, strict=True):
        window = out[row : row + r.data.shape[0], col : col + r.data.shape[1]]
        empty = np.isnan(window)
        window[empty] = np.asarray(r.data, dtype=np.float32)[empty]
    transform = Affine(res_x, 0.0, west, 0.0, res_y, north)
    return Raster(out, transform, first.crs, nodata=np.nan)


def find_dem(folder: str | Path) -> list[Path]:
    """DEM files in `folder` (.hgt.zip, .hgt, .tif, .tiff), sorted by name."""
    suffixes = (".hgt.zip", ".hgt", ".tif", ".tiff")
    if not Path(folder).is_dir():
        return []
    return sorted(
        p
        for p in Path(folder).iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(suffixes)
    )
