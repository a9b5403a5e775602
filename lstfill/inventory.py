"""The inventory of a region's raw files: what acquisitions exist and which files feed each.

The acquisition step (`lstfill.acquire`) builds it by scanning the provider folders; the
workflow's acquisition checkpoint writes it, and every later rule reads its inputs from it.
These readers run when Snakemake builds the DAG, so this module imports only the standard
library.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from lstfill.errors import InputError

SOURCES = ("ecostress", "sentinel2", "inca", "srtm", "landcover", "modis", "sentinel3")

# Why an ECOSTRESS granule (or a whole acquisition) gives no clear LST over the region. The
# first two leave the acquisition out of the inventory (its `excluded` table says why); a
# cloudy one stays in: its product is model output, and its tags say so.
NO_OVERLAP = "no overlap"  # the granule's footprint does not intersect the region's grid
NO_VALID_LST = "no valid LST"  # it does, but every LST pixel there is fill/NaN (before QC)
CLOUD = "cloud"  # LST is there (or flagged cloud), but QC and the cloud mask reject all of it


def acquisition_id(time: dt.datetime) -> str:
    """The {acquisition} wildcard: its UTC time as YYYYMMDDTHHMMSS."""
    return time.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S")


def parse_acquisition_id(acq: str) -> dt.datetime:
    return dt.datetime.strptime(acq, "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)


def modis_days(inv: dict[str, Any]) -> dict[str, dict[str, str]]:
    """{YYYYMMDD: {"MOD11A1": path, "MOD09GQ": path}} for days with both products, as the
    acquisition step listed them."""
    if "modis_days" not in inv and any(inv.get("modis", {}).values()):
        raise InputError(
            f"inventory of region {inv.get('region')!r}",
            "has MODIS files but no 'modis_days' table (written by an older lstfill): "
            "delete resources/<region>/inventory.json to rebuild it",
        )
    return inv.get("modis_days", {})


def read_inventory(path: str | Path) -> dict[str, Any]:
    """A region's inventory; InputError naming the file when it is missing or not JSON."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no inventory yet: run the acquisition first (lstfill acquire raw)")
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a valid inventory ({exc}); delete it to rebuild it") from None


def excluded_acquisitions(inv: dict[str, Any]) -> dict[str, str]:
    """{acquisition id: reason} of the acquisitions left out of `acquisitions` (NO_OVERLAP or
    NO_VALID_LST); empty for inventories written before lstfill recorded them."""
    return dict(inv.get("excluded", {}))


def acquisition_entry(inv: dict[str, Any], acq: str) -> dict[str, Any]:
    """The inventory entry of acquisition `acq`; InputError saying why when it was left out
    (so asking for an excluded acquisition's cube by name explains itself)."""
    entry = inv["acquisitions"].get(acq)
    if entry is not None:
        return entry
    reason = excluded_acquisitions(inv).get(acq)
    problem = (
        f"acquisition {acq} was left out of the inventory: {reason}"
        if reason
        else f"acquisition {acq} is not in the inventory"
    )
    where = inv.get("ecostress_dir", f"inventory of region {inv.get('region')!r}")
    raise InputError(where, problem)


def s2_scenes_near(inv: dict[str, Any], time: dt.datetime, window_days: float) -> list[str]:
    """S2 scene names within `window_days` of `time`, nearest first."""
    out = []
    for name, scene in inv["sentinel2"].items():
        delta = abs((dt.datetime.fromisoformat(scene["time"]) - time).total_seconds()) / 86400
        if delta <= window_days:
            out.append((delta, name))
    return [name for _, name in sorted(out)]


def inca_files_for(inv: dict[str, Any], time: dt.datetime, hours: int) -> list[str]:
    """INCA files overlapping [time - hours, time + 1 h]."""
    lo, hi = time - dt.timedelta(hours=hours), time + dt.timedelta(hours=1)
    return [
        f["path"]
        for f in inv["inca"]
        if dt.datetime.fromisoformat(f["start"]) <= hi and dt.datetime.fromisoformat(f["end"]) >= lo
    ]
