"""A fake NASA Earthdata for the ECOSTRESS, SRTM and MODIS downloader tests, all offline.

CMR's granule search is mocked with `responses` (:class:`FakeCMR`); the granule files are served
by a local pytest-httpserver (:func:`serve_granules`), answering only a request that carries the
right Authorization header (:func:`guarded`). The UMM-JSON items come from
``fixtures/download/*_umm.json``, hand-made in the CMR shape (acquisition notes, section 1.3), not
recorded replies.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import responses
from affine import Affine
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from lstfill.download import earthdata
from lstfill.download.base import Area
from lstfill.grid import Grid

FIXTURES = Path(__file__).parents[1] / "fixtures" / "download"
VIENNA = (16.3, 47.7, 17.9, 48.7)  # lon_min, lat_min, lon_max, lat_max


def umm_items(name: str) -> list[dict]:
    """The granule items of the fixture ``download/<name>``."""
    return json.loads((FIXTURES / name).read_text())["items"]


def vienna_area(tile: str | None = "33UXP") -> Area:
    """A 4 x 4 px area with Vienna's lon/lat bbox and (unless None) its MGRS tile."""
    grid = Grid("EPSG:32633", Affine(70.0, 0, 600_000.0, 0, -70.0, 5_400_000.0), 4, 4)
    return Area("vienna", grid, tile, VIENNA)


class FakeCMR:
    """CMR granule search: answers page_size=0 with the CMR-Hits header, other pages with the
    items matching short_name, version and the readable_granule_name pattern."""

    def __init__(self, rsps: responses.RequestsMock, items: list[dict], status: int = 200):
        self.items, self.status, self.queries = items, status, []
        rsps.add_callback(responses.GET, earthdata.CMR_URL, callback=self._reply)

    def _reply(self, request) -> tuple[int, dict, str]:
        q = parse_qs(urlsplit(request.url).query)
        self.queries.append(q)
        if self.status != 200:
            return self.status, {}, '{"errors": ["boom"]}'
        found = [i for i in self.items if _matches(i, q)]
        page = found[: int(q["page_size"][0])]
        body = json.dumps({"hits": len(found), "took": 3, "items": page})
        return 200, {"CMR-Hits": str(len(found)), "Content-Type": "application/json"}, body

    @property
    def searches(self) -> list[dict]:
        """The queries of the result pages (not the page_size=0 hit counts)."""
        return [q for q in self.queries if q["page_size"] != ["0"]]


def _matches(item: dict, q: dict) -> bool:
    ref = item["umm"]["CollectionReference"]
    if q["short_name"] != [ref["ShortName"]] or q["version"] != [ref["Version"]]:
        return False
    pattern = q.get("readable_granule_name")
    return pattern is None or fnmatch(item["umm"]["GranuleUR"], pattern[0])


def guarded(
    body: bytes | str, authorization: str, seen: list, content_type: str = ""
) -> Callable[[Request], Response]:
    """A handler answering `body` only to requests carrying `authorization` (else 401); `seen`
    collects each request's Authorization header."""

    def handler(request: Request) -> Response:
        seen.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") != authorization:
            return Response("unauthorized", 401)
        return Response(body, 200, content_type=content_type or "application/octet-stream")

    return handler


def serve_granules(
    items: list[dict], server: HTTPServer, files: dict[str, bytes], authorization: str, seen: list
) -> list[dict]:
    """A copy of `items` with their HTTPS links on `server` and the real sizes and MD5s of
    `files` in the UMM; each file is served to requests carrying `authorization` (else 401),
    and `seen` collects the requests' Authorization headers."""
    items = copy.deepcopy(items)
    for item in items:
        for link in item["umm"]["RelatedUrls"]:
            if link["URL"].startswith("https://"):
                path = urlsplit(link["URL"]).path
                link["URL"] = server.url_for(path)
                name = path.rsplit("/", 1)[-1]
                if name in files:
                    handler = guarded(files[name], authorization, seen)
                    server.expect_request(path).respond_with_handler(handler)
        for entry in item["umm"]["DataGranule"]["ArchiveAndDistributionInformation"]:
            if entry["Name"] in files:
                body = files[entry["Name"]]
                entry["SizeInBytes"] = len(body)
                entry["Checksum"] = {"Value": hashlib.md5(body).hexdigest(), "Algorithm": "MD5"}
    return items
