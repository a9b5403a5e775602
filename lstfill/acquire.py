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
import rasterio
from pyproj import CRS
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from lstfill.config import region_dates
from lstfill.errors import InputError
from lstfill.grid import Grid, grid_from_config, tile_epsg
from lstfill.inventory import CLOUD, NO_OVERLAP, NO_VALID_LST, acquisition_id
from lstfill.io import atomic_output
from lstfill.sources import ecostress, inca, landcover, modis, sentinel2, sentinel3, srtm

log = logging.getLogger(__name__)

HAS_LST = "valid LST"  # granule_status: some LST value over the region (QC not yet applied)
_WHY = {
    NO_OVERLAP: "no overlap with the region (its footprint does not intersect the region's grid)",
    NO_VALID_LST: "no valid LST over the region (every LST pixel there is fill/NaN, and no "
    "pixel is flagged cloud)",
}


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
        "region %s: %d acquisitions (%d left out: no overlap or no valid LST), %d Sentinel-2 "
        "scenes, %d INCA files",
        region,
        len(inv["acquisitions"]),
        len(inv["excluded"]),
        len(inv["sentinel2"]),
        len(inv["inca"]),
    )
    return write_inventory(inv, inventory_path)


def build_inventory(
    raw_dir: str | Path, region: str, grid: Grid, start: dt.date, end: dt.date
) -> dict[str, Any]:
    """Scan `raw_dir`; list acquisitions (ECOSTRESS granules grouped by time) in start..end.

    A granule off the region (NO_OVERLAP) or without any LST value over it (NO_VALID_LST) is
    left out with a warning, so that it never becomes a cube nor a product that is model
    output alone; an acquisition left with no granule goes to `excluded` ({id: reason}) and
    each such granule to `excluded_granules` ({granule id: reason}).
    """
    raw = Path(raw_dir)
    eco_dir = raw / "ecostress"
    acquisitions: dict[str, dict[str, Any]] = {}
    dropped: dict[str, dict[str, str]] = {}  # acquisition id -> {granule id: reason}
    for gid in ecostress.find_granules(eco_dir) if eco_dir.is_dir() else []:
        parsed = ecostress.parse_granule_id(gid)
        if not start <= parsed.time.date() <= end:
            continue
        acq = acquisition_id(parsed.time)
        status = granule_status(eco_dir, gid, grid)
        if status in _WHY:
            log.warning("ECOSTRESS granule %s left out: %s", gid, _WHY[status])
            dropped.setdefault(acq, {})[gid] = status
            continue
        if status == CLOUD:
            log.info("ECOSTRESS granule %s: no LST value over the region, all cloud", gid)
        entry = acquisitions.setdefault(acq, {"time": parsed.time.isoformat(), "granules": []})
        entry["granules"].append(gid)
    excluded = {
        acq: NO_VALID_LST if NO_VALID_LST in reasons.values() else NO_OVERLAP
        for acq, reasons in sorted(dropped.items())
        if acq not in acquisitions
    }
    for acq, reason in excluded.items():
        log.warning("acquisition %s left out of the inventory: %s", acq, reason)
    if not acquisitions:
        problem = f"no ECOSTRESS LST granules between {start} and {end}"
        if excluded:
            problem += f" over the region with valid LST ({len(excluded)} left out: {excluded})"
        raise InputError(eco_dir, problem)

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
        "excluded": excluded,
        "excluded_granules": {g: r for gids in dropped.values() for g, r in sorted(gids.items())},
        "sentinel2": dict(sorted(scenes.items())),
        "inca": sorted(inca_files, key=lambda f: f["start"]),
        "dem": dem,
        "landcover": layers,
        "modis": modis_files,
        "modis_days": _modis_days(modis_files),
        "sentinel3": s3_days,
    }


def granule_status(folder: str | Path, gid: str, grid: Grid) -> str:
    """How ECOSTRESS granule `gid` covers `grid`: NO_OVERLAP, NO_VALID_LST, CLOUD (no LST value
    over the region, but the cloud layer or QC flags cloud there) or HAS_LST.

    Cheap enough for the inventory: the LST layer's bounds against the grid's, then a read of
    its pixels over the region only (QC and the cloud mask are read only when none has a
    value). An unreadable file, or one on another CRS than its MGRS tile's, counts as HAS_LST,
    so that the cube step names its problem.
    """
    path = ecostress.layer_path(folder, gid, "LST")
    expected = CRS.from_epsg(tile_epsg(ecostress.parse_granule_id(gid).tile))
    try:
        with rasterio.open(path) as src:
            if src.crs is None or not expected.equals(CRS.from_user_input(src.crs.to_wkt())):
                return HAS_LST
            window = region_window(src, grid)
            if window is None:
                return NO_OVERLAP
            lst = src.read(1, window=window, masked=True)
    except rasterio.errors.RasterioError as exc:
        log.warning("ECOSTRESS granule %s: cannot check its coverage (%s)", gid, exc)
        return HAS_LST
    if (~np.ma.getmaskarray(lst) & np.isfinite(lst.data)).any():
        return HAS_LST
    return CLOUD if _flags_cloud(folder, gid, window) else NO_VALID_LST


def region_window(src: rasterio.io.DatasetReader, grid: Grid) -> Window | None:
    """The window of open raster `src` that covers `grid`'s bounds (in whole pixels), or None
    when its footprint does not intersect them (touching edges do not count)."""
    if src.crs is None:
        raise InputError(src.name, "raster has no CRS")
    xmin, ymin, xmax, ymax = transform_bounds(grid.crs, src.crs, *grid.bounds, densify_pts=21)
    left, bottom, right, top = src.bounds
    tol = 1e-3 * min(abs(src.transform.a), abs(src.transform.e))
    if min(xmax, right) - max(xmin, left) <= tol or min(ymax, top) - max(ymin, bottom) <= tol:
        return None
    xs, ys = (max(xmin, left), min(xmax, right)), (max(ymin, bottom), min(ymax, top))
    cols, rows = zip(*(~src.transform @ (x, y) for x in xs for y in ys), strict=True)
    c0, c1 = max(int(np.floor(min(cols))), 0), min(int(np.ceil(max(cols))), src.width)
    r0, r1 = max(int(np.floor(min(rows))), 0), min(int(np.ceil(max(rows))), src.height)
    if c1 <= c0 or r1 <= r0:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0)


def _flags_cloud(folder: str | Path, gid: str, window: Window) -> bool:
    """Whether the granule's cloud layer, or its QC (mandatory field 2, cloud detected), flags
    a pixel of `window` as cloud; layers that are missing flag nothing."""
    for layer in ("cloud", "QC"):
        path = ecostress.layer_path(folder, gid, layer)
        if not path.is_file():
            continue
        try:
            with rasterio.open(path) as src:
                data = src.read(1, window=window)
        except rasterio.errors.RasterioError:
            continue
        flagged = data == 1 if layer == "cloud" else ecostress.decode_qc(data)["mandatory"] == 2
        if layer == "QC":
            flagged &= data != ecostress.QC_NODATA
        if flagged.any():
            return True
    return False


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
