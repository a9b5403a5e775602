"""ECOSTRESS ECO_L2T_LSTE v002 from LP DAAC: one COG per layer, ``<granule id>_<LAYER>.tif``.

A region with an MGRS tile is searched by name (``*_<tile>_*``: only that tile's granules);
otherwise by its lon/lat bbox. Only granules offering every wanted layer are kept, so the
reader (:mod:`lstfill.sources.ecostress`) never meets a half granule.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

import earthaccess

from lstfill.download import earthdata
from lstfill.download.base import Area, FileRef
from lstfill.download.credentials import EarthdataCredentials
from lstfill.sources.ecostress import LAYERS

ACCOUNT = "earthdata"
DEFAULTS: dict[str, Any] = {
    "short_name": "ECO_L2T_LSTE",
    "version": "002",
    "provider": "LPCLOUD",
    "layers": list(LAYERS),
}

log = logging.getLogger(__name__)


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
    """The layer files of every granule over `area` from `start` to `end` (inclusive); CMR is
    searched without a login (`creds` are not needed)."""
    s = settings_with_defaults(settings)
    where: dict[str, Any] = (
        {"granule_name": f"*_{area.mgrs_tile}_*"}
        if area.mgrs_tile
        else {"bounding_box": area.bbox_lonlat}
    )
    granules = earthdata.search_granules(
        s["short_name"], s["version"], start, end, provider=s["provider"], **where
    )
    refs: list[FileRef] = []
    for granule in granules:
        refs.extend(layer_refs(granule, s["layers"]))
    return refs


def layer_refs(granule: earthaccess.DataGranule, layers: Sequence[str]) -> list[FileRef]:
    """The granule's files of `layers`, or [] (with a warning) when any is missing."""
    refs = earthdata.granule_refs(granule, suffixes=[f"_{x}.tif" for x in layers], kind="geotiff")
    by_layer = {
        layer: ref for ref in refs for layer in layers if ref.name.endswith(f"_{layer}.tif")
    }
    missing = [layer for layer in layers if layer not in by_layer]
    if missing:
        ur = granule.get("umm", {}).get("GranuleUR", "?")
        log.warning("ECOSTRESS granule %s lacks layers %s; skipped", ur, missing)
        return []
    return [by_layer[layer] for layer in layers]


# Fetch the refs into `dest` as ``<granule id>_<LAYER>.tif`` (logs in only if needed).
download = partial(earthdata.download, purpose="ECOSTRESS downloads")
