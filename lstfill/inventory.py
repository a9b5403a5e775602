"""The inventory of a region's raw files: what acquisitions exist and which files feed each.

Built by scanning the provider folders under ``resources/{region}/raw/`` with each format's own
name parser, so demo files and real downloads are inventoried by the same code. The workflow's
acquisition checkpoint writes it; every later rule reads its inputs from it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from lstfill.errors import InputError
from lstfill.grid import Grid
from lstfill.io import atomic_output
from lstfill.sources import ecostress, inca, landcover, modis, sentinel2, srtm

log = logging.getLogger(__name__)

SOURCES = ("ecostress", "sentinel2", "inca", "srtm", "landcover", "modis")


def acquisition_id(time: dt.datetime) -> str:
    """The {date} wildcard of an acquisition: its UTC time as YYYYMMDDTHHMMSS."""
    return time.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S")


def parse_acquisition_id(acq: str) -> dt.datetime:
    return dt.datetime.strptime(acq, "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)


def build_inventory(
    raw_dir: str | Path, region: str, grid: Grid, start: dt.date, end: dt.date
) -> dict[str, Any]:
    """Scan `raw_dir`; list acquisitions (ECOSTRESS granules grouped by time) in start..end."""
    raw = Path(raw_dir)
    eco_dir = raw / "ecostress"
    acquisitions: dict[str, dict[str, Any]] = {}
    for gid in ecostress.find_granules(eco_dir) if eco_dir.is_dir() else []:
        parsed = ecostress.parse_granule_id(gid)
        if not start <= parsed.time.date() <= end:
            continue
        entry = acquisitions.setdefault(
            acquisition_id(parsed.time), {"time": parsed.time.isoformat(), "granules": []}
        )
        entry["granules"].append(gid)
    if not acquisitions:
        raise InputError(eco_dir, f"no ECOSTRESS LST granules between {start} and {end}")

    s2_dir = raw / "sentinel2"
    scenes = {}
    for name in sentinel2.find_scenes(s2_dir) if s2_dir.is_dir() else []:
        sid = sentinel2.parse_scene_name(name)
        scenes[name] = {"time": sid.time.isoformat(), "folder": str(s2_dir / name)}

    inca_files = []
    for path in inca.find_inca(raw / "inca") if (raw / "inca").is_dir() else []:
        data = inca.read_inca(path)
        inca_files.append(
            {
                "path": str(path),
                "start": _iso(data.times[0]),
                "end": _iso(data.times[-1]),
            }
        )

    dem = [str(p) for p in srtm.find_dem(raw / "srtm")] if (raw / "srtm").is_dir() else []
    if not dem:
        raise InputError(raw / "srtm", "no DEM tile (SRTM .hgt.zip or GeoTIFF) found")
    lc_dir = raw / "landcover"
    layers = (
        {k: str(v) for k, v in landcover.find_layers(lc_dir).items()} if lc_dir.is_dir() else {}
    )
    missing = sorted(set(landcover.LAYERS) - set(layers))
    if missing:
        raise InputError(
            lc_dir,
            f"land-cover layers missing: {', '.join(missing)} (Copernicus HRL GeoTIFFs named like "
            f"{landcover.layer_filename(missing[0])}; they are never downloaded: place them here)",
        )
    mod_dir = raw / "modis"
    modis_files = {
        product: [str(p) for p in modis.find_modis(mod_dir, product)] if mod_dir.is_dir() else []
        for product in ("MOD11A1", "MOD09GQ")
    }
    return {
        "region": region,
        "grid": grid.to_dict(),
        "period": [start.isoformat(), end.isoformat()],
        "ecostress_dir": str(eco_dir),
        "acquisitions": dict(sorted(acquisitions.items())),
        "sentinel2": dict(sorted(scenes.items())),
        "inca": sorted(inca_files, key=lambda f: f["start"]),
        "dem": dem,
        "landcover": layers,
        "modis": modis_files,
    }


def modis_days(inv: dict[str, Any]) -> dict[str, dict[str, str]]:
    """{YYYYMMDD: {"MOD11A1": path, "MOD09GQ": path}} for days with both products (the last
    granule of a day wins when a tile was reprocessed)."""
    by_day: dict[str, dict[str, str]] = {}
    for product, paths in inv.get("modis", {}).items():
        for path in sorted(paths):
            info = modis.parse_granule_name(Path(path).name)
            by_day.setdefault(info["date"].strftime("%Y%m%d"), {})[product] = path
    return {d: f for d, f in sorted(by_day.items()) if {"MOD11A1", "MOD09GQ"} <= set(f)}


def _iso(t: Any) -> str:
    return np.datetime_as_string(np.datetime64(t, "s")) + "+00:00"


def write_inventory(inv: dict[str, Any], path: str | Path) -> Path:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(inv, indent=1))
    return Path(path)


def read_inventory(path: str | Path) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)


def s2_scenes_near(inv: dict[str, Any], time: dt.datetime, window_days: float) -> list[str]:
    """S2 scene names within `window_days` of `time`, nearest first."""
    out = []
    for name, scene in inv["sentinel2"].items():
        delta = abs((dt.datetime.fromisoformat(scene["time"]) - time).total_seconds()) / 86400
        if delta <= window_days:
            out.append((delta, name))
    return [name for _, name in sorted(out)]


def inca_files_for(inv: dict[str, Any], time: dt.datetime, hours: int) -> list[str]:
    """INCA files overlapping [time - hours, time + 1 h]."""
    lo, hi = time - dt.timedelta(hours=hours), time + dt.timedelta(hours=1)
    return [
        f["path"]
        for f in inv["inca"]
        if dt.datetime.fromisoformat(f["start"]) <= hi and dt.datetime.fromisoformat(f["end"]) >= lo
    ]
