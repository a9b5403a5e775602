"""Acquisition: the inventory of a region's raw files in the providers' formats.

The files under ``resources/{region}/raw/`` were synthesised (`demo`: rule demo_region,
`lstfill.demo.region`), fetched (`download`) or placed by hand (`local`). Either way the
inventory is built by scanning the files, so what follows is the same for all three.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from lstfill.config import region_dates
from lstfill.errors import InputError
from lstfill.grid import Grid, grid_from_config
from lstfill.inventory import acquisition_id
from lstfill.io import atomic_output
from lstfill.sources import ecostress, inca, landcover, modis, sentinel2, sentinel3, srtm

log = logging.getLogger(__name__)


def acquire(
    region: str, region_cfg: dict[str, Any], region_dir: str | Path, inventory_path: str | Path
) -> Path:
    """Scan ``region_dir/raw`` and write the inventory JSON."""
    region_dir = Path(region_dir)
    grid = grid_from_config(region_cfg["grid"])
    start, end = region_dates(region_cfg)
    inv = build_inventory(region_dir / "raw", region, grid, start, end)
    inv["source"] = region_cfg["source"]
    log.info(
        "region %s: %d acquisitions, %d Sentinel-2 scenes, %d INCA files",
        region,
        len(inv["acquisitions"]),
        len(inv["sentinel2"]),
        len(inv["inca"]),
    )
    return write_inventory(inv, inventory_path)


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
    s3_dir = raw / "sentinel3"
    s3_days = (
        {day: str(path) for day, path in sentinel3.find_days(s3_dir).items()}
        if s3_dir.is_dir()
        else {}
    )
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
        "modis_days": _modis_days(modis_files),
        "sentinel3": s3_days,
    }


def _modis_days(files: dict[str, list[str]]) -> dict[str, dict[str, str]]:
    """{YYYYMMDD: {"MOD11A1": path, "MOD09GQ": path}} for days with both products (the last
    granule of a day wins when a tile was reprocessed)."""
    by_day: dict[str, dict[str, str]] = {}
    for product, paths in files.items():
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
