"""Downscaling samples from an LST series held in memory on any grid (e.g. a UTM datacube), the
counterpart of `steps.samples` for the workflow's Israel-format files.

The series holds one LST band (one overpass), so the config's `bands` must name exactly one band
and its overpass time. Days, the per-image cap and the sample file's meta and params follow
`steps.samples`, so `steps.train` and `steps.evaluate` run on the result unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pyproj import CRS, Transformer

from lstfill.downscale.dataset import image_samples, stack_images
from lstfill.downscale.inputs import spread_indices
from lstfill.downscale.targets import SAMPLE_KEYS
from lstfill.errors import ConfigError, LstfillError


def pixel_latlon(x: np.ndarray, y: np.ndarray, crs: Any) -> tuple[np.ndarray, np.ndarray]:
    """(lat, lon) in degrees of every pixel centre of the grid with centre coordinates `x` (W,)
    and `y` (H,) in `crs`, both (H, W)."""
    xx, yy = np.meshgrid(np.asarray(x, np.float64), np.asarray(y, np.float64))
    to_ll = Transformer.from_crs(CRS.from_user_input(crs), CRS.from_epsg(4326), always_xy=True)
    lon, lat = to_ll.transform(xx, yy)
    return np.asarray(lat), np.asarray(lon)


def series_samples(
    lst: np.ndarray,
    dem: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    dates: np.ndarray,
    cfg: Mapping[str, Any],
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    """(X, y, meta, params) of every valid window of the one-band series `lst` (T, H, W) in K
    with the DEM `dem` (H, W) in m, as `steps.samples` builds them from Israel files.

    `lat` / `lon` are (H, W) pixel centres or (H,) / (W,); `dates` (T,) datetime64, sorted. `cfg`
    is the validated `downscale` section: its single band's overpass hour is the time-of-day
    feature, `max_days` keeps days spread evenly, `max_samples_per_image` caps each day (seeded
    per date, as in the workflow).
    """
    lst = np.asarray(lst)
    if lst.ndim != 3 or len(dates) != lst.shape[0]:
        raise ValueError(f"lst {lst.shape} must be (time, y, x) with one date per time step")
    bands = dict(cfg["bands"])
    if len(bands) != 1:
        raise ConfigError(
            "downscale.bands", f"a one-band LST series needs exactly one band, got {list(bands)}"
        )
    (band, hour), b_idx = next(iter(bands.items())), 0
    radius = int(cfg["radius"])
    days = np.asarray(dates).astype("datetime64[D]")
    images = []
    for t in spread_indices(len(days), cfg["max_days"]):
        day = days[t].item()
        date = day.year * 10000 + day.month * 100 + day.day
        doy = day.timetuple().tm_yday - 1
        X, y, rc = image_samples(
            lst[t],
            dem,
            lat,
            lon,
            doy,
            hour,
            radius=radius,
            cap=cfg["max_samples_per_image"],
            date=date,
            band_index=b_idx,
        )
        images.append((date, b_idx, X, y, rc))
    if sum(len(y) for *_, y, _ in images) == 0:
        raise LstfillError(f"no {2 * radius + 1}² window with valid LST and DEM on any day")
    X, y, meta = stack_images(images)
    params = {k: cfg[k] for k in SAMPLE_KEYS}
    params["grid_shape"] = list(lst.shape[1:])
    params["band_names"] = [band]
    return X, y, meta, params
