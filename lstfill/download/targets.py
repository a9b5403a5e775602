"""What the workflow needs of the download jobs at parse time: the sources, the days each is
fetched for and each provider's settings. Standard library only, so a dry run on a login node
needs none of the provider clients."""

from __future__ import annotations

import datetime as dt
from typing import Any

from lstfill.config import region_dates

SOURCES = ("ecostress", "sentinel2", "inca", "srtm", "modis")
DATED = ("ecostress", "sentinel2", "inca", "modis")  # SRTM has no date: one job per region


def days(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every day from `start` to `end`, inclusive."""
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def source_days(source: str, region_cfg: dict[str, Any], config: dict[str, Any]) -> list[dt.date]:
    """Days a source is fetched for: the period, widened where the cubes look outside it.

    Sentinel-2 scenes within prepare.sentinel2.window_days of an acquisition feed its cube, so
    that margin is fetched on both sides; INCA's cumulative hours reach into the day before.
    """
    if source not in DATED:
        return []
    start, end = region_dates(region_cfg)
    if source == "sentinel2":
        margin = dt.timedelta(days=int(config["prepare"]["sentinel2"]["window_days"]))
        start, end = start - margin, end + margin
    elif source == "inca":
        start -= dt.timedelta(days=1)
    return days(start, end)


def provider_settings(source: str, region_cfg: dict[str, Any], config: dict[str, Any]) -> dict:
    """The provider's settings: its block of regions.<name>.download, plus what it shares with
    the prepare step (Sentinel-2 bands, INCA parameters)."""
    settings = dict(region_cfg.get("download", {}).get(source, {}))
    if source == "sentinel2":
        settings["bands"] = list(config["prepare"]["sentinel2"]["bands"])
    elif source == "inca":
        settings["parameters"] = list(config["prepare"]["inca"]["parameters"])
    return settings
