"""Sentinel-2 L2A through Sentinel Hub (CDSE): payloads, catalogue search, chunked Process API
download and assembly, token handling and secret hygiene, all offline."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import responses
from affine import Affine
from fakes import sentinelhub_server as hub
from fakes.sentinelhub_server import CREDS, CRS_TEXT, TOKEN

from lstfill.download import cdse, process_api
from lstfill.download import sentinel2 as sh
from lstfill.download.base import Area, DownloadError, lonlat_bbox
from lstfill.grid import grid_from_config
from lstfill.sources import sentinel2 as s2

SCENE = "S2B_MSIL2A_20230701T101559_N0509_R065_T33UXP_20230701T130012"
OTHER_TILE = "S2B_MSIL2A_20230701T101559_N0509_R065_T33UXQ_20230701T130012"
ITEM_TIME = "2023-07-01T10:25:59.024Z"
X0, Y1 = 600000.0, 5390300.0  # upper-left corner of the test area
NODATA_10 = (29, 39)  # the 10 m pixel the fake server marks as no data (dataMask 0)
NODATA_20 = (0, 0)  # the 20 m pixel likewise


@pytest.fixture
def area() -> Area:
    """A 400 m x 300 m area: 40 x 30 px at 10 m, 20 x 15 px at 20 m."""
    grid = grid_from_config(
        {"crs": CRS_TEXT, "bounds": [600000, 5390000, 600400, 5390300], "resolution": 100}
    )
    return Area("test", grid, "33UXP", lonlat_bbox(grid))


@pytest.fixture
def settings() -> dict[str, Any]:
    return {"max_pixels": 16, "max_cloud_cover": 50}


def refs_for(area: Area, settings: dict[str, Any]) -> list:
    config = cdse.sh_config(CREDS, settings)
    return sh.scene_refs(area, SCENE, ITEM_TIME, settings, config)


# --- payloads ---------------------------------------------------------------------------------


def test_split_covers_exactly_with_limit():
    assert process_api.split(30, 16) == [(0, 15), (15, 15)]
    assert process_api.split(16, 16) == [(0, 16)]
    parts = process_api.split(10980, 2500)
    assert len(parts) == 5 and all(size <= 2500 for _, size in parts)
    assert parts[0][0] == 0 and sum(size for _, size in parts) == 10980


def test_payloads_tile_the_area(area, settings):
    refs = refs_for(area, settings)
    by_res = {res: [r for r in refs if r.meta["res"] == res] for res in (10, 20)}
    assert len(by_res[10]) == 6 and len(by_res[20]) == 2  # 2 x 3 and 1 x 2 chunks
    for res, (height, width) in ((10, (30, 40)), (20, (15, 20))):
        cover = np.zeros((height, width), int)
        for ref in by_res[res]:
            r0, c0, h, w = ref.meta["window"]
            assert h <= 16 and w <= 16
            cover[r0 : r0 + h, c0 : c0 + w] += 1
            body = ref.json
            assert body["output"]["width"] == w and body["output"]["height"] == h
            expected = [X0 + c0 * res, Y1 - (r0 + h) * res, X0 + (c0 + w) * res, Y1 - r0 * res]
            assert body["input"]["bounds"]["bbox"] == pytest.approx(expected)
            assert body["input"]["bounds"]["properties"]["crs"].endswith("/EPSG/0/32633")
            assert ref.name == f".chunks/{SCENE}/{res}m_{ref.meta['row']}_{ref.meta['col']}.tif"
            assert ref.meta["shape"] == [height, width] and ref.meta["tile"] == "33UXP"
        assert (cover == 1).all()  # no gap, no overlap


def test_payload_content(area, settings):
    refs = refs_for(area, settings)
    ref10 = next(r for r in refs if r.meta["res"] == 10)
    ref20 = next(r for r in refs if r.meta["res"] == 20)
    for ref in (ref10, ref20):
        assert ref.method == "POST" and ref.kind == "geotiff"
        assert ref.url == f"{cdse.CDSE_URL}/api/v1/process"
        assert ref.headers == {"Accept": "image/tiff"}
        data = ref.json["input"]["data"][0]
        assert data["type"] == "sentinel-2-l2a"
        assert data["processing"] == {"harmonizeValues": True}
        assert data["dataFilter"]["timeRange"] == {
            "from": "2023-07-01T10:24:59Z",
            "to": "2023-07-01T10:27:00Z",
        }
        assert ref.json["output"]["responses"] == [
            {"identifier": "default", "format": {"type": "image/tiff"}}
        ]
        script = ref.json["evalscript"]
        assert 'units: "DN"' in script and '"dataMask"' in script
        assert 'sampleType: "UINT16"' in script and "s.dataMask ?" in script
    assert hub.script_bands(ref10.json["evalscript"]) == ["B02", "B03", "B04", "B08"]
    assert hub.script_bands(ref20.json["evalscript"]) == ["B11", "B12", "SCL"]
    assert ref20.meta["bands"] == ["B11", "B12", "SCL"]


def test_band_subset_and_bad_bands(area):
    refs = refs_for(area, {"bands": ["B04", "B12"], "max_pixels": 2500})
    assert [r.meta["bands"] for r in refs] == [["B04"], ["B12", "SCL"]]
    refs = refs_for(area, {"bands": ["B11"]})
    assert [r.meta["res"] for r in refs] == [20]  # no 10 m request at all
    with pytest.raises(DownloadError, match="'bands'"):
        refs_for(area, {"bands": ["B01"]})


def test_collection_is_idempotent_per_url():
    on_cdse = sh.collection(cdse.CDSE_URL)
    assert on_cdse is sh.collection(cdse.CDSE_URL + "/")
    assert on_cdse.service_url == cdse.CDSE_URL and on_cdse.api_id == "sentinel-2-l2a"
    other = sh.collection("http://localhost:1234")
    assert other is sh.collection("http://localhost:1234")
    assert other is not on_cdse and other.service_url == "http://localhost:1234"


def test_select_items():
    reproc = SCENE.replace("N0509", "N0510").replace("20230701T130012", "20240101T000000")
    s2a = "S2A_MSIL2A_20230703T100601_N0509_R022_T33UXP_20230703T140012"
    items = [
        {"id": OTHER_TILE},
        {"id": SCENE + ".SAFE"},
        {"id": reproc},
        {"id": "S2B_MSIL1C_20230701T101559_N0509_R065_T33UXP_20230701T110012"},
        {"id": s2a},
    ]
    picked = sh.select_items(items, "T33UXP")
    assert [sid.name for sid, _ in picked] == [reproc, s2a]
    # without a tile: the first product of each datatake
    assert [sid.name for sid, _ in sh.select_items(items, None)] == [OTHER_TILE, s2a]


# --- catalogue search -------------------------------------------------------------------------


def _item(name: str) -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": name,
        "properties": {"datetime": ITEM_TIME, "eo:cloud_cover": 12.5},
        "geometry": None,
        "links": [],
        "assets": {},
    }


@responses.activate
def test_search_posts_filter_and_time(area, settings):
    hub.mock_catalogue([_item(OTHER_TILE), _item(SCENE)])
    refs = sh.search(area, dt.date(2023, 7, 1), dt.date(2023, 7, 3), settings, creds=CREDS)

    body = hub.catalogue_request()
    assert body["collections"] == ["sentinel-2-l2a"]
    assert body["filter"] == "eo:cloud_cover < 50"
    assert body["filter-lang"] == "cql2-text"
    assert body["datetime"] == "2023-07-01T00:00:00Z/2023-07-03T23:59:59Z"
    assert body["bbox"] == pytest.approx(area.bbox_lonlat, abs=1e-5)  # WGS84, not UTM
    assert "properties.datetime" in body["fields"]["include"]
    assert {r.meta["scene"] for r in refs} == {SCENE}  # the other tile is dropped
    assert len(refs) == 8 and all(r.meta["time"] == ITEM_TIME for r in refs)


@responses.activate
def test_search_follows_next_token(area, settings):
    hub.mock_token()
    url = hub.CATALOG_URL
    later = "S2A_MSIL2A_20230703T100601_N0509_R022_T33UXP_20230703T140012"
    page2 = _item(later) | {"properties": {"datetime": "2023-07-03T10:16:01Z"}}
    responses.post(url, json={"features": [_item(SCENE)], "context": {"next": 1}})
    responses.post(url, json={"features": [page2], "context": {}})
    refs = sh.search(area, dt.date(2023, 7, 1), dt.date(2023, 7, 3), settings, creds=CREDS)
    assert [json.loads(c.request.body).get("next") for c in responses.calls[1:]] == [None, 1]
    assert list(dict.fromkeys(r.meta["scene"] for r in refs)) == [SCENE, later]


@responses.activate
def test_search_token_refused_is_auth_error(area, settings, caplog):
    period = (dt.date(2023, 7, 1), dt.date(2023, 7, 3))
    hub.check_search_token_refused(lambda: sh.search(area, *period, settings, creds=CREDS), caplog)


@responses.activate
def test_search_catalogue_error(area, settings):
    hub.mock_token()
    responses.post(hub.CATALOG_URL, status=400, json={"e": "bad"})
    with pytest.raises(DownloadError, match=r"HTTP 400") as info:
        sh.search(area, dt.date(2023, 7, 1), dt.date(2023, 7, 3), settings, creds=CREDS)
    assert hub.CATALOG_URL in str(info.value)


def test_search_without_credentials(area, settings, no_credentials):
    period = (dt.date(2023, 7, 1), dt.date(2023, 7, 3))
    hub.check_no_request_without_credentials(lambda: sh.search(area, *period, settings))


# --- a fake Sentinel Hub ----------------------------------------------------------------------


def expected_dn(band: str, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The DN the fake server gives `band` at global pixel (rows, cols) of its resolution."""
    if band == "SCL":
        value = 4 + (rows + cols) % 3
    else:
        base = 1000 + 1000 * s2.REFLECTANCE_BANDS.index(band)
        value = base + rows * 100 + cols
    nodata = NODATA_10 if band in s2.BANDS_10M else NODATA_20
    return np.where((rows == nodata[0]) & (cols == nodata[1]), 0, value).astype(np.uint16)


class FakeL2A(hub.FakeSentinelHub):
    """The Process API answers the DNs of :func:`expected_dn`; `all_nodata`: all 0."""

    def __init__(self, httpserver) -> None:
        super().__init__(httpserver, (X0, Y1), max_pixels=16)
        self.all_nodata = False

    def stack(self, body: dict[str, Any], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        bands = hub.script_bands(body["evalscript"])
        stack = np.stack([expected_dn(b, rows, cols) for b in bands])
        return np.zeros_like(stack) if self.all_nodata else stack


@pytest.fixture
def fake(httpserver, monkeypatch) -> FakeL2A:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the test server speaks http
    return FakeL2A(httpserver)


def _assert_scene(folder: Path) -> None:
    scene = s2.read_scene(folder)
    rows10, cols10 = np.mgrid[0:30, 0:40]
    for band in s2.BANDS_10M:
        refl = scene.reflectance[band]
        assert refl.data.shape == (30, 40)
        dn = expected_dn(band, rows10, cols10).astype(np.float32)
        want = np.where(dn == 0, np.nan, dn / np.float32(10000))
        np.testing.assert_allclose(refl.data, want, rtol=1e-6)
    rows20, cols20 = np.mgrid[0:15, 0:20]
    for band in ("B11", "B12"):
        dn = expected_dn(band, rows20, cols20).astype(np.float32)
        want = np.where(dn == 0, np.nan, dn / np.float32(10000))
        np.testing.assert_allclose(scene.reflectance[band].data, want, rtol=1e-6)
    np.testing.assert_array_equal(scene.scl.data, expected_dn("SCL", rows20, cols20))
    # known pixels on both sides of chunk borders (10 m rows split 15|15, columns 13|13|14)
    b02 = scene.reflectance["B02"].data
    assert b02[14, 12] == pytest.approx(0.2412) and b02[15, 13] == pytest.approx(0.2513)
    assert b02[0, 26] == pytest.approx(0.1026) and np.isnan(b02[NODATA_10])
    assert scene.scl.data[NODATA_20] == 0 and scene.scl.data[0, 1] == 5
    assert scene.reflectance["B02"].transform == Affine(10, 0, X0, 0, -10, Y1)
    assert scene.scl.transform == Affine(20, 0, X0, 0, -20, Y1)
    with rasterio.open(next(folder.glob("*_B04_10m.tif"))) as src:
        assert src.tags()["BOA_ADD_OFFSET"] == "0"
        assert src.tags()["PROCESSING_BASELINE"] == "05.09"
        assert src.dtypes == ("uint16",) and src.nodata == 0


# --- download ---------------------------------------------------------------------------------


def test_download_assembles_scene(area, fake, tmp_path):
    settings = fake.settings()
    refs = refs_for(area, settings)
    dest = tmp_path / "raw" / "sentinel2"

    folders = sh.download(refs, dest, settings, creds=CREDS)

    assert folders == [dest / SCENE]
    _assert_scene(dest / SCENE)
    assert s2.find_scenes(dest) == [SCENE]
    assert len(fake.process_calls) == 8
    assert fake.auth == [f"Bearer {TOKEN}"] * 8
    assert not (dest / ".chunks").exists()
    assert sorted(p.name for p in dest.iterdir()) == [SCENE]  # no staging left over

    # complete scenes are not fetched again (no token, no process request)
    token_calls = fake.token_calls()
    assert sh.download(refs, dest, settings, creds=CREDS) == [dest / SCENE]
    assert len(fake.process_calls) == 8 and fake.token_calls() == token_calls


def test_download_retries_rate_limit(area, fake, tmp_path):
    fake.script = ["429"]
    settings = fake.settings()
    sleeps: list[float] = []
    folders = sh.download(
        refs_for(area, settings), tmp_path, settings, fetcher=hub.fetcher(settings, sleeps)
    )

    assert folders == [tmp_path / SCENE]
    assert sleeps == [7.0]  # Retry-After honoured
    assert len(fake.process_calls) == 9
    assert all(a == f"Bearer {TOKEN}" for a in fake.auth)
    _assert_scene(tmp_path / SCENE)


def test_download_rebuilds_incomplete_scene(area, fake, tmp_path):
    settings = fake.settings()
    refs = refs_for(area, settings)
    (tmp_path / SCENE).mkdir()
    (tmp_path / SCENE / "junk.tif").write_bytes(b"not a tiff")
    assert sh.download(refs, tmp_path, settings, creds=CREDS) == [tmp_path / SCENE]
    assert len(fake.process_calls) == 8
    assert not (tmp_path / SCENE / "junk.tif").exists()
    _assert_scene(tmp_path / SCENE)


def test_download_skips_scene_without_data(area, fake, tmp_path, caplog):
    fake.all_nodata = True
    settings = fake.settings()
    with caplog.at_level(logging.WARNING):
        assert sh.download(refs_for(area, settings), tmp_path, settings, creds=CREDS) == []
    assert f"{SCENE} has no valid pixel" in caplog.text
    assert list(tmp_path.iterdir()) == []  # neither scene nor chunks


def test_download_token_refused(area, httpserver, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    hub.check_download_token_refused(
        lambda settings: sh.download(refs_for(area, settings), tmp_path, settings, creds=CREDS),
        httpserver,
        16,
        caplog,
    )


def test_download_without_credentials(area, httpserver, no_credentials, tmp_path):
    hub.check_download_needs_credentials(
        lambda settings: sh.download(refs_for(area, settings), tmp_path / "s2", settings),
        httpserver,
        tmp_path / "s2",
        16,
    )


def test_download_rejects_chunk_on_wrong_grid(area, fake, tmp_path):
    settings = fake.settings()
    hub.check_rejects_chunk_on_wrong_grid(sh.download, refs_for(area, settings), tmp_path, settings)
    assert not (tmp_path / SCENE).exists() and s2.find_scenes(tmp_path) == []
