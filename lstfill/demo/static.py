"""The demo's static provider files: SRTMGL1 tiles and Copernicus HRL-like land cover."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.warp import transform_bounds

from lstfill.demo.surface import dem_on, frame_xy
from lstfill.demo.world import World
from lstfill.grid import Grid
from lstfill.raster import Raster
from lstfill.sources import landcover, srtm

HRL_CRS = "EPSG:3035"
HRL_RES_M = 10


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
