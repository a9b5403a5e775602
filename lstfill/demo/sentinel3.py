"""The demo's daily Sentinel-3 SYN-like reflectance: the Sentinel-2 surface through a coarse PSF."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
from affine import Affine
from scipy import ndimage

from lstfill.demo.physics import S2_BANDS, cloud_mask, illumination, reflectance, sun_position
from lstfill.demo.schedule import every, stratified_cloud
from lstfill.demo.surface import block_mean_padded, world_surface
from lstfill.demo.world import World, rng_for
from lstfill.grid import Grid
from lstfill.sources import sentinel3

# Sentinel-3 SYN against Sentinel-2 L2A: a small radiometric difference per band (gain, offset).
S3_GAIN = {"B02": 1.02, "B03": 1.01, "B04": 1.03, "B08": 0.97, "B11": 1.02, "B12": 1.0}
S3_OFFSET = {"B02": 0.006, "B03": 0.004, "B04": 0.006, "B08": 0.010, "B11": 0.0, "B12": 0.002}
S3_RES_M = 300.0
S3_SUB = 5  # the surface is simulated at 60 m, blurred by the PSF, then averaged to 300 m
S3_PSF_SIGMA_PX = 2.0  # Gaussian PSF, in 60 m pixels (FWHM about 280 m)


def write_sentinel3(
    world: World, grid: Grid, cfg: dict, start: date, end: date, folder: Path
) -> None:
    """Daily Sentinel-3 SYN-like surface reflectance on a 300 m grid over the region (the grid
    the downloader asks for), in the downloader's file layout: the same surface as the
    Sentinel-2 scenes seen through a coarse PSF, with its own clouds (partly cloudy pixels under
    10 % cloud pass as clear, contaminated), noise and a radiometric offset between sensors."""
    b = grid.bounds
    snapped = [
        math.floor(b[0] / S3_RES_M) * S3_RES_M,
        math.floor(b[1] / S3_RES_M) * S3_RES_M,
        math.ceil(b[2] / S3_RES_M) * S3_RES_M,
        math.ceil(b[3] / S3_RES_M) * S3_RES_M,
    ]
    g300 = Grid.from_bbox(grid.crs, snapped, S3_RES_M)
    g60 = Grid(
        grid.crs,
        g300.transform @ Affine.scale(1 / S3_SUB),
        g300.width * S3_SUB,
        g300.height * S3_SUB,
    )
    surf = world_surface(world, g60, 1)
    lonc, latc = float(surf.lon.mean()), float(surf.lat.mean())
    seed = int(cfg["seed"])
    days = list(every(start, end, 1))
    fracs = stratified_cloud(rng_for(seed, "sentinel3-clouds"), len(days), 0.25, 0.95)
    for k, day in enumerate(days):
        rng = rng_for(seed, "sentinel3", k)
        when = datetime(day.year, day.month, day.day, 9, 50) + timedelta(
            seconds=int(rng.integers(-1800, 1800))
        )
        cosz, az = sun_position(when, np.float32(lonc), np.float32(latc))
        cosi = illumination(cosz, az, surf.slope, surf.aspect)
        shade = np.clip(0.35 + 0.65 * cosi / cosz, 0.15, 1.8)
        cloud = cloud_mask(rng, g60.shape, 60.0, float(fracs[k]))
        share = block_mean_padded(cloud.astype(np.float32), S3_SUB, g300.shape)
        clear = share < 0.1
        refl = reflectance(surf, day)
        out = {}
        for i, band in enumerate(S2_BANDS):
            r = refl[band] * shade
            r = np.where(cloud, (0.32, 0.33, 0.34, 0.38, 0.28, 0.17)[i], r)
            r = ndimage.gaussian_filter(r, S3_PSF_SIGMA_PX, mode="nearest")
            r = block_mean_padded(r, S3_SUB, g300.shape) * S3_GAIN[band] + S3_OFFSET[band]
            r = r + rng.normal(0, 0.004, g300.shape)
            out[band] = np.where(clear, np.clip(r, 0.0005, 1.5), np.nan).astype(np.float32)
        sentinel3.write_day(
            folder / sentinel3.filename(day),
            day,
            out,
            clear,
            g300.transform,
            grid.crs,
            tags={"demo": "lstfill synthetic Sentinel-3"},
        )
