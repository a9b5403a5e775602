"""What the DAG needs of the fusion job at parse time: its days, and which Sentinel-2 scenes and
coarse files feed each. Standard library only (a dry run needs no raster stack)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from lstfill.config import region_dates


def fusion_days(region_cfg: dict[str, Any]) -> list[str]:
    """Every day of the region's period as the {day} wildcard (YYYYMMDD)."""
    start, end = region_dates(region_cfg)
    return [
        (start + dt.timedelta(days=i)).strftime("%Y%m%d") for i in range((end - start).days + 1)
    ]


def _scene_date(scene: dict[str, Any]) -> dt.date:
    return dt.datetime.fromisoformat(scene["time"]).date()


def scenes_for_day(inv: dict[str, Any], day: str, max_days: float) -> list[str]:
    """The inventory's Sentinel-2 scenes within `max_days` (calendar days) of `day`, by time."""
    target = dt.datetime.strptime(day, "%Y%m%d").date()
    return [
        name
        for name, scene in inv["sentinel2"].items()
        if abs((_scene_date(scene) - target).days) <= max_days
    ]


def coarse_files(inv: dict[str, Any], source: str) -> list[str]:
    """The raw files of the coarse series: Sentinel-3 day files or MOD09GQ granules."""
    if source == "sentinel3":
        return list(inv.get("sentinel3", {}).values())
    if source == "modis":
        return list(inv.get("modis", {}).get("MOD09GQ", []))
    raise ValueError(f"unknown fusion.coarse source {source!r}")
