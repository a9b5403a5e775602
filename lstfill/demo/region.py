"""The demo region: deterministic synthetic raw files in every provider's real format, plus truth.

`generate_demo` writes, under ``region_dir/raw``, an SRTM tile, Copernicus HRL-like land cover,
ECOSTRESS L2T LSTE granules, Sentinel-2 L2A scenes, INCA hourly NetCDF files and MODIS
MOD11A1/MOD09GQ granules, all with the format modules' writers, so everything downstream of
acquisition runs unchanged on demo and real data. The gap-free LST and NDVI that the
observations sample are kept under ``region_dir/truth`` for evaluation only. The same seed gives
byte-identical arrays: every component draws from its own seeded generator. `write_region`
(rule demo_region, and `lstfill acquire` for a demo region) generates into a scratch folder
and swaps the two folders into place, so a failed run leaves neither half-written.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time as _time
from datetime import date
from pathlib import Path
from typing import Any

from lstfill.config import region_dates
from lstfill.demo.ecostress import write_ecostress
from lstfill.demo.inca import write_inca_files
from lstfill.demo.modis import write_modis
from lstfill.demo.physics import Meteo
from lstfill.demo.schedule import schedule
from lstfill.demo.sentinel2 import write_ndvi_truth, write_sentinel2
from lstfill.demo.sentinel3 import write_sentinel3
from lstfill.demo.static import write_landcover, write_srtm
from lstfill.demo.surface import region_surface
from lstfill.demo.world import World
from lstfill.grid import Grid, grid_from_config

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "seed": 42,
    "tile": "32TPT",
    "n_overpasses": 36,
    "night_fraction": 0.15,
    "clear_fraction": 0.2,
    "max_cloud_fraction": 0.9,
    "s2_revisit_days": 5,
    "modis_size_km": 64,
    "modis_every_days": 3,
}


def generate_demo(
    region_dir: Path, grid: Grid, start: date, end: date, settings: dict | None = None
) -> None:
    """Write the demo region's raw files and truth under `region_dir` (see module docstring)."""
    cfg = {**DEFAULTS, **(settings or {})}
    seed = int(cfg["seed"])
    region_dir = Path(region_dir)
    raw, truth = region_dir / "raw", region_dir / "truth"
    lon, lat = grid.lonlat()
    world = World(seed, float(lon.mean()), float(lat.mean()))
    t0 = _time.perf_counter()

    tiles = write_srtm(world, grid, raw / "srtm")
    hrl = write_landcover(world, grid, tiles, raw / "landcover")
    surf = region_surface(world, grid, tiles, hrl)
    log.info("demo: terrain and land cover in %.1f s", _time.perf_counter() - t0)

    overpasses = schedule(cfg, start, end, world.lon0)
    clouds = {o.time.date(): o.cloud_fraction for o in reversed(overpasses)}
    meteo = Meteo.build(seed, start, end, clouds)
    masks = write_ecostress(world, grid, surf, meteo, overpasses, cfg, raw / "ecostress", truth)
    write_inca_files(world, grid, meteo, overpasses, masks, raw / "inca")
    log.info("demo: ECOSTRESS and INCA done at %.1f s", _time.perf_counter() - t0)
    surf10 = write_sentinel2(world, grid, tiles, cfg, start, end, raw / "sentinel2")
    write_ndvi_truth(surf10, grid, start, end, truth / "sentinel2")
    write_sentinel3(world, grid, cfg, start, end, raw / "sentinel3")
    log.info("demo: Sentinel-2 and Sentinel-3 done at %.1f s", _time.perf_counter() - t0)
    write_modis(world, meteo, cfg, start, end, raw / "modis", truth / "modis")
    log.info("demo: MODIS done at %.1f s", _time.perf_counter() - t0)


def write_region(region_cfg: dict[str, Any], raw_dir: str | Path, truth_dir: str | Path) -> None:
    """The demo region's raw files in `raw_dir` and its truth in `truth_dir`: generated in a
    scratch folder beside them, then each swapped into place whole."""
    raw_dir, truth_dir = Path(raw_dir), Path(truth_dir)
    grid = grid_from_config(region_cfg["grid"])
    start, end = region_dates(region_cfg)
    raw_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".demo-", dir=raw_dir.parent))
    try:
        generate_demo(scratch, grid, start, end, region_cfg.get("demo", {}))
        for part, target in (("raw", raw_dir), ("truth", truth_dir)):
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            (scratch / part).rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
