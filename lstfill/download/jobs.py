"""Download jobs: which days each source is fetched for, each provider's settings, the credential
check that runs before any request, and the manifest a workflow job leaves behind.

The workflow runs one job per source and day (SRTM: one per region); `lstfill download` runs
a whole date range at once. Both go through :func:`run_download`.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from lstfill.download import credentials
from lstfill.download.base import Area, FileRef
from lstfill.download.targets import SOURCES
from lstfill.errors import ConfigError
from lstfill.io import atomic_output

log = logging.getLogger(__name__)

# Which account each source needs (INCA needs none).
ACCOUNT = {
    "ecostress": "earthdata",
    "srtm": "earthdata",
    "modis": "earthdata",
    "sentinel2": "sentinelhub",
    "sentinel3": "sentinelhub",
    "inca": None,
}


def provider(source: str) -> ModuleType:
    """The provider module of a source (imported on demand: each pulls in its own client)."""
    if source not in SOURCES:
        raise ConfigError("download.sources", f"unknown source {source!r}; known: {SOURCES}")
    return importlib.import_module(f"lstfill.download.{source}")


def require_credentials(
    source: str, secrets: str | Path | None = None, settings: dict | None = None
) -> Any:
    """The source's credentials, or MissingCredentials naming what to set (before any request).

    A pymodis server with its own ~/.netrc entry needs no Earthdata account (None: the backend
    reads that entry itself)."""
    account = ACCOUNT[source]
    if source == "modis" and (settings or {}).get("backend") == "pymodis":
        host = urlsplit((settings or {}).get("url", "")).hostname
        if host and credentials.netrc_credentials(host) is not None:
            return None
    if account == "earthdata":
        return credentials.earthdata_credentials(secrets, purpose=f"{source} downloads")
    if account == "sentinelhub":
        return credentials.sentinelhub_credentials(secrets)
    return None


def search(
    source: str, area: Area, start: dt.date | None, end: dt.date | None, settings: dict, creds: Any
) -> list[FileRef]:
    """The files a source has for the area and days (a catalogue query, no transfer)."""
    module = provider(source)
    if source in ("sentinel2", "sentinel3", "modis"):  # Sentinel Hub and a Data Pool need a login
        return module.search(area, start, end, settings, creds=creds)
    return module.search(area, start, end, settings)


def fetch(source: str, refs: list[FileRef], dest: Path, settings: dict, creds: Any) -> list[Path]:
    """Fetch `refs` into `dest` (the source's raw folder)."""
    if not refs:
        return []
    module = provider(source)
    if ACCOUNT[source] is None:
        return module.download(refs, dest, settings)
    return module.download(refs, dest, settings, creds=creds)


def run_download(
    source: str,
    area: Area,
    start: dt.date | None,
    end: dt.date | None,
    settings: dict,
    raw_dir: str | Path,
    *,
    dry_run: bool = False,
    secrets: str | Path | None = None,
) -> tuple[list[FileRef], list[Path]]:
    """Check credentials, search, then (unless `dry_run`) fetch into ``raw_dir/<source>``."""
    creds = require_credentials(source, secrets, settings)
    refs = search(source, area, start, end, settings, creds)
    span = "all dates" if start is None else f"{start}..{end}"
    log.info("%s %s %s: %d files found", area.name, source, span, len(refs))
    if dry_run:
        return refs, []
    return refs, fetch(source, refs, Path(raw_dir) / source, settings, creds)


def write_manifest(
    path: str | Path,
    source: str,
    region: str,
    day: dt.date | None,
    refs: list[FileRef],
    paths: list[Path],
) -> Path:
    """Record what a download job fetched (the job's output: an empty list is a valid answer)."""
    record = {
        "source": source,
        "region": region,
        "day": day.isoformat() if day else None,
        "files": [str(p) for p in paths],
        "found": [ref.name for ref in refs],
    }
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1))
    return Path(path)


def describe(refs: list[FileRef]) -> str:
    """A table of the files a dry run would fetch (name and size) with a total."""
    lines = [f"{'file':<80} {'MB':>9}"]
    total = 0
    for ref in refs:
        size = f"{ref.size / 1e6:9.1f}" if ref.size else f"{'?':>9}"
        total += ref.size or 0
        lines.append(f"{ref.name:<80} {size}")
    lines.append(f"{len(refs)} files, {total / 1e6:.1f} MB known")
    return "\n".join(lines)
