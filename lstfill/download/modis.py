"""MODIS MOD11A1 (daily LST) and MOD09GQ (daily 250 m reflectance) v061 granules.

Two backends, chosen by ``settings["backend"]``:

* ``earthaccess`` (default): CMR search of the LP DAAC cloud collections (provider LPCLOUD),
  one query per product and sinusoidal tile; files come from the Earthdata cloud.
* ``pymodis``: servers with the classic Data Pool layout
  ``<url>/<path>/<product>.<version>/YYYY.MM.DD/<files>``. NASA's own Data Pool (e4ftl01)
  stopped serving MODIS in mid-2025; mirrors and private servers keep the layout. pyModis lists
  the days and files; the transfer goes through our Fetcher (pyModis' own downloader retries
  without bound and holds whole files in memory).

Either way the files land in `dest` under their granule names, which
:func:`lstfill.sources.modis.find_modis` finds.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import urllib.request
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import requests
from requests.auth import HTTPBasicAuth

from lstfill.download import earthdata
from lstfill.download.base import Area, AuthError, DownloadError, FileRef
from lstfill.download.credentials import (
    EarthdataCredentials,
    earthdata_credentials,
    netrc_credentials,
)
from lstfill.download.fetch import Fetcher, FetchPolicy
from lstfill.sources.modis import parse_granule_name

ACCOUNT = "earthdata"
PROVIDER = "modis"  # the pymodis backend's fetcher; the earthaccess one is "earthdata"
BACKENDS = ("earthaccess", "pymodis")
DEFAULTS: dict[str, Any] = {
    "backend": "earthaccess",
    "products": ["MOD11A1", "MOD09GQ"],
    "version": "061",
    "tiles": [],
    "url": "https://e4ftl01.cr.usgs.gov",
    "path": "MOLT",
    "provider": "LPCLOUD",
}
POLICY = FetchPolicy(concurrency=2)

# MODIS sinusoidal grid: sphere radius, tile size and the grid's west/north edges (m).
SPHERE_R = 6371007.181
TILE_M = 1111950.5197665
X_WEST = -20015109.354
Y_NORTH = 10007554.677
N_H, N_V = 36, 18
SAMPLE_DEG = 0.05
MAX_SAMPLES = 1001

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# settings and tiles


def settings_with_defaults(settings: dict[str, Any] | None) -> dict[str, Any]:
    """`settings` over :data:`DEFAULTS`, with products and tiles as lists of str."""
    s = {**DEFAULTS, **(settings or {})}
    if s["backend"] not in BACKENDS:
        raise DownloadError(
            f"{PROVIDER}: unknown backend {s['backend']!r}; set 'backend' to one of {BACKENDS}"
        )
    for key in ("products", "tiles"):
        s[key] = [s[key]] if isinstance(s[key], str) else [str(v) for v in s[key] or []]
    s["version"] = str(s["version"])
    return s


def tiles_for_bbox(bbox_lonlat: Sequence[float]) -> list[str]:
    """Sinusoidal tiles ("h19v04") a lon/lat bbox touches, from a dense grid of points over it
    (tile edges are curves in lon/lat, so the corners alone are not enough)."""
    lon0, lat0, lon1, lat1 = (float(v) for v in bbox_lonlat)
    if lon0 > lon1 or lat0 > lat1:
        raise ValueError(f"bbox must be (lon_min, lat_min, lon_max, lat_max), got {bbox_lonlat}")
    lon, lat = np.meshgrid(
        np.radians(np.linspace(lon0, lon1, _samples(lon1 - lon0))),
        np.radians(np.linspace(lat0, lat1, _samples(lat1 - lat0))),
    )
    x = SPHERE_R * lon * np.cos(lat)
    y = SPHERE_R * lat
    h = np.clip(np.floor((x - X_WEST) / TILE_M), 0, N_H - 1).astype(int)
    v = np.clip(np.floor((Y_NORTH - y) / TILE_M), 0, N_V - 1).astype(int)
    pairs = sorted(set(zip(h.ravel().tolist(), v.ravel().tolist(), strict=True)))
    return [f"h{a:02d}v{b:02d}" for a, b in pairs]


def _samples(extent_deg: float) -> int:
    """Points along one bbox axis: every SAMPLE_DEG, at least both ends, at most MAX_SAMPLES."""
    return int(min(MAX_SAMPLES, max(2, np.ceil(extent_deg / SAMPLE_DEG) + 1)))


def _tiles(area: Area, s: dict[str, Any]) -> list[str]:
    """The configured tiles, else those of the area's bbox."""
    return s["tiles"] or tiles_for_bbox(area.bbox_lonlat)


def _wanted(name: str, product: str, tiles: Sequence[str], start: dt.date, end: dt.date) -> bool:
    """Whether a file is a `product` granule of one of `tiles` dated `start`..`end`."""
    try:
        f = parse_granule_name(name)
    except ValueError:
        return False
    tile = f"h{f['h']:02d}v{f['v']:02d}"
    return f["product"] == product and tile in tiles and start <= f["date"] <= end


# ---------------------------------------------------------------------------------------------
# entry points


def search(
    area: Area,
    start: dt.date,
    end: dt.date,
    settings: dict[str, Any] | None,
    *,
    creds: EarthdataCredentials | None = None,
) -> list[FileRef]:
    """The ``.hdf`` granules of each product over the area's tiles from `start` to `end`."""
    s = settings_with_defaults(settings)
    tiles = _tiles(area, s)
    if s["backend"] == "pymodis":
        return _datapool_search(s, tiles, start, end, creds)
    return _cmr_search(s, area, tiles, start, end)


def download(
    refs: Sequence[FileRef],
    dest: str | Path,
    settings: dict[str, Any] | None,
    *,
    creds: EarthdataCredentials | None = None,
    fetcher: Fetcher | None = None,
) -> list[Path]:
    """Fetch `refs` into `dest` under their granule names, through the backend's server."""
    if not refs:
        return []
    s = settings_with_defaults(settings)
    if fetcher is None and s["backend"] == "pymodis":
        fetcher = _datapool_fetcher(s["url"], creds)
    return earthdata.download(
        refs, dest, settings, creds=creds, fetcher=fetcher, purpose="MODIS downloads"
    )


def own_login(settings: dict[str, Any]) -> bool:
    """Whether the settings name a pymodis server with its own ~/.netrc entry: then no Earthdata
    account is needed (the backend reads that entry itself)."""
    if settings.get("backend") != "pymodis":
        return False
    host = urlsplit(settings.get("url", "")).hostname
    return bool(host) and netrc_credentials(host) is not None


# ---------------------------------------------------------------------------------------------
# earthaccess backend


def _cmr_search(
    s: dict[str, Any], area: Area, tiles: Sequence[str], start: dt.date, end: dt.date
) -> list[FileRef]:
    """One CMR query per product and tile (no cloud_hosted filter: earthaccess issue #1158
    reported 0 MOD11A1 061 results with it; provider LPCLOUD selects the cloud copies)."""
    refs: dict[str, FileRef] = {}
    for product in s["products"]:
        for tile in tiles:
            granules = earthdata.search_granules(
                product,
                s["version"],
                start,
                end,
                bounding_box=area.bbox_lonlat,
                granule_name=f"{product}.A*.{tile}.*",
                provider=s["provider"],
            )
            for granule in granules:
                for ref in earthdata.granule_refs(granule, suffixes=(".hdf",), kind="hdf4"):
                    if _wanted(ref.name, product, tiles, start, end):
                        refs.setdefault(ref.name, ref)
    return [refs[name] for name in sorted(refs)]


# ---------------------------------------------------------------------------------------------
# pymodis backend (Data Pool layout)


def server_credentials(url: str, creds: EarthdataCredentials | None = None) -> EarthdataCredentials:
    """Credentials for the Data Pool server at `url`: its host's netrc entry, else `creds`,
    else the Earthdata credentials."""
    host = urlsplit(url).hostname or ""
    pair = netrc_credentials(host) if host else None
    if pair is not None:
        return EarthdataCredentials(username=pair[0], password=pair[1], origin=f"netrc ({host})")
    return creds or earthdata_credentials(purpose=f"MODIS downloads from {host}")


def _hint(url: str) -> str:
    """What to set for the Data Pool server at `url`."""
    host = urlsplit(url).hostname or url
    return f"add a 'machine {host}' entry to ~/.netrc, or {earthdata.CREDENTIAL_HINT}"


def _datapool_session(server: EarthdataCredentials) -> requests.Session:
    """A session for the Data Pool server: Basic auth (requests sends it to that host only,
    dropping it on a redirect elsewhere) or a bearer token."""
    sess = requests.Session()
    sess.headers["User-Agent"] = "lstfill"
    if server.username and server.password:
        sess.auth = HTTPBasicAuth(server.username, server.password)
    elif server.token:
        sess.headers["Authorization"] = f"Bearer {server.token}"
    return sess


def _datapool_fetcher(url: str, creds: EarthdataCredentials | None) -> Fetcher:
    """A Fetcher for the Data Pool server at `url`."""
    server = server_credentials(url, creds)
    return Fetcher(PROVIDER, _datapool_session(server), POLICY, _hint(url))


def _product_url(s: dict[str, Any], product: str) -> str:
    """``<url>/<path>/<product>.<version>``."""
    return f"{s['url'].rstrip('/')}/{s['path'].strip('/')}/{product}.{s['version']}"


def _datapool_search(
    s: dict[str, Any],
    tiles: Sequence[str],
    start: dt.date,
    end: dt.date,
    creds: EarthdataCredentials | None,
) -> list[FileRef]:
    """The ``.hdf`` granules of each product listed by pyModis on the Data Pool server."""
    server = server_credentials(s["url"], creds)
    sess = _datapool_session(server)
    refs: list[FileRef] = []
    for product in s["products"]:
        base = _product_url(s, product)
        _probe(sess, base, server.origin, s["url"])
        for day, name in _pymodis_listing(s, product, tiles, start, end, server):
            if name.endswith(".hdf") and _wanted(name, product, tiles, start, end):
                refs.append(FileRef(url=f"{base}/{day}/{name}", name=name, kind="hdf4"))
    return sorted(set(refs), key=lambda r: r.name)


def _probe(sess: requests.Session, base: str, origin: str, url: str) -> None:
    """GET the product directory once ourselves, for clear errors (pyModis retries 20 times
    and then reports only "troubles with the server")."""
    try:
        resp = sess.get(base + "/", timeout=POLICY.timeout_s)
    except requests.RequestException as exc:
        raise DownloadError(
            f"{PROVIDER}: {base}/: cannot connect ({type(exc).__name__}); check the 'url' "
            "setting and the network"
        ) from None
    with resp:
        code = resp.status_code
    if code in (401, 403):
        raise AuthError(
            f"{PROVIDER}: {base}/: HTTP {code}: the server refused the credentials from "
            f"{origin or '?'}; {_hint(url)}"
        )
    if code == 404:
        raise DownloadError(
            f"{PROVIDER}: {base}/: HTTP 404: no such product directory; NASA's Data Pool stopped "
            "serving MODIS in mid-2025: use backend 'earthaccess', or point 'url'/'path' at a "
            "mirror with the Data Pool layout"
        )
    if code >= 400:
        raise DownloadError(f"{PROVIDER}: {base}/: HTTP {code}; retry later")


def _pymodis_listing(
    s: dict[str, Any],
    product: str,
    tiles: Sequence[str],
    start: dt.date,
    end: dt.date,
    server: EarthdataCredentials,
) -> list[tuple[str, str]]:
    """(day folder, file name) pairs pyModis lists for `product` and `tiles` in the days."""
    down_modis = _down_modis_class()
    base = _product_url(s, product)
    with tempfile.TemporaryDirectory(prefix="lstfill-pymodis-") as scratch, _pymodis_contained():
        dm = down_modis(
            destinationFolder=scratch,  # pyModis writes its list and log files here
            user=server.username if server.password else None,
            password=server.password,
            token=None if server.password else server.token,
            url=s["url"].rstrip("/"),
            tiles=",".join(tiles),
            path=s["path"].strip("/"),
            product=f"{product}.{s['version']}",
            today=end.isoformat(),
            enddate=start.isoformat(),
            checkgdal=False,
        )
        # pyModis installed a global opener that forwards its auth header on any redirect.
        urllib.request.install_opener(_same_host_auth_opener())
        try:
            dm.connect()
            return [(day, name) for day in _listed_days(dm) for name in dm.getFilesList(day) or []]
        except Exception as exc:  # pyModis raises bare Exceptions (and KeyErrors on odd HTML)
            raise DownloadError(
                f"{PROVIDER}: {base}/: pyModis could not list the days or files "
                f"({type(exc).__name__}); check the server's directory listing and retry"
            ) from None
        finally:
            dm.closeFilelist()


def _listed_days(dm: Any) -> list[str]:
    """The day folders (YYYY.MM.DD) pyModis selected; none if no folder lies in the range."""
    try:
        return list(dm.getListDays())
    except UnboundLocalError:  # pyModis' getListDays when no day <= the end day exists
        return []


def _down_modis_class() -> type:
    """pyModis' downModis, imported on demand (it needs the GDAL Python bindings)."""
    try:
        from pymodis.downmodis import downModis
    except ImportError as exc:
        raise DownloadError(
            f"{PROVIDER}: the 'pymodis' backend needs pyModis and the GDAL Python bindings "
            f"({exc.name or 'import failed'}); install lstfill[modis], or set backend: earthaccess"
        ) from None
    return downModis


class _SameHostAuthRedirect(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but drops the Authorization header when one leaves the host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # urllib's signature
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urlsplit(newurl).netloc != urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


def _same_host_auth_opener() -> urllib.request.OpenerDirector:
    """The urllib opener pyModis' listing runs through."""
    return urllib.request.build_opener(_SameHostAuthRedirect, urllib.request.HTTPCookieProcessor())


@contextmanager
def _pymodis_contained() -> Iterator[None]:
    """Undo pyModis' global side effects: its ``logging.basicConfig(filename=...)`` (a
    NullHandler on an unconfigured root makes that a no-op), ``captureWarnings(True)`` and
    its global urllib opener."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    guard = logging.NullHandler() if not handlers else None
    if guard is not None:
        root.addHandler(guard)
    showwarning = warnings.showwarning
    opener = getattr(urllib.request, "_opener", None)
    try:
        yield
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)
        if warnings.showwarning is not showwarning:
            logging.captureWarnings(False)
        urllib.request.install_opener(opener)
