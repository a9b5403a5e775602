"""The region grid: one CRS, one north-up affine transform, one shape.

Every variable of every cube of a region is resampled onto exactly this grid, so a pixel (row, col)
means the same ground cell in every file. A grid comes from a bounding box (CRS + bounds +
resolution) or from an MGRS tile id, the tiling that Sentinel-2 and ECOSTRESS L2T products use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine
from pyproj import CRS, Transformer

_BAND_LETTERS = "CDEFGHJKLMNPQRSTUVWX"  # 8 degree latitude bands from 80 S (X spans 12 degrees)
_ROW_LETTERS = "ABCDEFGHJKLMNPQRSTUV"  # 100 km row letters, cycle every 2000 km
_COL_SETS = {1: "ABCDEFGH", 2: "JKLMNPQR", 0: "STUVWXYZ"}  # by zone % 3
S2_TILE_SIZE_M = 109_800.0


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: `crs` (EPSG or WKT string), `transform` and `shape` (rows, cols)."""

    crs: str
    transform: Affine
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"grid has no pixels: width={self.width}, height={self.height}")
        if self.transform.b != 0 or self.transform.d != 0 or self.transform.e >= 0:
            raise ValueError(f"grid must be north-up without rotation, got {self.transform!r}")

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size (x, y) in CRS units, both positive."""
        return (self.transform.a, -self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the outer pixel edges."""
        xmin, ymax = self.transform.c, self.transform.f
        return (
            xmin,
            ymax + self.transform.e * self.height,
            xmin + self.transform.a * self.width,
            ymax,
        )

    @property
    def x(self) -> np.ndarray:
        """Pixel-centre x coordinates, west to east."""
        return self.transform.c + self.transform.a * (np.arange(self.width) + 0.5)

    @property
    def y(self) -> np.ndarray:
        """Pixel-centre y coordinates, north to south."""
        return self.transform.f + self.transform.e * (np.arange(self.height) + 0.5)

    @property
    def pyproj_crs(self) -> CRS:
        return CRS.from_user_input(self.crs)

    def lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        """Longitude and latitude (degrees) of every pixel centre, each of shape `shape`."""
        xx, yy = np.meshgrid(self.x, self.y)
        tr = Transformer.from_crs(self.pyproj_crs, "EPSG:4326", always_xy=True)
        lon, lat = tr.transform(xx, yy)
        return np.asarray(lon), np.asarray(lat)

    def coarsen(self, factor: int) -> Grid:
        """The grid with pixels `factor` times larger over the same origin (extent rounded up)."""
        return Grid(
            self.crs,
            self.transform @ Affine.scale(factor),
            math.ceil(self.width / factor),
            math.ceil(self.height / factor),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description (stored in manifests and cube attributes)."""
        return {
            "crs": self.crs,
            "transform": list(self.transform)[:6],
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Grid:
        return cls(d["crs"], Affine(*d["transform"]), int(d["width"]), int(d["height"]))

    @classmethod
    def from_bbox(
        cls, crs: str, bounds: tuple[float, float, float, float] | list[float], resolution: float
    ) -> Grid:
        """Grid anchored at the bbox's upper-left corner, extent rounded up to whole pixels."""
        xmin, ymin, xmax, ymax = (float(v) for v in bounds)
        if not (xmax > xmin and ymax > ymin):
            raise ValueError(f"bbox must have xmin < xmax and ymin < ymax, got {list(bounds)}")
        if resolution <= 0:
            raise ValueError(f"resolution must be positive, got {resolution}")
        CRS.from_user_input(crs)  # fails early on an unknown CRS
        width = math.ceil(round((xmax - xmin) / resolution, 6))
        height = math.ceil(round((ymax - ymin) / resolution, 6))
        return cls(crs, Affine(resolution, 0, xmin, 0, -resolution, ymax), width, height)

    @classmethod
    def from_mgrs(cls, tile: str, resolution: float) -> Grid:
        """Grid of a Sentinel-2 / ECOSTRESS L2T MGRS tile (109.8 km square) at `resolution`."""
        epsg, west, north = mgrs_tile_origin(tile)
        n = math.ceil(round(S2_TILE_SIZE_M / resolution, 6))
        return cls(f"EPSG:{epsg}", Affine(resolution, 0, west, 0, -resolution, north), n, n)


def tile_epsg(tile: str) -> int:
    """EPSG code of the UTM zone of an MGRS tile such as ``32TPT`` (the CRS of its granules):
    WGS 84 / UTM north, or south for latitude bands C..M."""
    return (32700 if tile[2].upper() < "N" else 32600) + int(tile[:2])


def mgrs_tile_origin(tile: str) -> tuple[int, float, float]:
    """EPSG code and upper-left (west, north) UTM corner of an MGRS 100 km tile like ``32TPT``.

    Decoded from the MGRS definition (zone, latitude band, column and row letters). The
    Sentinel-2 tiling puts a tile's upper-left corner at its 100 km square's north-west corner
    and extends it 109.8 km east and south; the official tile grid differs from this by at most
    a few tens of metres, so give a bbox copied from a real granule when exact alignment matters.
    """
    t = tile.strip().upper().removeprefix("T")
    if len(t) != 5 or not t[:2].isdigit():
        raise ValueError(f"MGRS tile id must look like '32TPT', got {tile!r}")
    zone, band, col, row = int(t[:2]), t[2], t[3], t[4]
    if not 1 <= zone <= 60 or band not in _BAND_LETTERS:
        raise ValueError(f"invalid MGRS zone or latitude band in {tile!r}")
    cols = _COL_SETS[zone % 3]
    if col not in cols or row not in _ROW_LETTERS:
        raise ValueError(f"invalid MGRS 100 km square letters in {tile!r}")
    easting = (cols.index(col) + 1) * 100_000.0
    row_idx = (_ROW_LETTERS.index(row) - (5 if zone % 2 == 0 else 0)) % 20
    northing = row_idx * 100_000.0
    epsg = tile_epsg(t)
    band_lat = -80.0 + 8.0 * _BAND_LETTERS.index(band)
    to_utm = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    _, band_min_northing = to_utm.transform(-183.0 + 6.0 * zone, band_lat)
    while northing + 100_000.0 < band_min_northing:
        northing += 2_000_000.0
    return epsg, easting, northing + 100_000.0


def grid_from_config(grid_cfg: dict[str, Any]) -> Grid:
    """The region grid from the config's ``grid`` block (``mgrs_tile`` or ``crs`` + ``bounds``)."""
    res = float(grid_cfg["resolution"])
    if grid_cfg.get("mgrs_tile"):
        return Grid.from_mgrs(grid_cfg["mgrs_tile"], res)
    if "crs" in grid_cfg and "bounds" in grid_cfg:
        return Grid.from_bbox(grid_cfg["crs"], grid_cfg["bounds"], res)
    raise ValueError("grid: give either 'mgrs_tile' or both 'crs' and 'bounds'")
