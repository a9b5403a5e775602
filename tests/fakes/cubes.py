"""Per-acquisition cubes laid out like lstfill's: the acquisition's layers on (time=1, y, x), static
layers on (y, x), pixel-centre coordinates and a CF grid mapping of the grid, written in the cube
encoding (`lstfill.cube.write_cube`). The values are the test's own recipe."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from lstfill.cube import write_cube
from lstfill.grid import Grid


def write_fake_cube(
    path: Path,
    grid: Grid,
    when: dt.datetime | str,
    layers: Mapping[str, np.ndarray],
    static: Mapping[str, np.ndarray],
    *,
    drop: Collection[str] = (),
    attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Write the cube of one acquisition at `when` on `grid` to `path`: `layers` (each (y, x))
    get the time axis, `static` ones do not, those named in `drop` are left out, and `attrs`
    are the file's attributes."""
    ds = xr.Dataset(
        {n: (("time", "y", "x"), v[None]) for n, v in layers.items() if n not in drop},
        coords={
            "time": ("time", [np.datetime64(when, "ns")]),
            "y": ("y", grid.y),
            "x": ("x", grid.x),
        },
    )
    for name, values in static.items():
        if name not in drop:
            ds[name] = (("y", "x"), values)
    ds = ds.rio.write_crs(grid.pyproj_crs.to_wkt()).rio.write_transform(grid.transform)
    for name in ds.data_vars:
        ds[name].attrs["grid_mapping"] = "spatial_ref"
    ds.attrs.update(attrs or {})
    return write_cube(ds, path)


def demo_region_config(grid: Grid) -> dict[str, Any]:
    """The `regions` section of a config whose one region, `demo`, is `grid` in July 2023."""
    return {
        "demo": {
            "source": "demo",
            "start": "2023-07-01",
            "end": "2023-07-31",
            "grid": {"crs": grid.crs, "bounds": list(grid.bounds), "resolution": grid.res[0]},
        }
    }
