"""Checks that a fetched file is what was asked for: its size and checksum where the catalogue
gives them, and that it opens as its kind (GeoTIFF, netCDF, HDF4, zip), so that a login page or
a truncated file never passes for data. The fetcher runs them before it renames a file into
place, and to decide that a file already there is complete.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

from lstfill.download.base import DownloadError, FileRef

log = logging.getLogger(__name__)

SUFFIX_KINDS = {
    ".tif": "geotiff",
    ".tiff": "geotiff",
    ".nc": "netcdf",
    ".hdf": "hdf4",
    ".zip": "zip",
}
KIND_LABELS = {
    "geotiff": "a GeoTIFF",
    "netcdf": "a netCDF file",
    "hdf4": "an HDF4 file",
    "zip": "a zip file",
    "none": "data",
}
_HASH_BLOCK = 1 << 20


def resolve_kind(kind: str, name: str) -> str:
    """The concrete kind: "auto" is taken from the file name's suffix."""
    if kind == "auto":
        return SUFFIX_KINDS.get(Path(name).suffix.lower(), "none")
    if kind not in KIND_LABELS:
        raise ValueError(f"unknown file kind {kind!r}; use one of {sorted(KIND_LABELS)} or auto")
    return kind


def _check_geotiff(path: Path) -> None:
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.windows import Window

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            _ = (ds.shape, ds.crs)
            if ds.count and ds.width and ds.height:
                # The last pixel usually lies in the last block: catches truncated files.
                ds.read(1, window=Window(ds.width - 1, ds.height - 1, 1, 1))


def _check_netcdf(path: Path) -> None:
    import netCDF4

    with netCDF4.Dataset(str(path)) as ds:
        _ = ds.dimensions


def _check_hdf4(path: Path) -> None:
    from pyhdf.SD import SD, SDC

    sd = SD(str(path), SDC.READ)
    try:
        sd.datasets()
    finally:
        sd.end()


def _check_zip(path: Path) -> None:
    with zipfile.ZipFile(path) as zf:
        bad = zf.testzip()
    if bad is not None:
        raise ValueError(f"member {bad!r} is corrupt")


_CHECKS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "geotiff": ("does not open as GeoTIFF", _check_geotiff),
    "netcdf": ("does not open as netCDF", _check_netcdf),
    "hdf4": ("does not open as HDF4", _check_hdf4),
    "zip": ("is not a valid zip", _check_zip),
}


def open_problem(path: Path, kind: str) -> str | None:
    """Why `path` does not open as `kind` (a concrete kind), or None if it does."""
    check = _CHECKS.get(kind)
    if check is None:
        return None
    label, func = check
    try:
        func(path)
    except Exception as exc:  # every reader has its own error types
        return f"{label}: {str(exc) or type(exc).__name__}"
    return None


def verify_file(path: Path, kind: str) -> None:
    """Check that `path` opens as `kind` ("geotiff", "netcdf", "hdf4", "zip", "none", or "auto"
    from its suffix), so a login page or a truncated file never passes for data.

    Raises DownloadError naming the file and the reason.
    """
    path = Path(path)
    problem = open_problem(path, resolve_kind(kind, path.name))
    if problem:
        raise DownloadError(f"{path}: {problem}")


def _new_hash(algorithm: str | None, checksum: str) -> hashlib._Hash | None:
    """A hashlib object for a CMR-spelt algorithm ("SHA-256", "md5"); guessed from the digest's
    length when not given; None if unsupported."""
    if not algorithm:
        algorithm = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}.get(len(checksum), "")
    wanted = algorithm.lower().replace("-", "").replace("_", "")
    for name in hashlib.algorithms_guaranteed:
        if name.replace("_", "") == wanted and not name.startswith("shake"):
            return hashlib.new(name)
    return None


def _file_digest(path: Path, hasher: hashlib._Hash) -> str:
    with path.open("rb") as fh:
        while block := fh.read(_HASH_BLOCK):
            hasher.update(block)
    return hasher.hexdigest()


def integrity_problem(path: Path, ref: FileRef) -> str | None:
    """What is wrong with `path`'s size or checksum against `ref`, or None."""
    size = path.stat().st_size
    if ref.size is not None and size != ref.size:
        return f"size mismatch: expected {ref.size} bytes, got {size}"
    if ref.checksum:
        hasher = _new_hash(ref.checksum_algorithm, ref.checksum.strip())
        if hasher is None:
            log.warning("%s: cannot check %s checksum", path.name, ref.checksum_algorithm)
            return None
        got = _file_digest(path, hasher)
        if got.lower() != ref.checksum.strip().lower():
            return f"{hasher.name} checksum mismatch: expected {ref.checksum.strip()}, got {got}"
    return None


def _checksum_known(ref: FileRef) -> bool:
    return (
        bool(ref.checksum) and _new_hash(ref.checksum_algorithm, ref.checksum.strip()) is not None
    )


def is_complete(path: Path, ref: FileRef) -> bool:
    """Whether `path` already holds `ref`'s file: size and checksum match where known, else the
    file opens as its kind (an empty file never counts)."""
    path = Path(path)
    if not path.is_file():
        return False
    if ref.size is not None or _checksum_known(ref):
        return integrity_problem(path, ref) is None
    if path.stat().st_size == 0:
        return False
    try:
        verify_file(path, resolve_kind(ref.kind, path.name))
    except DownloadError:
        return False
    return True
