"""NASA Earthdata: login, the authenticated session, CMR granule search, granule file refs and
the transfer.

Shared by the ECOSTRESS, SRTM and MODIS providers (all LP DAAC cloud collections, provider
LPCLOUD). The catalogue is searched through earthaccess; the files are fetched by our
:class:`~lstfill.download.fetch.Fetcher` with a bearer-token session, which checks sizes and the
checksums CMR publishes and resumes interrupted transfers (earthaccess does neither).
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import earthaccess
import requests
from earthaccess.exceptions import LoginAttemptFailure

from lstfill.download.base import AuthError, DownloadError, FileRef
from lstfill.download.credentials import EarthdataCredentials, earthdata_credentials, redact
from lstfill.download.fetch import Fetcher, FetchPolicy
from lstfill.download.http import public_url

PROVIDER = "earthdata"
POLICY = FetchPolicy(concurrency=4)
CREDENTIAL_HINT = (
    "set EARTHDATA_TOKEN (or EARTHDATA_USERNAME and EARTHDATA_PASSWORD), an [earthdata] section "
    "in the secrets file, or a 'machine urs.earthdata.nasa.gov' entry in ~/.netrc"
)
CMR_URL = "https://cmr.earthdata.nasa.gov/search/granules.umm_json"
TOKEN_URL = "https://urs.earthdata.nasa.gov/api/users/find_or_create_token"
# Checksum algorithms (CMR spelling) the fetcher can verify; others are dropped.
CHECKSUMS = ("MD5", "SHA-1", "SHA-256", "SHA-384", "SHA-512")
_EXCERPT = 200

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# login and session


def login(creds: EarthdataCredentials) -> str:
    """A bearer token for `creds`: the token itself, or one obtained from Earthdata Login with
    the username and password (earthaccess's find_or_create_token call)."""
    if creds.token:
        return creds.token
    if not (creds.username and creds.password):
        raise AuthError(
            f"{PROVIDER}: no token or username/password in {creds.origin or '?'}; {CREDENTIAL_HINT}"
        )
    auth = earthaccess.Auth()
    secrets = (creds.password, creds.token)
    problem = None
    with _redacting(logging.getLogger("earthaccess"), secrets):
        try:
            # earthaccess 0.17 has no public call taking credentials (only env/netrc/prompt
            # strategies); this private one is what they all use. Pinned earthaccess<0.18.
            auth._get_credentials(creds.username, creds.password, None)
        except LoginAttemptFailure as exc:
            problem = f"the login was refused ({_first_line(str(exc), secrets)})"
        except Exception as exc:  # network and reply errors alike: reported redacted
            problem = f"the login failed ({type(exc).__name__}: {_first_line(str(exc), secrets)})"
    # Raised outside the except block, so no exception holding the server's reply is chained.
    if problem is not None:
        raise AuthError(
            f"{PROVIDER}: {public_url(TOKEN_URL)}: {problem} for the credentials from "
            f"{creds.origin or '?'}; check the username and password (or use a token), "
            f"or {CREDENTIAL_HINT}"
        )
    token = (auth.token or {}).get("access_token")
    if not token:
        raise AuthError(
            f"{PROVIDER}: {public_url(TOKEN_URL)}: no access token in the reply for the "
            f"credentials from {creds.origin or '?'}; retry later"
        )
    return str(token)


def session(token: str) -> requests.Session:
    """A session sending ``Authorization: Bearer <token>``. requests drops that header when a
    redirect leaves the host, so it never reaches LP DAAC's CloudFront signed URLs."""
    sess = requests.Session()
    sess.headers["Authorization"] = f"Bearer {token}"
    sess.headers["User-Agent"] = "lstfill"
    return sess


def make_fetcher(
    creds: EarthdataCredentials | None = None, purpose: str = "NASA Earthdata downloads"
) -> Fetcher:
    """A Fetcher with a logged-in Earthdata session (credentials looked up if not given)."""
    creds = creds or earthdata_credentials(purpose=purpose)
    return Fetcher(PROVIDER, session(login(creds)), POLICY, CREDENTIAL_HINT)


def download(
    refs: Sequence[FileRef],
    dest: str | Path,
    settings: dict[str, Any] | None,
    *,
    creds: EarthdataCredentials | None = None,
    fetcher: Fetcher | None = None,
    purpose: str = "NASA Earthdata downloads",
) -> list[Path]:
    """The ``download`` of the Earthdata providers: fetch `refs` into `dest` under their own
    names, logging in only if there is something to fetch and no `fetcher` is given; `purpose`
    names the downloads in the message when no credentials are found. `settings` are not read
    (the transfer needs none), but the providers' download takes them."""
    if not refs:
        return []
    fetcher = fetcher or make_fetcher(creds, purpose=purpose)
    return fetcher.fetch_all(list(refs), Path(dest))


class _RedactFilter(logging.Filter):
    """Replaces secrets in a record's message before any handler sees it."""

    def __init__(self, secrets: Sequence[str | None]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message, *self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        return True


@contextmanager
def _redacting(logger: logging.Logger, secrets: Sequence[str | None]) -> Iterator[None]:
    """Redact `secrets` from `logger`'s own records while the block runs (earthaccess logs
    the login reply; a server echoing the password must not put it in a log)."""
    filt = _RedactFilter(secrets)
    loggers = [logger, *_children(logger)]
    for each in loggers:
        each.addFilter(filt)
    try:
        yield
    finally:
        for each in loggers:
            each.removeFilter(filt)


def _children(logger: logging.Logger) -> list[logging.Logger]:
    """The existing loggers below `logger` (filters do not apply to child loggers' records)."""
    prefix = logger.name + "."
    known = logging.root.manager.loggerDict.items()
    return [v for n, v in known if n.startswith(prefix) and isinstance(v, logging.Logger)]


def _first_line(text: str, secrets: Iterable[str | None]) -> str:
    """A short, redacted excerpt of an error text for messages."""
    lines = [line.strip() for line in redact(text, *secrets).splitlines() if line.strip()]
    excerpt = " ".join(lines)
    return excerpt[:_EXCERPT] + ("..." if len(excerpt) > _EXCERPT else "")


# ---------------------------------------------------------------------------------------------
# search


def search_granules(
    short_name: str,
    version: str,
    start: dt.date | None,
    end: dt.date | None,
    *,
    bounding_box: Sequence[float] | None = None,
    granule_name: str | None = None,
    provider: str = "LPCLOUD",
) -> list[earthaccess.DataGranule]:
    """CMR granules of a collection in the days `start`..`end` (whole UTC days; no time filter
    when both are None), optionally within a lon/lat bbox and matching a name pattern."""
    params: dict[str, Any] = {"short_name": short_name, "version": version, "provider": provider}
    if start is not None or end is not None:
        params["temporal"] = (_day_start(start), _day_end(end))
    if bounding_box is not None:
        params["bounding_box"] = tuple(float(v) for v in bounding_box)
    if granule_name is not None:
        params["granule_name"] = granule_name
    what = f"{short_name} v{version} ({provider})"
    try:
        with warnings.catch_warnings():  # DataGranule.size() deprecation, not ours to fix
            warnings.filterwarnings("ignore", category=FutureWarning, module="earthaccess")
            granules = earthaccess.search_data(**params)
    except RuntimeError as exc:  # earthaccess's CMR error: the reply text
        raise DownloadError(
            f"{PROVIDER}: {CMR_URL}: the granule search for {what} failed "
            f"({_first_line(str(exc), ())}); check short_name/version/provider, retry later"
        ) from None
    except requests.RequestException as exc:
        raise DownloadError(
            f"{PROVIDER}: {CMR_URL}: cannot reach CMR for {what} ({type(exc).__name__}); "
            "check the network and retry"
        ) from None
    log.info("CMR: %d %s granules for %s", len(granules), what, params.get("temporal", "any time"))
    return list(granules)


def _day_start(day: dt.date | None) -> dt.datetime | None:
    """00:00:00 UTC of `day` (a datetime is kept as it is)."""
    if day is None or isinstance(day, dt.datetime):
        return day
    return dt.datetime.combine(day, dt.time(0, 0, 0), tzinfo=dt.UTC)


def _day_end(day: dt.date | None) -> dt.datetime | None:
    """23:59:59 UTC of `day`, so the last day is included whole (a datetime is kept)."""
    if day is None or isinstance(day, dt.datetime):
        return day
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC)


# ---------------------------------------------------------------------------------------------
# granule -> file refs


def granule_refs(
    granule: earthaccess.DataGranule,
    *,
    suffixes: Iterable[str] | None = None,
    kind: str = "auto",
) -> list[FileRef]:
    """FileRefs of a granule's HTTPS download links whose names end with one of `suffixes`
    (all if None), with size and checksum from the UMM ArchiveAndDistributionInformation."""
    wanted = tuple(suffixes) if suffixes is not None else None
    info = _archive_info(granule)
    umm = granule.get("umm", {})
    meta = {
        "granule": umm.get("GranuleUR"),
        "concept_id": granule.get("meta", {}).get("concept-id"),
    }
    refs, seen = [], set()
    for url in granule.data_links():
        name = file_name(url)
        if not url.lower().startswith(("https://", "http://")) or url in seen or not name:
            continue
        if wanted is not None and not name.endswith(wanted):
            continue
        seen.add(url)
        refs.append(_ref(url, name, info.get(name, {}), kind, meta))
    return refs


def file_name(url: str) -> str:
    """The last path segment of `url` (the file name)."""
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]


def _archive_info(granule: dict) -> dict[str, dict]:
    """ArchiveAndDistributionInformation entries by file name."""
    data = granule.get("umm", {}).get("DataGranule") or {}
    entries = data.get("ArchiveAndDistributionInformation") or []
    return {e["Name"]: e for e in entries if isinstance(e, dict) and e.get("Name")}


def _ref(url: str, name: str, entry: dict, kind: str, meta: dict) -> FileRef:
    """One FileRef; size only from SizeInBytes (Size in MB is rounded), checksum only when its
    algorithm can be verified."""
    size = entry.get("SizeInBytes")
    checksum = entry.get("Checksum") or {}
    algorithm = str(checksum.get("Algorithm", "")).upper()
    value = checksum.get("Value") if algorithm in CHECKSUMS else None
    return FileRef(
        url=url,
        name=name,
        size=int(size) if size is not None else None,
        checksum=str(value).lower() if value else None,
        checksum_algorithm=algorithm if value else None,
        kind=kind,
        meta=dict(meta),
    )
