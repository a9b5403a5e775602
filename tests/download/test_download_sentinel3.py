"""Sentinel-3 SYN L2 through Sentinel Hub (CDSE): settings, payloads and evalscript, catalogue
search, chunked Process API download assembled into day files, retries, token handling and
secret hygiene, and the download-job integration, all offline."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import responses
import yaml
from affine import Affine
from fakes import sentinelhub_server as hub
from fakes.sentinelhub_server import CREDS, CRS_TEXT, SECRET, TOKEN
from werkzeug import Request, Response

from lstfill.config import validate_config
from lstfill.download import cdse, jobs, targets
from lstfill.download import sentinel2 as sh
from lstfill.download import sentinel3 as d3
from lstfill.download.base import Area, AuthError, DownloadError, FileRef, lonlat_bbox
from lstfill.download.credentials import MissingCredentials
from lstfill.grid import grid_from_config
from lstfill.sources import sentinel3 as s3
from tests.conftest import CREDENTIAL_VARS, ROOT, SNAKEMAKE, job_counts

BOUNDS = [600100, 5390050, 605350, 5393600]  # not on the 300 m raster: snapped outward
X0, Y1 = 600000.0, 5393700.0  # upper-left corner of the snapped 300 m grid
SHAPE = (13, 18)  # rows, columns of the snapped grid
DAY1, DAY2 = dt.date(2023, 7, 1), dt.date(2023, 7, 3)
CLOUD = {(0, 0), (7, 12), (12, 17)}  # no retrieval: dataMask 0 (all DNs 0)
PARTIAL = (3, 4)  # data, but one band not positive: DN 1 and CLEAR 0
SH_ORDER = list(d3.SH_BANDS.values())  # B04 B06 B08 B17 S5 S6
SEARCH_URL = hub.CATALOG_URL


@pytest.fixture
def area() -> Area:
    """A 5.25 km x 3.55 km area; at 300 m its snapped grid is 13 x 18 px."""
    grid = grid_from_config({"crs": CRS_TEXT, "bounds": BOUNDS, "resolution": 50})
    return Area("test", grid, None, lonlat_bbox(grid))


def config_for(settings: dict[str, Any]):
    return cdse.sh_config(CREDS, d3.settings_with_defaults(settings))


def refs_for(area: Area, settings: dict[str, Any], days=(DAY1,)) -> list:
    config = config_for(settings)
    return [ref for day in days for ref in d3.day_refs(area, day, settings, config)]


# --- settings, collection, bands --------------------------------------------------------------


def test_settings_defaults_and_checks():
    cfg = d3.settings_with_defaults(None)
    assert cfg["resolution"] == 300 and cfg["max_pixels"] == 2500
    assert cfg["bands"] == ["B02", "B03", "B04", "B08", "B11", "B12"]
    assert cfg["base_url"] == cdse.CDSE_URL and cfg["token_url"] == cdse.CDSE_TOKEN_URL
    cfg = d3.settings_with_defaults({"bands": ["b08", "B04"], "base_url": "http://x/"})
    assert cfg["bands"] == ["B04", "B08"] and cfg["base_url"] == "http://x"
    for bad, key in (
        ({"bands": ["B05"]}, "'bands'"),
        ({"bands": []}, "'bands'"),
        ({"max_pixels": 0}, "'max_pixels'"),
        ({"max_pixels": 2501}, "'max_pixels'"),
        ({"resolution": 0}, "'resolution'"),
    ):
        with pytest.raises(DownloadError, match=key):
            d3.settings_with_defaults(bad)


def test_bands_map_to_sentinel_hub_names():
    assert tuple(s3.BANDS) == targets.SENTINEL3_BANDS  # the parse-time copy stays in step
    assert set(d3.SH_BANDS) == set(s3.BANDS.values())
    assert d3.source_bands(["B02", "B03", "B04", "B08", "B11", "B12"]) == [
        "B04",
        "B06",
        "B08",
        "B17",
        "S5",
        "S6",
    ]


def test_collection_is_idempotent_per_url():
    syn = d3.collection(cdse.CDSE_URL)
    assert syn is d3.collection(cdse.CDSE_URL + "/")
    assert syn.api_id == "sentinel-3-synergy-l2" and syn.catalog_id == "sentinel-3-synergy-l2"
    assert syn.service_url == cdse.CDSE_URL
    other = d3.collection("http://localhost:4321")
    assert other is d3.collection("http://localhost:4321") and other is not syn
    assert other.service_url == "http://localhost:4321"
    assert sh.collection(cdse.CDSE_URL).api_id == "sentinel-2-l2a"  # Sentinel-2 unchanged


# --- payloads ---------------------------------------------------------------------------------


def test_payloads_tile_the_snapped_grid(area):
    refs = refs_for(area, {"max_pixels": 8})
    assert len(refs) == 6  # rows 6 | 7, columns 6 | 6 | 6
    cover = np.zeros(SHAPE, int)
    for ref in refs:
        r0, c0, h, w = ref.meta["window"]
        assert h <= 8 and w <= 8
        cover[r0 : r0 + h, c0 : c0 + w] += 1
        body = ref.json
        assert body["output"]["width"] == w and body["output"]["height"] == h
        expected = [X0 + c0 * 300, Y1 - (r0 + h) * 300, X0 + (c0 + w) * 300, Y1 - r0 * 300]
        assert body["input"]["bounds"]["bbox"] == expected
        assert body["input"]["bounds"]["properties"]["crs"].endswith("/EPSG/0/32633")
        assert ref.name == f".chunks/20230701/{ref.meta['row']}_{ref.meta['col']}.tif"
        assert ref.meta["shape"] == list(SHAPE) and ref.meta["day"] == "20230701"
        assert ref.meta["transform"] == [300.0, 0.0, X0, 0.0, -300.0, Y1]
        assert ref.meta["crs"] == CRS_TEXT and ref.meta["res"] == 300
    assert (cover == 1).all()  # no gap, no overlap


def test_resolution_setting_changes_the_grid(area):
    refs = refs_for(area, {"resolution": 500})
    assert len(refs) == 1
    # [600000, 5390000, 605500, 5394000]: edges on multiples of 500 m
    assert refs[0].meta["shape"] == [8, 11]
    assert refs[0].json["input"]["bounds"]["bbox"] == [600000, 5390000, 605500, 5394000]


def test_payload_content(area):
    ref = refs_for(area, {})[0]
    assert ref.method == "POST" and ref.kind == "geotiff"
    assert ref.url == f"{cdse.CDSE_URL}/api/v1/process"
    assert ref.headers == {"Accept": "image/tiff"}
    data = ref.json["input"]["data"]
    assert len(data) == 1 and data[0]["type"] == "sentinel-3-synergy-l2"
    assert data[0]["dataFilter"] == {
        "timeRange": {"from": "2023-07-01T00:00:00Z", "to": "2023-07-01T23:59:59Z"},
        "mosaickingOrder": "mostRecent",
    }  # one UTC day; no cloud-cover filter (SYN tiles have none)
    assert data[0]["processing"] == {"upsampling": "NEAREST"}
    assert ref.json["output"]["responses"] == [
        {"identifier": "default", "format": {"type": "image/tiff"}}
    ]
    script = ref.json["evalscript"]
    assert hub.script_bands(script) == SH_ORDER
    assert '"dataMask"]' in script and 'sampleType: "UINT16"' in script
    assert "bands: 7," in script  # six reflectance bands and CLEAR
    assert "Math.round(r * 10000)" in script and "Math.max(" in script
    assert "if (!s.dataMask) return [0, 0, 0, 0, 0, 0, 0];" in script
    clear = " && ".join(f"ok(s.{b})" for b in SH_ORDER)
    assert f"{clear} ? 1 : 0]" in script
    assert "units" not in script  # documented defaults: REFLECTANCE, DN for dataMask
    assert ref.meta["bands"] == ["B02", "B03", "B04", "B08", "B11", "B12"]


def test_band_subset(area):
    ref = refs_for(area, {"bands": ["B08", "B04"]})[0]
    assert ref.meta["bands"] == ["B04", "B08"]
    assert hub.script_bands(ref.json["evalscript"]) == ["B08", "B17"]  # Oa08 red, Oa17 NIR
    assert "bands: 3," in ref.json["evalscript"]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the evalscript")
def test_evalscript_semantics_in_node():
    script = d3.evalscript(["B04", "B08"])
    samples = [
        {"B08": 0.12344, "B17": 0.35, "dataMask": 1},  # clear
        {"B08": 0.00001, "B17": 7.0, "dataMask": 1},  # tiny -> DN 1, huge -> 65535, clear
        {"B08": -0.01, "B17": 0.3, "dataMask": 1},  # negative: DN 1, not clear
        {"B08": "NaN", "B17": 0.3, "dataMask": 1},  # no value: DN 0, not clear
        {"B08": 0.2, "B17": 0.3, "dataMask": 0},  # no data: all 0
    ]
    program = (
        script
        + "\nconst rows = "
        + json.dumps(samples)
        + ";\nconsole.log(JSON.stringify(rows.map(r => { for (const k in r) "
        + "{ if (r[k] === 'NaN') r[k] = NaN; } return evaluatePixel(r); })));\n"
        + "console.log(JSON.stringify(setup()));\n"
    )
    out = subprocess.run(["node", "-e", program], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    values, setup = (json.loads(line) for line in out.stdout.splitlines())
    assert values == [
        [1234, 3500, 1],
        [1, 65535, 1],
        [1, 3000, 0],
        [0, 3000, 0],
        [0, 0, 0],
    ]
    assert setup == {
        "input": [{"bands": ["B08", "B17", "dataMask"]}],
        "output": {"id": "default", "bands": 3, "sampleType": "UINT16"},
    }


# --- catalogue search -------------------------------------------------------------------------


@responses.activate
def test_search_asks_for_distinct_dates(area):
    hub.mock_catalogue(["2023-07-03", "2023-07-01", "2023-07-01", "2023-06-29"])
    refs = d3.search(area, DAY1, DAY2, {"max_pixels": 8}, creds=CREDS)

    body = hub.catalogue_request()
    assert body["collections"] == ["sentinel-3-synergy-l2"]
    assert body["distinct"] == "date"
    assert body["datetime"] == "2023-07-01T00:00:00Z/2023-07-03T23:59:59Z"
    assert body["bbox"] == pytest.approx(area.bbox_lonlat, abs=1e-4)  # WGS84, not UTM
    assert "filter" not in body  # no cloud-cover property to filter on
    # the day outside the period is dropped, the repeated one fetched once
    assert list(dict.fromkeys(r.meta["day"] for r in refs)) == ["20230701", "20230703"]
    assert len(refs) == 12 and all(r.url.endswith("/api/v1/process") for r in refs)


@responses.activate
def test_search_follows_next_token_and_accepts_items(area):
    hub.mock_token()
    responses.post(SEARCH_URL, json={"features": ["2023-07-01"], "context": {"next": 1}})
    item = {"id": "S3B_SY_2_SYN____x", "properties": {"datetime": "2023-07-02T09:58:31Z"}}
    responses.post(SEARCH_URL, json={"features": [item, 42], "context": {}})
    refs = d3.search(area, DAY1, DAY2, {}, creds=CREDS)
    assert [json.loads(c.request.body).get("next") for c in responses.calls[1:]] == [None, 1]
    assert [r.meta["day"] for r in refs] == ["20230701", "20230702"]


@responses.activate
def test_search_token_refused_is_auth_error(area, caplog):
    hub.check_search_token_refused(lambda: d3.search(area, DAY1, DAY2, {}, creds=CREDS), caplog)


@responses.activate
def test_search_catalogue_errors(area):
    hub.mock_token()
    responses.post(SEARCH_URL, status=403, json={"error": "forbidden"})
    with pytest.raises(AuthError, match="HTTP 403") as info:
        d3.search(area, DAY1, DAY2, {}, creds=CREDS)
    assert "SH_CLIENT_SECRET" in str(info.value)
    responses.replace(responses.POST, SEARCH_URL, status=400, json={"e": "bad"})
    with pytest.raises(DownloadError, match="HTTP 400") as info:
        d3.search(area, DAY1, DAY2, {}, creds=CREDS)
    assert SEARCH_URL in str(info.value) and "Sentinel-3" in str(info.value)


def test_search_without_credentials(area, no_credentials):
    hub.check_no_request_without_credentials(lambda: d3.search(area, DAY1, DAY2, {}))


# --- a fake Sentinel Hub ----------------------------------------------------------------------


def expected_dn(band: str, rows: np.ndarray, cols: np.ndarray, day: dt.date) -> np.ndarray:
    """The DN the fake server gives Sentinel Hub band `band` at global pixel (rows, cols)."""
    value = 1000 * (SH_ORDER.index(band) + 1) + rows * 100 + cols + 10 * (day.day - 1)
    cloud = np.zeros(rows.shape, bool)
    for r, c in CLOUD:
        cloud |= (rows == r) & (cols == c)
    value = np.where(cloud, 0, value)
    if band == "B06":
        value = np.where((rows == PARTIAL[0]) & (cols == PARTIAL[1]), 1, value)
    return value.astype(np.uint16)


def expected_clear(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    clear = np.ones(rows.shape, np.uint16)
    for r, c in [*CLOUD, PARTIAL]:
        clear[(rows == r) & (cols == c)] = 0
    return clear


class FakeSyn(hub.FakeSentinelHub):
    """Adds the catalogue (``distinct=date`` answering `days`); the Process API answers the DNs
    of :func:`expected_dn` and :func:`expected_clear`, all 0 on the `empty` days."""

    def __init__(self, httpserver, *, days=("2023-07-01",)) -> None:
        super().__init__(httpserver, (X0, Y1), max_pixels=8)
        self.days = list(days)
        self.empty: set[dt.date] = set()
        httpserver.expect_request(
            "/api/v1/catalog/1.0.0/search", method="POST"
        ).respond_with_handler(self.catalogue)

    def catalogue(self, request: Request) -> Response:
        body = request.get_json()
        assert body["distinct"] == "date" and body["collections"] == ["sentinel-3-synergy-l2"]
        return Response(
            json.dumps({"features": self.days, "context": {}}), content_type="application/json"
        )

    def stack(self, body: dict[str, Any], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        day = dt.date.fromisoformat(
            body["input"]["data"][0]["dataFilter"]["timeRange"]["from"][:10]
        )
        bands = hub.script_bands(body["evalscript"])
        stack = np.stack(
            [expected_dn(b, rows, cols, day) for b in bands] + [expected_clear(rows, cols)]
        )
        return np.zeros_like(stack) if day in self.empty else stack


@pytest.fixture
def fake(httpserver, monkeypatch) -> FakeSyn:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the test server speaks http
    return FakeSyn(httpserver)


def _assert_day(path: Path, day: dt.date, bands=tuple(s3.BANDS)) -> None:
    """The day file holds exactly the fake server's values on the snapped 300 m grid."""
    assert path.name == s3.filename(day)
    got = s3.read_day(path)
    assert got.day == day and list(got.reflectance) == list(bands)
    rows, cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    clear = expected_clear(rows, cols)
    np.testing.assert_array_equal(got.clear.data, clear)
    for band in bands:
        raster = got.reflectance[band]
        assert raster.data.shape == SHAPE
        assert raster.transform == Affine(300, 0, X0, 0, -300, Y1) and raster.crs == CRS_TEXT
        dn = expected_dn(d3.SH_BANDS[s3.BANDS[band]], rows, cols, day).astype(np.float32)
        want = np.where(clear == 1, dn / np.float32(10000), np.nan)
        np.testing.assert_allclose(raster.data, want, rtol=1e-6)
    if "B02" in bands:
        # pixels on both sides of the chunk borders (rows 6 | 7, columns 6 | 6 | 6)
        b02 = got.reflectance["B02"].data
        offset = (day.day - 1) * 10
        assert b02[5, 5] == pytest.approx((1505 + offset) / 1e4)
        assert b02[6, 6] == pytest.approx((1606 + offset) / 1e4)
        assert b02[6, 11] == pytest.approx((1611 + offset) / 1e4)
        assert b02[0, 12] == pytest.approx((1012 + offset) / 1e4)
        assert np.isnan(b02[7, 12]) and np.isnan(b02[PARTIAL])
    with rasterio.open(path) as src:
        assert src.descriptions == (*bands, "CLEAR")
        assert src.dtypes == ("uint16",) * (len(bands) + 1) and src.nodata == 0
        tags = src.tags()
        assert tags["PRODUCT"] == "SY_2_SYN" and tags["DATE"] == day.isoformat()
        assert tags["COLLECTION"] == "sentinel-3-synergy-l2" and tags["MOSAICKING"] == "mostRecent"
        assert float(tags["RESOLUTION"]) == 300
        raw = src.read()
    if "B03" in bands:
        b03 = raw[list(bands).index("B03")]
        assert b03[PARTIAL] == 1  # kept as the service gave it; CLEAR says not to use it
    assert all((raw[i][r, c] == 0) for i in range(len(bands) + 1) for r, c in CLOUD)


# --- download ---------------------------------------------------------------------------------


def test_download_assembles_day_files(area, fake, tmp_path):
    settings = fake.settings()
    refs = refs_for(area, settings, days=(DAY1, DAY2))
    dest = tmp_path / "raw" / "sentinel3"

    paths = d3.download(refs, dest, settings, creds=CREDS)

    assert paths == [dest / s3.filename(DAY1), dest / s3.filename(DAY2)]
    _assert_day(paths[0], DAY1)
    _assert_day(paths[1], DAY2)
    assert list(s3.find_days(dest)) == ["20230701", "20230703"]
    assert len(fake.process_calls) == 12
    assert fake.auth == [f"Bearer {TOKEN}"] * 12
    assert not (dest / ".chunks").exists()
    assert sorted(p.name for p in dest.iterdir()) == [p.name for p in paths]  # no temp files

    # complete days are not fetched again (no token, no process request)
    token_calls = fake.token_calls()
    assert d3.download(refs, dest, settings, creds=CREDS) == paths
    assert len(fake.process_calls) == 12 and fake.token_calls() == token_calls


def test_download_band_subset(area, fake, tmp_path):
    settings = fake.settings(bands=["B08", "B04"])
    paths = d3.download(refs_for(area, settings), tmp_path, settings, creds=CREDS)
    _assert_day(paths[0], DAY1, bands=("B04", "B08"))
    # a file with other bands is not complete: asking for all bands fetches the day again
    full = fake.settings()
    assert d3.download(refs_for(area, full), tmp_path, full, creds=CREDS) == paths
    assert len(fake.process_calls) == 12
    _assert_day(paths[0], DAY1)


@pytest.mark.parametrize("script", [["429"], ["503", "503"], ["short"]])
def test_download_retries(area, fake, tmp_path, script):
    """A 429 waits its Retry-After, server errors the backoff (0 s in this policy), and a body
    cut short is fetched again from its start (POSTs restart, never resume)."""
    fake.script = list(script)
    settings = fake.settings()
    sleeps: list[float] = []
    paths = d3.download(
        refs_for(area, settings), tmp_path, settings, fetcher=hub.fetcher(settings, sleeps)
    )
    assert len(sleeps) == len(script) and len(fake.process_calls) == 6 + len(script)
    if script == ["429"]:
        assert sleeps == [7.0]  # Retry-After honoured
    assert all(a == f"Bearer {TOKEN}" for a in fake.auth)
    _assert_day(paths[0], DAY1)


def test_download_truncated_tiff_is_a_clear_error(area, fake, tmp_path):
    fake.corrupt = True
    settings = fake.settings()
    with pytest.raises(DownloadError, match="does not open as GeoTIFF") as info:
        d3.download(refs_for(area, settings), tmp_path, settings, creds=CREDS)
    message = str(info.value)
    assert "/api/v1/process" in message and ".chunks/20230701" in message
    assert not (tmp_path / s3.filename(DAY1)).exists()
    assert not list((tmp_path / ".chunks").rglob("*.part"))  # nothing half-written kept


def test_download_skips_day_without_clear_pixel(area, fake, tmp_path, caplog):
    fake.empty = {DAY2}
    settings = fake.settings()
    with caplog.at_level(logging.WARNING):
        paths = d3.download(refs_for(area, settings, (DAY1, DAY2)), tmp_path, settings, creds=CREDS)
    assert paths == [tmp_path / s3.filename(DAY1)]
    assert "Sentinel-3 20230703 has no clear pixel" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == [s3.filename(DAY1)]  # no chunks left


def test_download_rebuilds_a_broken_day_file(area, fake, tmp_path):
    settings = fake.settings()
    (tmp_path / s3.filename(DAY1)).write_bytes(b"not a tiff")
    paths = d3.download(refs_for(area, settings), tmp_path, settings, creds=CREDS)
    assert len(fake.process_calls) == 6
    _assert_day(paths[0], DAY1)


def test_download_rejects_chunk_on_wrong_grid(area, fake, tmp_path):
    settings = fake.settings()
    hub.check_rejects_chunk_on_wrong_grid(d3.download, refs_for(area, settings), tmp_path, settings)
    assert not (tmp_path / s3.filename(DAY1)).exists()


def test_download_rejects_foreign_refs(tmp_path):
    with pytest.raises(DownloadError, match="not a Sentinel-3 chunk request"):
        d3.download([FileRef(url="http://x", name="a.tif")], tmp_path, {}, creds=CREDS)


def test_download_token_refused(area, httpserver, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    hub.check_download_token_refused(
        lambda settings: d3.download(refs_for(area, settings), tmp_path, settings, creds=CREDS),
        httpserver,
        8,
        caplog,
    )
    assert not (tmp_path / ".chunks").exists()


def test_process_refusal_is_auth_error(area, httpserver, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request("/token", method="POST").respond_with_json(
        {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600}
    )
    httpserver.expect_request("/api/v1/process", method="POST").respond_with_data(
        "token expired", status=401
    )
    settings = {
        "base_url": httpserver.url_for("/").rstrip("/"),
        "token_url": httpserver.url_for("/token"),
        "max_pixels": 8,
    }
    with pytest.raises(AuthError, match="HTTP 401") as info:
        d3.download(refs_for(area, settings), tmp_path, settings, creds=CREDS)
    assert "SH_CLIENT_ID" in str(info.value) and "/api/v1/process" in str(info.value)
    process_calls = [req for req, _ in httpserver.log if req.path == "/api/v1/process"]
    assert len(process_calls) == 6  # each chunk tried once: a refusal is not retried
    hub.assert_no_secret(info.value, caplog)
    assert TOKEN not in caplog.text and TOKEN not in str(info.value)


def test_download_without_credentials(area, httpserver, no_credentials, tmp_path):
    hub.check_download_needs_credentials(
        lambda settings: d3.download(refs_for(area, settings), tmp_path / "s3", settings),
        httpserver,
        tmp_path / "s3",
        8,
    )


# --- the download jobs ------------------------------------------------------------------------


def small_region(**download: Any) -> dict:
    return {
        "source": "download",
        "start": "2023-07-01",
        "end": "2023-07-02",
        "grid": {"crs": CRS_TEXT, "bounds": BOUNDS, "resolution": 50},
        "download": {"sources": ["sentinel3"], **download},
    }


def test_job_registration():
    assert jobs.provider("sentinel3") is d3
    assert d3.ACCOUNT == "sentinelhub"
    assert "sentinel3" in targets.SOURCES and "sentinel3" in targets.DATED
    from lstfill import inventory

    assert "sentinel3" in inventory.SOURCES


def test_days_and_settings_for_the_workflow():
    cfg = validate_config({"regions": {"v": small_region()}})
    region = cfg["regions"]["v"]
    margin = dt.timedelta(days=45)  # 1.5 * fusion.max_days (30): the coarse days EFAST reads
    days = targets.source_days("sentinel3", region, cfg)
    assert days[0] == DAY1 - margin and days[-1] == dt.date(2023, 7, 2) + margin
    assert len(days) == 2 + 2 * margin.days
    cfg["fusion"] = {"max_days": 2.5}  # a fractional margin (3.75 days) rounds up
    days = targets.source_days("sentinel3", region, cfg)
    assert days[0] == dt.date(2023, 6, 27) and days[-1] == dt.date(2023, 7, 6)
    settings = targets.provider_settings("sentinel3", region, cfg)
    assert settings["bands"] == ["B02", "B03", "B04", "B08", "B11", "B12"]
    assert settings["resolution"] == 300 and settings["base_url"] == cdse.CDSE_URL
    cfg["prepare"]["sentinel2"]["bands"] = ["B08", "B05", "B04"]
    settings = targets.provider_settings("sentinel3", region, cfg)
    assert settings["bands"] == ["B08", "B04"]  # B05 has no Sentinel-3 equivalent


def test_default_sources_fetch_sentinel3_and_widen_sentinel2_for_the_fusion():
    region = small_region()
    del region["download"]["sources"]
    cfg = validate_config({"regions": {"v": region}})
    region = cfg["regions"]["v"]
    assert "sentinel3" in region["download"]["sources"]
    # Sentinel-2 reaches fusion.max_days (30) beyond the period, wider than window_days (20)
    days = targets.source_days("sentinel2", region, cfg)
    assert days[0] == DAY1 - dt.timedelta(days=30)
    region["download"]["sources"] = ["sentinel2"]  # no fusion: window_days alone
    days = targets.source_days("sentinel2", region, cfg)
    assert days[0] == DAY1 - dt.timedelta(days=20)


def test_missing_credentials_fail_before_any_request(no_credentials):
    cfg = validate_config({"regions": {"v": small_region()}})
    area = Area.from_config("v", cfg["regions"]["v"])
    settings = targets.provider_settings("sentinel3", cfg["regions"]["v"], cfg)
    with pytest.raises(MissingCredentials, match="SH_CLIENT_ID") as info:
        jobs.require_credentials("sentinel3")
    assert "SH_CLIENT_SECRET" in str(info.value)
    with pytest.raises(MissingCredentials, match="SH_CLIENT_ID"):
        jobs.run_download("sentinel3", area, DAY1, DAY1, settings, no_credentials / "raw")
    assert not (no_credentials / "raw").exists()


def test_run_download_end_to_end(httpserver, monkeypatch, no_credentials):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setenv("SH_CLIENT_ID", "client-id")
    monkeypatch.setenv("SH_CLIENT_SECRET", SECRET)
    fake = FakeSyn(httpserver, days=["2023-07-01"])
    service = {k: v for k, v in fake.settings().items() if k != "max_pixels"}
    cfg = validate_config({"regions": {"v": small_region(sentinel3=service)}})
    region = cfg["regions"]["v"]
    area = Area.from_config("v", region)
    settings = targets.provider_settings("sentinel3", region, cfg)
    raw = no_credentials / "raw"

    refs, paths = jobs.run_download("sentinel3", area, DAY1, DAY1, settings, raw)

    assert paths == [raw / "sentinel3" / s3.filename(DAY1)]
    assert len(refs) == 1 and len(fake.process_calls) == 1  # 13 x 18 px: one chunk
    _assert_day(paths[0], DAY1)
    manifest = jobs.write_manifest(no_credentials / "m.json", "sentinel3", "v", DAY1, refs, paths)
    record = json.loads(manifest.read_text())
    assert record["files"] == [str(paths[0])] and record["found"] == [".chunks/20230701/0_0.tif"]
    assert s3.find_days(raw / "sentinel3") == {"20230701": paths[0]}


def test_inventory_lists_sentinel3_days(tmp_path, monkeypatch):
    from lstfill import acquire

    raw = tmp_path / "raw"
    for folder in ("ecostress", "srtm", "landcover"):
        (raw / folder).mkdir(parents=True)
    gid = "ECOv002_L2T_LSTE_28527_009_33UXP_20230701T081442_0710_01"
    monkeypatch.setattr(acquire.ecostress, "find_granules", lambda folder: [gid])
    monkeypatch.setattr(acquire.srtm, "find_dem", lambda folder: [folder / "dem.tif"])
    layers = {name: raw / "landcover" / f"{name}.tif" for name in acquire.landcover.LAYERS}
    monkeypatch.setattr(acquire.landcover, "find_layers", lambda folder: layers)
    grid = grid_from_config({"crs": CRS_TEXT, "bounds": BOUNDS, "resolution": 50})
    period = (DAY1, DAY2)

    inv = acquire.build_inventory(raw, "t", grid, *period)
    assert inv["sentinel3"] == {}  # no folder, no days

    (raw / "sentinel3").mkdir()
    for day in (DAY2, DAY1):
        (raw / "sentinel3" / s3.filename(day)).write_bytes(b"x")
    (raw / "sentinel3" / "readme.txt").write_text("not a day")
    inv = acquire.build_inventory(raw, "t", grid, *period)
    assert inv["sentinel3"] == {
        "20230701": str(raw / "sentinel3" / s3.filename(DAY1)),
        "20230703": str(raw / "sentinel3" / s3.filename(DAY2)),
    }
    json.dumps(inv)  # the inventory is written as JSON


# --- the workflow's download rule -------------------------------------------------------------


def test_dry_run_plans_one_job_per_widened_day(tmp_path):
    example = yaml.safe_load((ROOT / "config/examples/vienna.yaml").read_text())
    (name,) = example["regions"]
    example["regions"][name]["download"]["sources"] = ["sentinel3"]
    config = tmp_path / "s3.yaml"
    config.write_text(yaml.safe_dump(example))
    cfg = validate_config(example)
    proc = subprocess.run(
        [*SNAKEMAKE, "-d", str(tmp_path), "-n", "--configfile", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout + proc.stderr)
    margin = math.ceil(1.5 * cfg["fusion"]["max_days"])
    start, end = (dt.date.fromisoformat(str(cfg["regions"][name][k])) for k in ("start", "end"))
    assert counts["download_sentinel3"] == (end - start).days + 1 + 2 * margin
    assert "download_sentinel2" not in counts


def test_workflow_job_fetches_one_day(httpserver, no_credentials):
    fake = FakeSyn(httpserver, days=["2023-07-01"])
    service = {k: v for k, v in fake.settings().items() if k != "max_pixels"}
    wd = no_credentials / "wd"
    (wd / "config").mkdir(parents=True)
    region = small_region(sentinel3=service)
    region["end"] = "2023-07-11"  # a period the workflow's day splits can be made from
    (wd / "config/config.yaml").write_text(yaml.safe_dump({"regions": {"v": region}}))
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
    env |= {
        "HOME": str(no_credentials),
        "SH_CLIENT_ID": "client-id",
        "SH_CLIENT_SECRET": SECRET,
        "OAUTHLIB_INSECURE_TRANSPORT": "1",
    }
    target = "resources/v/downloads/sentinel3/20230701.json"
    proc = subprocess.run(
        [*SNAKEMAKE, "-d", str(wd), "--cores", "1", "--workflow-profile", "none", target],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    manifest = json.loads((wd / target).read_text())
    assert manifest["source"] == "sentinel3" and manifest["day"] == "2023-07-01"
    assert manifest["found"] == [".chunks/20230701/0_0.tif"]
    day_file = wd / manifest["files"][0]
    assert day_file == wd / "resources/v/raw/sentinel3" / s3.filename(DAY1)
    _assert_day(day_file, DAY1)
    log_text = (wd / "logs/download_sentinel3/v/20230701.log").read_text()
    assert SECRET not in log_text and SECRET not in proc.stdout + proc.stderr
