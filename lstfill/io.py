"""File helpers shared by every stage: atomic outputs, rasters opened with clear errors, COGs.

A rule that fails must leave no partial output behind, so every writer writes to a temporary
name in the destination folder and renames it into place only once the file is complete.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
import xarray as xr
from affine import Affine
from pyproj import CRS
from rasterio.errors import RasterioIOError

from lstfill.errors import InputError, OutputError

_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def write_fault(exc: BaseException, path: str | Path) -> OutputError | None:
    """An OutputError saying "disk full" or "permission denied" where `exc` (or an error it was
    raised from) is one; None for any other error.

    GDAL, HDF5 and torch report a failed write in their own words, so their messages are
    matched too ("No space left on device", "Permission denied").
    """
    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:
        visited.add(id(seen))
        code = getattr(seen, "errno", None)
        text = str(seen)
        if code in _FULL or "No space left" in text or "Disk quota" in text:
            free = _free_bytes(Path(path).parent)
            return OutputError(path, f"disk full while writing ({free} free on its disk)")
        if code in _DENIED or "Permission denied" in text or "Read-only file system" in text:
            return OutputError(path, "permission denied: cannot write in its folder")
        seen = seen.__cause__ or seen.__context__
    return None


def _free_bytes(folder: Path) -> str:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "unknown"
    return f"{free / 2**20:.0f} MiB"


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it to `path` only if the block succeeds.

    A full disk or an unwritable folder ends in one OutputError naming `path`; the temporary
    file is removed in every case, also when a stop signal unwinds the block
    (:mod:`lstfill.stops`).
    """
    path = Path(path)
    tmp_path: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent
        )
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        os.replace(tmp_path, path)
    except Exception as exc:
        fault = write_fault(exc, path)
        if fault is not None:
            raise fault from exc
        raise
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; swap it in for `path` only if the block succeeds
    (a reader never sees a half-written folder, and a failure leaves the old one). Write faults
    end as in :func:`atomic_output`."""
    path = Path(path)
    staging: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        yield staging
        if path.exists():
            shutil.rmtree(path)
        os.replace(staging, path)
    except Exception as exc:
        fault = write_fault(exc, path)
        if fault is not None:
            raise fault from exc
        raise
    finally:
        if staging is not None and staging.exists():
            shutil.rmtree(staging)


def check_file(path: str | Path) -> Path:
    """Return `path` as a Path, or raise InputError if it is missing or empty."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file does not exist")
    if path.stat().st_size == 0:
        raise InputError(path, "file is empty")
    return path


def read_raster(
    path: str | Path, band: int = 1, expected_crs: str | CRS | None = None
) -> tuple[np.ndarray, Affine, CRS, float | None, dict[str, str]]:
    """Read one band fully: (array, transform, crs, nodata, tags).

    Raises InputError naming the file when it cannot be opened or decoded (corrupt or truncated),
    has no CRS, or is on another CRS than `expected_crs`.
    """
    path = check_file(path)
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise InputError(path, "raster has no CRS")
            crs = CRS.from_user_input(src.crs.to_wkt())
            if expected_crs is not None and not crs.equals(CRS.from_user_input(expected_crs)):
                raise InputError(
                    path,
                    f"raster is on CRS {crs.to_string()}, expected {CRS(expected_crs).to_string()}",
                )
            data = src.read(band)
            return data, src.transform, crs, src.nodata, dict(src.tags())
    except InputError:
        raise
    except (RasterioIOError, rasterio.errors.RasterioError, ValueError) as exc:
        raise InputError(path, f"cannot read raster (corrupt or truncated?): {exc}") from exc


def write_cog(
    path: str | Path,
    data: np.ndarray,
    transform: Affine,
    crs: str | CRS,
    nodata: float | int | None = None,
    tags: dict[str, Any] | None = None,
    band_names: list[str] | None = None,
    band_tags: list[dict[str, Any]] | None = None,
    *,
    overview_resampling: str | None = None,
    threads: int = 1,
) -> Path:
    """Write a 2-D or (band, y, x) array as a Cloud-Optimised GeoTIFF, atomically.

    Tiled, deflate-compressed (with the floating-point predictor for float data), with internal
    overviews, via GDAL's COG driver. `overview_resampling` is the COG driver's
    OVERVIEW_RESAMPLING (GDAL's default when None: cubic for continuous data); `threads` the
    driver's compression and overview threads.
    """
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[None]
    count, height, width = arr.shape
    crs_obj = CRS.from_user_input(crs)
    profile = {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": count,
        "dtype": arr.dtype,
        "crs": crs_obj.to_wkt(),
        "transform": transform,
        "nodata": nodata,
    }
    path = Path(path)
    with atomic_output(path) as tmp:
        mem_path = tmp.with_suffix(".staging.tif")
        try:
            with rasterio.open(mem_path, "w", **profile) as dst:
                dst.write(arr)
                if tags:
                    dst.update_tags(**{k: str(v) for k, v in tags.items()})
                for i in range(count):
                    if band_names:
                        dst.set_band_description(i + 1, band_names[i])
                    if band_tags and band_tags[i]:
                        dst.update_tags(i + 1, **{k: str(v) for k, v in band_tags[i].items()})
            with rasterio.open(mem_path) as src:
                options = cog_options(arr.dtype, (height, width), overview_resampling, threads)
                rasterio.shutil.copy(src, tmp, driver="COG", **options)
        finally:
            if mem_path.exists():
                mem_path.unlink()
    return path


def cog_options(
    dtype: Any,
    shape: tuple[int, int],
    overview_resampling: str | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """GDAL COG driver options of lstfill's products (see :func:`write_cog`)."""
    options: dict[str, Any] = {
        "COMPRESS": "DEFLATE",
        "BLOCKSIZE": 256 if min(shape) >= 256 else 128,
        "OVERVIEWS": "AUTO",
        "NUM_THREADS": max(1, int(threads)),
    }
    if np.issubdtype(np.dtype(dtype), np.floating):
        options["PREDICTOR"] = "YES"  # 3, floating point, for float data
    if overview_resampling:
        options["OVERVIEW_RESAMPLING"] = overview_resampling.upper()
    return options


def json_ready(obj: Any) -> Any:
    """`obj` with every non-finite float replaced by None and numpy scalars as Python ones, so
    the JSON is strict."""
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_ready(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_json(path: str | Path, obj: Any) -> Path:
    """Write `obj` as strict, indented JSON (non-finite numbers as null), atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(json_ready(obj), indent=2, allow_nan=False))
    return Path(path)


def write_netcdf(path: str | Path, ds: xr.Dataset, complevel: int = 1) -> Path:
    """Write `ds` as NetCDF-4 with every data variable zlib-compressed, atomically."""
    enc = {v: {"zlib": True, "complevel": complevel} for v in ds.data_vars}
    with atomic_output(path) as tmp:
        ds.to_netcdf(tmp, encoding=enc, engine="netcdf4")
    return Path(path)


def load_netcdf(path: str | Path, what: str) -> xr.Dataset:
    """A whole NetCDF file in memory (closed again); InputError naming the file and `what` it
    should have been when it is missing, empty or unreadable."""
    path = check_file(path)
    try:
        with xr.open_dataset(path) as ds:
            return ds.load()
    except Exception as exc:
        raise InputError(path, f"cannot read {what}: {exc}") from exc
