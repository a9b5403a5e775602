"""What the workflow needs of the downscaling job at parse time: the demo file name, the input
files a region names, the key of its sample cache and the days its samples hold. Standard
library only, so a dry run needs neither PyTorch nor the NetCDF stack."""

from __future__ import annotations

import glob
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lstfill.errors import ConfigError

DEMO_YEAR = 2020
DEMO_LST_NAME = f"LST_{DEMO_YEAR:04d}_NetCDF.nc"  # the published name of a yearly file
# keys of the downscale config section that decide the samples (and so their cache key)
SAMPLE_KEYS = ("bands", "qa_strict", "max_days", "max_samples_per_image", "radius")


def resolve_files(patterns: Sequence[str], key: str) -> list[str]:
    """Paths named by `patterns` (plain paths, or glob patterns whose matches are sorted),
    without repeats.

    A plain path is kept even if it does not exist yet (Snakemake reports it as missing input);
    a glob pattern that matches nothing is a ConfigError naming `key`.
    """
    out: list[str] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            found = sorted(glob.glob(pattern))
            if not found:
                raise ConfigError(key, f"pattern {pattern!r} matches no file")
            out += found
        else:
            out.append(pattern)
    return list(dict.fromkeys(out))


def samples_key(params: dict[str, Any]) -> str:
    """Short stable hash of `params` (sha256 of the sorted-key JSON, 12 hex), naming a cache.
    `params` are config values and file names: plain JSON types."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def days_of(info_path: str | Path) -> list[str]:
    """The YYYYMMDD days listed by a samples summary."""
    with open(info_path) as f:
        return list(json.load(f)["days"])


def region_files(cfg: dict[str, Any], region: str, lst_demo: str, dem_demo: str) -> dict:
    """{"lst": yearly LST files, "dem": DEM files} of downscaling region `region` (`lst_demo`
    and `dem_demo`: the demo's files, for a demo region)."""
    block = cfg["downscale"]["regions"][region]
    if block["source"] == "demo":
        return {"lst": [lst_demo], "dem": [dem_demo]}
    key = f"downscale.regions.{region}"
    return {
        "lst": resolve_files(block["lst_files"], f"{key}.lst_files"),
        "dem": resolve_files(block["dem_files"], f"{key}.dem_files"),
    }


def sample_params(cfg: dict[str, Any], files: dict) -> dict[str, Any]:
    """What a region's samples depend on (their file is named by its hash: a cache per setting)."""
    return {**{k: cfg["downscale"][k] for k in SAMPLE_KEYS}, "files": files}
