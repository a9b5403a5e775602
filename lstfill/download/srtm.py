"""SRTMGL1 v003 elevation tiles from LP DAAC: ``N47E016.SRTMGL1.hgt.zip``, 1 x 1 degree each.

The DEM does not change, so the search ignores dates and asks CMR for the tiles over the
region's bbox; tiles that only touch the bbox along an edge are dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import partial
from typing import Any

from lstfill.download import earthdata
from lstfill.download.base import Area, FileRef
from lstfill.download.credentials import EarthdataCredentials
from lstfill.sources.srtm import parse_tile_name

ACCOUNT = "earthdata"
DEFAULTS: dict[str, Any] = {"short_name": "SRTMGL1", "version": "003", "provider": "LPCLOUD"}
SUFFIX = ".hgt.zip"


def settings_with_defaults(settings: dict[str, Any] | None) -> dict[str, Any]:
    """`settings` over :data:`DEFAULTS`."""
    return {**DEFAULTS, **(settings or {})}


def search(
    area: Area,
    start: dt.date | None,
    end: dt.date | None,
    settings: dict[str, Any] | None,
    *,
    creds: EarthdataCredentials | None = None,
) -> list[FileRef]:
    """The ``.hgt.zip`` tiles intersecting the area's bbox (`start` and `end` are ignored; CMR
    is searched without a login)."""
    s = settings_with_defaults(settings)
    granules = earthdata.search_granules(
        s["short_name"],
        s["version"],
        None,
        None,
        bounding_box=area.bbox_lonlat,
        provider=s["provider"],
    )
    refs: dict[str, FileRef] = {}
    for granule in granules:
        for ref in earthdata.granule_refs(granule, suffixes=(SUFFIX,), kind="zip"):
            if _intersects(ref.name, area.bbox_lonlat):
                refs.setdefault(ref.name, ref)
    return [refs[name] for name in sorted(refs)]


def _intersects(name: str, bbox: Sequence[float]) -> bool:
    """Whether the tile named `name` overlaps the bbox in more than an edge."""
    try:
        lat, lon = parse_tile_name(name)
    except ValueError:
        return False
    lon0, lat0, lon1, lat1 = bbox
    return lon < lon1 and lon + 1 > lon0 and lat < lat1 and lat + 1 > lat0


# Fetch the tiles into `dest` under their LP DAAC names (logs in only if needed).
download = partial(earthdata.download, purpose="SRTM downloads")
