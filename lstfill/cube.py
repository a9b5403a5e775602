"""Aligned datacubes: every variable of an acquisition on the region grid, as CF NetCDF.

Three builders, one per workflow rule:
- `build_static`: DEM, slope, aspect and land cover, once per region;
- `build_s2_grid`: one Sentinel-2 scene averaged onto the grid from its clear pixels only;
- `build_cube`: one ECOSTRESS acquisition with its QC mask, the nearest clear S2 observation per
  pixel within a window, INCA at overpass and over the preceding hours, and the static layers.
Resampling fits each variable: average when coarsening reflectance, DEM and land-cover shares,
bilinear for the 1 km meteorology, mode for classes, nearest for masks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

import lstfill
from lstfill.acquire import granule_status
from lstfill.errors import InputError
from lstfill.grid import Grid, tile_epsg
from lstfill.indices import compute_indices
from lstfill.inventory import (
    CLOUD,
    NO_OVERLAP,
    NO_VALID_LST,
    acquisition_entry,
    parse_acquisition_id,
)
from lstfill.io import atomic_output, check_file
from lstfill.raster import Raster, to_grid
from lstfill.sources import ecostress, inca, landcover, sentinel2, srtm
from lstfill.terrain import slope_aspect
from lstfill.variables import VARIABLES

log = logging.getLogger(__name__)


def _attrs(name: str) -> dict[str, str]:
    base = name.split("_")[0] if name not in VARIABLES and name.endswith("h") else name
    units, long_name, standard = VARIABLES.get(base, ("1", name, None))
    if base != name:
        long_name = f"{long_name.replace(' at overpass hour', '')}, mean over {name.split('_')[1]}"
    attrs = {"units": units, "long_name": long_name}
    if standard:
        attrs["standard_name"] = standard
    return attrs


def _dataset(
    grid: Grid, layers: dict[str, np.ndarray], time: dt.datetime | None, attrs: dict[str, Any]
) -> xr.Dataset:
    """A CF dataset on `grid` (x, y centres, spatial_ref); 2-D layers get a length-1 time axis."""
    coords: dict[str, Any] = {"y": ("y", grid.y), "x": ("x", grid.x)}
    dims: tuple[str, ...] = ("y", "x")
    if time is not None:
        coords["time"] = (
            "time",
            [np.datetime64(time.astimezone(dt.UTC).replace(tzinfo=None), "ns")],
        )
        dims = ("time", "y", "x")
    data_vars = {}
    for name, arr in layers.items():
        arr = arr[None] if time is not None else arr
        data_vars[name] = (dims, arr, _attrs(name))
    ds = xr.Dataset(data_vars, coords=coords)
    ds = ds.rio.write_crs(grid.pyproj_crs.to_wkt()).rio.write_transform(grid.transform)
    for name in ds.data_vars:
        ds[name].attrs["grid_mapping"] = "spatial_ref"
    ds["x"].attrs.update(standard_name="projection_x_coordinate", units="m", axis="X")
    ds["y"].attrs.update(standard_name="projection_y_coordinate", units="m", axis="Y")
    if time is not None:
        ds["time"].attrs.update(standard_name="time", long_name="acquisition time (UTC)", axis="T")
    ds.attrs.update(
        {
            "Conventions": "CF-1.8",
            "institution": "lstfill",
            "source": f"lstfill {lstfill.__version__}",
            "history": f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ} created by lstfill",
            **{k: (str(v) if not isinstance(v, int | float) else v) for k, v in attrs.items()},
        }
    )
    return ds


def write_cube(ds: xr.Dataset, path: str | Path) -> Path:
    """Write a cube (or any dataset on a region grid) in the cube encoding (float32, zlib level
    4, uint8 flags without fill, time in seconds since 1970), atomically: no partial file."""
    encoding = {}
    for name, var in ds.data_vars.items():
        enc: dict[str, Any] = {"zlib": True, "complevel": 4}
        if var.dtype == np.uint8:
            enc["_FillValue"] = None
        elif np.issubdtype(var.dtype, np.floating):
            enc["dtype"] = "float32"
        encoding[name] = enc
    if "time" in ds.coords:
        encoding["time"] = {"units": "seconds since 1970-01-01 00:00:00", "calendar": "standard"}
    with atomic_output(path) as tmp:
        ds.to_netcdf(tmp, encoding=encoding, engine="netcdf4")
    return Path(path)


def _require_finite(arr: np.ndarray, what: str, path: str | Path) -> None:
    if not np.isfinite(arr).all():
        share = 100 * (1 - np.isfinite(arr).mean())
        raise InputError(path, f"{what} has no valid data over {share:.1f} % of the region grid")


def build_static(
    inv: dict[str, Any], grid: Grid, out_path: str | Path, tolerance: float | None = None
) -> Path:
    """DEM (averaged), Horn slope/aspect and land cover on the region grid. `tolerance`: the
    share of DEM pixels that may lie outside the physical range (set to NaN; lstfill.ranges)."""
    elevation = np.full(grid.shape, np.nan, dtype=np.float32)
    for path in inv["dem"]:
        part = to_grid(srtm.read_dem(path, tolerance=tolerance), grid, "average")
        elevation = np.where(np.isnan(elevation), part, elevation)
    _require_finite(elevation, "DEM", ", ".join(inv["dem"]))
    slope, aspect = slope_aspect(elevation, *grid.res)
    layers: dict[str, np.ndarray] = {"elevation": elevation, "slope": slope, "aspect": aspect}
    for name, path in inv["landcover"].items():
        raster = landcover.read_layer(path, name)
        method = "mode" if name == "water" else "average"
        arr = to_grid(raster, grid, method)
        _require_finite(arr, f"land-cover layer {name}", path)
        layers[name] = arr.astype(np.uint8) if name == "water" else arr
    ds = _dataset(grid, layers, None, {"title": f"lstfill static layers, region {inv['region']}"})
    return write_cube(ds, out_path)


def build_s2_grid(
    folder: str | Path,
    grid: Grid,
    bands: list[str],
    scl_invalid: list[int],
    out_path: str | Path,
    tolerance: float | None = None,
) -> Path:
    """Average one S2 scene's clear pixels onto the grid; cells short of clear pixels stay NaN.
    `tolerance` as in :func:`build_static`, per band."""
    scene = sentinel2.read_scene(
        folder, bands=tuple(bands), scl_invalid=tuple(scl_invalid), tolerance=tolerance
    )
    clear = Raster(scene.clear.data.astype(np.float32), scene.clear.transform, scene.clear.crs)
    layers: dict[str, np.ndarray] = {"clear_share": to_grid(clear, grid, "average")}
    masks: dict[tuple, np.ndarray] = {}  # the clear mask on each band grid (10 m, 20 m), once
    for band in bands:
        refl = scene.reflectance[band]
        key = (refl.data.shape, tuple(refl.transform))
        if key not in masks:
            masks[key] = to_grid(clear, refl.grid, "nearest") > 0.5
        masked = np.where(masks[key], refl.data, np.nan).astype(np.float32)
        layers[band.lower()] = to_grid(Raster(masked, refl.transform, refl.crs), grid, "average")
    ds = _dataset(
        grid, layers, scene.time, {"title": f"Sentinel-2 L2A {scene.scene.name} on region grid"}
    )
    ds["clear_share"].attrs.update(
        units="1", long_name="share of clear (SCL) S2 pixels in the cell"
    )
    return write_cube(ds, out_path)


def nearest_clear_s2(
    s2_paths: list[str | Path], time: dt.datetime, bands: list[str], min_clear: float, grid: Grid
) -> dict[str, np.ndarray]:
    """Per pixel, the bands of the S2 scene nearest in time where the cell was clear."""
    shape = grid.shape
    best_dt = np.full(shape, np.inf)
    signed_age = np.full(shape, np.nan, dtype=np.float32)
    out = {b.lower(): np.full(shape, np.nan, dtype=np.float32) for b in bands}
    for path in s2_paths:
        with xr.open_dataset(path) as ds:
            t = (
                ds["time"]
                .values[0]
                .astype("datetime64[s]")
                .astype(dt.datetime)
                .replace(tzinfo=dt.UTC)
            )
            age = (time - t).total_seconds() / 86400.0
            ok = ds["clear_share"].values[0] >= min_clear
            for b in bands:
                ok &= np.isfinite(ds[b.lower()].values[0])
            take = ok & (abs(age) < best_dt)
            best_dt[take] = abs(age)
            signed_age[take] = age
            for b in bands:
                out[b.lower()][take] = ds[b.lower()].values[0][take]
    out.update(compute_indices({b: out[b.lower()] for b in bands}))
    out["s2_age_days"] = signed_age
    return out


def fused_s2(path: str | Path, bands: list[str], grid: Grid) -> dict[str, np.ndarray]:
    """The cube's S2 layers from the fusion product of the acquisition's day: the fused bands,
    the fused NDVI, the other indices from the fused bands, ``s2_age_days`` 0 and ``s2_weight``
    (NaN where the fusion had no fine data)."""
    import rasterio

    with rasterio.open(check_file(path)) as src:
        names = [str(d).lower() if d else "" for d in src.descriptions]
        needed = [b.lower() for b in bands] + ["ndvi", "weight"]
        missing = [n for n in needed if n not in names]
        if missing:
            raise InputError(path, f"fusion product lacks bands {missing}; rebuild it")
        if (src.width, src.height) != (grid.width, grid.height) or not src.transform.almost_equals(
            grid.transform
        ):
            raise InputError(path, "fusion product is not on the region grid; rebuild it")
        layers = {n: src.read(names.index(n) + 1).astype(np.float32) for n in needed}
    out = {b.lower(): layers[b.lower()] for b in bands}
    out.update(compute_indices({b: layers[b.lower()] for b in bands}))
    out["ndvi"] = layers["ndvi"]
    out["s2_age_days"] = np.where(np.isfinite(layers["ndvi"]), 0.0, np.nan).astype(np.float32)
    out["s2_weight"] = layers["weight"]
    return out


def _merge_inca(paths: list[str | Path], tolerance: float | None = None) -> inca.IncaData:
    """One IncaData from several files of the same grid: hours sorted, repeated hours once."""
    parts = [inca.read_inca(p, tolerance=tolerance) for p in paths]
    first = parts[0]
    shape = next(iter(first.fields.values())).shape[1:]
    for part in parts[1:]:
        if not part.transform.almost_equals(first.transform) or (
            next(iter(part.fields.values())).shape[1:] != shape
        ):
            raise InputError(part.path, "INCA file is on another grid than the other files")
    times = np.concatenate([p.times for p in parts])
    order = np.argsort(times, kind="stable")
    keep = order[np.concatenate([[True], np.diff(times[order]) > np.timedelta64(0)])]
    fields = {k: np.concatenate([p.fields[k] for p in parts])[keep] for k in first.fields}
    return dataclasses.replace(first, times=times[keep], fields=fields)


def inca_layers(
    paths: list[str | Path],
    time: dt.datetime,
    params: list[str],
    cumulative: list[str],
    hours: int,
    grid: Grid,
    tolerance: float | None = None,
) -> dict[str, np.ndarray]:
    """INCA fields at the overpass hour and their means over the preceding `hours`, bilinear."""
    if not paths:
        raise InputError(
            "resources/<region>/raw/inca", f"no INCA file covers {time:%Y-%m-%d %H:%M} UTC"
        )
    data = _merge_inca(paths, tolerance)
    label = ", ".join(str(p) for p in paths)
    layers = {}
    for p in params:
        if p not in data.fields:
            raise InputError(label, f"INCA parameter {p} missing")
        arr = to_grid(data.at(p, time), grid, "bilinear")
        _require_finite(arr, f"INCA {p} at {time:%Y-%m-%d %H:%M}", label)
        layers[p.lower()] = arr
    for p in cumulative:
        arr = to_grid(data.cumulative(p, time, hours=hours), grid, "bilinear")
        _require_finite(arr, f"INCA {p} over {hours} h", label)
        layers[f"{p.lower()}_{hours}h"] = arr
    return layers


def ecostress_layers(
    folder: str | Path,
    granules: list[str],
    grid: Grid,
    max_mandatory_qa: int,
    tolerance: float | None = None,
) -> dict[str, np.ndarray]:
    """LST, LST_err, QC mask, cloud and view zenith of one acquisition on the grid.

    Several granules of the same time (neighbouring tiles) are mosaicked, first valid wins.
    The expected CRS of each granule is the UTM zone of its MGRS tile.
    """
    lst = np.full(grid.shape, np.nan, dtype=np.float32)
    out = {"lst_err": lst.copy(), "view_zenith": lst.copy()}
    valid = np.zeros(grid.shape, dtype=bool)
    cloud = np.zeros(grid.shape, dtype=bool)
    for gid in granules:
        epsg = tile_epsg(ecostress.parse_granule_id(gid).tile)
        scene = ecostress.read_granule(
            folder,
            gid,
            expected_crs=f"EPSG:{epsg}",
            max_mandatory_qa=max_mandatory_qa,
            tolerance=tolerance,
        )
        v = to_grid(
            Raster(scene.valid.astype(np.uint8), scene.lst.transform, scene.lst.crs, 255),
            grid,
            "nearest",
            fill=0,
        )
        c = to_grid(
            Raster(scene.cloud.astype(np.uint8), scene.lst.transform, scene.lst.crs, 255),
            grid,
            "nearest",
            fill=0,
        )
        v_lst = to_grid(scene.lst, grid, "bilinear")
        new = (v > 0) & ~valid & np.isfinite(v_lst)
        lst[new] = v_lst[new]
        valid |= new
        cloud |= c > 0
        for key, raster in (("lst_err", scene.lst_err), ("view_zenith", scene.view_zenith)):
            arr = to_grid(raster, grid, "bilinear")
            fill = np.isnan(out[key]) & np.isfinite(arr)
            out[key][fill] = arr[fill]
    lst[~valid] = np.nan
    return {"lst": lst, "lst_valid": valid.astype(np.uint8), "cloud": cloud.astype(np.uint8), **out}


def build_cube(
    acq: str,
    inv: dict[str, Any],
    static_path: str | Path,
    s2_paths: list[str | Path],
    inca_paths: list[str | Path],
    prepare: dict[str, Any],
    out_path: str | Path,
) -> Path:
    """One acquisition's aligned cube. Its `clear_fraction` attribute is the share of the
    region's land pixels with clear LST; an acquisition with none yields an empty mask, a
    warning and a `no_clear_reason` attribute (NO_OVERLAP, NO_VALID_LST or CLOUD)."""
    grid = Grid.from_dict(inv["grid"])
    time = parse_acquisition_id(acq)
    entry = acquisition_entry(inv, acq)
    tolerance = prepare.get("out_of_range_tolerance")
    layers = ecostress_layers(
        inv["ecostress_dir"],
        entry["granules"],
        grid,
        prepare["ecostress"]["max_mandatory_qa"],
        tolerance,
    )
    valid_fraction = float(layers["lst_valid"].mean())
    s2 = prepare["sentinel2"]
    if s2.get("source", "nearest") == "fused":
        if len(s2_paths) != 1:
            raise InputError(out_path, f"expected one fusion product for {acq}, got {s2_paths}")
        layers.update(fused_s2(s2_paths[0], s2["bands"], grid))
    else:
        layers.update(
            nearest_clear_s2(s2_paths, time, s2["bands"], s2["min_clear_subpixels"], grid)
        )
    ic = prepare["inca"]
    layers.update(
        inca_layers(
            inca_paths,
            time,
            ic["parameters"],
            ic["cumulative"],
            ic["cumulative_hours"],
            grid,
            tolerance,
        )
    )
    with xr.open_dataset(static_path) as static:
        for name in static.data_vars:
            if name != "spatial_ref":
                layers[name] = static[name].values
    land = layers["water"] == 0 if "water" in layers else np.ones(grid.shape, dtype=bool)
    clear_fraction = float((layers["lst_valid"].astype(bool) & land).sum() / max(land.sum(), 1))
    extra: dict[str, Any] = {}
    if clear_fraction == 0:
        reason = no_clear_reason(inv["ecostress_dir"], entry["granules"], grid)
        extra["no_clear_reason"] = reason
        log.warning(
            "acquisition %s has no clear LST pixel (%s): the cube's mask is empty",
            acq,
            _NO_CLEAR_WHY[reason].format(granules=", ".join(entry["granules"])),
        )
    ds = _dataset(
        grid,
        {k: v for k, v in layers.items() if k not in _STATIC},
        time,
        {
            "title": f"lstfill datacube, region {inv['region']}, acquisition {acq}",
            "acquisition": acq,
            "ecostress_granules": " ".join(entry["granules"]),
            "valid_fraction": valid_fraction,
            "clear_fraction": clear_fraction,
            **extra,
            "s2_window_days": s2["window_days"],
            "s2_source": s2.get("source", "nearest"),
        },
    )
    for name in _STATIC:
        if name in layers:
            ds[name] = (("y", "x"), layers[name], {**_attrs(name), "grid_mapping": "spatial_ref"})
    return write_cube(ds, out_path)


_STATIC = ("elevation", "slope", "aspect", "tree_cover", "imperviousness", "water")

_NO_CLEAR_WHY = {
    NO_OVERLAP: "no overlap with the region: granules {granules} do not intersect its grid",
    NO_VALID_LST: "no valid LST: every LST pixel of {granules} over the region is fill/NaN",
    CLOUD: "all cloud: QC and the cloud mask reject every LST pixel over the region",
}


def no_clear_reason(folder: str | Path, granules: list[str], grid: Grid) -> str:
    """Why an acquisition has no clear LST pixel on `grid`: NO_OVERLAP when no granule meets
    it, NO_VALID_LST when none has an LST value over it, else CLOUD (QC/cloud rejected all).
    Reads the granules again, so it is only for the rare empty acquisition."""
    statuses = {granule_status(folder, gid, grid) for gid in granules}
    if statuses <= {NO_OVERLAP}:
        return NO_OVERLAP
    if statuses <= {NO_OVERLAP, NO_VALID_LST}:
        return NO_VALID_LST
    return CLOUD
