"""NASA Earthdata: login, CMR search, granule refs, and the ECOSTRESS and SRTM providers.

The control plane (CMR, Earthdata Login) is mocked with `responses`; files come from a local
pytest-httpserver (:mod:`fakes.earthdata_server`). The download tests point the
fixture items' links at the local server and put the real sizes and MD5s of generated files in
them.
"""

from __future__ import annotations

import base64
import logging
from datetime import date
from pathlib import Path

import earthaccess
import numpy as np
import pytest
import responses
from affine import Affine
from fakes.earthdata_server import (
    VIENNA,
    FakeCMR,
    serve_granules,
    umm_items,
    vienna_area,
)
from pytest_httpserver import HTTPServer

from lstfill.download import earthdata, ecostress, srtm
from lstfill.download.base import AuthError, DownloadError, FileRef
from lstfill.download.credentials import EarthdataCredentials, MissingCredentials
from lstfill.sources.ecostress import LAYERS, find_granules, read_granule, write_granule
from lstfill.sources.srtm import read_srtm, write_hgt_zip

GID = "ECOv002_L2T_LSTE_28355_005_33UXP_20230701T093215_0713_01"
TOKEN = "tok-123"
PASSWORD = "Secr3t-Pa55word"
TOKEN_CREDS = EarthdataCredentials(token=TOKEN, origin="test token")
BEARER = f"Bearer {TOKEN}"


@pytest.fixture(autouse=True)
def _isolated(no_credentials: Path) -> None:
    """No credential of the machine running the tests can leak in."""


# ---------------------------------------------------------------------------------------------
# login


def test_login_with_token_makes_no_http_call(rsps: responses.RequestsMock) -> None:
    assert earthdata.login(TOKEN_CREDS) == TOKEN
    assert len(rsps.calls) == 0


def test_login_with_password_asks_urs_for_a_token(rsps: responses.RequestsMock) -> None:
    rsps.post(
        earthdata.TOKEN_URL,
        json={"access_token": "EDL-token-1", "token_type": "Bearer", "expiration_date": "1/1/2031"},
    )
    creds = EarthdataCredentials(username="alice", password=PASSWORD, origin="test secrets")
    assert earthdata.login(creds) == "EDL-token-1"
    # earthaccess posts without auth first and again with it from a response hook
    assert {c.request.url for c in rsps.calls} == {earthdata.TOKEN_URL}
    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert rsps.calls[-1].request.headers["Authorization"] == f"Basic {basic}"


@pytest.mark.parametrize("echo", [False, True], ids=["plain", "server-echoes-password"])
def test_failed_login_never_shows_the_password(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture, echo: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    reply = {"error": "invalid_credentials", "error_description": "Invalid user credentials"}
    if echo:  # a misbehaving server: the password must still not reach any log or message
        reply["error_description"] += f" for password {PASSWORD}"
    rsps.post(earthdata.TOKEN_URL, json=reply, status=401)
    creds = EarthdataCredentials(username="alice", password=PASSWORD, origin="test secrets")
    with pytest.raises(AuthError) as info:
        earthdata.login(creds)
    exc = info.value
    assert "test secrets" in str(exc) and "urs.earthdata.nasa.gov" in str(exc)
    assert any(r.name.startswith("earthaccess") for r in caplog.records)  # it did log the reply
    texts = [str(exc), repr(exc), str(exc.__cause__), str(exc.__context__), caplog.text]
    texts += [r.getMessage() for r in caplog.records]
    assert not [t for t in texts if PASSWORD in t]
    assert ("***" in caplog.text) is echo  # redacted, not merely unlogged


def test_missing_credentials_fail_before_any_request(rsps: responses.RequestsMock) -> None:
    ref = FileRef(url="https://example.invalid/x.tif", name="x.tif")
    for provider in (ecostress, srtm):
        with pytest.raises(MissingCredentials, match="EARTHDATA_TOKEN"):
            provider.download([ref], Path("out"), {})
    assert len(rsps.calls) == 0


# ---------------------------------------------------------------------------------------------
# CMR search and granule refs


def test_search_granules_sends_the_query(rsps: responses.RequestsMock) -> None:
    cmr = FakeCMR(rsps, umm_items("ecostress_umm.json"))
    granules = earthdata.search_granules(
        "ECO_L2T_LSTE", "002", date(2023, 7, 1), date(2023, 7, 2), bounding_box=VIENNA
    )
    assert len(granules) == 2
    assert cmr.queries[0]["page_size"] == ["0"]  # earthaccess counts the hits first
    (q,) = cmr.searches
    assert q["short_name"] == ["ECO_L2T_LSTE"] and q["version"] == ["002"]
    assert q["provider"] == ["LPCLOUD"]
    assert q["temporal[]"] == ["2023-07-01T00:00:00Z,2023-07-02T23:59:59Z"]
    assert q["bounding_box"] == ["16.3,47.7,17.9,48.7"]
    assert "readable_granule_name" not in q and "cloud_hosted" not in q


def test_search_granules_reports_cmr_errors(rsps: responses.RequestsMock) -> None:
    FakeCMR(rsps, [], status=400)
    with pytest.raises(DownloadError, match="cmr.earthdata.nasa.gov.*ECO_L2T_LSTE v002"):
        earthdata.search_granules("ECO_L2T_LSTE", "002", date(2023, 7, 1), date(2023, 7, 1))


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_granule_refs_keep_https_links_with_size_and_checksum() -> None:
    granule = earthaccess.DataGranule(umm_items("ecostress_umm.json")[0])
    refs = earthdata.granule_refs(granule, suffixes=("_LST.tif", "_QC.tif"), kind="geotiff")
    assert [r.name for r in refs] == [f"{GID}_LST.tif", f"{GID}_QC.tif"]
    lst = refs[0]
    assert lst.url.startswith("https://data.lpdaac.earthdatacloud.nasa.gov/lp-prod-protected/")
    assert (lst.size, lst.checksum, lst.checksum_algorithm) == (1000, "00" + "ab" * 15, "MD5")
    assert lst.kind == "geotiff" and lst.meta["granule"] == GID
    every = earthdata.granule_refs(granule)
    assert len(every) == 8 and all(r.url.startswith("https://") for r in every)  # no s3://


# ---------------------------------------------------------------------------------------------
# ECOSTRESS


def test_ecostress_search_by_tile_skips_incomplete_granules(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    cmr = FakeCMR(rsps, umm_items("ecostress_umm.json"))
    refs = ecostress.search(vienna_area(), date(2023, 7, 1), date(2023, 7, 2), {})
    assert [r.name for r in refs] == [f"{GID}_{layer}.tif" for layer in LAYERS]
    assert [r.size for r in refs] == [1000, 1010, 1030, 1040, 1050, 1060, 1070]
    assert all(r.checksum_algorithm == "MD5" and r.kind == "geotiff" for r in refs)
    assert "lacks layers ['cloud']" in caplog.text
    (q,) = cmr.searches
    assert q["readable_granule_name"] == ["*_33UXP_*"] and "bounding_box" not in q
    assert q["options[readable_granule_name][pattern]"] == ["true"]


def test_ecostress_search_by_bbox_without_tile(rsps: responses.RequestsMock) -> None:
    cmr = FakeCMR(rsps, umm_items("ecostress_umm.json"))
    refs = ecostress.search(
        vienna_area(tile=None), date(2023, 7, 1), date(2023, 7, 2), {"layers": ["LST"]}
    )
    assert len(refs) == 2  # the granule lacking "cloud" has the one layer asked for
    (q,) = cmr.searches
    assert q["bounding_box"] == ["16.3,47.7,17.9,48.7"] and "readable_granule_name" not in q


def _granule_files(tmp_path: Path) -> dict[str, bytes]:
    src = tmp_path / "src"
    src.mkdir()
    shape = (4, 4)
    layers = {
        "LST": np.full(shape, 300.0),
        "LST_err": np.full(shape, 0.5),
        "QC": np.zeros(shape),
        "cloud": np.zeros(shape),
        "water": np.zeros(shape),
        "height": np.full(shape, 200.0),
        "view_zenith": np.full(shape, 5.0),
    }
    transform = Affine(70.0, 0, 600_000.0, 0, -70.0, 5_400_000.0)
    paths = write_granule(src, GID, layers, transform, "EPSG:32633")
    return {p.name: p.read_bytes() for p in paths}


def _served_search(
    rsps: responses.RequestsMock, server: HTTPServer, tmp_path: Path, settings: dict
) -> tuple[list[FileRef], list]:
    """The ECOSTRESS refs of a search whose granule files `server` serves, and the list their
    requests' Authorization headers go to."""
    seen: list = []
    files = _granule_files(tmp_path)
    FakeCMR(rsps, serve_granules(umm_items("ecostress_umm.json"), server, files, BEARER, seen))
    return ecostress.search(vienna_area(), date(2023, 7, 1), date(2023, 7, 2), settings), seen


def test_ecostress_download_writes_readable_granules(
    rsps: responses.RequestsMock, httpserver: HTTPServer, tmp_path: Path
) -> None:
    refs, seen = _served_search(rsps, httpserver, tmp_path, {})
    dest = tmp_path / "raw" / "ecostress"
    paths = ecostress.download(refs, dest, {}, creds=TOKEN_CREDS)
    assert [p.name for p in paths] == [f"{GID}_{layer}.tif" for layer in LAYERS]
    assert seen == [f"Bearer {TOKEN}"] * 7
    assert find_granules(dest) == [GID]
    scene = read_granule(dest, GID)
    assert np.allclose(scene.lst.data, 300.0) and scene.valid.all()
    before = len(httpserver.log)
    assert ecostress.download(refs, dest, {}, creds=TOKEN_CREDS) == paths
    assert len(httpserver.log) == before  # complete files are not fetched again


def test_data_server_401_names_what_to_set(
    rsps: responses.RequestsMock, httpserver: HTTPServer, tmp_path: Path
) -> None:
    refs, _ = _served_search(rsps, httpserver, tmp_path, {"layers": ["LST"]})
    refs = [r for r in refs if r.name.startswith(GID)]
    wrong = EarthdataCredentials(token="expired-token", origin="test token")
    with pytest.raises(AuthError, match="HTTP 401.*EARTHDATA_TOKEN") as info:
        ecostress.download(refs, tmp_path / "out", {}, creds=wrong)
    assert "expired-token" not in str(info.value)
    assert not list((tmp_path / "out").glob("*.tif"))


# ---------------------------------------------------------------------------------------------
# SRTM


def test_srtm_search_keeps_tiles_overlapping_the_bbox(rsps: responses.RequestsMock) -> None:
    cmr = FakeCMR(rsps, umm_items("srtm_umm.json"))
    refs = srtm.search(vienna_area(), None, None, {})
    names = [r.name for r in refs]
    assert names == [f"{t}.SRTMGL1.hgt.zip" for t in ("N47E016", "N47E017", "N48E016", "N48E017")]
    assert all(r.kind == "zip" and r.size for r in refs)
    (q,) = cmr.searches
    assert q["short_name"] == ["SRTMGL1"] and q["version"] == ["003"]
    assert q["bounding_box"] == ["16.3,47.7,17.9,48.7"] and "temporal[]" not in q


def test_srtm_download_with_password_login(
    rsps: responses.RequestsMock, httpserver: HTTPServer, tmp_path: Path
) -> None:
    heights = np.arange(1201 * 1201, dtype=np.int32).reshape(1201, 1201) % 3000
    tile = write_hgt_zip(tmp_path / "N48E016.SRTMGL1.hgt.zip", heights, 48, 16)
    seen: list = []
    files = {tile.name: tile.read_bytes()}
    items = serve_granules(umm_items("srtm_umm.json"), httpserver, files, BEARER, seen)
    FakeCMR(rsps, items)
    rsps.post(earthdata.TOKEN_URL, json={"access_token": TOKEN, "expiration_date": "1/1/2031"})
    refs = [r for r in srtm.search(vienna_area(), None, None, {}) if r.name == tile.name]
    creds = EarthdataCredentials(username="alice", password=PASSWORD, origin="test secrets")
    (path,) = srtm.download(refs, tmp_path / "raw" / "srtm", {}, creds=creds)
    assert seen == [f"Bearer {TOKEN}"]
    dem = read_srtm(path)
    assert dem.data.shape == (1201, 1201) and dem.data[0, 5] == 5.0
