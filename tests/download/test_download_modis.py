"""MODIS MOD11A1/MOD09GQ downloads: sinusoidal tiles, the earthaccess backend (CMR mocked with
`responses`, files from a local pytest-httpserver) and the pyModis backend against a local
server with the Data Pool layout (``/MOLT/MOD11A1.061/YYYY.MM.DD/<files>``).

``fixtures/download/modis_umm.json`` is hand-made in the CMR shape, not a recorded reply; CMR and
the cloud files are :mod:`fakes.earthdata_server`'s.
"""

from __future__ import annotations

import base64
import logging
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest
import responses
from fakes.earthdata_server import (
    VIENNA,
    FakeCMR,
    guarded,
    serve_granules,
    umm_items,
    vienna_area,
)
from pytest_httpserver import HTTPServer
from werkzeug import Response

from lstfill.download import modis
from lstfill.download.base import AuthError, DownloadError, FileRef
from lstfill.download.credentials import EarthdataCredentials, MissingCredentials
from lstfill.sources.modis import (
    find_modis,
    granule_name,
    read_mod09gq,
    read_mod11a1,
    write_mod09gq,
    write_mod11a1,
)

AUSTRIA = (9.5, 46.4, 17.2, 49.0)
TOKEN = "tok-modis"
TOKEN_CREDS = EarthdataCredentials(token=TOKEN, origin="test token")
BEARER = f"Bearer {TOKEN}"
POOL_CREDS = EarthdataCredentials(username="bob", password="pool-Pa55", origin="test secrets")
DAY1, DAY2 = date(2023, 7, 1), date(2023, 7, 2)
# Upper-left and lower-right corners of tile h19v04 (m, sinusoidal).
UL = (-20015109.354 + 19 * modis.TILE_M, 10007554.677 - 4 * modis.TILE_M)
LR = (UL[0] + modis.TILE_M, UL[1] - modis.TILE_M)


def _basic(creds: EarthdataCredentials) -> str:
    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()


@pytest.fixture(autouse=True)
def _isolated(no_credentials: Path) -> None:
    """No credential of the machine running the tests can leak in."""


# ---------------------------------------------------------------------------------------------
# tiles


def test_tiles_for_bbox() -> None:
    assert modis.tiles_for_bbox(VIENNA) == ["h19v04"]
    assert modis.tiles_for_bbox(AUSTRIA) == ["h18v04", "h19v04"]
    assert len(modis.tiles_for_bbox((-180, -90, 180, 90))) == 460  # the grid's valid tiles
    with pytest.raises(ValueError, match="lon_min"):
        modis.tiles_for_bbox((17.9, 47.7, 16.3, 48.7))


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(DownloadError, match="backend"):
        modis.search(vienna_area(), DAY1, DAY1, {"backend": "ftp"})


# ---------------------------------------------------------------------------------------------
# earthaccess backend


def test_earthaccess_search_per_product_and_tile(rsps: responses.RequestsMock) -> None:
    cmr = FakeCMR(rsps, umm_items("modis_umm.json"))
    refs = modis.search(vienna_area(), DAY1, DAY2, {})
    assert [r.name for r in refs] == [
        "MOD09GQ.A2023182.h19v04.061.2023184035355.hdf",
        "MOD11A1.A2023182.h19v04.061.2023183101520.hdf",
    ]
    assert all(r.kind == "hdf4" and r.size and r.checksum_algorithm == "MD5" for r in refs)
    assert [q["readable_granule_name"] for q in cmr.searches] == [
        ["MOD11A1.A*.h19v04.*"],
        ["MOD09GQ.A*.h19v04.*"],
    ]
    for q in cmr.searches:
        assert q["version"] == ["061"] and q["provider"] == ["LPCLOUD"]
        assert q["bounding_box"] == ["16.3,47.7,17.9,48.7"] and "cloud_hosted" not in q
        assert q["temporal[]"] == ["2023-07-01T00:00:00Z,2023-07-02T23:59:59Z"]
    both = modis.search(
        vienna_area(), DAY1, DAY1, {"products": "MOD11A1", "tiles": ["h18v04", "h19v04"]}
    )
    assert [r.name[:24] for r in both] == ["MOD11A1.A2023182.h18v04.", "MOD11A1.A2023182.h19v04."]


def _hdf_files(tmp_path: Path) -> dict[str, bytes]:
    """Real HDF4 granules under the fixture's h19v04 names."""
    src = tmp_path / "src"
    shape = (4, 4)
    lst = write_mod11a1(
        src / "MOD11A1.A2023182.h19v04.061.2023183101520.hdf",
        DAY1,
        np.full(shape, 300.0),
        np.zeros(shape, np.uint8),
        np.full(shape, 10.5),
        UL,
        LR,
    )
    refl = write_mod09gq(
        src / "MOD09GQ.A2023182.h19v04.061.2023184035355.hdf",
        DAY1,
        np.full(shape, 0.05),
        np.full(shape, 0.3),
        np.zeros(shape, np.uint16),
        UL,
        LR,
    )
    return {p.name: p.read_bytes() for p in (lst, refl)}


def test_earthaccess_download_reads_back(
    rsps: responses.RequestsMock, httpserver: HTTPServer, tmp_path: Path
) -> None:
    seen: list = []
    files = _hdf_files(tmp_path)
    FakeCMR(rsps, serve_granules(umm_items("modis_umm.json"), httpserver, files, BEARER, seen))
    refs = modis.search(vienna_area(), DAY1, DAY1, {})
    dest = tmp_path / "raw" / "modis"
    paths = modis.download(refs, dest, {}, creds=TOKEN_CREDS)
    assert len(paths) == 2 and seen == [f"Bearer {TOKEN}"] * 2
    (lst_path,) = find_modis(dest, "MOD11A1")
    scene = read_mod11a1(lst_path)
    assert scene.date == DAY1 and np.allclose(scene.lst.data, 300.0)
    (refl_path,) = find_modis(dest, "MOD09GQ")
    assert np.allclose(read_mod09gq(refl_path).nir.data, 0.3)


def test_missing_credentials_fail_before_any_request(rsps: responses.RequestsMock) -> None:
    ref = FileRef(url="https://example.invalid/x.hdf", name="x.hdf")
    with pytest.raises(MissingCredentials, match="EARTHDATA_TOKEN"):
        modis.download([ref], Path("out"), {})
    assert len(rsps.calls) == 0


# ---------------------------------------------------------------------------------------------
# pyModis backend (Data Pool layout)

PRODUCT_DIR = "/MOLT/MOD11A1.061/"


def _index(title: str, entries: list[str]) -> str:
    """An Apache-style directory listing."""
    rows = "\n".join(
        f'<img src="/icons/folder.gif" alt="[DIR]"> <a href="{e}">{e}</a>' for e in entries
    )
    return (
        f"<html><head><title>Index of {title}</title></head><body><h1>Index of {title}</h1>"
        f'<pre><a href="?C=N;O=D">Name</a> <a href="?C=M;O=A">Last modified</a>\n'
        f'<a href="/MOLT/">Parent Directory</a>\n{rows}\n</pre></body></html>'
    )


def _redirect(server: HTTPServer, path: str) -> None:
    """`path` without its slash redirects to it, as a web server does for a folder."""
    server.expect_request(path.rstrip("/")).respond_with_response(
        Response("", 301, headers={"Location": path})
    )


def _datapool(server: HTTPServer, tmp_path: Path, auth: str, seen: list) -> dict[str, str]:
    """Serve the product folder (auth), four day folders (public, as on the Data Pool) and the
    granules (auth); return the URLs of the granules of 2023-07-01..02 on h19v04 by name."""
    days = {"2023.06.30": date(2023, 6, 30), "2023.07.01": DAY1, "2023.07.02": DAY2,
            "2023.07.03": date(2023, 7, 3)}  # fmt: skip
    _redirect(server, PRODUCT_DIR)
    index = _index(PRODUCT_DIR, [f"{d}/" for d in days])
    server.expect_request(PRODUCT_DIR).respond_with_handler(guarded(index, auth, seen, "text/html"))
    wanted = {}
    for folder, day in days.items():
        names = []
        for h in (19, 18):
            name = granule_name("MOD11A1", day, h, 4, prod_time=datetime(2023, 7, 4, 10, 15, 20))
            path = write_mod11a1(
                tmp_path / "pool" / name, day, np.full((3, 3), 290.0 + day.day),
                np.zeros((3, 3), np.uint8), np.full((3, 3), 10.5), UL, LR,
            )  # fmt: skip
            names += [name, f"{name}.xml"]
            url_path = f"{PRODUCT_DIR}{folder}/{name}"
            handler = guarded(path.read_bytes(), auth, seen)
            server.expect_request(url_path).respond_with_handler(handler)
            if h == 19 and DAY1 <= day <= DAY2:
                wanted[name] = server.url_for(url_path)
        _redirect(server, f"{PRODUCT_DIR}{folder}/")
        listing = _index(f"{PRODUCT_DIR}{folder}", names)
        server.expect_request(f"{PRODUCT_DIR}{folder}/").respond_with_data(
            listing, content_type="text/html"
        )
    return wanted


def _pool_settings(server: HTTPServer) -> dict:
    return {"backend": "pymodis", "products": ["MOD11A1"], "url": server.url_for("/")}


@contextmanager
def _bare_root_logger() -> Iterator[logging.Logger]:
    """The root logger without handlers (pytest adds its own for each test phase), as in a plain
    script, so that pyModis' logging.basicConfig would take effect; restored afterwards."""
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    for handler in saved:
        root.removeHandler(handler)
    try:
        yield root
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)


def test_pymodis_lists_and_fetches_with_basic_auth(httpserver: HTTPServer, tmp_path: Path) -> None:
    pytest.importorskip("pymodis.downmodis")  # skipped only where pyModis/GDAL do not import
    seen: list = []
    wanted = _datapool(httpserver, tmp_path, _basic(POOL_CREDS), seen)
    settings = _pool_settings(httpserver)
    opener = getattr(urllib.request, "_opener", None)
    with _bare_root_logger() as root:
        level = root.level
        refs = modis.search(vienna_area(), DAY1, DAY2, settings, creds=POOL_CREDS)
        assert root.handlers == [] and root.level == level
    assert getattr(urllib.request, "_opener", None) is opener
    assert {r.name: r.url for r in refs} == wanted and all(r.kind == "hdf4" for r in refs)
    assert seen and set(seen) == {_basic(POOL_CREDS)}  # the folder listing, with Basic auth
    seen.clear()
    dest = tmp_path / "raw" / "modis"
    paths = modis.download(refs, dest, settings, creds=POOL_CREDS)
    assert seen == [_basic(POOL_CREDS)] * 2
    assert [read_mod11a1(p).date for p in sorted(paths)] == [DAY1, DAY2]
    assert not list(tmp_path.rglob("modis*.log")) and not list(dest.glob("listfile*"))


def test_pymodis_prefers_the_hosts_netrc_entry(
    httpserver: HTTPServer, tmp_path: Path, no_credentials: Path
) -> None:
    pytest.importorskip("pymodis.downmodis")
    netrc = no_credentials / "home" / ".netrc"
    netrc.write_text("machine localhost login nettie password net-Pa55\n")
    netrc.chmod(0o600)
    nettie = EarthdataCredentials(username="nettie", password="net-Pa55")
    seen: list = []
    wanted = _datapool(httpserver, tmp_path, _basic(nettie), seen)
    refs = modis.search(vienna_area(), DAY1, DAY2, _pool_settings(httpserver), creds=POOL_CREDS)
    assert sorted(r.name for r in refs) == sorted(wanted) and set(seen) == {_basic(nettie)}


@pytest.mark.parametrize(
    ("status", "error", "match"),
    [
        (404, DownloadError, "HTTP 404.*backend 'earthaccess'"),
        (401, AuthError, "machine localhost"),
    ],
)
def test_pymodis_server_errors(
    httpserver: HTTPServer, status: int, error: type, match: str
) -> None:
    pytest.importorskip("pymodis.downmodis")
    httpserver.expect_request(PRODUCT_DIR).respond_with_data("no", status=status)
    with pytest.raises(error, match=match) as info:
        modis.search(vienna_area(), DAY1, DAY2, _pool_settings(httpserver), creds=POOL_CREDS)
    assert POOL_CREDS.password not in str(info.value)
