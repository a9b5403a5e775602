"""What every provider shares: the interface, the region it searches, the file references it
returns, its error.

A provider (ecostress, srtm, modis, sentinel2, sentinel3, inca) is a module with one shape,
:class:`Provider`::

    ACCOUNT: str | None  # "earthdata", "sentinelhub", or None (no login)
    search(area, start, end, settings, *, creds=None) -> list[FileRef]
    download(refs, dest, settings, *, creds=None, fetcher=None) -> list[Path]

`search` asks the catalogue what exists; `download` fetches it with :class:`~lstfill.download.
fetch.Fetcher` into `dest` under the names the readers parse. Both take the provider's part of
the config (``regions.<name>.download.<source>``) as `settings` and the `ACCOUNT`'s credentials
as `creds` (looked up when None and needed); `fetcher` replaces the one `download` would make.
A provider whose settings can point at a server with a login of its own (MODIS Data Pool
mirrors with a ~/.netrc entry) also has ``own_login(settings) -> bool``: True where the account
is then not needed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pyproj import Transformer

from lstfill.errors import LstfillError
from lstfill.grid import Grid, grid_from_config

if TYPE_CHECKING:
    from lstfill.download.fetch import Fetcher

ACCOUNTS = ("earthdata", "sentinelhub")  # what a provider's ACCOUNT may name (or None)


class DownloadError(LstfillError):
    """A transfer or catalogue request failed for good; the message names the provider and URL
    (never a credential) and what to do."""


class AuthError(DownloadError):
    """The server refused the credentials (HTTP 401/403) or the login failed."""


@dataclass(frozen=True)
class FileRef:
    """One file to fetch and where it goes.

    `name` is the path under the destination folder (may contain one sub-folder). `size` (bytes)
    and `checksum` (hex digest, `checksum_algorithm` in CMR spelling: "MD5", "SHA-256",
    "SHA-512") are verified when known. `kind` says how to check the file opens before it is
    renamed into place: "geotiff", "netcdf", "hdf4", "zip", "none", or "auto" (from the suffix).
    `method`/`json`/`headers` describe the request (a POST with a JSON body for API calls);
    headers must not hold credentials (the fetcher's session carries those).
    """

    url: str
    name: str
    size: int | None = None
    checksum: str | None = None
    checksum_algorithm: str | None = None
    kind: str = "auto"
    method: str = "GET"
    json: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    headers: dict[str, str] | None = field(default=None, compare=False, hash=False)
    meta: dict[str, Any] | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class Area:
    """A region as the catalogues want it: its grid, its MGRS tile if it has one, and its
    bounding box in WGS84 longitude/latitude (lon_min, lat_min, lon_max, lat_max)."""

    name: str
    grid: Grid
    mgrs_tile: str | None
    bbox_lonlat: tuple[float, float, float, float]

    @classmethod
    def from_config(cls, name: str, region_cfg: dict[str, Any]) -> Area:
        grid = grid_from_config(region_cfg["grid"])
        tile = region_cfg["grid"].get("mgrs_tile")
        return cls(name, grid, tile.removeprefix("T") if tile else None, lonlat_bbox(grid))


def lonlat_bbox(grid: Grid, densify: int = 21) -> tuple[float, float, float, float]:
    """WGS84 bbox of the grid's extent, from points along its edges (a UTM square is not a
    lon/lat rectangle)."""
    x0, y0, x1, y1 = grid.bounds
    to_ll = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    left, bottom, right, top = to_ll.transform_bounds(x0, y0, x1, y1, densify_pts=densify)
    return (float(left), float(bottom), float(right), float(top))


class Provider(Protocol):
    """A provider module (see the module docstring); `creds` are the `ACCOUNT`'s credentials."""

    ACCOUNT: str | None

    def search(
        self,
        area: Area,
        start: dt.date | None,
        end: dt.date | None,
        settings: dict[str, Any] | None,
        *,
        creds: Any = None,
    ) -> list[FileRef]: ...

    def download(
        self,
        refs: Sequence[FileRef],
        dest: str | Path,
        settings: dict[str, Any] | None,
        *,
        creds: Any = None,
        fetcher: Fetcher | None = None,
    ) -> list[Path]: ...
