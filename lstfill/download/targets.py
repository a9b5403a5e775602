"""What the workflow needs of the download jobs at parse time: the sources, the days each is
fetched for and each provider's settings. Standard library only, so a dry run on a login node
needs none of the provider clients."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from lstfill.config import region_dates

SOURCES = ("ecostress", "sentinel2", "inca", "srtm", "modis", "sentinel3")
DATED = ("ecostress", "sentinel2", "inca", "modis", "sentinel3")  # SRTM: one job per region
# The Sentinel-2 bands Sentinel-3 has an equivalent of (the keys of
# lstfill.sources.sentinel3.BANDS, repeated here to keep this module standard-library only).
SENTINEL3_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
FUSION_MAX_DAYS = 30  # default of fusion.max_days


def days(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every day from `start` to `end`, inclusive."""
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def source_days(source: str, region_cfg: dict[str, Any], config: dict[str, Any]) -> list[dt.date]:
    """Days a source is fetched for: the period, widened where the cubes look outside it.

    Sentinel-2 scenes within prepare.sentinel2.window_days of an acquisition feed its cube, so
    that margin is fetched on both sides (fusion.max_days where the region's fusion job runs,
    if that is wider: it blends scenes that far from each day); INCA's cumulative hours reach
    into the day before; the fusion job reads coarse days up to 1.5 * fusion.max_days away from
    each day, so Sentinel-3 is fetched that far beyond the period.
    """
    if source not in DATED:
        return []
    start, end = region_dates(region_cfg)
    fusion = config.get("fusion", {})
    max_days = float(fusion.get("max_days", FUSION_MAX_DAYS))
    if source == "sentinel2":
        reach = float(config["prepare"]["sentinel2"]["window_days"])
        if fusion_runs(region_cfg, config):
            reach = max(reach, max_days)
        margin = dt.timedelta(days=math.ceil(reach))
        start, end = start - margin, end + margin
    elif source == "inca":
        start -= dt.timedelta(days=1)
    elif source == "sentinel3":
        margin = dt.timedelta(days=math.ceil(1.5 * max_days))
        start, end = start - margin, end + margin
    return days(start, end)


def fusion_runs(region_cfg: dict[str, Any], config: dict[str, Any]) -> bool:
    """Whether a download region fetches the fusion job's coarse source (fusion.coarse)."""
    coarse = config.get("fusion", {}).get("coarse", "sentinel3")
    sources = region_cfg.get("download", {}).get("sources", [])
    return coarse in sources and "sentinel2" in sources


def provider_settings(source: str, region_cfg: dict[str, Any], config: dict[str, Any]) -> dict:
    """The provider's settings: its block of regions.<name>.download, plus what it shares with
    the prepare step (Sentinel-2 bands, INCA parameters; Sentinel-3 gets those Sentinel-2 bands
    it has an equivalent of)."""
    settings = dict(region_cfg.get("download", {}).get(source, {}))
    if source == "sentinel2":
        settings["bands"] = list(config["prepare"]["sentinel2"]["bands"])
    elif source == "sentinel3":
        wanted = config["prepare"]["sentinel2"]["bands"]
        settings["bands"] = [b for b in wanted if b in SENTINEL3_BANDS]
    elif source == "inca":
        settings["parameters"] = list(config["prepare"]["inca"]["parameters"])
    return settings
