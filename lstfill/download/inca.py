"""INCA hourly 1 km analysis from the GeoSphere Austria data hub (dataset inca-v1-1h-1km).

No authentication. The grid endpoint answers one NetCDF per query (parameters, UTC hour range,
lat/lon bbox); the hub refuses NetCDF queries over ``parameters x hours x grid points`` =
10 million values and limits clients to 5 requests/s and 240/h. So the period is cut into
per-day requests (or equal blocks of a day when a whole day is too big), the requests are
serialised, and each answer is saved under the name :func:`lstfill.sources.inca.filename`
gives, which :mod:`lstfill.sources.inca` reads.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from pyproj import Transformer

from lstfill.download.base import Area, DownloadError, FileRef
from lstfill.download.fetch import Fetcher, FetchPolicy
from lstfill.download.http import public_url
from lstfill.errors import InputError
from lstfill.sources import inca as inca_source

ACCOUNT = None
PROVIDER = "geosphere"
URL = "https://dataset.api.hub.geosphere.at/v1/grid/historical/inca-v1-1h-1km"
MAX_VALUES = 10_000_000
POLICY = FetchPolicy(concurrency=1, min_interval_s=0.25)
DEFAULTS: dict[str, Any] = {
    "url": URL,
    "parameters": ["T2M", "GL", "RH2M", "UU", "VV"],
    "max_values": MAX_VALUES,
    "buffer_km": 2.0,
}
INCA_CRS = inca_source.INCA_CRS
RES_M = 1000.0
KM_PER_DEG_LAT = 111.195  # mean Earth radius 6371 km
_HOURS = tuple(range(24))

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# settings, URLs, errors


def settings_with_defaults(settings: dict[str, Any] | None) -> dict[str, Any]:
    """`settings` over :data:`DEFAULTS`, with `parameters` as a list of str."""
    merged = {**DEFAULTS, **(settings or {})}
    params = merged["parameters"]
    merged["parameters"] = [params] if isinstance(params, str) else [str(p) for p in params]
    if not merged["parameters"]:
        raise DownloadError(f"{PROVIDER}: settings 'parameters' is empty; name at least one")
    return merged


def _fail(url: str, problem: str, todo: str) -> DownloadError:
    return DownloadError(f"{PROVIDER}: {public_url(url)}: {problem}; {todo}")


# ---------------------------------------------------------------------------------------------
# metadata


def metadata(settings: dict[str, Any] | None, *, fetcher: Fetcher | None = None) -> dict[str, Any]:
    """The dataset's ``/metadata`` JSON: parameters, bbox_outer, resolution, CRS, time range.

    Fetched like the data (the fetcher's retries honour the hub's rate-limit headers) into a
    scratch folder, so it is read fresh on every search.
    """
    url = settings_with_defaults(settings)["url"].rstrip("/") + "/metadata"
    fetcher = fetcher or Fetcher(PROVIDER, policy=POLICY)
    with tempfile.TemporaryDirectory(prefix="lstfill-inca-") as scratch:
        path = fetcher.fetch(FileRef(url, "metadata.json", kind="none"), Path(scratch))
        text = path.read_text(encoding="utf-8", errors="replace")
    try:
        meta = json.loads(text)
    except ValueError:
        raise _fail(url, "the reply is not JSON", "check the 'url' setting") from None
    if not isinstance(meta, dict):
        raise _fail(url, "the metadata is not a JSON object", "check the 'url' setting")
    return meta


def check_parameters(meta: dict[str, Any], parameters: Sequence[str], url: str) -> None:
    """Fail naming the requested parameters the dataset does not have, listing those it has."""
    available = [str(p.get("name")) for p in meta.get("parameters", []) if isinstance(p, dict)]
    if not available:
        log.warning("%s: %s/metadata lists no parameters; not checking them", PROVIDER, url)
        return
    unknown = [p for p in parameters if p not in available]
    if unknown:
        raise _fail(
            url,
            f"unknown INCA parameter(s) {', '.join(unknown)}",
            f"set 'parameters' to some of: {', '.join(available)}",
        )


def _outer_bbox(meta: dict[str, Any]) -> tuple[float, float, float, float] | None:
    """bbox_outer (else bbox) of the metadata as (south, west, north, east), if readable."""
    for key in ("bbox_outer", "bbox"):
        value = meta.get(key)
        if isinstance(value, list | tuple) and len(value) == 4:
            try:
                south, west, north, east = (float(v) for v in value)
            except (TypeError, ValueError):
                continue
            return south, west, north, east
    return None


def check_bbox(
    meta: dict[str, Any], bbox_lonlat: tuple[float, float, float, float], url: str
) -> tuple[float, float, float, float] | None:
    """Fail unless the region lies inside the dataset's bbox_outer; return that (S, W, N, E)."""
    outer = _outer_bbox(meta)
    if outer is None:
        log.warning("%s: %s/metadata has no bbox_outer; not checking the region", PROVIDER, url)
        return None
    south, west, north, east = outer
    lon_min, lat_min, lon_max, lat_max = bbox_lonlat
    if lat_min < south or lon_min < west or lat_max > north or lon_max > east:
        raise _fail(
            url,
            f"the region (lat {lat_min:.3f}..{lat_max:.3f}, lon {lon_min:.3f}..{lon_max:.3f}) "
            f"is not inside the INCA domain (lat {south}..{north}, lon {west}..{east}); "
            "INCA covers only Austria and its surroundings",
            "drop 'inca' from this region's sources or move the region",
        )
    return outer


def _meta_time(meta: dict[str, Any], keys: Sequence[str]) -> dt.datetime | None:
    """The first of `keys` in the metadata that parses as an ISO time (UTC)."""
    for key in keys:
        try:
            when = dt.datetime.fromisoformat(str(meta[key]))
        except (KeyError, ValueError):
            continue
        return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    return None


def _warn_outside_time_range(
    meta: dict[str, Any], ranges: Sequence[tuple[dt.datetime, dt.datetime]], url: str
) -> None:
    """Log when the planned hours reach outside the dataset's advertised time range."""
    first = _meta_time(meta, ("start_time", "start"))
    last = _meta_time(meta, ("end_time", "end"))
    if ranges and first is not None and ranges[0][0] < first:
        log.warning("%s: %s has data from %s only; earlier hours will fail", PROVIDER, url, first)
    if ranges and last is not None and ranges[-1][1] > last:
        log.warning("%s: %s has data until %s only; later hours will fail", PROVIDER, url, last)


# ---------------------------------------------------------------------------------------------
# request geometry and size


def _round_out(value: float, up: bool) -> float:
    """`value` rounded outward to 3 decimals (tolerant of float noise like 47.73 * 1000)."""
    scaled = round(value * 1000.0, 6)
    return (math.ceil(scaled) if up else math.floor(scaled)) / 1000.0


def query_bbox(
    bbox_lonlat: tuple[float, float, float, float], buffer_km: float
) -> tuple[float, float, float, float]:
    """`bbox_lonlat` grown by `buffer_km` on every side and rounded outward to 3 decimals.

    The buffer keeps INCA cells whose centres lie just outside the region, which resampling
    onto the region grid needs. Longitude degrees are measured at the latitude nearest a pole.
    """
    lon_min, lat_min, lon_max, lat_max = bbox_lonlat
    dlat = buffer_km / KM_PER_DEG_LAT
    coslat = math.cos(math.radians(min(89.0, max(abs(lat_min), abs(lat_max)))))
    dlon = buffer_km / (KM_PER_DEG_LAT * coslat)
    return (
        _round_out(lon_min - dlon, up=False),
        _round_out(lat_min - dlat, up=False),
        _round_out(lon_max + dlon, up=True),
        _round_out(lat_max + dlat, up=True),
    )


def _clip(
    bbox_lonlat: tuple[float, float, float, float], outer: tuple[float, float, float, float] | None
) -> tuple[float, float, float, float]:
    """`bbox_lonlat` cut to the (south, west, north, east) domain, so a buffer never leaves it."""
    if outer is None:
        return bbox_lonlat
    south, west, north, east = outer
    lon_min, lat_min, lon_max, lat_max = bbox_lonlat
    return (max(lon_min, west), max(lat_min, south), min(lon_max, east), min(lat_max, north))


def grid_points(bbox_lonlat: tuple[float, float, float, float], buffer_km: float) -> int:
    """Number of 1 km INCA grid points a query for the buffered bbox covers (an upper bound).

    The hub counts grid points against its value limit; the bbox is taken to EPSG:31287 with
    densified edges (a lon/lat rectangle is not a Lambert one) and each axis counts
    ceil(extent / 1 km) + 1 points.
    """
    lon_min, lat_min, lon_max, lat_max = query_bbox(bbox_lonlat, buffer_km)
    to_lambert = Transformer.from_crs("EPSG:4326", INCA_CRS, always_xy=True)
    x0, y0, x1, y1 = to_lambert.transform_bounds(lon_min, lat_min, lon_max, lat_max, densify_pts=21)
    nx = math.ceil(round((x1 - x0) / RES_M, 6)) + 1
    ny = math.ceil(round((y1 - y0) / RES_M, 6)) + 1
    return nx * ny


def _utc_day(day: dt.date) -> dt.date:
    """The UTC calendar day of a date or datetime (naive datetimes are UTC)."""
    if isinstance(day, dt.datetime):
        return day.astimezone(dt.UTC).date() if day.tzinfo else day.date()
    return day


def _day_blocks(hours_per_request: int) -> list[tuple[int, int]]:
    """First and last hour of the fewest equal blocks of a day with at most that many hours."""
    size = max(h for h in (24, 12, 8, 6, 4, 3, 2, 1) if h <= hours_per_request)
    return [(h, h + size - 1) for h in _HOURS[::size]]


def plan_requests(
    area: Area, start: dt.date, end: dt.date, settings: dict[str, Any] | None, n_points: int
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Inclusive UTC hour ranges covering 00:00 of `start` to 23:00 of `end`, each within
    the hub's value limit: one per day when a day fits, else each day in equal hour blocks."""
    settings = settings_with_defaults(settings)
    first, last = _utc_day(start), _utc_day(end)
    if last < first:
        raise ValueError(f"end {last} is before start {first}")
    per_hour = len(settings["parameters"]) * max(1, int(n_points))
    hours_per_request = int(settings["max_values"]) // per_hour
    if hours_per_request < 1:
        raise _fail(
            settings["url"],
            f"one hour of {len(settings['parameters'])} parameter(s) over region {area.name!r} "
            f"({n_points} grid points) is {per_hour:,} values, over the limit of "
            f"{int(settings['max_values']):,}",
            "shrink the region or request fewer parameters",
        )
    blocks = _day_blocks(hours_per_request)
    ranges = []
    for i in range((last - first).days + 1):
        midnight = dt.datetime.combine(first + dt.timedelta(days=i), dt.time(), tzinfo=dt.UTC)
        for h0, h1 in blocks:
            ranges.append((midnight + dt.timedelta(hours=h0), midnight + dt.timedelta(hours=h1)))
    return ranges


# ---------------------------------------------------------------------------------------------
# search and download


def _query_url(
    url: str,
    parameters: Sequence[str],
    start: dt.datetime,
    end: dt.datetime,
    bbox_lonlat: tuple[float, float, float, float],
) -> str:
    """The grid query for one hour range; bbox in the hub's order south,west,north,east."""
    lon_min, lat_min, lon_max, lat_max = bbox_lonlat
    query = {
        "parameters": ",".join(parameters),
        "start": f"{start:%Y-%m-%dT%H:%M}",
        "end": f"{end:%Y-%m-%dT%H:%M}",
        "bbox": f"{lat_min:.3f},{lon_min:.3f},{lat_max:.3f},{lon_max:.3f}",
        "output_format": "netcdf",
    }
    return f"{url}?{urlencode(query, safe=',:')}"


def search(
    area: Area,
    start: dt.date,
    end: dt.date,
    settings: dict[str, Any] | None,
    *,
    creds: None = None,
    fetcher: Fetcher | None = None,
) -> list[FileRef]:
    """One NetCDF query per planned hour range for the area's buffered bbox, after checking the
    parameters and the region against the dataset's metadata (fetched with `fetcher`). The hub
    needs no login: `creds` is always None."""
    settings = settings_with_defaults(settings)
    url = settings["url"].rstrip("/")
    meta = metadata(settings, fetcher=fetcher)
    check_parameters(meta, settings["parameters"], url)
    outer = check_bbox(meta, area.bbox_lonlat, url)
    bbox = _clip(query_bbox(area.bbox_lonlat, float(settings["buffer_km"])), outer)
    n_points = grid_points(bbox, 0.0)
    ranges = plan_requests(area, start, end, settings, n_points)
    _warn_outside_time_range(meta, ranges, url)
    per_hour = len(settings["parameters"]) * n_points
    return [
        FileRef(
            url=_query_url(url, settings["parameters"], t0, t1, bbox),
            name=inca_source.filename(t0, t1),
            kind="netcdf",
            meta={
                "provider": PROVIDER,
                "start": t0.isoformat(),
                "end": t1.isoformat(),
                "values": per_hour * (int((t1 - t0).total_seconds()) // 3600 + 1),
            },
        )
        for t0, t1 in ranges
    ]


def _check_file(path: Path, ref: FileRef, parameters: Sequence[str]) -> None:
    """Fail (removing the file) unless it reads as INCA with every requested known parameter."""
    try:
        data = inca_source.read_inca(path)
        missing = [p for p in parameters if p in inca_source.PARAMETERS and p not in data.fields]
        if missing:
            raise InputError(path, f"lacks the requested variable(s) {', '.join(missing)}")
    except InputError as exc:
        path.unlink(missing_ok=True)
        raise _fail(
            ref.url,
            f"the answer saved as {path.name} is not a usable INCA file ({exc.problem}); removed",
            "retry later; if it persists, check 'parameters' against the dataset metadata",
        ) from exc


def download(
    refs: Sequence[FileRef],
    dest: str | Path,
    settings: dict[str, Any] | None,
    *,
    creds: None = None,
    fetcher: Fetcher | None = None,
) -> list[Path]:
    """Fetch the queries one at a time into `dest` and check each answer reads as INCA (no
    login: `creds` is always None)."""
    settings = settings_with_defaults(settings)
    fetcher = fetcher or Fetcher(PROVIDER, policy=POLICY)
    try:
        paths = fetcher.fetch_all(list(refs), Path(dest))
    except DownloadError as exc:
        if "HTTP 400" not in str(exc):
            raise
        raise DownloadError(
            f"{exc} (if GeoSphere says the request is too large, lower 'max_values' from "
            f"{int(settings['max_values']):,} so each request is split smaller, or request "
            "fewer parameters)"
        ) from exc
    for path, ref in zip(paths, refs, strict=True):
        _check_file(Path(path), ref, settings["parameters"])
    return [Path(p) for p in paths]
