"""The Sentinel Hub service that the Sentinel-2 and Sentinel-3 downloaders share.

Both ask CDSE's Sentinel Hub with one OAuth client: the catalogue lists what exists over the
region, the Process API cuts each acquisition (or day) to a grid snapped to the product's pixel
size, one POST per output chunk of at most ``max_pixels`` per side. This module holds what does
not depend on the product: the service config and bearer token (never leaking the client secret),
collection registration, catalogue errors, the chunk requests on a grid, the checked reading and
mosaicking of fetched chunks, and the download loop that fetches a group of chunks (a scene, a
day) and hands it to the provider's assembly. The providers keep their collection, evalscript,
catalogue query and file layout.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
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

from lstfill.download.base import AuthError, DownloadError, FileRef
from lstfill.download.credentials import SentinelHubCredentials, redact, sentinelhub_credentials
from lstfill.download.fetch import Fetcher, FetchPolicy, public_url
from lstfill.grid import Grid

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
CHUNKS = ".chunks"  # the folder under `dest` where fetched chunks wait for their assembly
_OAUTH_LOGGERS = ("requests_oauthlib", "oauthlib")  # they log the token request body at DEBUG

log = logging.getLogger(__name__)
T = TypeVar("T")
Window = tuple[int, int, int, int]  # row offset, column offset, height, width


# ---------------------------------------------------------------------------------------------
# service configuration, collections, errors


def service_settings(settings: Mapping[str, Any] | None) -> dict[str, str]:
    """The service URLs of `settings` (CDSE by default), the base URL without a trailing slash."""
    settings = settings or {}
    return {
        "base_url": str(settings.get("base_url", CDSE_URL)).rstrip("/"),
        "token_url": str(settings.get("token_url", CDSE_TOKEN_URL)),
    }


def merged_settings(
    defaults: Mapping[str, Any], settings: Mapping[str, Any] | None
) -> dict[str, Any]:
    """`settings` over `defaults`, with the service URLs of :func:`service_settings`."""
    merged = {**defaults, **(settings or {})}
    return merged | service_settings(merged)


def checked_bands(bands: Sequence[Any], known: Sequence[str], what: str = "") -> list[str]:
    """`bands` (any case) in the order of `known`; DownloadError naming the `what` settings
    ("Sentinel-3 ", or "" for the default) unless they are a non-empty subset of it."""
    wanted = [str(b).upper() for b in bands]
    if not wanted or set(wanted) - set(known):
        raise DownloadError(
            f"{PROVIDER}: {what}settings 'bands' must be a non-empty subset of {list(known)}, "
            f"got {bands}; fix the config"
        )
    return [b for b in known if b in wanted]


def sh_config(creds: SentinelHubCredentials | None, settings: Mapping[str, Any]) -> SHConfig:
    """A sentinelhub-py config for the service in `settings`, ignoring any local config file."""
    service = service_settings(settings)
    config = SHConfig(use_defaults=True)
    config.sh_client_id = creds.client_id if creds else ""
    config.sh_client_secret = creds.client_secret if creds else ""
    config.sh_base_url = service["base_url"]
    config.sh_token_url = service["token_url"]
    return config


def collection(base_url: str, base: DataCollectionDefinition, name: str) -> DataCollection:
    """The collection `base` defines, served by `base_url` and registered as `name` once per URL.

    sentinelhub-py keeps collections in a global enum and refuses a second, different definition
    under one name, so other URLs than CDSE's get a name suffixed with a hash of the URL.
    """
    url = base_url.rstrip("/")
    if url != CDSE_URL:
        name += "_" + hashlib.sha256(url.encode()).hexdigest()[:10].upper()
    definition = base.derive(service_url=url, _name=name)
    # Calling the enum with a definition returns the member already holding it, or registers it.
    return DataCollection(definition)


def status_of(exc: BaseException) -> int | None:
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
    status = status_of(exc)
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


def authorized_session(
    creds: SentinelHubCredentials, settings: Mapping[str, Any]
) -> requests.Session:
    """A requests session that sends a valid Sentinel Hub bearer token (AuthError if refused)."""
    session = requests.Session()
    session.auth = BearerAuth(open_session(sh_config(creds, settings)))
    return session


# ---------------------------------------------------------------------------------------------
# catalogue


def catalog_search(
    config: SHConfig, coll: DataCollection, grid: Grid, what: str = "", **query: Any
) -> list[Any]:
    """Every catalogue answer (all pages) for `coll` over the grid's bounds and `query`
    (``time``, ``filter``, ``distinct``, ...); refusals become AuthError, other failures a
    DownloadError naming the `what` catalogue ("Sentinel-3 ", or "" for the default)."""
    catalog = SentinelHubCatalog(config=config)
    # Our own session: token errors become AuthError, and no token is cached process-wide.
    catalog.client.session = open_session(config)
    url = f"{catalog.service_url}/search"
    try:
        return list(catalog.search(coll, bbox=bbox(grid.bounds, grid.crs), **query))
    except (DownloadFailedException, requests.RequestException) as exc:
        status = status_of(exc)
        if status in (401, 403):
            raise AuthError(
                f"{PROVIDER}: {public_url(url)} refused the token (HTTP {status}); "
                f"{CREDENTIAL_HINT}"
            ) from None
        reason = f"HTTP {status}" if status else type(exc).__name__
        raise DownloadError(
            f"{PROVIDER}: {what}catalogue search at {public_url(url)} failed ({reason}); check "
            "the settings and retry later"
        ) from None


# ---------------------------------------------------------------------------------------------
# Process API requests on a grid


def bbox(bounds: Sequence[float], crs: str) -> BBox:
    """A sentinelhub BBox in the grid's (EPSG) CRS."""
    epsg = ProjCRS.from_user_input(crs).to_epsg()
    if epsg is None:
        raise DownloadError(
            f"{PROVIDER}: the region CRS {crs!r} has no EPSG code; use one that does"
        )
    return BBox(tuple(float(v) for v in bounds), CRS(epsg))


def res_grid(grid: Grid, res: float) -> Grid:
    """The grid at `res` metres over `grid`'s extent, its edges snapped outward to multiples of
    `res` so that it stays on the product's native pixel grid (no resampling shift)."""
    x0, y0, x1, y1 = (round(v / res, 6) for v in grid.bounds)
    snapped = (math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1))
    return Grid.from_bbox(grid.crs, [v * res for v in snapped], res)


def split(n: int, max_size: int) -> list[tuple[int, int]]:
    """(offset, size) of the fewest near-equal parts of `n` pixels with no part over `max_size`."""
    parts = math.ceil(n / max_size)
    edges = [i * n // parts for i in range(parts + 1)]
    return [(a, b - a) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def chunk_windows(height: int, width: int, max_pixels: int) -> list[tuple[tuple[int, int], Window]]:
    """((row, col), (row_off, col_off, height, width)) of the chunks that tile a grid exactly."""
    return [
        ((i, j), (r0, c0, h, w))
        for i, (r0, h) in enumerate(split(height, max_pixels))
        for j, (c0, w) in enumerate(split(width, max_pixels))
    ]


def process_payload(
    config: SHConfig,
    coll: DataCollection,
    script: str,
    box: BBox,
    size: tuple[int, int],
    **input_args: Any,
) -> tuple[str, dict[str, Any]]:
    """(URL, JSON body) of one Process API request for a uint16 TIFF, as sentinelhub-py builds
    it; `input_args` (time_interval, mosaicking_order, other_args, ...) go to its input data."""
    request = SentinelHubRequest(
        evalscript=script,
        input_data=[SentinelHubRequest.input_data(coll, **input_args)],
        responses=[SentinelHubRequest.output_response("default", MimeType.TIFF)],
        bbox=box,
        size=size,
        config=config,
    )
    download = request.download_list[0]
    return str(download.url), json.loads(json.dumps(download.post_values))


def chunk_refs(
    config: SHConfig,
    coll: DataCollection,
    script: str,
    input_args: Mapping[str, Any],
    grid: Grid,
    max_pixels: int,
    name: Callable[[tuple[int, int]], str],
    meta: Mapping[str, Any],
) -> list[FileRef]:
    """One Process API request (see :func:`process_payload`) per chunk of `grid`, `name` giving
    its file under `dest`; the ref's `meta` is `meta` plus where the chunk goes (row, col,
    window, and the grid's shape, transform and CRS)."""
    refs = []
    for index, (r0, c0, h, w) in chunk_windows(*grid.shape, max_pixels):
        x0, y1 = grid.transform @ (c0, r0)
        x1, y0 = grid.transform @ (c0 + w, r0 + h)
        box = bbox((x0, y0, x1, y1), grid.crs)
        url, body = process_payload(config, coll, script, box, (w, h), **input_args)
        place = {
            "row": index[0],
            "col": index[1],
            "window": [r0, c0, h, w],
            "shape": list(grid.shape),
            "transform": list(grid.transform)[:6],
            "crs": grid.crs,
        }
        refs.append(
            FileRef(
                url=url,
                name=name(index),
                kind="geotiff",
                method="POST",
                json=body,
                headers={"Accept": "image/tiff"},
                meta={**meta, **place},
            )
        )
    return refs


# ---------------------------------------------------------------------------------------------
# fetched chunks


def read_chunk(path: Path, ref: FileRef, count: int, band: int | None = None) -> np.ndarray:
    """Band `band` (0-based; every band when None) of a fetched chunk of `count` bands, after
    checking it is on the requested grid.

    A chunk on another grid is deleted (the fetcher would otherwise keep it as complete).
    """
    meta = ref.meta or {}
    r0, c0, h, w = meta["window"]
    expected = Affine(*meta["transform"]) @ Affine.translation(c0, r0)
    with rasterio.open(path) as src:
        problem = None
        if (src.height, src.width) != (h, w) or src.count != count:
            problem = (
                f"{src.count} band(s) of {src.height}x{src.width} px, expected {count} of {h}x{w}"
            )
        elif not src.transform.almost_equals(expected, precision=1e-6 * abs(expected.a)):
            problem = f"another grid ({tuple(src.transform)[:6]}, expected {tuple(expected)[:6]})"
        data = None if problem else src.read() if band is None else src.read(band + 1)
    if data is None:
        path.unlink(missing_ok=True)
        raise DownloadError(
            f"{PROVIDER}: {public_url(ref.url)} answered {path.name} with {problem}; the chunk was "
            "deleted: run again, and report it if it persists"
        )
    return data


def mosaic(dest: Path, refs: Sequence[FileRef], count: int, band: int | None = None) -> np.ndarray:
    """Band `band` (every band when None) of the full uint16 grid, its chunks put in place."""
    meta = refs[0].meta or {}
    shape = tuple(meta["shape"]) if band is not None else (count, *meta["shape"])
    out = np.zeros(shape, dtype=np.uint16)
    for ref in refs:
        r0, c0, h, w = ref.meta["window"]  # type: ignore[index]
        out[..., r0 : r0 + h, c0 : c0 + w] = read_chunk(dest / ref.name, ref, count, band)
    return out


# ---------------------------------------------------------------------------------------------
# download loop


def group_refs(refs: Sequence[FileRef], key: str, what: str) -> dict[str, list[FileRef]]:
    """The refs grouped by ``meta[key]``, in order of first appearance; a ref without it is not a
    `what` chunk request (DownloadError)."""
    groups: dict[str, list[FileRef]] = {}
    for ref in refs:
        if not ref.meta or key not in ref.meta:
            raise DownloadError(f"{PROVIDER}: {ref.name} is not a {what} chunk request")
        groups.setdefault(ref.meta[key], []).append(ref)
    return groups


def download_groups(
    groups: Mapping[str, Sequence[FileRef]],
    dest: Path,
    *,
    target: Callable[[Path, str], Path],
    complete: Callable[[Path, Sequence[FileRef]], bool],
    assemble: Callable[[Path, str, Sequence[FileRef]], Path | None],
    session: Callable[[SentinelHubCredentials], requests.Session],
    creds: SentinelHubCredentials | None = None,
    fetcher: Fetcher | None = None,
    what: str = "",
) -> list[Path]:
    """Fetch each group's chunks under ``dest/.chunks`` and `assemble` it; returns its outputs.

    A group whose `target` is already `complete` is not fetched again. Without `fetcher`, one is
    made (only when something is to be fetched) with ``session(creds)``, `creds` defaulting to
    :func:`sentinelhub_credentials`. A group that `assemble` skips (None) is left out. `what`
    prefixes the group in the log ("Sentinel-3 ").
    """
    todo = {key for key, group in groups.items() if not complete(target(dest, key), group)}
    if todo and fetcher is None:
        creds = creds or sentinelhub_credentials()
        fetcher = Fetcher(
            PROVIDER, session=session(creds), policy=POLICY, credential_hint=CREDENTIAL_HINT
        )
    outputs = []
    for key, group in groups.items():
        if key not in todo:
            log.info("%s: %s%s is already complete", PROVIDER, what, key)
            outputs.append(target(dest, key))
            continue
        assert fetcher is not None
        fetcher.fetch_all(group, dest)
        output = assemble(dest, key, group)
        shutil.rmtree(dest / CHUNKS / key, ignore_errors=True)
        if output is not None:
            outputs.append(output)
    with contextlib.suppress(OSError):
        (dest / CHUNKS).rmdir()  # only when empty
    return outputs
