"""Acquisition: get a region's raw files in the providers' formats, then inventory them.

`demo` synthesises the region; `local` takes provider files already placed under
``resources/{region}/raw/``. Either way the inventory is built by scanning the files, so what
follows is the same for both.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lstfill.config import region_dates
from lstfill.grid import grid_from_config
from lstfill.inventory import build_inventory, write_inventory

log = logging.getLogger(__name__)


def acquire(
    region: str, region_cfg: dict[str, Any], region_dir: str | Path, inventory_path: str | Path
) -> Path:
    """Make ``region_dir/raw`` hold the region's raw files and write the inventory JSON."""
    region_dir = Path(region_dir)
    grid = grid_from_config(region_cfg["grid"])
    start, end = region_dates(region_cfg)
    if region_cfg["source"] == "demo":
        _generate_demo_atomically(region_dir, grid, start, end, region_cfg.get("demo", {}))
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


def _generate_demo_atomically(region_dir: Path, grid, start, end, settings: dict[str, Any]) -> None:
    """Generate into a scratch folder, then swap raw/ and truth/ into place in one step each."""
    from lstfill.sources.demo import generate_demo

    region_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".demo-", dir=region_dir))
    try:
        generate_demo(scratch, grid, start, end, settings)
        for part in ("raw", "truth"):
            target = region_dir / part
            if target.exists():
                shutil.rmtree(target)
            (scratch / part).rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
