"""The demo region: deterministic synthetic raw files in every provider's real format, plus truth.

`generate_demo` writes, under ``region_dir/raw``, an SRTM tile, Copernicus HRL-like land cover,
ECOSTRESS L2T LSTE granules, Sentinel-2 L2A scenes, INCA hourly NetCDF files and MODIS
MOD11A1/MOD09GQ granules, all with the format modules' writers, so everything downstream of
acquisition runs unchanged on demo and real data. The gap-free LST that the ECOSTRESS and MODIS
observations sample is kept under ``region_dir/truth`` for evaluation only. The same seed gives
byte-identical arrays: every component draws from its own seeded generator.
"""

from __future__ import annotations

import logging
import math
import time as _time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from pyproj import Transformer
from rasterio.warp import transform_bounds
from scipy import ndimage

from lstfill.grid import Grid
from lstfill.io import write_cog
from lstfill.raster import Raster, to_grid
from lstfill.sources import ecostress, inca, landcover, modis, sentinel2, sentinel3, srtm
from lstfill.sources.demo_fields import (
    ENDMEMBERS,
    S2_BANDS,
    Meteo,
    Surface,
    clear_sky_ghi,
    cloud_cover,
    cloud_mask,
    correlated_field,
    illumination,
    reflectance,
    slope_aspect,
    sun_position,
    surface_temperature,
    utc_for_solar_time,
)
from lstfill.sources.demo_world import World, rng_for

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
HRL_CRS = "EPSG:3035"
HRL_RES_M = 10
INCA_MARGIN_M = 5_000.0
INCA_LEAD_HOURS = 24  # hours before each overpass day that its INCA file also covers
MODIS_PIXEL_1KM = 1_111_950.5197665 / 1200.0
MODIS_ORIGIN = (-20_015_109.354, 10_007_554.677)
ISS_EPOCH = datetime(2018, 7, 1)
ISS_PERIOD_S = 5_556.0


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


# --- static layers ------------------------------------------------------------------------
def write_srtm(world: World, grid: Grid, folder: Path) -> list[Raster]:
    """Write the SRTMGL1 tiles covering the region; return them as EPSG:4326 Rasters."""
    w, s, e, n = transform_bounds(grid.crs, "EPSG:4326", *grid.bounds, densify_pts=21)
    rasters = []
    for lat in range(math.floor(s - 0.01), math.floor(n + 0.01) + 1):
        for lon in range(math.floor(w - 0.01), math.floor(e + 0.01) + 1):
            lons = lon + np.arange(3601) / 3600.0
            lats = lat + 1 - np.arange(3601) / 3600.0
            x, y = world.to_frame(lons[None, :], lats[:, None])
            hgt = np.rint(_elevation_rows(world, x, y)).astype(np.int16)
            srtm.write_hgt_zip(folder / srtm.zip_name(lat, lon), hgt, lat, lon)
            half = 0.5 / 3600.0
            transform = Affine(1 / 3600.0, 0, lon - half, 0, -1 / 3600.0, lat + 1 + half)
            rasters.append(Raster(hgt.astype(np.float32), transform, "EPSG:4326"))
    return rasters


def _elevation_rows(world: World, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """world.elevation on an axis-aligned grid (x row, y column), in row blocks on 2 threads."""

    def block(i: int) -> np.ndarray:
        return world.elevation(x, y[i : i + 256])

    with ThreadPoolExecutor(2) as pool:
        return np.concatenate(list(pool.map(block, range(0, y.shape[0], 256))))


def dem_on(world: World, tiles: list[Raster], grid: Grid, method: str) -> np.ndarray:
    """Elevation on `grid` resampled from the SRTM tiles (world terrain where no tile reaches)."""
    z = np.full(grid.shape, np.nan, dtype=np.float32)
    for tile in tiles:
        part = to_grid(tile, grid, method)
        z = np.where(np.isnan(z), part, z)
    if np.isnan(z).any():
        x, y = frame_xy(world, grid)
        z = np.where(np.isnan(z), world.elevation(x, y), z)
    return z


def frame_xy(world: World, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = grid.lonlat()
    return world.to_frame(lon, lat)


def write_landcover(
    world: World, grid: Grid, tiles: list[Raster], folder: Path
) -> dict[str, Raster]:
    """Write TCD, IMD and WAW on an EPSG:3035 10 m grid around the region (HRL-like)."""
    b = grid.bounds
    m = 500.0
    xmin, ymin, xmax, ymax = transform_bounds(
        grid.crs, HRL_CRS, b[0] - m, b[1] - m, b[2] + m, b[3] + m, densify_pts=21
    )
    snap = 100.0
    bounds = (
        math.floor(xmin / snap) * snap,
        math.floor(ymin / snap) * snap,
        math.ceil(xmax / snap) * snap,
        math.ceil(ymax / snap) * snap,
    )
    hgrid = Grid.from_bbox(HRL_CRS, bounds, HRL_RES_M)
    x, y = frame_xy(world, hgrid)
    z = dem_on(world, tiles, hgrid, "bilinear")
    lc = world.landcover(x, y, z)
    tile = f"E{int(bounds[0] // 100_000)}N{int(bounds[1] // 100_000)}"
    out = {}
    for layer, values in (
        ("tree_cover", lc["tree_cover"]),
        ("imperviousness", lc["imperviousness"]),
        ("water", lc["waw"]),
    ):
        data = np.rint(values).astype(np.uint8)
        name = landcover.layer_filename(layer, res_m=HRL_RES_M, tile=tile)
        landcover.write_layer(folder / name, data, hgrid.transform, HRL_CRS)
        out[layer] = Raster(data, hgrid.transform, HRL_CRS, nodata=landcover.NODATA)
    return out


def region_surface(
    world: World, grid: Grid, tiles: list[Raster], hrl: dict[str, Raster]
) -> Surface:
    """The region grid's surface from the same files the cube builder reads (DEM, HRL)."""
    lon, lat = grid.lonlat()
    x, y = world.to_frame(lon, lat)
    z = dem_on(world, tiles, grid, "average")
    slope, aspect = slope_aspect(z, grid.res[0])
    pct = {
        k: to_grid(hrl[k], grid, "average", fill=0.0) / 100.0
        for k in ("tree_cover", "imperviousness")
    }
    waw = hrl["water"]
    is_water = np.isin(waw.data, landcover.WATER_CLASSES).astype(np.float32)
    water = to_grid(Raster(is_water, waw.transform, waw.crs), grid, "average", fill=0.0)
    hidden = world.landcover(x, y, z)
    return Surface(
        lon=lon,
        lat=lat,
        x=x,
        y=y,
        z=z,
        hab=z - world.floor(x),
        slope=slope,
        aspect=aspect,
        tree=pct["tree_cover"],
        imperv=pct["imperviousness"],
        water=water,
        rock=hidden["rock"],
        lake=hidden["lake"],
        soil=world.soil_moisture(x, y),
        emis_bias=world.emissivity_bias_k(x, y),
    )


def world_surface(world: World, grid: Grid, sub: int, z: np.ndarray | None = None) -> Surface:
    """A surface evaluated straight from the world, averaging sub x sub points per pixel."""
    fine = Grid(
        grid.crs, grid.transform @ Affine.scale(1 / sub), grid.width * sub, grid.height * sub
    )
    x, y = frame_xy(world, fine)
    zf = world.elevation(x, y)
    lc = world.landcover(x, y, zf)

    def agg(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=np.float32)
        return a.reshape(grid.height, sub, grid.width, sub).mean(axis=(1, 3))

    lon, lat = grid.lonlat()
    xc, yc = world.to_frame(lon, lat)
    z = agg(zf) if z is None else z
    slope, aspect = slope_aspect(z, grid.res[0])
    return Surface(
        lon=lon,
        lat=lat,
        x=xc,
        y=yc,
        z=z,
        hab=z - world.floor(xc),
        slope=slope,
        aspect=aspect,
        tree=agg(lc["tree_cover"]) / 100,
        imperv=agg(lc["imperviousness"]) / 100,
        water=agg(np.isin(lc["waw"], landcover.WATER_CLASSES)),
        rock=agg(lc["rock"]),
        lake=agg(lc["lake"]),
        soil=agg(world.soil_moisture(x, y)),
        emis_bias=agg(world.emissivity_bias_k(x, y)),
    )


# --- ECOSTRESS ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Overpass:
    index: int
    time: datetime  # naive UTC
    solar_h: float
    cloud_fraction: float


def schedule(cfg: dict, start: date, end: date, lon: float) -> list[Overpass]:
    """ISS-like overpasses: random dates, local solar times spread over the day (a share at
    night), cloud fractions stratified from 0 (clear dates) to max_cloud_fraction."""
    rng = rng_for(int(cfg["seed"]), "schedule")
    n = int(cfg["n_overpasses"])
    ndays = (end - start).days + 1
    days = np.sort(rng.choice(ndays, size=n, replace=n > ndays))
    n_night = int(round(float(cfg["night_fraction"]) * n))
    n_day = n - n_night
    day_h = 6.8 + 12.0 * (np.arange(n_day) + rng.uniform(0, 1, n_day)) / max(n_day, 1)
    night_h = (
        21.3 + 7.5 * (np.arange(n_night) + rng.uniform(0, 1, n_night)) / max(n_night, 1)
    ) % 24
    hours = rng.permutation(np.concatenate([day_h, night_h]))
    fracs = _stratified_cloud(
        rng, n, float(cfg["clear_fraction"]), float(cfg["max_cloud_fraction"])
    )
    out = []
    for i in range(n):
        d = start + timedelta(days=int(days[i]))
        t = utc_for_solar_time(d, float(hours[i]), lon) + timedelta(
            seconds=float(rng.uniform(0, 59))
        )
        out.append(Overpass(i, t.replace(microsecond=0), float(hours[i]), float(fracs[i])))
    return sorted(out, key=lambda o: o.time)


def _every(start: date, end: date, step_days: int):
    day = start
    while day <= end:
        yield day
        day += timedelta(days=step_days)


def _stratified_cloud(rng: np.random.Generator, n: int, clear: float, cmax: float) -> np.ndarray:
    """Cloud fractions in random order: round(clear * n) (at least 1) clear ones, the others
    stratified over 0.03..cmax so the set always spans clear to nearly overcast."""
    n_clear = min(n, max(1, int(round(clear * n))))
    m = n - n_clear
    cloudy = 0.03 + (cmax - 0.03) * (np.arange(m) + rng.uniform(0, 1, m)) / max(m, 1)
    return rng.permutation(np.concatenate([np.zeros(n_clear), cloudy]))


def _qc_bits(**fields: np.ndarray | int) -> np.ndarray:
    shifts = {
        "mandatory": 0,
        "data_quality": 2,
        "cloud_ocean": 4,
        "iterations": 6,
        "atm_opacity": 8,
        "mmd": 10,
        "emis_accuracy": 12,
        "lst_accuracy": 14,
    }
    qc = np.zeros(np.shape(fields["mandatory"]), dtype=np.uint16)
    for name, value in fields.items():
        qc |= (np.asarray(value, dtype=np.uint16) & 3) << shifts[name]
    return qc


def write_ecostress(
    world: World,
    grid: Grid,
    surf: Surface,
    meteo: Meteo,
    overpasses: list[Overpass],
    cfg: dict,
    folder: Path,
    truth: Path,
) -> dict[int, Raster]:
    """Write every granule's layers and its truth; return each overpass's (padded) cloud mask."""
    res = grid.res[0]
    pad = int(math.ceil((INCA_MARGIN_M + 1_500.0) / res))
    inner = (slice(pad, pad + grid.height), slice(pad, pad + grid.width))
    padded_tr = grid.transform @ Affine.translation(-pad, -pad)
    shape_p = (grid.height + 2 * pad, grid.width + 2 * pad)
    water = surf.water >= 0.5
    masks = {}
    xkm = (surf.x - surf.x.mean()) / 1000.0
    for o in overpasses:
        rng = rng_for(int(cfg["seed"]), "ecostress", o.index)
        mask_p = cloud_mask(rng, shape_p, res, o.cloud_fraction, inner)
        masks[o.index] = Raster(mask_p.astype(np.float32), padded_tr, grid.crs)
        cloud = mask_p[inner]
        cover = cloud_cover(mask_p, res)[inner]
        noise = correlated_field(rng, grid.shape, 1_200.0 / res)
        lst_true = surface_temperature(surf, o.time, meteo, cover, noise)

        vz = np.abs(rng.uniform(-28, 28) + rng.choice([-0.12, 0.12]) * xkm).astype(np.float32)
        ta = meteo.air_temperature_k(o.time, surf.z, surf.hab, world.lon0)
        rh = meteo.humidity(o.time, ta, world.lon0)
        err = (
            0.45
            + 0.025 * vz
            + 0.007 * (rh - 30.0)
            + 0.15 * np.abs(correlated_field(rng, grid.shape, 8))
        )
        err = np.clip(err, 0.5, 2.0).astype(np.float32)
        lst = lst_true + rng.standard_normal(grid.shape, dtype=np.float32) * 0.5 * err

        u = rng.uniform(size=grid.shape)
        nominal = correlated_field(rng, grid.shape, 4) > 2.0
        bad = u < 0.003
        not_produced = (u >= 0.003) & (u < 0.005)
        mandatory = np.where(nominal | bad, 1, 0)
        mandatory = np.where(not_produced, 3, np.where(cloud, 2, mandatory))
        lst_acc = np.select([err < 1.0, err < 1.5, err < 2.0], [3, 2, 1], 0)
        qc = _qc_bits(
            mandatory=mandatory,
            data_quality=np.where(bad, 3, 0),
            cloud_ocean=0,
            iterations=3,
            atm_opacity=np.clip((rh - 20) // 25, 0, 3).astype(int),
            mmd=1,
            emis_accuracy=np.where(surf.tree > 0.5, 1, 2),
            lst_accuracy=lst_acc,
        )
        if rng.uniform() < 0.5:
            lst = np.where(cloud, np.nan, lst)
        else:  # the retrieval ran on the cloud top: garbage cold values
            lst = np.where(cloud, lst - rng.uniform(25, 50) + 3 * noise, lst)
        lst = np.where(bad, lst - 30.0, lst)
        lst = np.where(not_produced, np.nan, lst).astype(np.float32)

        orbit = int((o.time - ISS_EPOCH).total_seconds() // ISS_PERIOD_S)
        scene = 1 + int(((o.time - ISS_EPOCH).total_seconds() % ISS_PERIOD_S) / ISS_PERIOD_S * 14)
        gid = ecostress.granule_id(orbit, scene, str(cfg["tile"]), o.time)
        layers = {
            "LST": lst,
            "LST_err": np.where(np.isnan(lst), np.nan, err).astype(np.float32),
            "QC": qc,
            "cloud": cloud.astype(np.uint8),
            "water": water.astype(np.uint8),
            "height": surf.z.astype(np.float32),
            "view_zenith": vz,
        }
        ecostress.write_granule(folder, gid, layers, grid.transform, grid.crs)
        write_cog(
            truth / "ecostress" / f"{gid}_LST_truth.tif",
            lst_true,
            grid.transform,
            grid.crs,
            nodata=float("nan"),
            tags={"granule_id": gid, "units": "K"},
        )
    return masks


# --- INCA ---------------------------------------------------------------------------------
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


# --- Sentinel-2 ---------------------------------------------------------------------------
def _block_mean(a: np.ndarray, k: int, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    a = np.pad(a, ((0, h * k - a.shape[0]), (0, w * k - a.shape[1])), mode="edge")
    return a.reshape(h, k, w, k).mean(axis=(1, 3))


def write_sentinel2(
    world: World, grid: Grid, tiles: list[Raster], cfg: dict, start: date, end: date, folder: Path
) -> Surface:
    """L2A scenes every s2_revisit_days on 10/20 m grids aligned with the region; returns the
    10 m surface they see."""
    g10 = Grid.from_bbox(grid.crs, grid.bounds, 10.0)
    g20 = Grid.from_bbox(grid.crs, grid.bounds, 20.0)
    surf = world_surface(world, g10, 1, z=dem_on(world, tiles, g10, "bilinear"))
    water20 = _block_mean(surf.water, 2, g20.shape) > 0.5
    lonc, latc = float(surf.lon.mean()), float(surf.lat.mean())
    seed = int(cfg["seed"])
    days = list(_every(start, end, int(cfg["s2_revisit_days"])))
    fracs = _stratified_cloud(rng_for(seed, "sentinel2-clouds"), len(days), 0.35, 0.85)
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
                r = _block_mean(r, 2, g20.shape)
            bands[band] = np.clip(np.rint(r * 10_000) + 1_000, 1, 65_535).astype(np.uint16)
        red, nir = _block_mean(refl["B04"], 2, g20.shape), _block_mean(refl["B08"], 2, g20.shape)
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
    for day in _every(start, end, 1):
        red, nir = (_block_mean(b, k, grid.shape) for b in _red_nir(surf10, day))
        ndvi = ((nir - red) / (nir + red + 1e-6)).astype(np.float32)
        write_cog(
            folder / f"{day:%Y%m%d}_NDVI_truth.tif",
            ndvi,
            grid.transform,
            grid.crs,
            nodata=float("nan"),
            tags={"date": day.isoformat(), "units": "1"},
        )


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
    days = list(_every(start, end, 1))
    fracs = _stratified_cloud(rng_for(seed, "sentinel3-clouds"), len(days), 0.25, 0.95)
    for k, day in enumerate(days):
        rng = rng_for(seed, "sentinel3", k)
        when = datetime(day.year, day.month, day.day, 9, 50) + timedelta(
            seconds=int(rng.integers(-1800, 1800))
        )
        cosz, az = sun_position(when, np.float32(lonc), np.float32(latc))
        cosi = illumination(cosz, az, surf.slope, surf.aspect)
        shade = np.clip(0.35 + 0.65 * cosi / cosz, 0.15, 1.8)
        cloud = cloud_mask(rng, g60.shape, 60.0, float(fracs[k]))
        share = _block_mean(cloud.astype(np.float32), S3_SUB, g300.shape)
        clear = share < 0.1
        refl = reflectance(surf, day)
        out = {}
        for i, band in enumerate(S2_BANDS):
            r = refl[band] * shade
            r = np.where(cloud, (0.32, 0.33, 0.34, 0.38, 0.28, 0.17)[i], r)
            r = ndimage.gaussian_filter(r, S3_PSF_SIGMA_PX, mode="nearest")
            r = _block_mean(r, S3_SUB, g300.shape) * S3_GAIN[band] + S3_OFFSET[band]
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


# --- MODIS --------------------------------------------------------------------------------
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
    days = list(_every(start, end, int(cfg["modis_every_days"])))
    fracs = _stratified_cloud(rng_for(seed, "modis-clouds"), len(days), 0.3, 0.85)
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


__all__ = ["DEFAULTS", "generate_demo"]
