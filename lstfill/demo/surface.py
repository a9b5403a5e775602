"""The demo landscape seen on a grid: elevation from the SRTM tiles it wrote, and the surface
(terrain, land cover, hidden fields) on the region grid or straight from the world."""

from __future__ import annotations

import numpy as np
from affine import Affine

from lstfill.demo.physics import Surface, slope_aspect_radians
from lstfill.demo.world import World
from lstfill.grid import Grid
from lstfill.raster import Raster, to_grid
from lstfill.sources import landcover


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
    """The world-frame coordinates of the grid's pixel centres."""
    lon, lat = grid.lonlat()
    return world.to_frame(lon, lat)


def _terrain(world: World, grid: Grid, z: np.ndarray) -> dict[str, np.ndarray]:
    """The terrain fields of a `Surface` at the grid's pixel centres, from its elevation `z`:
    coordinates, height above the valley floor, slope and aspect."""
    lon, lat = grid.lonlat()
    x, y = world.to_frame(lon, lat)
    slope, aspect = slope_aspect_radians(z, grid.res[0])
    return {
        "lon": lon,
        "lat": lat,
        "x": x,
        "y": y,
        "z": z,
        "hab": z - world.floor(x),
        "slope": slope,
        "aspect": aspect,
    }


def region_surface(
    world: World, grid: Grid, tiles: list[Raster], hrl: dict[str, Raster]
) -> Surface:
    """The region grid's surface from the same files the cube builder reads (DEM, HRL)."""
    terrain = _terrain(world, grid, dem_on(world, tiles, grid, "average"))
    x, y, z = terrain["x"], terrain["y"], terrain["z"]
    pct = {
        k: to_grid(hrl[k], grid, "average", fill=0.0) / 100.0
        for k in ("tree_cover", "imperviousness")
    }
    waw = hrl["water"]
    is_water = np.isin(waw.data, landcover.WATER_CLASSES).astype(np.float32)
    water = to_grid(Raster(is_water, waw.transform, waw.crs), grid, "average", fill=0.0)
    hidden = world.landcover(x, y, z)
    return Surface(
        **terrain,
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

    return Surface(
        **_terrain(world, grid, agg(zf) if z is None else z),
        tree=agg(lc["tree_cover"]) / 100,
        imperv=agg(lc["imperviousness"]) / 100,
        water=agg(np.isin(lc["waw"], landcover.WATER_CLASSES)),
        rock=agg(lc["rock"]),
        lake=agg(lc["lake"]),
        soil=agg(world.soil_moisture(x, y)),
        emis_bias=agg(world.emissivity_bias_k(x, y)),
    )


def block_mean_padded(a: np.ndarray, k: int, shape: tuple[int, int]) -> np.ndarray:
    """Mean over k x k blocks onto `shape`, the edge rows and columns repeated to fill it."""
    h, w = shape
    a = np.pad(a, ((0, h * k - a.shape[0]), (0, w * k - a.shape[1])), mode="edge")
    return a.reshape(h, k, w, k).mean(axis=(1, 3))
