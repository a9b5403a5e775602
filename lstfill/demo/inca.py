"""The demo's INCA hourly NetCDF files: the meteorology the ECOSTRESS overpasses saw."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.warp import transform_bounds

from lstfill.demo.ecostress import INCA_MARGIN_M
from lstfill.demo.physics import Meteo, clear_sky_ghi, sun_position
from lstfill.demo.schedule import Overpass
from lstfill.demo.surface import frame_xy
from lstfill.demo.world import World
from lstfill.grid import Grid
from lstfill.raster import Raster, to_grid
from lstfill.sources import inca

INCA_LEAD_HOURS = 24  # hours before each overpass day that its INCA file also covers


def write_inca_files(
    world: World,
    grid: Grid,
    meteo: Meteo,
    overpasses: list[Overpass],
    masks: dict[int, Raster],
    folder: Path,
) -> None:
    """One hourly INCA file per overpass day (plus the day before) on a 1 km EPSG:31287 grid."""
    xmin, ymin, xmax, ymax = transform_bounds(grid.crs, inca.INCA_CRS, *grid.bounds, densify_pts=21)
    km = 1000.0
    xs = (
        np.arange(
            math.floor((xmin - INCA_MARGIN_M) / km), math.ceil((xmax + INCA_MARGIN_M) / km) + 1
        )
        * km
    )
    ys = (
        np.arange(
            math.ceil((ymax + INCA_MARGIN_M) / km), math.floor((ymin - INCA_MARGIN_M) / km) - 1, -1
        )
        * km
    )
    igrid = Grid(
        inca.INCA_CRS, Affine(km, 0, xs[0] - km / 2, 0, -km, ys[0] + km / 2), len(xs), len(ys)
    )
    sub = Grid(igrid.crs, igrid.transform @ Affine.scale(0.2), igrid.width * 5, igrid.height * 5)
    fx, fy = frame_xy(world, sub)
    z = world.elevation(fx, fy).reshape(igrid.height, 5, igrid.width, 5).mean(axis=(1, 3))
    lon, lat = igrid.lonlat()
    x, y = world.to_frame(lon, lat)
    hab = z - world.floor(x)
    wave = 0.4 * np.sin(x / 6_000.0 + 1.0) * np.cos(y / 8_000.0)

    # Cloud cover at every overpass, so that hours shared by two files get identical fields.
    cf_ovp = []
    for o in overpasses:
        cf = to_grid(masks[o.index], igrid, "average")
        cf_ovp.append((o, np.where(np.isnan(cf), o.cloud_fraction, cf)))
    for day in sorted({o.time.date() for o in overpasses}):
        fields = {p: [] for p in inca.PARAMETERS}
        # The day's 24 hours plus the INCA_LEAD_HOURS before, as a real request for the
        # cumulative (up to 24 h) fields of an early-morning overpass would ask for.
        first = datetime(day.year, day.month, day.day) - timedelta(hours=INCA_LEAD_HOURS)
        times = [first + timedelta(hours=h) for h in range(24 + INCA_LEAD_HOURS)]
        for t in times:
            base = np.full(igrid.shape, meteo.cloud_fraction(t), dtype=np.float32)
            weights = [np.exp(-(((o.time - t).total_seconds() / 5400.0) ** 2)) for o, _ in cf_ovp]
            wsum = sum(weights)
            cf = base * max(0.0, 1.0 - wsum)
            for wt, (_, c) in zip(weights, cf_ovp, strict=True):
                if wt > 1e-6:
                    cf = cf + c * (wt / max(wsum, 1.0))
            cosz, _ = sun_position(t + timedelta(minutes=30), lon, lat)
            ta = meteo.air_temperature_k(t, z, hab, world.lon0) + wave
            u, v = meteo.wind(t, x, y, world.lon0)
            fields["T2M"].append(ta - 273.15)
            fields["GL"].append(clear_sky_ghi(cosz, z) * (1.0 - 0.72 * cf))
            fields["RH2M"].append(meteo.humidity(t, ta, world.lon0))
            fields["UU"].append(u * np.ones(igrid.shape))
            fields["VV"].append(v * np.ones(igrid.shape))
        data = {p: np.stack(v).astype(np.float32) for p, v in fields.items()}
        inca.write_inca(folder / inca.filename(times[0], times[-1]), times, xs, ys, data)
