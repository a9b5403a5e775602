"""The Sentinel Hub service of the Copernicus Data Space Ecosystem (CDSE), the ``sentinelhub``
account that the Sentinel-2 and Sentinel-3 downloaders share.

Both ask it with one OAuth client. This module holds what does not depend on the product: the
service settings and sentinelhub-py config, collection registration, the bearer token (never
leaking the client secret), the catalogue search and its errors. The Process API requests, the
fetched chunks and the download loop are :mod:`lstfill.download.process_api`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import requests
from oauthlib.oauth2 import InsecureTransportError, OAuth2Error
from pyproj import CRS as ProjCRS
from sentinelhub import (
    CRS,
    BBox,
    DataCollection,
    SentinelHubCatalog,
    SentinelHubSession,
    SHConfig,
)
from sentinelhub.data_collections import DataCollectionDefinition
from sentinelhub.exceptions import DownloadFailedException

from lstfill.download.base import AuthError, DownloadError
from lstfill.download.credentials import SentinelHubCredentials, redact
from lstfill.download.fetch import FetchPolicy
from lstfill.download.http import public_url
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
_OAUTH_LOGGERS = ("requests_oauthlib", "oauthlib")  # they log the token request body at DEBUG

T = TypeVar("T")


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


def bbox(bounds: Sequence[float], crs: str) -> BBox:
    """A sentinelhub BBox in the grid's (EPSG) CRS."""
    epsg = ProjCRS.from_user_input(crs).to_epsg()
    if epsg is None:
        raise DownloadError(
            f"{PROVIDER}: the region CRS {crs!r} has no EPSG code; use one that does"
        )
    return BBox(tuple(float(v) for v in bounds), CRS(epsg))


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
