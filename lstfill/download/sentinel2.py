"""Sentinel-2 L2A from the Copernicus Data Space Ecosystem through sentinelhub-py.

The Sentinel Hub catalogue (STAC) lists the L2A products over the region; the Process API then
cuts each acquisition to the region's grid as uint16 GeoTIFFs, one request per output chunk of at
most ``max_pixels`` per side and per resolution (10 m: B02 B03 B04 B08; 20 m: B11 B12 SCL). The
chunks are fetched by the shared :class:`~lstfill.download.fetch.Fetcher` with an OAuth bearer
token, assembled band by band and written as one scene folder in the layout that
:mod:`lstfill.sources.sentinel2` reads.

Values are harmonised (``harmonizeValues``): Sentinel Hub removes the BOA_ADD_OFFSET of
processing baselines >= 04.00, so the files are tagged BOA_ADD_OFFSET=0 and reflectance is
DN / 10000 for every baseline. DN 0 means no data (``dataMask`` 0) in every band.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import rasterio
import requests
from affine import Affine
from oauthlib.oauth2 import InsecureTransportError, OAuth2Error
from pyproj import CRS as ProjCRS
from sentinelhub import (
    CRS,
    BBox,
    DataCollection,
    MimeType,
    SentinelHubCatalog,
    SentinelHubRequest,
    SentinelHubSession,
    SHConfig,
)
from sentinelhub.data_collections import DataCollectionDefinition
from sentinelhub.exceptions import DownloadFailedException

from lstfill.download.base import Area, AuthError, DownloadError, FileRef
from lstfill.download.credentials import SentinelHubCredentials, redact, sentinelhub_credentials
from lstfill.download.fetch import Fetcher, FetchPolicy, public_url
from lstfill.grid import Grid
from lstfill.io import atomic_folder, write_cog
from lstfill.sources import sentinel2 as s2

PROVIDER = "sentinelhub"
POLICY = FetchPolicy(concurrency=2)
CREDENTIAL_HINT = (
    "set SH_CLIENT_ID and SH_CLIENT_SECRET, or client_id and client_secret in the [sentinelhub] "
    "section of the secrets file (OAuth clients are created at "
    "https://shapps.dataspace.copernicus.eu/dashboard/)"
)
CDSE_URL = "https://sh.dataspace.copernicus.eu"
CDSE_TOKEN_URL = (
    "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"
)
DEFAULTS: dict[str, Any] = {
    "base_url": CDSE_URL,
    "token_url": CDSE_TOKEN_URL,
    "max_cloud_cover": 80,
    "bands": list(s2.REFLECTANCE_BANDS),
    "max_pixels": 2500,
}
COLLECTION_NAME = "SENTINEL2_L2A_CDSE"
TIME_MARGIN = dt.timedelta(minutes=1)  # Process API window around the granule's sensing time
CATALOG_FIELDS = {
    "include": ["id", "properties.datetime", "properties.eo:cloud_cover"],
    "exclude": [],
}
RESOLUTIONS = (10, 20)
_OAUTH_LOGGERS = ("requests_oauthlib", "oauthlib")  # they log the token request body at DEBUG

log = logging.getLogger(__name__)
T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# settings, configuration, errors


def settings_with_defaults(settings: dict[str, Any] | None) -> dict[str, Any]:
    """`settings` over :data:`DEFAULTS`, with URLs without a trailing slash and bands checked."""
    merged = {**DEFAULTS, **(settings or {})}
    merged["base_url"] = str(merged["base_url"]).rstrip("/")
    merged["token_url"] = str(merged["token_url"])
    bands = [str(b).upper() for b in merged["bands"]]
    unknown = sorted(set(bands) - set(s2.REFLECTANCE_BANDS))
    if unknown or not bands:
        raise DownloadError(
            f"{PROVIDER}: settings 'bands' must be a non-empty subset of "
            f"{list(s2.REFLECTANCE_BANDS)}, got {merged['bands']}; fix the config"
        )
    merged["bands"] = [b for b in s2.REFLECTANCE_BANDS if b in bands]
    if int(merged["max_pixels"]) < 1:
        raise DownloadError(f"{PROVIDER}: settings 'max_pixels' must be positive; fix the config")
    return merged


def sh_config(creds: SentinelHubCredentials | None, settings: dict[str, Any]) -> SHConfig:
    """A sentinelhub-py config for the service in `settings`, ignoring any local config file."""
    cfg = settings_with_defaults(settings)
    config = SHConfig(use_defaults=True)
    config.sh_client_id = creds.client_id if creds else ""
    config.sh_client_secret = creds.client_secret if creds else ""
    config.sh_base_url = cfg["base_url"]
    config.sh_token_url = cfg["token_url"]
    return config


def collection(
    base_url: str,
    base: DataCollectionDefinition | None = None,
    name: str = COLLECTION_NAME,
) -> DataCollection:
    """L2A (or the collection `base` defines, registered as `name`) served by `base_url` (CDSE
    by default), registered once per URL.

    sentinelhub-py keeps collections in a global enum and refuses a second, different definition
    under one name, so other URLs get a name suffixed with a hash of the URL.
    """
    url = base_url.rstrip("/")
    if url != CDSE_URL:
        name += "_" + hashlib.sha256(url.encode()).hexdigest()[:10].upper()
    base = base if base is not None else DataCollection.SENTINEL2_L2A.value
    definition = base.derive(service_url=url, _name=name)
    # Calling the enum with a definition returns the member already holding it, or registers it.
    return DataCollection(definition)


def _status(exc: BaseException) -> int | None:
    """The HTTP status behind a sentinelhub-py or requests error, if there was a reply."""
    inner = getattr(exc, "request_exception", None) or exc
    response = getattr(inner, "response", None)
    return getattr(response, "status_code", None)


# ---------------------------------------------------------------------------------------------
# OAuth token


@contextlib.contextmanager
def _quiet_oauth_logs() -> Iterator[None]:
    """Keep requests_oauthlib from logging the token request body (it holds the client secret)
    and the token at DEBUG while a token is fetched."""
    loggers = [logging.getLogger(name) for name in _OAUTH_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _token_failure(exc: BaseException, secret: str) -> tuple[bool, str]:
    """(refused, short reason) for a failed token request, without the server's reply text."""
    if isinstance(exc, InsecureTransportError):
        return False, "token_url must use https (OAUTHLIB_INSECURE_TRANSPORT=1 allows http tests)"
    if isinstance(exc, OAuth2Error):
        return True, redact(f"OAuth error {exc.error!r}", secret)
    status = _status(exc)
    if status is not None:
        return status in (400, 401, 403), f"HTTP {status}"
    if isinstance(exc, ValueError):
        return True, "client id or secret is empty"
    return False, f"no reply ({type(exc).__name__})"


def _guard_token(fetch: Callable[[], T], config: SHConfig) -> T:
    """Run a token fetch; a failure becomes AuthError (refused) or DownloadError (unreachable).

    The error is raised outside the ``except`` block so that neither its cause nor its context
    carries the OAuth library's exception (whose request holds the client secret).
    """
    url = public_url(config.sh_token_url)
    with _quiet_oauth_logs():
        try:
            return fetch()
        except (DownloadFailedException, OAuth2Error, requests.RequestException, ValueError) as exc:
            refused, reason = _token_failure(exc, config.sh_client_secret)
    if refused:
        raise AuthError(f"{PROVIDER}: {url} refused the OAuth client ({reason}); {CREDENTIAL_HINT}")
    raise DownloadError(
        f"{PROVIDER}: token request to {url} failed ({reason}); check the network and token_url, "
        "then retry"
    )


def open_session(config: SHConfig) -> SentinelHubSession:
    """A sentinelhub-py session holding a fresh token (client credentials grant)."""
    return _guard_token(lambda: SentinelHubSession(config=config), config)


class BearerAuth(requests.auth.AuthBase):
    """Puts the session's current token on every request; sentinelhub-py fetches a new one
    shortly before the old expires (CDSE tokens last minutes, a tile takes longer)."""

    def __init__(self, session: SentinelHubSession) -> None:
        self._session = session
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            token = _guard_token(lambda: self._session.token, self._session.config)
        return str(token["access_token"])

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request


def authorized_session(creds: SentinelHubCredentials, settings: dict[str, Any]) -> requests.Session:
    """A requests session that sends a valid Sentinel Hub bearer token (AuthError if refused)."""
    session = requests.Session()
    session.auth = BearerAuth(open_session(sh_config(creds, settings)))
    return session


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
    """Process API requests (one FileRef per chunk and resolution) for every L2A acquisition
    over `area` from `start` to `end` (inclusive) under ``max_cloud_cover`` percent."""
    cfg = settings_with_defaults(settings)
    creds = creds or sentinelhub_credentials()
    config = sh_config(creds, cfg)
    items = _catalog_items(area, start, end, cfg, config)
    refs: list[FileRef] = []
    for sid, item in select_items(items, area.mgrs_tile):
        refs.extend(scene_refs(area, sid.name, item["properties"]["datetime"], cfg, config))
    scenes = {ref.meta["scene"] for ref in refs if ref.meta}
    log.info("%s: %d scene(s) in %d request(s)", PROVIDER, len(scenes), len(refs))
    return refs


def _catalog_items(
    area: Area, start: dt.date, end: dt.date, cfg: dict[str, Any], config: SHConfig
) -> list[dict[str, Any]]:
    """Every catalogue item over the area's bounds in the period (all pages)."""
    catalog = SentinelHubCatalog(config=config)
    # Our own session: token errors become AuthError, and no token is cached process-wide.
    catalog.client.session = open_session(config)
    url = f"{catalog.service_url}/search"
    try:
        return list(
            catalog.search(
                collection(cfg["base_url"]),
                bbox=_bbox(area.grid.bounds, area.grid.crs),
                time=(start, end),
                filter=f"eo:cloud_cover < {cfg['max_cloud_cover']}",
                filter_lang="cql2-text",
                fields=CATALOG_FIELDS,
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
            f"{PROVIDER}: catalogue search at {public_url(url)} failed ({reason}); check the "
            "settings and retry later"
        ) from None


def product_id(item_id: str) -> s2.SceneId | None:
    """The L2A product an item id names (a trailing ".SAFE" is ignored), else None."""
    try:
        return s2.parse_scene_name(item_id.removesuffix(".SAFE"))
    except ValueError:
        return None


def select_items(
    items: Sequence[dict[str, Any]], tile: str | None
) -> list[tuple[s2.SceneId, dict[str, Any]]]:
    """One item per acquisition (spacecraft and datatake time), sorted by time.

    With `tile`, only that MGRS tile's products, and of reprocessed duplicates the newest
    baseline; without, the first product of each datatake (the Process API mosaics the whole
    datatake over the area anyway).
    """
    want = tile.upper().removeprefix("T") if tile else None
    chosen: dict[tuple[str, dt.datetime], tuple[s2.SceneId, dict[str, Any]]] = {}
    for item in items:
        sid = product_id(str(item.get("id", "")))
        if sid is None or (want and sid.tile != want):
            continue
        key = (sid.spacecraft, sid.time)
        if key not in chosen or _reprocessed(sid, chosen[key][0]):
            chosen[key] = (sid, item)
    return sorted(chosen.values(), key=lambda pair: (pair[0].time, pair[0].name))


def _reprocessed(sid: s2.SceneId, old: s2.SceneId) -> bool:
    """Whether `sid` is a newer processing of the same tile and datatake as `old`."""
    return sid.tile == old.tile and (sid.baseline, sid.proc_time) > (old.baseline, old.proc_time)


# ---------------------------------------------------------------------------------------------
# Process API requests


def _bbox(bounds: Sequence[float], crs: str) -> BBox:
    """A sentinelhub BBox in the grid's (EPSG) CRS."""
    epsg = ProjCRS.from_user_input(crs).to_epsg()
    if epsg is None:
        raise DownloadError(
            f"{PROVIDER}: the region CRS {crs!r} has no EPSG code; use one that does"
        )
    return BBox(tuple(float(v) for v in bounds), CRS(epsg))


def res_grid(grid: Grid, res: int) -> Grid:
    """The grid at `res` metres over `grid`'s extent, its edges snapped outward to multiples of
    `res` so that it stays on the native Sentinel-2 pixel grid (no resampling shift)."""
    x0, y0, x1, y1 = (round(v / res, 6) for v in grid.bounds)
    snapped = (math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1))
    return Grid.from_bbox(grid.crs, [v * res for v in snapped], res)


def split(n: int, max_size: int) -> list[tuple[int, int]]:
    """(offset, size) of the fewest near-equal parts of `n` pixels with no part over `max_size`."""
    parts = math.ceil(n / max_size)
    edges = [i * n // parts for i in range(parts + 1)]
    return [(a, b - a) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def chunk_windows(
    height: int, width: int, max_pixels: int
) -> list[tuple[tuple[int, int], tuple[int, int, int, int]]]:
    """((row, col), (row_off, col_off, height, width)) of the chunks that tile a grid exactly."""
    return [
        ((i, j), (r0, c0, h, w))
        for i, (r0, h) in enumerate(split(height, max_pixels))
        for j, (c0, w) in enumerate(split(width, max_pixels))
    ]


def evalscript(bands: Sequence[str]) -> str:
    """Evalscript for uint16 DNs of `bands`, all 0 where ``dataMask`` is 0.

    Reflectance DNs of valid pixels are kept >= 1 so that 0 keeps meaning "no data" (harmonised
    DNs of very dark pixels may be 0); SCL is returned as it is (its class 0 is "no data").
    """
    values = ", ".join(f"s.{b}" if b == "SCL" else f"Math.max(s.{b}, 1)" for b in bands)
    zeros = ", ".join("0" for _ in bands)
    inputs = json.dumps([*bands, "dataMask"])
    return (
        "//VERSION=3\n"
        "function setup() {\n"
        "  return {\n"
        f'    input: [{{bands: {inputs}, units: "DN"}}],\n'
        f'    output: {{id: "default", bands: {len(bands)}, sampleType: "UINT16"}}\n'
        "  };\n"
        "}\n"
        "function evaluatePixel(s) {\n"
        f"  return s.dataMask ? [{values}] : [{zeros}];\n"
        "}\n"
    )


def request_bands(bands: Sequence[str], res: int) -> list[str]:
    """The bands of the `res` m request: the wanted ones at that resolution, SCL at 20 m."""
    native = s2.BANDS_10M if res == 10 else s2.BANDS_20M
    return [b for b in native if b in bands or b == "SCL"]


def process_payload(
    config: SHConfig,
    coll: DataCollection,
    bands: Sequence[str],
    bbox: BBox,
    size: tuple[int, int],
    interval: tuple[dt.datetime, dt.datetime],
) -> tuple[str, dict[str, Any]]:
    """(URL, JSON body) of one Process API request, as sentinelhub-py builds it."""
    request = SentinelHubRequest(
        evalscript=evalscript(bands),
        input_data=[
            SentinelHubRequest.input_data(
                coll,
                time_interval=interval,
                other_args={"processing": {"harmonizeValues": True}},
            )
        ],
        responses=[SentinelHubRequest.output_response("default", MimeType.TIFF)],
        bbox=bbox,
        size=size,
        config=config,
    )
    download = request.download_list[0]
    return str(download.url), json.loads(json.dumps(download.post_values))


def _interval(time: str) -> tuple[dt.datetime, dt.datetime]:
    """The Process API time range around a catalogue datetime (one acquisition only)."""
    t = dt.datetime.fromisoformat(time.replace("Z", "+00:00"))
    t = (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    return t - TIME_MARGIN, t + TIME_MARGIN + dt.timedelta(seconds=1)


def scene_refs(
    area: Area, scene: str, time: str, settings: dict[str, Any], config: SHConfig
) -> list[FileRef]:
    """The Process API requests for one scene: per resolution, one per chunk of the grid."""
    cfg = settings_with_defaults(settings)
    sid = s2.parse_scene_name(scene)
    coll = collection(cfg["base_url"])
    interval = _interval(time)
    refs = []
    for res in RESOLUTIONS:
        bands = request_bands(cfg["bands"], res)
        if bands:
            grid = res_grid(area.grid, res)
            for index, window in chunk_windows(*grid.shape, int(cfg["max_pixels"])):
                refs.append(
                    _chunk_ref(config, coll, sid, time, interval, grid, bands, index, window)
                )
    return refs


def _chunk_ref(
    config: SHConfig,
    coll: DataCollection,
    sid: s2.SceneId,
    time: str,
    interval: tuple[dt.datetime, dt.datetime],
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
    url, body = process_payload(config, coll, bands, bbox, (w, h), interval)
    res = round(grid.res[0])
    meta = {
        "scene": sid.name,
        "res": res,
        "row": index[0],
        "col": index[1],
        "window": [r0, c0, h, w],
        "tile": sid.tile,
        "time": time,
        "bands": bands,
        "shape": list(grid.shape),
        "transform": list(grid.transform)[:6],
        "crs": grid.crs,
    }
    return FileRef(
        url=url,
        name=f".chunks/{sid.name}/{res}m_{index[0]}_{index[1]}.tif",
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
    """Fetch the chunks of every scene in `refs` and write each scene folder under `dest`.

    A scene whose folder already holds every band file is not fetched again. Without `fetcher`,
    one is made with a bearer-token session for `creds` (default: :func:`sentinelhub_credentials`).
    Scenes without any valid pixel are skipped with a warning. Returns the scene folders.
    """
    dest = Path(dest)
    groups = _by_scene(refs)
    todo = {scene: group for scene, group in groups.items() if not _complete(dest / scene, group)}
    if todo and fetcher is None:
        creds = creds or sentinelhub_credentials()
        session = authorized_session(creds, settings)
        fetcher = Fetcher(PROVIDER, session=session, policy=POLICY, credential_hint=CREDENTIAL_HINT)
    folders = []
    for scene, group in groups.items():
        if scene not in todo:
            log.info("%s: %s is already complete", PROVIDER, scene)
            folders.append(dest / scene)
            continue
        assert fetcher is not None
        fetcher.fetch_all(group, dest)
        folder = assemble_scene(dest, scene, group)
        shutil.rmtree(dest / ".chunks" / scene, ignore_errors=True)
        if folder is not None:
            folders.append(folder)
    _remove_if_empty(dest / ".chunks")
    return folders


def _by_scene(refs: Sequence[FileRef]) -> dict[str, list[FileRef]]:
    """The refs grouped by scene, in order of first appearance."""
    groups: dict[str, list[FileRef]] = {}
    for ref in refs:
        if not ref.meta or "scene" not in ref.meta:
            raise DownloadError(f"{PROVIDER}: {ref.name} is not a Sentinel-2 chunk request")
        groups.setdefault(ref.meta["scene"], []).append(ref)
    return groups


def _resolution_groups(refs: Sequence[FileRef]) -> dict[int, list[FileRef]]:
    groups: dict[int, list[FileRef]] = {}
    for ref in refs:
        groups.setdefault(int(ref.meta["res"]), []).append(ref)  # type: ignore[index]
    return groups


def _band_path(folder: Path, scene: str, band: str, res: int) -> Path:
    sid = s2.parse_scene_name(scene)
    return folder / s2.band_filename(sid.tile, sid.time, band, res)


def _complete(folder: Path, refs: Sequence[FileRef]) -> bool:
    """Whether `folder` holds every band file of the scene, each opening on the expected grid."""
    if not folder.is_dir():
        return False
    for res, group in _resolution_groups(refs).items():
        shape = tuple(group[0].meta["shape"])  # type: ignore[index]
        for band in group[0].meta["bands"]:  # type: ignore[index]
            path = _band_path(folder, folder.name, band, res)
            try:
                with rasterio.open(path) as src:
                    if (src.height, src.width) != shape or src.count != 1:
                        return False
            except (rasterio.errors.RasterioError, OSError):
                return False
    return True


def _read_chunk(path: Path, ref: FileRef, index: int) -> np.ndarray:
    """Band `index` (0-based) of a fetched chunk, after checking it is on the requested grid.

    A chunk on another grid is deleted (the fetcher would otherwise keep it as complete).
    """
    meta = ref.meta or {}
    r0, c0, h, w = meta["window"]
    expected = Affine(*meta["transform"]) @ Affine.translation(c0, r0)
    with rasterio.open(path) as src:
        problem = None
        if (src.height, src.width) != (h, w) or src.count != len(meta["bands"]):
            problem = (
                f"{src.count} band(s) of {src.height}x{src.width} px, expected "
                f"{len(meta['bands'])} of {h}x{w}"
            )
        elif not src.transform.almost_equals(expected, precision=1e-6 * abs(expected.a)):
            problem = f"another grid ({tuple(src.transform)[:6]}, expected {tuple(expected)[:6]})"
        data = None if problem else src.read(index + 1)
    if data is None:
        path.unlink(missing_ok=True)
        raise DownloadError(
            f"{PROVIDER}: {public_url(ref.url)} answered {path.name} with {problem}; the chunk was "
            "deleted: run again, and report it if it persists"
        )
    return data


def _mosaic(dest: Path, refs: Sequence[FileRef], index: int) -> np.ndarray:
    """Band `index` of one resolution, the chunks placed into the full uint16 grid."""
    meta = refs[0].meta or {}
    out = np.zeros(tuple(meta["shape"]), dtype=np.uint16)
    for ref in refs:
        r0, c0, h, w = ref.meta["window"]  # type: ignore[index]
        out[r0 : r0 + h, c0 : c0 + w] = _read_chunk(dest / ref.name, ref, index)
    return out


def _tags(band: str, baseline: str) -> dict[str, object]:
    """Tags of a band file. Harmonised Process API DNs carry no offset (Sentinel Hub has removed
    the baseline >= 04.00 BOA_ADD_OFFSET), so BOA_ADD_OFFSET is 0 whatever the baseline says:
    the reader applies this tag, and reflectance is DN / 10000."""
    if band == "SCL":
        return {"BAND": "SCL", "PROCESSING_BASELINE": baseline}
    return {
        "BAND": band,
        "BOA_ADD_OFFSET": 0,
        "BOA_QUANTIFICATION_VALUE": s2.QUANTIFICATION,
        "PROCESSING_BASELINE": baseline,
    }


def assemble_scene(dest: Path, scene: str, refs: Sequence[FileRef]) -> Path | None:
    """Write the scene folder from its fetched chunks, band by band (one full band in memory).

    Mirrors :func:`lstfill.sources.sentinel2.write_scene`'s layout, but tags BOA_ADD_OFFSET=0,
    which write_scene cannot be told. Returns None (and writes nothing) when SCL is all no data.
    """
    sid = s2.parse_scene_name(scene)
    groups = _resolution_groups(refs)
    if 20 not in groups:
        raise DownloadError(f"{PROVIDER}: no 20 m request for {scene} (SCL is required)")
    bands20 = groups[20][0].meta["bands"]  # type: ignore[index]
    scl = _mosaic(dest, groups[20], bands20.index("SCL"))
    if not scl.any():
        log.warning("%s: %s has no valid pixel over the region; skipped", PROVIDER, scene)
        return None
    final = dest / scene
    with atomic_folder(final) as staging:
        _write_band(staging, scene, "SCL", scl.astype(np.uint8), groups[20][0], sid.baseline)
        del scl
        for _, group in sorted(groups.items()):
            for index, band in enumerate(group[0].meta["bands"]):  # type: ignore[index]
                if band != "SCL":
                    data = _mosaic(dest, group, index)
                    _write_band(staging, scene, band, data, group[0], sid.baseline)
    log.info("%s: wrote %s", PROVIDER, final)
    return final


def _write_band(
    folder: Path, scene: str, band: str, data: np.ndarray, ref: FileRef, baseline: str
) -> None:
    meta = ref.meta or {}
    path = _band_path(folder, scene, band, int(meta["res"]))
    write_cog(path, data, Affine(*meta["transform"]), meta["crs"], 0, _tags(band, baseline))


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()
