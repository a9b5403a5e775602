"""Sentinel-3 SYN L2 surface reflectance from the Copernicus Data Space Ecosystem's Sentinel Hub.

The Sentinel Hub catalogue lists the days with SYN acquisitions over the region; the Process API
then cuts each UTC day to a grid over the region's bbox in the region CRS at ``resolution`` m
(edges snapped outward to multiples of it), one request per chunk of at most ``max_pixels`` per
side. The chunks are fetched by the shared :class:`~lstfill.download.fetch.Fetcher` with the
same OAuth client and bearer session as Sentinel-2 (token handling and catalogue errors are
:mod:`lstfill.download.cdse`'s, grid, chunking and the download loop
:mod:`lstfill.download.process_api`'s), assembled and written as one day file in the layout of
:mod:`lstfill.sources.sentinel3`.

Collection. CDSE's Sentinel Hub serves ``sentinel-3-synergy-l2`` (Process API data type and
Catalog collection id; CDSE documentation "APIs/SentinelHub/Data/S3SYNL2", eu-cdse/documentation
on GitHub; third-party code listing the CDSE catalogue shows it too). Its SY_2_SYN
bands are the surface directional reflectances of OLCI B01-B12, B16-B18, B21 (300 m) and SLSTR
S1-S3, S5, S6 (500 m), plus ``dataMask``; default unit REFLECTANCE (source UINT16). SYN is chosen
over ``sentinel-3-olci-l2`` because OLCI L2 LAND on Sentinel Hub has no per-band surface
reflectance (only the rectified RC681/RC865, OTCI, GIFAPAR, IWV), and over the L1B
``sentinel-3-olci``/``-slstr`` collections because those are top-of-atmosphere; EFAST (Senty et
al. 2024) fuses SYN SDR_Oa04/06/08/17 as well. sentinelhub-py 3.11 has no definition of this
collection, so :data:`SYN_L2` defines it (api_id and catalog_id as documented, service URL CDSE).

Cloud flags. The product's CLOUD_flags/SYN_flags are not among the documented Sentinel Hub
bands, so CLEAR cannot use them: it is 1 where ``dataMask`` is 1 and every requested band holds
a finite, positive reflectance. The SYN processor retrieves surface reflectance only over land
under a cloud-free atmosphere and leaves clouds and water without data (ESA SYN Level-2 product
description; STEP forum "Why there are missing pixels in Sentinel 3 SYN products?"), so clouds
and water come out as CLEAR 0, but the CLOUD_AMBIGUOUS and CLOUD_MARGIN pixels that EFAST also
drops are not screened: the fusion step should buffer clouds (EFAST's distance-to-cloud score).

Mosaicking. One request per UTC day (00:00:00 to 23:59:59Z) with ``mostRecent``: the only other
order this collection documents is ``leastRecent`` (no ``leastCC``: SYN tiles carry no cloud
cover, and neither the Process API nor the catalogue documents a cloud filter for it, hence no
``max_cloud_cover`` setting); mostRecent prefers the later of the day's overpasses, and between
an NTC and an NRT tile of the same time the NTC one (documented).

Checked in documentation only: data type and catalogue ids, band names and units, mosaicking
orders, the catalogue's ``distinct=date`` extension. Not checked live (no network here): that
the catalogue answers ``distinct`` with plain date strings (items are accepted too), how
no-data SDR values inside ``dataMask`` 1 reach the evalscript (NaN is assumed; 0 or negative
values are treated the same), whether a pixel without data in the latest tile is filled from an
earlier tile of the day (Sentinel Hub's usual simple mosaicking), that S5/S6 are the nadir view,
and the processing units a day costs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from sentinelhub import DataCollection, SHConfig
from sentinelhub.data_collections import DataCollectionDefinition

from lstfill.download import cdse
from lstfill.download import process_api as api
from lstfill.download.base import Area, DownloadError, FileRef
from lstfill.download.cdse import CDSE_TOKEN_URL, CDSE_URL, PROVIDER
from lstfill.download.credentials import SentinelHubCredentials, sentinelhub_credentials
from lstfill.sources import sentinel3 as s3

ACCOUNT = "sentinelhub"
COLLECTION_ID = "sentinel-3-synergy-l2"
COLLECTION_NAME = "SENTINEL3_SYN_L2_CDSE"
SYN_L2 = DataCollectionDefinition(
    api_id=COLLECTION_ID,
    catalog_id=COLLECTION_ID,
    service_url=CDSE_URL,
    collection_type="Sentinel-3",
    processing_level="L2",
)
# SY_2_SYN variable -> its name in Sentinel Hub evalscripts
SH_BANDS = {
    "SDR_Oa04": "B04",
    "SDR_Oa06": "B06",
    "SDR_Oa08": "B08",
    "SDR_Oa17": "B17",
    "SDR_S5N": "S5",
    "SDR_S6N": "S6",
}
MOSAICKING = "mostRecent"
DEFAULTS: dict[str, Any] = {
    "base_url": CDSE_URL,
    "token_url": CDSE_TOKEN_URL,
    "resolution": 300,
    "max_pixels": 2500,
    "bands": list(s3.BANDS),
}
MAX_PROCESS_PIXELS = 2500  # the Process API's largest output side

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# settings and collection


def settings_with_defaults(settings: dict[str, Any] | None) -> dict[str, Any]:
    """`settings` over :data:`DEFAULTS`, with URLs without a trailing slash and values checked;
    ``bands`` (Sentinel-2-equivalent names) in :data:`lstfill.sources.sentinel3.BANDS` order."""
    merged = cdse.merged_settings(DEFAULTS, settings)
    merged["bands"] = cdse.checked_bands(merged["bands"], list(s3.BANDS), "Sentinel-3 ")
    if not 1 <= int(merged["max_pixels"]) <= MAX_PROCESS_PIXELS:
        raise DownloadError(
            f"{PROVIDER}: Sentinel-3 settings 'max_pixels' must be 1..{MAX_PROCESS_PIXELS}, "
            f"got {merged['max_pixels']}; fix the config"
        )
    if not float(merged["resolution"]) > 0:
        raise DownloadError(
            f"{PROVIDER}: Sentinel-3 settings 'resolution' must be positive, got "
            f"{merged['resolution']}; fix the config"
        )
    return merged


def collection(base_url: str) -> DataCollection:
    """The SYN L2 collection served by `base_url`, registered once per URL."""
    return cdse.collection(base_url, SYN_L2, COLLECTION_NAME)


def source_bands(bands: Sequence[str]) -> list[str]:
    """The Sentinel Hub band names of Sentinel-2-equivalent `bands`."""
    return [SH_BANDS[s3.BANDS[b]] for b in bands]


# ---------------------------------------------------------------------------------------------
# catalogue search


def search(
    area: Area,
    start: dt.date,
    end: dt.date,
    settings: dict[str, Any],
    *,
    creds: SentinelHubCredentials | None = None,
) -> list[FileRef]:
    """Process API requests (one FileRef per chunk) for every day from `start` to `end`
    (inclusive) on which the catalogue has SYN L2 data over `area`."""
    cfg = settings_with_defaults(settings)
    config = cdse.sh_config(creds or sentinelhub_credentials(), cfg)
    days = acquisition_days(area, start, end, cfg, config)
    refs: list[FileRef] = []
    for day in days:
        refs.extend(day_refs(area, day, cfg, config))
    log.info("%s: Sentinel-3 SYN on %d day(s) in %d request(s)", PROVIDER, len(days), len(refs))
    return refs


def acquisition_days(
    area: Area, start: dt.date, end: dt.date, cfg: dict[str, Any], config: SHConfig
) -> list[dt.date]:
    """The UTC days in `start`..`end` with SYN data over the area's bounds (catalogue
    ``distinct=date``, every page), sorted."""
    found = cdse.catalog_search(
        config,
        collection(cfg["base_url"]),
        area.grid,
        "Sentinel-3 ",
        time=(start, end),
        distinct="date",
    )
    days = {day for entry in found if (day := _entry_day(entry)) is not None}
    return sorted(day for day in days if start <= day <= end)


def _entry_day(entry: Any) -> dt.date | None:
    """The UTC day of a ``distinct=date`` answer ("2023-07-01") or of a catalogue item."""
    text = entry
    if isinstance(entry, dict):
        text = (entry.get("properties") or {}).get("datetime")
    if not isinstance(text, str):
        return None
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        time = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        log.warning("%s: ignoring catalogue entry %r (not a date)", PROVIDER, text)
        return None
    return (time if time.tzinfo else time.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).date()


# ---------------------------------------------------------------------------------------------
# Process API requests


def evalscript(bands: Sequence[str]) -> str:
    """Evalscript for uint16 DN = round(reflectance * 10000) of `bands` (Sentinel-2-equivalent
    names), kept >= 1 where finite, plus a last CLEAR band; all 0 where ``dataMask`` is 0.

    CLEAR is 1 where every band is finite and positive (see the module docstring: the collection
    exposes no cloud flags). Units are left at the documented default (REFLECTANCE for the
    optical bands, DN for dataMask).
    """
    names = source_bands(bands)
    inputs = json.dumps([*names, "dataMask"])
    values = ", ".join(f"dn(s.{n})" for n in names)
    clear = " && ".join(f"ok(s.{n})" for n in names)
    zeros = ", ".join("0" for _ in range(len(names) + 1))
    return (
        "//VERSION=3\n"
        "function setup() {\n"
        "  return {\n"
        f"    input: [{{bands: {inputs}}}],\n"
        f'    output: {{id: "default", bands: {len(names) + 1}, sampleType: "UINT16"}}\n'
        "  };\n"
        "}\n"
        "function dn(r) {\n"
        "  return isFinite(r) ? Math.min(Math.max(Math.round(r * 10000), 1), 65535) : 0;\n"
        "}\n"
        "function ok(r) {\n"
        "  return isFinite(r) && r > 0;\n"
        "}\n"
        "function evaluatePixel(s) {\n"
        f"  if (!s.dataMask) return [{zeros}];\n"
        f"  return [{values}, {clear} ? 1 : 0];\n"
        "}\n"
    )


def day_interval(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The Process API time range of one UTC day."""
    start = dt.datetime.combine(day, dt.time(0, 0, 0), tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1) - dt.timedelta(seconds=1)


def day_id(day: dt.date) -> str:
    return f"{day:%Y%m%d}"


def day_refs(area: Area, day: dt.date, settings: dict[str, Any], config: SHConfig) -> list[FileRef]:
    """The Process API requests of one day: one per chunk of the ``resolution`` m grid."""
    cfg = settings_with_defaults(settings)
    coll = collection(cfg["base_url"])
    grid = api.res_grid(area.grid, cfg["resolution"])
    bands = list(cfg["bands"])
    input_args = {
        "time_interval": day_interval(day),
        "mosaicking_order": MOSAICKING,
        "upsampling": "NEAREST",
    }
    return api.chunk_refs(
        config,
        coll,
        evalscript(bands),
        input_args,
        grid,
        int(cfg["max_pixels"]),
        partial(_chunk_name, day_id(day)),
        {"day": day_id(day), "bands": bands, "res": grid.res[0]},
    )


def _chunk_name(day: str, index: tuple[int, int]) -> str:
    return f"{api.CHUNKS}/{day}/{index[0]}_{index[1]}.tif"


# ---------------------------------------------------------------------------------------------
# download and assembly


def _day_path(dest: Path, day: str) -> Path:
    return dest / s3.filename(dt.datetime.strptime(day, "%Y%m%d").date())


def _complete(path: Path, refs: Sequence[FileRef]) -> bool:
    """Whether `path` is a readable day file with the requested bands on the requested grid."""
    meta = refs[0].meta or {}
    try:
        with rasterio.open(path) as src:
            return (
                (src.height, src.width) == tuple(meta["shape"])
                and list(src.descriptions) == [*meta["bands"], s3.CLEAR_BAND]
                and src.transform.almost_equals(Affine(*meta["transform"]))
            )
    except (rasterio.errors.RasterioError, OSError):
        return False


def assemble_day(dest: Path, day: str, refs: Sequence[FileRef]) -> Path | None:
    """Write the day file from its fetched chunks; None (and nothing written) when no pixel is
    clear."""
    meta = refs[0].meta or {}
    bands = list(meta["bands"])
    stack = api.mosaic(dest, refs, len(bands) + 1)
    clear = stack[-1] > 0
    if not clear.any():
        log.warning("%s: Sentinel-3 %s has no clear pixel over the region; skipped", PROVIDER, day)
        return None
    reflectance = {
        band: np.where(stack[i] > 0, stack[i] * s3.SCALE, np.nan) for i, band in enumerate(bands)
    }
    path = _day_path(dest, day)
    tags = {"COLLECTION": COLLECTION_ID, "MOSAICKING": MOSAICKING, "RESOLUTION": meta["res"]}
    s3.write_day(
        path,
        dt.datetime.strptime(day, "%Y%m%d").date(),
        reflectance,
        clear,
        Affine(*meta["transform"]),
        meta["crs"],
        tags,
    )
    log.info("%s: wrote %s", PROVIDER, path)
    return path


PRODUCT = api.Product(
    key="day",
    name="Sentinel-3",
    with_defaults=settings_with_defaults,
    target=_day_path,
    complete=_complete,
    assemble=assemble_day,
    label="Sentinel-3 ",
)
# Fetch the chunks of every day in the refs and write each day file into `dest` (see
# :func:`lstfill.download.process_api.download`); a day without any clear pixel is skipped with
# a warning. Returns the day files.
download = partial(api.download, PRODUCT)
