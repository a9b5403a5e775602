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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
import xarray as xr
from affine import Affine
from pyproj import CRS
from rasterio.enums import Resampling
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


def _umask_mode(base: int) -> int:
    """`base` (0o666 for files, 0o777 for folders) less the process umask: the mode a plain
    open() or mkdir() would give, where mkstemp/mkdtemp give 0600/0700 (outputs must stay
    readable by the group and by a web server, as any other file the user writes)."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


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
        if tmp_path.exists():
            tmp_path.chmod(_umask_mode(0o666))
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
        staging.chmod(_umask_mode(0o777))
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


SMOOTH_OVERVIEWS = "average"
"""Overview resampling of continuous bands (LST, uncertainty, NDVI, reflectance) in lstfill's
products. An overview pixel is the mean of the valid (non-nodata) pixels it covers: what a
coarser sensor would see over its footprint, exactly the 2x2 block mean at the first level. Unlike
GDAL's COG default (cubic) it never leaves the range of its inputs: cubic overshoots at sharp
edges (coasts, cloud-gap borders, filled patches), which would show negative uncertainties,
NDVI beyond [-1, 1] or negative reflectances in a viewer; the price is a little more aliasing."""

FLAG_OVERVIEWS = "nearest"
"""Overview resampling of flag and count bands (0/1 `filled`, bit `flag`, `weight`,
`days_to_fine`): every overview value is one of the band's own values, never a mean (0.37
filled, a mixture of bits, a fractional day count)."""

_COG_DEFAULT_RESAMPLING = "cubic"  # GDAL's COG driver for data without a colour table


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
    band_resampling: Sequence[str | None] | None = None,
    threads: int = 1,
) -> Path:
    """Write a 2-D or (band, y, x) array as a Cloud-Optimised GeoTIFF, atomically.

    Tiled, deflate-compressed (with the floating-point predictor for float data), with internal
    overviews, via GDAL's COG driver. `overview_resampling` is the COG driver's
    OVERVIEW_RESAMPLING (GDAL's default when None: cubic for continuous data); `threads` the
    driver's compression and overview threads.

    `band_resampling` gives each band its own overview resampling (one rasterio/GDAL name a
    band, such as :data:`SMOOTH_OVERVIEWS` or :data:`FLAG_OVERVIEWS`; None: `overview_resampling`,
    else GDAL's cubic), for products that mix continuous bands with flag bands. The COG driver
    has one resampling for all bands, so when the bands differ the overviews are built here,
    at the factors the COG driver would choose (halved until the image fits one block): GDAL
    builds them for the staging file with the resampling of most bands, and for a staging file
    of each other group of bands with theirs, whose overview pixels then replace those of their
    bands in the staging file (rasterio writes an overview level opened in update mode); the
    COG driver copies these overviews (OVERVIEWS=FORCE_USE_EXISTING) instead of computing them.
    Staging files live in a hidden folder beside `path`, removed in every case.
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
        "dtype": arr.dtype,
        "crs": crs_obj.to_wkt(),
        "transform": transform,
        "nodata": nodata,
    }
    options = cog_options(arr.dtype, (height, width), overview_resampling, threads)
    groups = _resampling_groups(count, overview_resampling, band_resampling)
    factors = _cog_overview_factors((height, width), options["BLOCKSIZE"])
    per_band = len(groups) > 1 and bool(factors)
    if len(groups) == 1 and groups[0][0] is not None:
        options["OVERVIEW_RESAMPLING"] = groups[0][0].upper()
    path = Path(path)
    with atomic_output(path) as tmp:
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".staging", dir=tmp.parent))
        try:
            source = staging / "bands.tif"
            with rasterio.open(source, "w", count=count, **profile) as dst:
                dst.write(arr)
                _describe(dst, count, tags, band_names, band_tags)
            if per_band:
                with rasterio.Env(GDAL_NUM_THREADS=str(max(1, int(threads)))):
                    _build_band_overviews(source, arr, profile, groups, factors)
                options["OVERVIEWS"] = "FORCE_USE_EXISTING"
            with rasterio.open(source) as src:
                rasterio.shutil.copy(src, tmp, driver="COG", **options)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
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


def _resampling_groups(
    count: int, overview_resampling: str | None, band_resampling: Sequence[str | None] | None
) -> list[tuple[str | None, list[int]]]:
    """[(resampling, 0-based bands)], in band order of first use; one group (resampling None:
    the COG driver's default) when every band has the same."""
    if band_resampling is None:
        return [(overview_resampling, list(range(count)))]
    if len(band_resampling) != count:
        raise ValueError(f"band_resampling has {len(band_resampling)} entries for {count} bands")
    names = [name or overview_resampling for name in band_resampling]
    if len(set(names)) == 1:
        return [(names[0], list(range(count)))]
    groups: dict[str, list[int]] = {}
    for band, name in enumerate(names):
        groups.setdefault(_resampling(name or _COG_DEFAULT_RESAMPLING).name, []).append(band)
    return list(groups.items())


def _resampling(name: str) -> Resampling:
    key = name.strip().lower().replace("cubicspline", "cubic_spline")
    try:
        return Resampling[key]
    except KeyError:
        raise ValueError(f"unknown overview resampling {name!r}") from None


def _cog_overview_factors(shape: tuple[int, int], blocksize: int) -> list[int]:
    """The decimation factors of GDAL's COG driver (OVERVIEWS=AUTO): halve until the image fits
    in one block."""
    height, width = shape
    factors: list[int] = []
    while height > blocksize or width > blocksize:
        height, width = height // 2, width // 2
        factors.append(2 ** (len(factors) + 1))
    return factors


def _describe(
    dst: Any,
    count: int,
    tags: dict[str, Any] | None,
    band_names: list[str] | None,
    band_tags: list[dict[str, Any]] | None,
) -> None:
    if tags:
        dst.update_tags(**{k: str(v) for k, v in tags.items()})
    for i in range(count):
        if band_names:
            dst.set_band_description(i + 1, band_names[i])
        if band_tags and band_tags[i]:
            dst.update_tags(i + 1, **{k: str(v) for k, v in band_tags[i].items()})


def _build_band_overviews(
    source: Path,
    arr: np.ndarray,
    profile: dict[str, Any],
    groups: list[tuple[str | None, list[int]]],
    factors: list[int],
) -> None:
    """Overviews of `source` (the staging GeoTIFF of `arr`) at `factors`, each band's with its
    group's resampling: the largest group's built in place, every other group's built in a
    staging file of its bands beside `source` and written over theirs, level by level."""
    groups = sorted(groups, key=lambda group: -len(group[1]))  # stable: first-used on ties
    with rasterio.open(source, "r+") as dst:
        dst.build_overviews(factors, _resampling(groups[0][0] or _COG_DEFAULT_RESAMPLING))
    for g, (name, bands) in enumerate(groups[1:]):
        part = source.with_name(f"group{g + 1}.tif")
        with rasterio.open(part, "w", count=len(bands), **profile) as dst:
            for j, i in enumerate(bands):
                dst.write(arr[i], j + 1)
            dst.build_overviews(factors, _resampling(name or _COG_DEFAULT_RESAMPLING))
        for level in range(len(factors)):
            with (
                rasterio.open(part, overview_level=level) as ovr,
                rasterio.open(source, "r+", overview_level=level) as dst,
            ):
                if ovr.shape != dst.shape:  # both built by GDAL from one size: never expected
                    raise RuntimeError(f"overview {level} of {part.name} is {ovr.shape}")
                for j, i in enumerate(bands):
                    dst.write(ovr.read(j + 1), i + 1)
        part.unlink()


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
