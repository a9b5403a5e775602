"""Download jobs: each source's provider, the credential check that runs before any request,
search and fetch through the one provider interface (:mod:`lstfill.download.base`), and the
manifest a workflow job leaves behind. The days and settings of each source are
:mod:`lstfill.download.targets`'.

The workflow runs one job per source and day (SRTM: one per region); `lstfill download` runs
a whole date range at once. Both go through :func:`run_download`.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
from pathlib import Path
from typing import Any, cast

from lstfill.download import credentials
from lstfill.download.base import Area, FileRef, Provider
from lstfill.download.targets import SOURCES
from lstfill.errors import ConfigError
from lstfill.io import atomic_output

log = logging.getLogger(__name__)


def provider(source: str) -> Provider:
    """The provider module of a source (imported on demand: each pulls in its own client)."""
    if source not in SOURCES:
        raise ConfigError("download.sources", f"unknown source {source!r}; known: {SOURCES}")
    return cast(Provider, importlib.import_module(f"lstfill.download.{source}"))


def require_credentials(
    source: str, secrets: str | Path | None = None, settings: dict | None = None
) -> Any:
    """The credentials of the source's account, or MissingCredentials naming what to set (before
    any request); None where it needs no account, or its `own_login` hook says the settings'
    server has a login of its own (the provider reads that itself)."""
    module = provider(source)
    own_login = getattr(module, "own_login", None)
    if module.ACCOUNT is None or (own_login is not None and own_login(settings or {})):
        return None
    if module.ACCOUNT == "earthdata":
        return credentials.earthdata_credentials(secrets, purpose=f"{source} downloads")
    return credentials.sentinelhub_credentials(secrets)


def search(
    source: str, area: Area, start: dt.date | None, end: dt.date | None, settings: dict, creds: Any
) -> list[FileRef]:
    """The files a source has for the area and days (a catalogue query, no transfer)."""
    return provider(source).search(area, start, end, settings, creds=creds)


def fetch(source: str, refs: list[FileRef], dest: Path, settings: dict, creds: Any) -> list[Path]:
    """Fetch `refs` into `dest` (the source's raw folder)."""
    if not refs:
        return []
    return provider(source).download(refs, dest, settings, creds=creds)


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
