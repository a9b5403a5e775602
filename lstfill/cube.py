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
from lstfill.errors import InputError
from lstfill.grid import Grid
from lstfill.indices import compute_indices
from lstfill.inventory import parse_acquisition_id
from lstfill.io import atomic_output, check_file
from lstfill.raster import Raster, to_grid
from lstfill.sources import ecostress, inca, landcover, sentinel2, srtm
from lstfill.terrain import slope_aspect

log = logging.getLogger(__name__)

# name -> (units, long_name, CF standard_name or None)
VARIABLES: dict[str, tuple[str, str, str | None]] = {
    "lst": ("K", "land surface temperature (QC applied)", "surface_temperature"),
    "lst_err": ("K", "LST uncertainty", None),
    "lst_valid": ("1", "1 where the LST observation passed QC", None),
    "cloud": ("1", "1 where the ECOSTRESS cloud mask flags cloud", None),
    "view_zenith": ("degree", "ECOSTRESS view zenith angle", "sensor_zenith_angle"),
    "s2_age_days": ("day", "LST time minus the time of the S2 scene used (signed)", None),
    "s2_weight": ("1", "sum of the fine weights behind the fused S2 value (fusion product)", None),
    "t2m": ("K", "INCA 2 m air temperature at overpass hour", "air_temperature"),
    "gl": (
        "W m-2",
        "INCA global radiation at overpass hour",
        "surface_downwelling_shortwave_flux_in_air",
    ),
    "rh2m": ("%", "INCA 2 m relative humidity at overpass hour", "relative_humidity"),
    "uu": ("m s-1", "INCA 10 m eastward wind at overpass hour", "eastward_wind"),
    "vv": ("m s-1", "INCA 10 m northward wind at overpass hour", "northward_wind"),
    "elevation": ("m", "surface elevation (DEM)", "surface_altitude"),
    "slope": ("degree", "terrain slope", None),
    "aspect": ("degree", "terrain aspect, clockwise from north (downslope)", None),
    "tree_cover": ("%", "tree cover density", None),
    "imperviousness": ("%", "imperviousness density", None),
    "water": ("1", "1 where land cover is permanent or temporary water", None),
}
for _b in ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"):
    VARIABLES[_b.lower()] = ("1", f"Sentinel-2 L2A surface reflectance {_b}", None)
for _i in ("ndvi", "ndwi", "ndmi", "ndbi"):
    VARIABLES[_i] = ("1", f"{_i.upper()} from the nearest clear Sentinel-2 observation", None)


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


def build_static(inv: dict[str, Any], grid: Grid, out_path: str | Path) -> Path:
    """DEM (averaged), Horn slope/aspect and land cover on the region grid."""
    elevation = np.full(grid.shape, np.nan, dtype=np.float32)
    for path in inv["dem"]:
        part = to_grid(srtm.read_dem(path), grid, "average")
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
    folder: str | Path, grid: Grid, bands: list[str], scl_invalid: list[int], out_path: str | Path
) -> Path:
    """Average one S2 scene's clear pixels onto the grid; cells short of clear pixels stay NaN."""
    scene = sentinel2.read_scene(folder, bands=tuple(bands), scl_invalid=tuple(scl_invalid))
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


def _merge_inca(paths: list[str | Path]) -> inca.IncaData:
    """One IncaData from several files of the same grid: hours sorted, repeated hours once."""
    parts = [inca.read_inca(p) for p in paths]
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
) -> dict[str, np.ndarray]:
    """INCA fields at the overpass hour and their means over the preceding `hours`, bilinear."""
    if not paths:
        raise InputError(
            "resources/<region>/raw/inca", f"no INCA file covers {time:%Y-%m-%d %H:%M} UTC"
        )
    data = _merge_inca(paths)
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
    folder: str | Path, granules: list[str], grid: Grid, max_mandatory_qa: int
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
        tile = ecostress.parse_granule_id(gid).tile
        zone = int(tile[:2])
        epsg = (32700 if tile[2] < "N" else 32600) + zone
        scene = ecostress.read_granule(
            folder, gid, expected_crs=f"EPSG:{epsg}", max_mandatory_qa=max_mandatory_qa
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
    """One acquisition's aligned cube. An all-cloud scene yields an empty mask and a warning."""
    grid = Grid.from_dict(inv["grid"])
    time = parse_acquisition_id(acq)
    entry = inv["acquisitions"].get(acq)
    if entry is None:
        raise InputError(inv["ecostress_dir"], f"acquisition {acq} is not in the inventory")
    layers = ecostress_layers(
        inv["ecostress_dir"], entry["granules"], grid, prepare["ecostress"]["max_mandatory_qa"]
    )
    valid_fraction = float(layers["lst_valid"].mean())
    if valid_fraction == 0:
        log.warning(
            "acquisition %s has no clear LST pixel (all cloud): the cube's mask is empty", acq
        )
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
            inca_paths, time, ic["parameters"], ic["cumulative"], ic["cumulative_hours"], grid
        )
    )
    with xr.open_dataset(static_path) as static:
        for name in static.data_vars:
            if name != "spatial_ref":
                layers[name] = static[name].values
    ds = _dataset(
        grid,
        {k: v for k, v in layers.items() if k not in _STATIC},
        time,
        {
            "title": f"lstfill datacube, region {inv['region']}, acquisition {acq}",
            "acquisition": acq,
            "ecostress_granules": " ".join(entry["granules"]),
            "valid_fraction": valid_fraction,
            "s2_window_days": s2["window_days"],
            "s2_source": s2.get("source", "nearest"),
        },
    )
    for name in _STATIC:
        if name in layers:
            ds[name] = (("y", "x"), layers[name], {**_attrs(name), "grid_mapping": "spatial_ref"})
    return write_cube(ds, out_path)


_STATIC = ("elevation", "slope", "aspect", "tree_cover", "imperviousness", "water")
