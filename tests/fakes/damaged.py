"""Damaged provider files: a good file cut short, as an interrupted download leaves it."""

from __future__ import annotations

from pathlib import Path


def truncated(src: Path, dest: Path | None = None, keep: float = 0.5) -> Path:
    """The first `keep` fraction of the bytes of `src`, written to `dest` (default: over `src`
    itself); returns the path written."""
    data = src.read_bytes()
    dest = src if dest is None else dest
    dest.write_bytes(data[: int(len(data) * keep)])
    return dest
