"""The viewer's JavaScript and CSS libraries (Leaflet, uPlot), vendored from the npm registry.

The viewer is a static HTML page that is opened offline, straight from disk (``file://``), so it
cannot load a library from a CDN: every library it uses is shipped inside its output folder.
The libraries come from npm tarballs pinned by version and by npm's integrity hash
(``dist.integrity``, an SRI string ``sha512-<base64>``), so a build is reproducible and a
tampered or corrupt tarball is refused. Like pip's wheels, the tarballs are fetched once, at
setup (``make`` runs ``python -m lstfill.viewer.vendor``), into a user cache (:func:`cache_dir`);
later builds take them from there and need no network. On a machine without network the
tarballs can be copied into that cache folder by hand.

:func:`vendor_assets` copies only the listed files of each tarball into
``<dest>/<package>/``, atomically.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import hashlib
import logging
import os
import shutil
import sys
import tarfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lstfill.download.base import DownloadError, FileRef
from lstfill.download.fetch import Fetcher, FetchPolicy
from lstfill.download.http import public_url
from lstfill.errors import InputError, LstfillError
from lstfill.io import atomic_folder

log = logging.getLogger(__name__)

DEFAULT_REGISTRY = "https://registry.npmjs.org"
CACHE_ENV = "LSTFILL_NPM_CACHE"
PROVIDER = "npm"
POLICY = FetchPolicy(retries=3, backoff_s=1.0, max_backoff_s=30.0, timeout_s=60.0, concurrency=2)
"""Few, short retries: an offline machine should fail within seconds, not minutes."""

_SRI_ALGORITHMS = ("sha512", "sha384", "sha256")


@dataclass(frozen=True)
class NpmPackage:
    """One pinned npm package: `integrity` is npm's ``dist.integrity`` (``sha512-<base64>``);
    `files` maps a path inside the tarball to its relative path in ``<dest>/<name>/``."""

    name: str
    version: str
    integrity: str
    files: Mapping[str, str] = field(hash=False)

    @property
    def tarball_name(self) -> str:
        """The tarball's file name, in the registry and in the cache."""
        return f"{self.name}-{self.version}.tgz"

    def tarball_url(self, registry: str = DEFAULT_REGISTRY) -> str:
        return f"{registry.rstrip('/')}/{self.name}/-/{self.tarball_name}"


PACKAGES: tuple[NpmPackage, ...] = (
    NpmPackage(
        name="leaflet",
        version="1.9.4",
        integrity="sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA==",
        files={
            "package/dist/leaflet.js": "leaflet.js",
            "package/dist/leaflet.css": "leaflet.css",
            "package/LICENSE": "LICENSE",
        },
    ),
    NpmPackage(
        name="uplot",
        version="1.6.32",
        integrity="sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==",
        files={
            "package/dist/uPlot.iife.min.js": "uPlot.iife.min.js",
            "package/dist/uPlot.min.css": "uPlot.min.css",
            "package/LICENSE": "LICENSE",
        },
    ),
)
"""The libraries the viewer ships, pinned (versions and integrity from the npm registry)."""


def cache_dir() -> Path:
    """Where tarballs are cached: ``$LSTFILL_NPM_CACHE``, else ``$XDG_CACHE_HOME/lstfill/npm``,
    else ``~/.cache/lstfill/npm``."""
    if folder := os.environ.get(CACHE_ENV):
        return Path(folder).expanduser()
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg).expanduser() / "lstfill" / "npm"
    return Path.home() / ".cache" / "lstfill" / "npm"


# --- integrity -----------------------------------------------------------------------------------


def _sri_algorithm(integrity: str) -> str:
    algorithm, sep, digest = integrity.strip().partition("-")
    if not sep or algorithm not in _SRI_ALGORITHMS or not digest:
        raise ValueError(f"not an SRI integrity string of {_SRI_ALGORITHMS}: {integrity!r}")
    return algorithm


def sri_of(path: Path, algorithm: str = "sha512") -> str:
    """The SRI integrity string (``<algorithm>-<base64 digest>``) of a file's bytes."""
    with Path(path).open("rb") as fh:
        digest = hashlib.file_digest(fh, algorithm).digest()
    return f"{algorithm}-{base64.b64encode(digest).decode('ascii')}"


# --- fetching ------------------------------------------------------------------------------------


def _fetcher() -> Fetcher:
    return Fetcher(PROVIDER, policy=POLICY)


def fetch_tarball(
    pkg: NpmPackage,
    cache: Path,
    registry: str = DEFAULT_REGISTRY,
    *,
    fetcher: Fetcher | None = None,
) -> Path:
    """``<cache>/<name>-<version>.tgz``, downloaded unless it is there with the right integrity.

    A tarball whose integrity does not match is deleted; a fresh download that does not match
    raises InputError naming the package, URL and both hashes. A failed download raises
    DownloadError naming the URL and the cache folder (where the tarball can be put by hand).
    """
    cache = Path(cache)
    target = cache / pkg.tarball_name
    algorithm = _sri_algorithm(pkg.integrity)
    if target.is_file():
        got = sri_of(target, algorithm)
        if got == pkg.integrity:
            log.debug("%s %s: using cached %s", pkg.name, pkg.version, target)
            return target
        log.warning("%s: integrity mismatch (got %s); fetching it again", target, got)
        target.unlink()
    url = pkg.tarball_url(registry)
    fetcher = fetcher if fetcher is not None else _fetcher()
    try:
        path = fetcher.fetch(FileRef(url=url, name=pkg.tarball_name, kind="auto"), cache)
    except DownloadError as exc:
        where = f"{fetcher.provider}: {public_url(url)} -> {cache / pkg.tarball_name}: "
        reason = " ".join(str(exc).removeprefix(where).split())  # one line
        raise DownloadError(
            f"cannot download viewer library {pkg.name} {pkg.version} from {url} ({reason}); "
            f"without network, put {pkg.tarball_name} into {cache} by hand "
            f"(copied from a machine where `python -m lstfill.viewer.vendor` ran)"
        ) from None
    got = sri_of(path, algorithm)
    if got != pkg.integrity:
        path.unlink(missing_ok=True)
        raise InputError(
            url,
            f"npm package {pkg.name} {pkg.version}: integrity mismatch: expected {pkg.integrity}, "
            f"got {got}; the download was deleted",
        )
    return path


# --- extraction ----------------------------------------------------------------------------------


def _unsafe(name: str) -> bool:
    """Whether a path is empty, absolute or climbs out with ``..``."""
    path = PurePosixPath(name.replace("\\", "/"))
    return not name or path.is_absolute() or ".." in path.parts


def _extract(pkg: NpmPackage, tarball: Path, folder: Path) -> list[str]:
    """Extract `pkg`'s listed members of `tarball` into `folder` under their output names;
    return the output names. Raises InputError for a missing, unsafe or non-file member."""
    outs = list(pkg.files.values())
    if len(set(outs)) != len(outs):
        raise InputError(tarball, f"{pkg.name}: two members map to one output name: {outs}")
    scratch = folder / ".tar"
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for member_name, out in pkg.files.items():
                if _unsafe(member_name) or _unsafe(out):
                    raise InputError(
                        tarball, f"{pkg.name}: refused unsafe path {member_name!r} -> {out!r}"
                    )
                try:
                    member = tar.getmember(member_name)
                except KeyError:
                    raise InputError(tarball, f"{pkg.name}: no member {member_name!r}") from None
                if not member.isfile():
                    raise InputError(
                        tarball, f"{pkg.name}: member {member_name!r} is not a regular file"
                    )
                safe = tarfile.data_filter(member, str(scratch))  # raises FilterError
                tar.extract(safe, scratch, filter="data")
                (folder / out).parent.mkdir(parents=True, exist_ok=True)
                os.replace(scratch / safe.name, folder / out)
    except tarfile.FilterError as exc:
        raise InputError(tarball, f"{pkg.name}: refused member: {exc}") from None
    except (tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError) as exc:
        raise InputError(tarball, f"{pkg.name}: cannot read the tarball: {exc}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return outs


def vendor_assets(
    dest: Path,
    *,
    cache: Path | None = None,
    registry: str = DEFAULT_REGISTRY,
    packages: Sequence[NpmPackage] | None = None,
    fetcher: Fetcher | None = None,
) -> dict[str, list[Path]]:
    """Copy each package's listed files into ``<dest>/<name>/`` (replacing that folder);
    return the written files per package name.

    Tarballs come from `cache` (default :func:`cache_dir`) or are fetched into it first. All
    packages are swapped in together at the end: if anything fails, no package folder is
    written or changed. `packages` defaults to :data:`PACKAGES`.
    """
    dest = Path(dest)
    cache = cache_dir() if cache is None else Path(cache)
    packages = PACKAGES if packages is None else tuple(packages)
    fetcher = fetcher if fetcher is not None else _fetcher()
    tarballs = [fetch_tarball(pkg, cache, registry, fetcher=fetcher) for pkg in packages]
    written: dict[str, list[Path]] = {}
    with contextlib.ExitStack() as stack:
        for pkg, tarball in zip(packages, tarballs, strict=True):
            staging = stack.enter_context(atomic_folder(dest / pkg.name))
            outs = _extract(pkg, tarball, staging)
            written[pkg.name] = [dest / pkg.name / out for out in outs]
    return written


# --- command line --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Fill the cache with the pinned tarballs (no network needed afterwards); print their
    paths."""
    parser = argparse.ArgumentParser(
        prog="python -m lstfill.viewer.vendor",
        description="Fetch the viewer's pinned npm tarballs into the cache and check their "
        "integrity.",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help=f"cache folder (default: ${CACHE_ENV}, $XDG_CACHE_HOME/lstfill/npm or "
        "~/.cache/lstfill/npm)",
    )
    parser.add_argument("--registry", default=DEFAULT_REGISTRY, help="default: %(default)s")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    cache = cache_dir() if args.cache is None else args.cache
    fetcher = _fetcher()
    try:
        for pkg in PACKAGES:
            path = fetch_tarball(pkg, cache, args.registry, fetcher=fetcher)
            print(f"{pkg.name} {pkg.version}: {path}")
    except LstfillError as exc:
        print(f"lstfill: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
