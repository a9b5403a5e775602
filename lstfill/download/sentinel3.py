"""Sentinel-3 SYN L2 surface reflectance from the Copernicus Data Space Ecosystem's Sentinel Hub.

The Sentinel Hub catalogue lists the days with SYN acquisitions over the region; the Process API
then cuts each UTC day to a grid over the region's bbox in the region CRS at ``resolution`` m
(edges snapped outward to multiples of it), one request per chunk of at most ``max_pixels`` per
side. The chunks are fetched by the shared :class:`~lstfill.download.fetch.Fetcher` with the
same OAuth client and bearer session as Sentinel-2 (:mod:`lstfill.download.sentinel2`, whose
token handling, catalogue errors, grid and chunking this module reuses), assembled and written
as one day file in the layout of :mod:`lstfill.sources.sentinel3`.

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

import contextlib
import datetime as dt
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import requests
from affine import Affine
from sentinelhub import (
    BBox,
    DataCollection,
    MimeType,
    SentinelHubCatalog,
    SentinelHubRequest,
    SHConfig,
)
from sentinelhub.data_collections import DataCollectionDefinition
from sentinelhub.exceptions import DownloadFailedException

from lstfill.download import sentinel2 as sh
from lstfill.download.base import Area, AuthError, DownloadError, FileRef
from lstfill.download.credentials import SentinelHubCredentials, sentinelhub_credentials
from lstfill.download.fetch import Fetcher, public_url
from lstfill.download.sentinel2 import (
    CDSE_TOKEN_URL,
    CDSE_URL,
    CREDENTIAL_HINT,
    POLICY,
    PROVIDER,
    _bbox,
    _status,
    authorized_session,
    chunk_windows,
    open_session,
    res_grid,
    sh_config,
)
from lstfill.grid import Grid
from lstfill.sources import sentinel3 as s3

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
    merged = {**DEFAULTS, **(settings or {})}
    merged["base_url"] = str(merged["base_url"]).rstrip("/")
    merged["token_url"] = str(merged["token_url"])
    bands = [str(b).upper() for b in merged["bands"]]
    unknown = sorted(set(bands) - set(s3.BANDS))
    if unknown or not bands:
        raise DownloadError(
            f"{PROVIDER}: Sentinel-3 settings 'bands' must be a non-empty subset of "
            f"{list(s3.BANDS)}, got {merged['bands']}; fix the config"
        )
    merged["bands"] = [b for b in s3.BANDS if b in bands]
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


def _service(cfg: dict[str, Any]) -> dict[str, Any]:
    """The part of the settings the shared Sentinel Hub helpers read."""
    return {"base_url": cfg["base_url"], "token_url": cfg["token_url"]}


def collection(base_url: str) -> DataCollection:
    """The SYN L2 collection served by `base_url`, registered once per URL."""
    return sh.collection(base_url, SYN_L2, COLLECTION_NAME)


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
    creds = creds or sentinelhub_credentials()
    config = sh_config(creds, _service(cfg))
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
    catalog = SentinelHubCatalog(config=config)
    # Our own session: token errors become AuthError, and no token is cached process-wide.
    catalog.client.session = open_session(config)
    url = f"{catalog.service_url}/search"
    try:
        found = list(
            catalog.search(
                collection(cfg["base_url"]),
                bbox=_bbox(area.grid.bounds, area.grid.crs),
                time=(start, end),
                distinct="date",
            )
        )
    except (DownloadFailedException, requests.RequestException) as exc:
        status = _status(exc)
        if status in (401, 403):
            raise AuthError(
                f"{PROVIDER}: {public_url(url)} refused the token (HTTP {status}); "
                f"{CREDENTIAL_HINT}"
            ) from None
        reason = f"HTTP {status}" if status else type(exc).__name__
        raise DownloadError(
            f"{PROVIDER}: Sentinel-3 catalogue search at {public_url(url)} failed ({reason}); "
            "check the settings and retry later"
        ) from None
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


def process_payload(
    config: SHConfig,
    coll: DataCollection,
    bands: Sequence[str],
    bbox: BBox,
    size: tuple[int, int],
    day: dt.date,
) -> tuple[str, dict[str, Any]]:
    """(URL, JSON body) of one Process API request, as sentinelhub-py builds it."""
    request = SentinelHubRequest(
        evalscript=evalscript(bands),
        input_data=[
            SentinelHubRequest.input_data(
                coll,
                time_interval=day_interval(day),
                mosaicking_order=MOSAICKING,
                upsampling="NEAREST",
            )
        ],
        responses=[SentinelHubRequest.output_response("default", MimeType.TIFF)],
        bbox=bbox,
        size=size,
        config=config,
    )
    download = request.download_list[0]
    return str(download.url), json.loads(json.dumps(download.post_values))


def day_id(day: dt.date) -> str:
    return f"{day:%Y%m%d}"


def day_refs(area: Area, day: dt.date, settings: dict[str, Any], config: SHConfig) -> list[FileRef]:
    """The Process API requests of one day: one per chunk of the ``resolution`` m grid."""
    cfg = settings_with_defaults(settings)
    coll = collection(cfg["base_url"])
    grid = res_grid(area.grid, cfg["resolution"])
    return [
        _chunk_ref(config, coll, day, grid, cfg["bands"], index, window)
        for index, window in chunk_windows(*grid.shape, int(cfg["max_pixels"]))
    ]


def _chunk_ref(
    config: SHConfig,
    coll: DataCollection,
    day: dt.date,
    grid: Grid,
    bands: list[str],
    index: tuple[int, int],
    window: tuple[int, int, int, int],
) -> FileRef:
    """The Process API request of one chunk of `grid`; `meta` says where it goes."""
    r0, c0, h, w = window
    x0, y1 = grid.transform @ (c0, r0)
    x1, y0 = grid.transform @ (c0 + w, r0 + h)
    bbox = _bbox((x0, y0, x1, y1), grid.crs)
    url, body = process_payload(config, coll, bands, bbox, (w, h), day)
    meta = {
        "day": day_id(day),
        "row": index[0],
        "col": index[1],
        "window": [r0, c0, h, w],
        "bands": list(bands),
        "res": grid.res[0],
        "shape": list(grid.shape),
        "transform": list(grid.transform)[:6],
        "crs": grid.crs,
    }
    return FileRef(
        url=url,
        name=f".chunks/{day_id(day)}/{index[0]}_{index[1]}.tif",
        kind="geotiff",
        method="POST",
        json=body,
        headers={"Accept": "image/tiff"},
        meta=meta,
    )


# ---------------------------------------------------------------------------------------------
# download and assembly


def download(
    refs: Sequence[FileRef],
    dest: str | Path,
    settings: dict[str, Any],
    *,
    creds: SentinelHubCredentials | None = None,
    fetcher: Fetcher | None = None,
) -> list[Path]:
    """Fetch the chunks of every day in `refs` and write each day file into `dest`.

    A day whose file is already complete is not fetched again. Without `fetcher`, one is made
    with a bearer-token session for `creds` (default: :func:`sentinelhub_credentials`). Days
    without any clear pixel are skipped with a warning. Returns the day files.
    """
    cfg = settings_with_defaults(settings)
    dest = Path(dest)
    groups = _by_day(refs)
    todo = {d: group for d, group in groups.items() if not _complete(_day_path(dest, d), group)}
    if todo and fetcher is None:
        creds = creds or sentinelhub_credentials()
        session = authorized_session(creds, _service(cfg))
        fetcher = Fetcher(PROVIDER, session=session, policy=POLICY, credential_hint=CREDENTIAL_HINT)
    paths = []
    for day, group in groups.items():
        if day not in todo:
            log.info("%s: Sentinel-3 %s is already complete", PROVIDER, day)
            paths.append(_day_path(dest, day))
            continue
        assert fetcher is not None
        fetcher.fetch_all(group, dest)
        path = assemble_day(dest, day, group)
        shutil.rmtree(dest / ".chunks" / day, ignore_errors=True)
        if path is not None:
            paths.append(path)
    _remove_if_empty(dest / ".chunks")
    return paths


def _by_day(refs: Sequence[FileRef]) -> dict[str, list[FileRef]]:
    """The refs grouped by day ("YYYYMMDD"), in order of first appearance."""
    groups: dict[str, list[FileRef]] = {}
    for ref in refs:
        if not ref.meta or "day" not in ref.meta:
            raise DownloadError(f"{PROVIDER}: {ref.name} is not a Sentinel-3 chunk request")
        groups.setdefault(ref.meta["day"], []).append(ref)
    return groups


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


def _read_chunk(path: Path, ref: FileRef) -> np.ndarray:
    """Every band of a fetched chunk, after checking it is on the requested grid.

    A chunk on another grid is deleted (the fetcher would otherwise keep it as complete).
    """
    meta = ref.meta or {}
    r0, c0, h, w = meta["window"]
    count = len(meta["bands"]) + 1
    expected = Affine(*meta["transform"]) @ Affine.translation(c0, r0)
    with rasterio.open(path) as src:
        problem = None
        if (src.height, src.width) != (h, w) or src.count != count:
            problem = (
                f"{src.count} band(s) of {src.height}x{src.width} px, expected {count} of {h}x{w}"
            )
        elif not src.transform.almost_equals(expected, precision=1e-6 * abs(expected.a)):
            problem = f"another grid ({tuple(src.transform)[:6]}, expected {tuple(expected)[:6]})"
        data = None if problem else src.read()
    if data is None:
        path.unlink(missing_ok=True)
        raise DownloadError(
            f"{PROVIDER}: {public_url(ref.url)} answered {path.name} with {problem}; the chunk was "
            "deleted: run again, and report it if it persists"
        )
    return data


def assemble_day(dest: Path, day: str, refs: Sequence[FileRef]) -> Path | None:
    """Write the day file from its fetched chunks; None (and nothing written) when no pixel is
    clear."""
    meta = refs[0].meta or {}
    bands = list(meta["bands"])
    height, width = meta["shape"]
    stack = np.zeros((len(bands) + 1, height, width), dtype=np.uint16)
    for ref in refs:
        r0, c0, h, w = ref.meta["window"]  # type: ignore[index]
        stack[:, r0 : r0 + h, c0 : c0 + w] = _read_chunk(dest / ref.name, ref)
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


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()
