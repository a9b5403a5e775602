"""The demo's Sentinel-2 L2A scenes (bands and SCL) and the gap-free daily NDVI they sample."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
from scipy import ndimage

from lstfill.demo.physics import (
    ENDMEMBERS,
    S2_BANDS,
    Surface,
    cloud_cover,
    cloud_mask,
    illumination,
    reflectance,
    sun_position,
)
from lstfill.demo.schedule import every, stratified_cloud
from lstfill.demo.surface import block_mean_padded, dem_on, world_surface
from lstfill.demo.world import World, rng_for
from lstfill.grid import Grid
from lstfill.io import write_cog
from lstfill.raster import Raster
from lstfill.sources import sentinel2


def write_sentinel2(
    world: World, grid: Grid, tiles: list[Raster], cfg: dict, start: date, end: date, folder: Path
) -> Surface:
    """L2A scenes every s2_revisit_days on 10/20 m grids aligned with the region; returns the
    10 m surface they see."""
    g10 = Grid.from_bbox(grid.crs, grid.bounds, 10.0)
    g20 = Grid.from_bbox(grid.crs, grid.bounds, 20.0)
    surf = world_surface(world, g10, 1, z=dem_on(world, tiles, g10, "bilinear"))
    water20 = block_mean_padded(surf.water, 2, g20.shape) > 0.5
    lonc, latc = float(surf.lon.mean()), float(surf.lat.mean())
    seed = int(cfg["seed"])
    days = list(every(start, end, int(cfg["s2_revisit_days"])))
    fracs = stratified_cloud(rng_for(seed, "sentinel2-clouds"), len(days), 0.35, 0.85)
    for k, day in enumerate(days):
        rng = rng_for(seed, "sentinel2", k)
        when = datetime(day.year, day.month, day.day, 10, 15) + timedelta(
            seconds=int(rng.integers(0, 120))
        )
        cosz, az = sun_position(when, np.float32(lonc), np.float32(latc))
        cosi = illumination(cosz, az, surf.slope, surf.aspect)
        shade = np.clip(0.35 + 0.65 * cosi / cosz, 0.15, 1.8)
        refl = reflectance(surf, day)
        frac = float(fracs[k])
        cloud = cloud_mask(rng, g20.shape, 20.0, frac)
        cover = cloud_cover(cloud, 20.0)
        cirrus = cloud_mask(rng, g20.shape, 20.0, 0.3 * frac) & ~cloud
        length = 1_500.0 * math.tan(math.acos(float(cosz))) / 20.0
        shift = (math.cos(float(az)) * length, -math.sin(float(az)) * length)
        shadow = ndimage.shift(cloud, shift, order=0, cval=False) & ~cloud
        up = (np.ones((2, 2), dtype=bool),)
        c10, s10, ci10 = (
            np.kron(m, up[0])[: g10.height, : g10.width] for m in (cloud, shadow, cirrus)
        )
        cov10 = np.kron(cover, np.ones((2, 2)))[: g10.height, : g10.width]
        bands = {}
        for i, band in enumerate(("B02", "B03", "B04", "B08", "B11", "B12")):
            r = refl[band] * shade * (1 + rng.normal(0, 0.02)) + rng.normal(0, 0.004, g10.shape)
            cloud_r = (0.32, 0.33, 0.34, 0.38, 0.28, 0.17)[i] + 0.25 * cov10
            r = np.where(c10, cloud_r, np.where(s10, 0.35 * r, r + 0.04 * ci10))
            r = np.clip(r, 0.0005, 1.5)
            if band in ("B11", "B12"):
                r = block_mean_padded(r, 2, g20.shape)
            bands[band] = np.clip(np.rint(r * 10_000) + 1_000, 1, 65_535).astype(np.uint16)
        red, nir = (
            block_mean_padded(refl["B04"], 2, g20.shape),
            block_mean_padded(refl["B08"], 2, g20.shape),
        )
        ndvi = (nir - red) / (nir + red + 1e-6)
        scl = np.where(water20, 6, np.where(ndvi > 0.4, 4, 5))
        core = cover > 0.85
        scl = np.where(shadow, 3, np.where(cirrus, 10, scl))
        scl = np.where(cloud, np.where(core, 9, 8), scl).astype(np.uint8)
        craft = "S2A" if k % 2 == 0 else "S2B"
        proc = when + timedelta(hours=2, seconds=int(rng.integers(0, 7200)))
        name = sentinel2.scene_name(craft, when, "05.09", 65, str(cfg["tile"]), proc)
        sentinel2.write_scene(folder, name, bands, scl, g10.transform, g20.transform, grid.crs)
    return surf


def _red_nir(surf: Surface, day: date) -> tuple[np.ndarray, np.ndarray]:
    """Surface red (B04) and NIR (B08) reflectance of `day` (linear mixing of endmembers)."""
    fr = surf.fractions(day)
    i_red, i_nir = S2_BANDS.index("B04"), S2_BANDS.index("B08")
    red = sum(fr[k] * ENDMEMBERS[k][i_red] for k in ENDMEMBERS)
    nir = sum(fr[k] * ENDMEMBERS[k][i_nir] for k in ENDMEMBERS)
    return np.asarray(red, dtype=np.float32), np.asarray(nir, dtype=np.float32)


def write_ndvi_truth(surf10: Surface, grid: Grid, start: date, end: date, folder: Path) -> None:
    """The gap-free daily NDVI on the region grid that the Sentinel-2 scenes sample (10 m red
    and NIR averaged onto the grid, as the S2 grids are), one file per day of the period."""
    k = round(grid.res[0] / 10.0)
    for day in every(start, end, 1):
        red, nir = (block_mean_padded(b, k, grid.shape) for b in _red_nir(surf10, day))
        ndvi = ((nir - red) / (nir + red + 1e-6)).astype(np.float32)
        write_cog(
            folder / f"{day:%Y%m%d}_NDVI_truth.tif",
            ndvi,
            grid.transform,
            grid.crs,
            nodata=float("nan"),
            tags={"date": day.isoformat(), "units": "1"},
        )
