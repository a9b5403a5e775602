"""The demo's MODIS MOD11A1 (1 km LST) and MOD09GQ (250 m red/NIR) granules and the 250 m
gap-free LST they sample (the truth)."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
from affine import Affine
from pyproj import Transformer
from scipy import ndimage

from lstfill.demo.physics import (
    Meteo,
    cloud_cover,
    cloud_mask,
    correlated_field,
    reflectance,
    surface_temperature,
    utc_for_solar_time,
)
from lstfill.demo.schedule import every, stratified_cloud
from lstfill.demo.surface import world_surface
from lstfill.demo.world import World, rng_for
from lstfill.grid import Grid
from lstfill.io import write_cog
from lstfill.sources import modis

MODIS_PIXEL_1KM = 1_111_950.5197665 / 1200.0
MODIS_ORIGIN = (-20_015_109.354, 10_007_554.677)


def write_modis(
    world: World, meteo: Meteo, cfg: dict, start: date, end: date, folder: Path, truth: Path
) -> None:
    """MOD11A1 (1 km LST) and MOD09GQ (250 m red/NIR) subsets around the region, every
    modis_every_days; the 250 m gap-free LST goes to `truth`."""
    crs = modis.sinusoidal_crs()
    to_sin = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    xc, yc = to_sin.transform(world.lon0, world.lat0)
    p = MODIS_PIXEL_1KM
    n = int(cfg["modis_size_km"])
    col = math.floor((xc - MODIS_ORIGIN[0]) / p) - n // 2
    row = math.floor((MODIS_ORIGIN[1] - yc) / p) - n // 2
    ul = (MODIS_ORIGIN[0] + col * p, MODIS_ORIGIN[1] - row * p)
    lr = (ul[0] + n * p, ul[1] - n * p)
    h, v = int((xc - MODIS_ORIGIN[0]) // (1200 * p)), int((MODIS_ORIGIN[1] - yc) // (1200 * p))
    g250 = Grid(crs, Affine(p / 4, 0, ul[0], 0, -p / 4, ul[1]), 4 * n, 4 * n)
    surf = world_surface(world, g250, 3)
    seed = int(cfg["seed"])
    days = list(every(start, end, int(cfg["modis_every_days"])))
    fracs = stratified_cloud(rng_for(seed, "modis-clouds"), len(days), 0.3, 0.85)
    for k, day in enumerate(days):
        rng = rng_for(seed, "modis", k)
        vt = 10.5 + float(rng.normal(0, 0.35))
        when = utc_for_solar_time(day, vt, world.lon0)
        frac = float(fracs[k])
        cloud = cloud_mask(rng, g250.shape, p / 4, frac)
        cover = cloud_cover(cloud, p / 4)
        noise = correlated_field(rng, g250.shape, 1_500.0 / (p / 4))
        lst250 = surface_temperature(surf, when, meteo, cover, noise)
        psf = ndimage.gaussian_filter(lst250, sigma=1.3, mode="nearest")
        lst1 = psf.reshape(n, 4, n, 4).mean(axis=(1, 3)) + rng.normal(0, 0.3, (n, n))
        cloud1 = cloud.reshape(n, 4, n, 4).mean(axis=(1, 3)) > 0.15
        other = rng.uniform(size=(n, n)) < 0.12
        qc = np.where(cloud1, 2, np.where(other, 1 | (1 << 6), 0)).astype(np.uint8)
        lst1 = np.where(cloud1, np.nan, lst1)
        view = (vt + 0.004 * (np.arange(n) - n / 2))[None, :] * np.ones((n, 1))
        prod = datetime(day.year, day.month, day.day) + timedelta(
            days=1, seconds=int(rng.integers(3600, 80000))
        )
        modis.write_mod11a1(
            folder / modis.granule_name("MOD11A1", day, h, v, prod_time=prod),
            day,
            lst1.astype(np.float32),
            qc,
            view.astype(np.float32),
            ul,
            lr,
        )
        refl = reflectance(surf, day)
        red = np.where(cloud, 0.35 + 0.25 * cover, refl["B04"]) + rng.normal(0, 0.003, g250.shape)
        nir = np.where(cloud, 0.40 + 0.25 * cover, refl["B08"]) + rng.normal(0, 0.003, g250.shape)
        qc250 = np.where(cloud, 2, 0).astype(np.uint16)  # MODLAND QA 2: not produced, cloud
        modis.write_mod09gq(
            folder / modis.granule_name("MOD09GQ", day, h, v, prod_time=prod),
            day,
            np.clip(red, 0.001, 1).astype(np.float32),
            np.clip(nir, 0.001, 1).astype(np.float32),
            qc250,
            ul,
            lr,
        )
        write_cog(
            truth / f"{day:%Y%m%d}_LST_250m_truth.tif",
            lst250,
            g250.transform,
            crs,
            nodata=float("nan"),
            tags={"date": day.isoformat(), "units": "K"},
        )
