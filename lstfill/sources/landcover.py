"""Copernicus High Resolution Layers (tree cover density, imperviousness, water and wetness).

Single-band uint8 GeoTIFFs named like the HRL tiles ("TCD_2018_010m_E44N26_03035_v020.tif",
EPSG:3035 in real life). Tree cover and imperviousness are percentages (0..100); water and
wetness holds classes 0 dry, 1 permanent water, 2 temporary water, 3 permanent wet,
4 temporary wet. 255 is nodata; other codes above the valid range (the products' 253/254
"unclassifiable"/"outside area") are read as nodata too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from affine import Affine
from pyproj import CRS

from lstfill.errors import InputError
from lstfill.io import read_raster, write_cog
from lstfill.raster import Raster

LAYERS = {"tree_cover": "TCD", "imperviousness": "IMD", "water": "WAW"}
NODATA = 255
PERCENT_MAX = 100
WATER_CLASSES = (1, 2)  # permanent and temporary water
WAW_MAX = 4


def _code(layer: str) -> str:
    if layer not in LAYERS:
        raise ValueError(f"unknown land-cover layer {layer!r}; known: {sorted(LAYERS)}")
    return LAYERS[layer]


def layer_filename(layer: str, year: int = 2018, res_m: int = 10, tile: str = "E44N26") -> str:
    """HRL file name such as "TCD_2018_010m_E44N26_03035_v020.tif"."""
    return f"{_code(layer)}_{year}_{res_m:03d}m_{tile}_03035_v020.tif"


def write_layer(path: str | Path, data: np.ndarray, transform: Affine, crs: str) -> Path:
    """Write one uint8 HRL layer (nodata 255) as a COG, atomically."""
    arr = np.asarray(data)
    if not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() > NODATA:
        raise ValueError(f"land-cover layer must hold integers in 0..255, got {arr.dtype}")
    return write_cog(path, arr.astype(np.uint8), transform, crs, nodata=NODATA)


def read_layer(path: str | Path, layer: str, expected_crs: str | CRS | None = None) -> Raster:
    """Read an HRL layer as float32: % for tree_cover/imperviousness, water fraction for water.

    Water is 1.0 where the class is permanent or temporary water, 0.0 for other classes; NaN
    wherever the file holds nodata or a code outside the layer's valid range.
    """
    _code(layer)
    data, transform, crs, nodata, _ = read_raster(path, expected_crs=expected_crs)
    if not np.issubdtype(data.dtype, np.integer):
        raise InputError(path, f"land-cover layer must hold integer codes, found {data.dtype}")
    top = WAW_MAX if layer == "water" else PERCENT_MAX
    invalid = data > top
    if nodata is not None:
        invalid |= data == nodata
    if layer == "water":
        out = np.isin(data, WATER_CLASSES).astype(np.float32)
    else:
        out = data.astype(np.float32)
    out[invalid] = np.nan
    return Raster(out, transform, crs.to_string(), float("nan"))


def find_layers(folder: str | Path) -> dict[str, Path]:
    """The HRL file of each layer present in `folder` (layers without a file are left out)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "land-cover folder does not exist")
    found = {}
    for layer, code in LAYERS.items():
        paths = sorted(folder.glob(f"{code}_*.tif"))
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            raise InputError(folder, f"several {code} files ({names}); keep one per layer")
        if paths:
            found[layer] = paths[0]
    return found
