"""The fusion job's inputs: Sentinel-2 scenes on the region grid and the coarse daily series.

Fine scenes are the workflow's Sentinel-2 grids (``results/{region}/cubes/sentinel2/*.nc``: the
SCL-clear pixels averaged onto the region grid); a pixel is observed where its clear share
reaches ``min_clear`` and every band is finite. The coarse series comes from Sentinel-3 day
files (:mod:`lstfill.sources.sentinel3`) or MODIS MOD09GQ red/NIR granules, resampled (average)
by rasterio onto the coarse grid that nests in the region grid (``Grid.coarsen(ratio)``), and is
stored as one CF NetCDF per region. Every band is fused on its own, and NDVI as a band of its
own; a band the coarse sensor lacks is fused with no coarse change (the weighted fine mosaic).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from lstfill.errors import ConfigError, InputError
from lstfill.fusion.coarse import CoarseSeries
from lstfill.fusion.method import ArrayScene
from lstfill.grid import Grid
from lstfill.indices import normalised_difference
from lstfill.io import load_netcdf
from lstfill.ranges import check_range, has_range
from lstfill.raster import Raster, to_grid

log = logging.getLogger(__name__)

EPOCH = dt.date(1970, 1, 1)
MIN_COARSE_CLEAR = 0.5  # share of a coarse pixel's footprint the coarse sensor saw clear
MODIS_BANDS = {"B04": "red", "B08": "nir"}


def day_number(day: dt.date) -> float:
    """Days since 1970-01-01: the time axis every fusion array shares."""
    return float((day - EPOCH).days)


def number_day(number: float) -> dt.date:
    return EPOCH + dt.timedelta(days=int(round(number)))


def parse_day(day: str) -> dt.date:
    """A {day} wildcard (YYYYMMDD) as a date."""
    return dt.datetime.strptime(day, "%Y%m%d").date()


def fusion_bands(bands: Sequence[str]) -> list[str]:
    """The fused variables: NDVI first, then the cube's reflectance bands (lower case)."""
    if not {"B04", "B08"} <= {b.upper() for b in bands}:
        raise ConfigError(
            "prepare.sentinel2.bands", f"the fusion job needs B04 and B08 (NDVI), got {bands}"
        )
    return ["ndvi", *(b.lower() for b in bands)]


def coarse_grid(grid: Grid, ratio: int) -> Grid:
    """The coarse grid that nests exactly in `grid`: same origin, `ratio` x `ratio` fine pixels
    per coarse pixel (the extent rounded up to whole coarse pixels)."""
    if ratio < 1:
        raise ValueError(f"ratio must be a positive integer, got {ratio}")
    return grid.coarsen(int(ratio))


def _with_ndvi(layers: Mapping[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    """(bands, rows, cols) in the order of `names`, NDVI computed from b08/b04."""
    out = []
    for name in names:
        if name == "ndvi":
            out.append(normalised_difference(layers["b08"], layers["b04"]))
        else:
            out.append(np.asarray(layers[name], dtype=np.float32))
    return np.stack(out)


@dataclass
class FineInput(ArrayScene):
    """A Sentinel-2 scene on the region grid, ready to fuse."""

    name: str = ""
    date: dt.date | None = None

    @property
    def clear_share(self) -> float:
        return float(self.mask.mean())


def read_fine_scene(
    path: str | Path, bands: Sequence[str], min_clear: float, tolerance: float | None = None
) -> FineInput:
    """A Sentinel-2 grid file as (NDVI, bands...) with its observed mask; each band checked
    against the physical range of reflectance and its units (lstfill.ranges, `tolerance`)."""
    names = fusion_bands(bands)
    with load_netcdf(path, "Sentinel-2 grid") as ds:
        missing = [n for n in names if n != "ndvi" and n not in ds]
        if missing or "clear_share" not in ds:
            raise InputError(path, f"lacks {missing or ['clear_share']}; rebuild the S2 grids")
        layers = {
            n: check_range(ds[n].values[0], n, path, ds[n].attrs.get("units"), tolerance)
            for n in names
            if n != "ndvi"
        }
        clear = ds["clear_share"].values[0]
        time = ds["time"].values[0].astype("datetime64[D]").astype(dt.date)
        title = str(ds.attrs.get("title", Path(path).stem))
    data = _with_ndvi(layers, names)
    mask = (clear >= min_clear) & np.isfinite(data).all(axis=0)
    data = np.where(mask, data, np.nan).astype(np.float32)
    return FineInput(day_number(time), data, mask, name=Path(path).stem or title, date=time)


def read_fine_scenes(
    paths: Sequence[str | Path],
    bands: Sequence[str],
    min_clear: float,
    tolerance: float | None = None,
) -> list[FineInput]:
    scenes = [read_fine_scene(p, bands, min_clear, tolerance) for p in paths]
    return sorted(scenes, key=lambda s: (s.day, s.name))


# --------------------------------------------------------------------------- coarse series


def coarse_from_sentinel3(
    paths: Sequence[str | Path], grid: Grid, bands: Sequence[str], tolerance: float | None = None
) -> tuple[list[dt.date], dict[str, np.ndarray]]:
    """Sentinel-3 day files averaged onto the coarse grid: dates and {band: (dates, rows, cols)}
    reflectance (only the bands the files have), NaN where the footprint was not clear."""
    from lstfill.sources import sentinel3

    days: list[dt.date] = []
    stacks: dict[str, list[np.ndarray]] = {}
    wanted = [b for b in (b.upper() for b in bands) if b in sentinel3.BANDS]
    for path in paths:
        s3 = sentinel3.read_day(path, wanted, tolerance)
        clear = Raster(s3.clear.data.astype(np.float32), s3.clear.transform, s3.clear.crs)
        ok = to_grid(clear, grid, "average") >= MIN_COARSE_CLEAR
        for band in wanted:
            values = to_grid(s3.reflectance[band], grid, "average")
            stacks.setdefault(band.lower(), []).append(np.where(ok, values, np.nan))
        days.append(s3.day)
    return days, {b: np.stack(v).astype(np.float32) for b, v in stacks.items()}


def coarse_from_modis(
    paths: Sequence[str | Path], grid: Grid, tolerance: float | None = None
) -> tuple[list[dt.date], dict[str, np.ndarray]]:
    """MOD09GQ red (B04) and NIR (B08) averaged onto the coarse grid; pixels whose MODLAND QA
    (QC_250m bits 0-1) says "not produced" (cloud or other reasons) are left out."""
    from lstfill.sources import modis

    days: list[dt.date] = []
    stacks: dict[str, list[np.ndarray]] = {"b04": [], "b08": []}
    for path in paths:
        refl = modis.read_mod09gq(path, tolerance)
        good = (refl.qc & 0b11) <= 1
        for band, attr in MODIS_BANDS.items():
            raster = getattr(refl, attr)
            masked = Raster(np.where(good, raster.data, np.nan), raster.transform, raster.crs)
            stacks[band.lower()].append(to_grid(masked, grid, "average"))
        days.append(refl.date)
    return days, {b: np.stack(v).astype(np.float32) for b, v in stacks.items()}


def coarse_dataset(
    grid: Grid, days: Sequence[dt.date], layers: dict[str, np.ndarray], source: str
) -> xr.Dataset:
    """The coarse series as a CF dataset (time, y, x), NDVI added when red and NIR exist."""
    order = np.argsort([day_number(d) for d in days], kind="stable")
    layers = {k: v[order] for k, v in layers.items()}
    days = [days[i] for i in order]
    if "b04" in layers and "b08" in layers:
        layers = {"ndvi": normalised_difference(layers["b08"], layers["b04"]), **layers}
    time = np.array([np.datetime64(d, "ns") for d in days], dtype="datetime64[ns]")
    data_vars = {
        name: (
            ("time", "y", "x"),
            arr,
            {
                "units": "1",
                "grid_mapping": "spatial_ref",
                "long_name": f"{source} {name} on the coarse grid",
            },
        )
        for name, arr in layers.items()
    }
    ds = xr.Dataset(data_vars, coords={"time": time, "y": grid.y, "x": grid.x})
    ds = ds.rio.write_crs(grid.pyproj_crs.to_wkt()).rio.write_transform(grid.transform)
    ds.attrs.update(
        Conventions="CF-1.8",
        title=f"coarse series for fusion ({source})",
        source=source,
        grid_transform=list(grid.transform)[:6],
        grid_crs=grid.pyproj_crs.to_wkt(),
    )
    return ds


def read_coarse(
    path: str | Path, tolerance: float | None = None
) -> tuple[Grid, list[dt.date], dict[str, np.ndarray], str]:
    """(coarse grid, dates, {band: (dates, rows, cols)}, source) of a coarse series file, each
    band with a physical range checked against it and its units (lstfill.ranges)."""
    from affine import Affine

    with load_netcdf(path, "coarse series") as ds:
        transform = Affine(*[float(v) for v in np.atleast_1d(ds.attrs["grid_transform"])])
        crs = ds.attrs.get("grid_crs")
        if not crs:
            raise InputError(path, "has no grid_crs attribute (not a coarse series); rebuild it")
        grid = Grid(crs, transform, ds.sizes["x"], ds.sizes["y"])
        days = [d.astype("datetime64[D]").astype(dt.date) for d in ds["time"].values]
        layers = {str(k): ds[k].values.astype(np.float32) for k in ds.data_vars}
        layers.pop("spatial_ref", None)
        layers = {
            k: check_range(v, k, path, ds[k].attrs.get("units"), tolerance) if has_range(k) else v
            for k, v in layers.items()
        }
        source = str(ds.attrs.get("source", "?"))
    return grid, days, layers, source


def coarse_series(
    days: Sequence[dt.date], layers: Mapping[str, np.ndarray], names: Sequence[str]
) -> tuple[CoarseSeries, list[str]]:
    """The coarse series of the fused variables `names` and the names the coarse sensor lacks
    (zeros there: those variables are fused with no coarse change)."""
    shape = next(iter(layers.values())).shape
    lacking = [n for n in names if n not in layers]
    values = np.stack(
        [layers[n] if n in layers else np.zeros(shape, dtype=np.float32) for n in names], axis=1
    )
    return CoarseSeries(np.array([day_number(d) for d in days]), values), lacking
