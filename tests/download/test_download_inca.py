"""INCA download from the GeoSphere data hub: request size, planning, queries and transfers.

A local pytest-httpserver stands in for the hub. ``fixtures/download/inca/metadata.json`` is
hand-made from the documented keys (acquisition notes, section 5), not a recorded reply.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import netCDF4
import numpy as np
import pytest
from affine import Affine
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from lstfill.download import inca
from lstfill.download.base import Area, DownloadError
from lstfill.download.fetch import Fetcher, FetchPolicy
from lstfill.grid import Grid
from lstfill.sources.inca import filename, read_inca, write_inca

PATH = "/v1/grid/historical/inca-v1-1h-1km"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "download"
META = json.loads((FIXTURES / "inca" / "metadata.json").read_text())
VIENNA = (16.33, 47.73, 17.85, 48.74)  # lon_min, lat_min, lon_max, lat_max
DAY = datetime(2023, 7, 1, tzinfo=UTC)
X = 600_500.0 + 1000.0 * np.arange(4)  # EPSG:31287 cell centres of a tiny answer
Y = 482_500.0 - 1000.0 * np.arange(3)


def _area(bbox: tuple[float, float, float, float] = VIENNA, name: str = "vienna") -> Area:
    grid = Grid("EPSG:31287", Affine(1000.0, 0, 600_000.0, 0, -1000.0, 483_000.0), 4, 3)
    return Area(name, grid, None, bbox)


def _settings(server: HTTPServer, **extra: object) -> dict:
    return {"url": server.url_for(PATH), **extra}


def _serve_metadata(server: HTTPServer, meta: dict = META) -> None:
    server.expect_request(f"{PATH}/metadata").respond_with_json(meta)


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _netcdf_bytes(tmp_path: Path, day: datetime = DAY) -> bytes:
    """A one-day INCA answer on a 3 x 4 grid; T2M (degC) = 20 + hour / 2 + column."""
    times = [day + timedelta(hours=h) for h in range(24)]
    shape = (24, Y.size, X.size)
    hours = np.arange(24, dtype=float)[:, None, None]
    cols = np.arange(X.size, dtype=float)[None, None, :]
    data = {
        "T2M": np.broadcast_to(20.0 + hours / 2 + cols, shape).copy(),
        "GL": np.full(shape, 500.0),
        "RH2M": np.full(shape, 60.0),
        "UU": np.full(shape, 1.0),
        "VV": np.full(shape, -1.0),
    }
    path = write_inca(tmp_path / "answer" / filename(times[0], times[-1]), times, X, Y, data)
    return path.read_bytes()


def _fast_fetcher(waits: list[float]) -> Fetcher:
    policy = FetchPolicy(retries=3, backoff_s=0.01, max_backoff_s=10.0, concurrency=1)
    return Fetcher(inca.PROVIDER, policy=policy, sleep=waits.append)


# ---------------------------------------------------------------------------------------------
# size and planning


def test_grid_points_small_bbox_by_hand() -> None:
    # Straddles the Lambert central meridian (13 deg 20'): 0.06 deg lon at 47.5 N is 4.51 km
    # -> ceil 5 + 1 = 6 columns; 0.05 deg lat is 5.56 km -> ceil 6 + 1 = 7 rows.
    assert inca.grid_points((13.30, 47.50, 13.36, 47.55), 0.0) == 42
    assert inca.grid_points((13.3, 47.5, 13.3, 47.5), 0.0) == 1  # a point: one grid point


def test_grid_points_vienna_is_plausible() -> None:
    bare = inca.grid_points(VIENNA, 0.0)
    buffered = inca.grid_points(VIENNA, 2.0)
    # about 114 km x 112 km, a little more in Lambert (meridian convergence) and +4 km buffered
    assert 13_000 < bare < 15_500
    assert 14_500 < buffered < 16_500
    assert buffered > bare


def test_query_bbox_buffers_and_rounds_outward() -> None:
    assert inca.query_bbox(VIENNA, 0.0) == VIENNA  # already at 3 decimals: no float drift
    lon0, lat0, lon1, lat1 = inca.query_bbox(VIENNA, 2.0)
    assert (lat0, lat1) == (47.712, 48.758)  # 2 km = 0.018 deg of latitude
    assert (lon0, lon1) == (16.302, 17.878)  # 2 km at 48.74 N = 0.027 deg of longitude


def _hours(ranges: list[tuple[datetime, datetime]]) -> list[datetime]:
    out: list[datetime] = []
    for t0, t1 in ranges:
        out += [t0 + timedelta(hours=h) for h in range(int((t1 - t0) / timedelta(hours=1)) + 1)]
    return out


def test_plan_one_request_per_day_when_a_day_fits() -> None:
    ranges = inca.plan_requests(_area(), date(2023, 7, 1), date(2023, 7, 3), {}, 15_000)
    assert ranges == [
        (DAY + timedelta(days=d), DAY + timedelta(days=d, hours=23)) for d in range(3)
    ]
    assert filename(*ranges[0]) == "inca-v1-1h-1km_20230701T0000_20230701T2300.nc"


@pytest.mark.parametrize(
    ("max_values", "blocks"),
    [(2_399_999, 2), (1_000_000, 3), (600_000, 4), (499_999, 6), (100_000, 24)],
)
def test_plan_splits_a_day_into_equal_blocks(max_values: int, blocks: int) -> None:
    settings = {"max_values": max_values}  # 5 parameters x 20 000 points = 100 000 per hour
    ranges = inca.plan_requests(_area(), date(2023, 7, 1), date(2023, 7, 2), settings, 20_000)
    assert len(ranges) == 2 * blocks
    sizes = {(t1 - t0) // timedelta(hours=1) + 1 for t0, t1 in ranges}
    assert sizes == {24 // blocks}
    assert all(5 * 20_000 * size <= max_values for size in sizes)
    assert _hours(ranges) == [DAY + timedelta(hours=h) for h in range(48)]  # each hour once


def test_plan_uses_utc_days_of_datetimes() -> None:
    cest = datetime(2023, 7, 2, 1, tzinfo=UTC).astimezone()  # any zone: the UTC day counts
    ranges = inca.plan_requests(_area(), cest, cest, {"parameters": ["T2M"]}, 10)
    assert ranges == [(DAY + timedelta(days=1), DAY + timedelta(days=1, hours=23))]


def test_plan_fails_when_one_hour_is_too_big() -> None:
    with pytest.raises(DownloadError, match="shrink the region") as err:
        inca.plan_requests(_area(name="alps"), date(2023, 7, 1), date(2023, 7, 1), {}, 2_000_001)
    assert "geosphere" in str(err.value) and "alps" in str(err.value)
    assert "10,000,005" in str(err.value)


# ---------------------------------------------------------------------------------------------
# metadata and search


def test_search_builds_one_query_per_day(httpserver: HTTPServer) -> None:
    _serve_metadata(httpserver)
    refs = inca.search(_area(), date(2023, 7, 1), date(2023, 7, 2), _settings(httpserver))
    assert [r.name for r in refs] == [
        "inca-v1-1h-1km_20230701T0000_20230701T2300.nc",
        "inca-v1-1h-1km_20230702T0000_20230702T2300.nc",
    ]
    assert all(r.kind == "netcdf" and r.method == "GET" for r in refs)
    assert urlsplit(refs[0].url).path == PATH
    assert "parameters=T2M,GL,RH2M,UU,VV&" in refs[0].url  # commas and colons stay literal
    assert _query(refs[0].url) == {
        "parameters": "T2M,GL,RH2M,UU,VV",
        "start": "2023-07-01T00:00",
        "end": "2023-07-01T23:00",
        "bbox": "47.712,16.302,48.758,17.878",  # south,west,north,east, buffered 2 km
        "output_format": "netcdf",
    }
    assert _query(refs[1].url)["start"] == "2023-07-02T00:00"
    assert _query(refs[1].url)["end"] == "2023-07-02T23:00"
    points = inca.grid_points(VIENNA, 2.0)
    assert refs[0].meta["values"] == 5 * 24 * points


def test_search_splits_days_over_the_value_limit(httpserver: HTTPServer) -> None:
    _serve_metadata(httpserver)
    settings = _settings(httpserver, parameters=["T2M", "GL"], max_values=300_000, buffer_km=0)
    refs = inca.search(_area(), date(2023, 7, 1), date(2023, 7, 1), settings)
    points = inca.grid_points(VIENNA, 0.0)  # 2 x 8 h x ~14 000 fits, 12 h does not
    assert 2 * 8 * points <= 300_000 < 2 * 12 * points
    assert [(_query(r.url)["start"], _query(r.url)["end"]) for r in refs] == [
        ("2023-07-01T00:00", "2023-07-01T07:00"),
        ("2023-07-01T08:00", "2023-07-01T15:00"),
        ("2023-07-01T16:00", "2023-07-01T23:00"),
    ]
    assert _query(refs[0].url)["bbox"] == "47.730,16.330,48.740,17.850"
    assert refs[1].name == "inca-v1-1h-1km_20230701T0800_20230701T1500.nc"


def test_search_rejects_unknown_parameters(httpserver: HTTPServer) -> None:
    _serve_metadata(httpserver)
    settings = _settings(httpserver, parameters=["T2M", "LST", "SNOW"])
    with pytest.raises(DownloadError, match="unknown INCA parameter") as err:
        inca.search(_area(), date(2023, 7, 1), date(2023, 7, 1), settings)
    msg = str(err.value)
    assert "parameter(s) LST, SNOW;" in msg
    assert "GL, P0, RH2M, RR, T2M, TD2M, UU, VV" in msg
    assert httpserver.url_for(PATH) in msg and "geosphere" in msg


def test_search_rejects_a_region_outside_austria(httpserver: HTTPServer) -> None:
    _serve_metadata(httpserver)
    lyon = (4.7, 45.6, 5.0, 45.9)
    with pytest.raises(DownloadError, match="only Austria and its surroundings") as err:
        inca.search(_area(lyon), date(2023, 7, 1), date(2023, 7, 1), _settings(httpserver))
    assert "lat 45.5..49.7, lon 8.0..18.0" in str(err.value)


def test_search_clips_the_buffer_to_the_domain(httpserver: HTTPServer) -> None:
    _serve_metadata(httpserver)
    edge = (17.9, 48.0, 17.99, 48.1)  # inside, but 2 km of buffer would cross lon 18.0
    refs = inca.search(_area(edge), date(2023, 7, 1), date(2023, 7, 1), _settings(httpserver))
    assert _query(refs[0].url)["bbox"] == "47.982,17.873,48.118,18.000"


def test_metadata_retries_rate_limit_then_reports_errors(httpserver: HTTPServer) -> None:
    answers = iter(
        [
            Response("slow down", 429, {"ratelimit-reset": "2"}),
            Response("busy", 503, {"Retry-After": "1"}),
            Response(json.dumps(META), 200, content_type="application/json"),
        ]
    )
    httpserver.expect_request(f"{PATH}/metadata").respond_with_handler(lambda _: next(answers))
    waits: list[float] = []
    meta = inca.metadata(_settings(httpserver), fetcher=_fast_fetcher(waits))
    assert waits == [2.0, 1.0]
    assert meta["crs"] == "EPSG:31287"


def test_metadata_client_error_is_not_retried(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{PATH}/metadata").respond_with_json({"detail": "Not Found"}, 404)
    waits: list[float] = []
    with pytest.raises(DownloadError, match="HTTP 404.*Not Found") as err:
        inca.metadata(_settings(httpserver), fetcher=_fast_fetcher(waits))
    assert waits == [] and f"{PATH}/metadata" in str(err.value)


# ---------------------------------------------------------------------------------------------
# download


def _refs(server: HTTPServer, days: int = 1, **extra: object) -> list:
    _serve_metadata(server)
    end = date(2023, 7, days)
    return inca.search(_area(), date(2023, 7, 1), end, _settings(server, **extra))


def test_download_saves_a_readable_inca_file(httpserver: HTTPServer, tmp_path: Path) -> None:
    refs = _refs(httpserver)
    body = _netcdf_bytes(tmp_path)
    httpserver.expect_request(PATH).respond_with_data(body, content_type="application/x-netcdf")
    paths = inca.download(refs, tmp_path / "raw", {}, fetcher=_fast_fetcher([]))
    assert paths == [tmp_path / "raw" / "inca-v1-1h-1km_20230701T0000_20230701T2300.nc"]
    data = read_inca(paths[0])
    assert data.times[0] == np.datetime64("2023-07-01T00:00")
    assert data.times.size == 24
    assert data.fields["T2M"][10, 1, 2] == pytest.approx(20.0 + 5.0 + 2.0 + 273.15, abs=1e-3)


@pytest.mark.parametrize(
    ("headers", "wait"), [({"ratelimit-reset": "2"}, 2.0), ({"Retry-After": "1"}, 1.0)]
)
def test_download_honours_rate_limit_waits(
    httpserver: HTTPServer, tmp_path: Path, headers: dict, wait: float
) -> None:
    refs = _refs(httpserver)
    body = _netcdf_bytes(tmp_path)
    answers = iter(
        [
            Response('{"detail": "rate limit"}', 429, headers, content_type="application/json"),
            Response(body, 200, content_type="application/x-netcdf"),
        ]
    )
    httpserver.expect_request(PATH).respond_with_handler(lambda _: next(answers))
    waits: list[float] = []
    paths = inca.download(refs, tmp_path / "raw", {}, fetcher=_fast_fetcher(waits))
    assert read_inca(paths[0]).times.size == 24
    assert waits == [wait]  # the server's wait, not the back-off


def test_download_reports_the_api_refusal(httpserver: HTTPServer, tmp_path: Path) -> None:
    refs = _refs(httpserver)
    httpserver.expect_request(PATH).respond_with_json({"detail": "too many values"}, 400)
    with pytest.raises(DownloadError, match="too many values") as err:
        inca.download(refs, tmp_path / "raw", {}, fetcher=_fast_fetcher([]))
    assert "max_values" in str(err.value)
    assert not list(tmp_path.glob("raw/*.nc"))


def _foreign_netcdf(tmp_path: Path) -> bytes:
    path = tmp_path / "foreign.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("x", 3)
        nc.createVariable("precip", "f4", ("x",))[:] = [1.0, 2.0, 3.0]
    return path.read_bytes()


def test_download_removes_a_netcdf_without_inca_variables(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    refs = _refs(httpserver)
    body = _foreign_netcdf(tmp_path)
    httpserver.expect_request(PATH).respond_with_data(body, content_type="application/x-netcdf")
    with pytest.raises(DownloadError, match="not a usable INCA file") as err:
        inca.download(refs, tmp_path / "raw", {}, fetcher=_fast_fetcher([]))
    assert refs[0].name in str(err.value)
    assert "?" not in str(err.value)  # the URL is shown without its query
    assert not (tmp_path / "raw" / refs[0].name).exists()


def test_download_requests_are_serialised(tmp_path: Path) -> None:
    lock = threading.Lock()
    state = {"now": 0, "most": 0, "calls": 0}
    bodies = {d: _netcdf_bytes(tmp_path / str(d), DAY + timedelta(days=d)) for d in range(3)}

    def handler(request: Request) -> Response:
        with lock:
            state["now"] += 1
            state["calls"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.05)
        day = int(request.args["start"][8:10]) - 1
        with lock:
            state["now"] -= 1
        return Response(bodies[day], 200, content_type="application/x-netcdf")

    with HTTPServer(threaded=True) as server:
        refs = _refs(server, days=3)
        server.expect_request(PATH).respond_with_handler(handler)
        paths = inca.download(refs, tmp_path / "raw", {})  # the module's own POLICY
    assert state == {"now": 0, "most": 1, "calls": 3}
    assert [read_inca(p).times[0] for p in paths] == [
        np.datetime64(f"2023-07-0{d}T00:00") for d in (1, 2, 3)
    ]
