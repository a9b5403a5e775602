"""The shared fetcher against a local HTTP server: resume, retries, checks, limits, secrecy."""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from email.utils import formatdate
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from pytest_httpserver import HTTPServer
from rasterio.io import MemoryFile
from werkzeug import Request, Response

from lstfill.download.base import AuthError, DownloadError, FileRef
from lstfill.download.fetch import Fetcher, FetchPolicy
from lstfill.download.http import public_url
from lstfill.download.verify import is_complete

HINT = "set EARTHDATA_TOKEN or add urs.earthdata.nasa.gov to ~/.netrc"


# --- payloads and helpers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tif() -> bytes:
    """A real 16x16 float32 GeoTIFF in EPSG:32633."""
    data = np.arange(256, dtype="float32").reshape(16, 16)
    profile = dict(driver="GTiff", width=16, height=16, count=1, dtype="float32")
    with MemoryFile() as mem:
        transform = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 5300000.0)
        with mem.open(**profile, crs="EPSG:32633", transform=transform) as ds:
            ds.write(data, 1)
        return mem.read()


@pytest.fixture
def waits() -> list[float]:
    return []


def make_fetcher(waits: list[float], provider: str = "test", **policy: object) -> Fetcher:
    settings = {"retries": 3, "backoff_s": 2.0, "timeout_s": 5.0, "progress": False, **policy}
    return Fetcher(
        provider, policy=FetchPolicy(**settings), credential_hint=HINT, sleep=waits.append
    )


def part_of(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


def range_start(request: Request) -> int:
    return int(request.headers["Range"].removeprefix("bytes=").split("-")[0])


def ranged(data: bytes) -> Callable[[Request], Response]:
    """A handler that serves `data`, honouring a Range header with 206."""

    def handler(request: Request) -> Response:
        if not request.headers.get("Range"):
            return Response(data, content_type="image/tiff")
        start = range_start(request)
        content_range = f"bytes {start}-{len(data) - 1}/{len(data)}"
        return Response(
            data[start:],
            status=206,
            headers={"Content-Range": content_range},
            content_type="image/tiff",
        )

    return handler


def short(data: bytes, cut: int) -> Response:
    """A response that promises all of `data` but sends only its first `cut` bytes."""
    response = Response(data[:cut], content_type="image/tiff")
    response.headers["Content-Length"] = str(len(data))
    return response


class Script:
    """A handler that answers with the given responses (or handlers) in turn, repeating the last,
    and records each request's Range header, method and JSON body."""

    def __init__(self, *answers: Response | Callable[[Request], Response]) -> None:
        self.answers = answers
        self.ranges: list[str | None] = []
        self.methods: list[str] = []
        self.bodies: list[object] = []

    def __call__(self, request: Request) -> Response:
        self.ranges.append(request.headers.get("Range"))
        self.methods.append(request.method)
        self.bodies.append(request.get_json(silent=True))
        answer = self.answers[min(len(self.ranges), len(self.answers)) - 1]
        return answer if isinstance(answer, Response) else answer(request)

    @property
    def count(self) -> int:
        return len(self.ranges)


def serve(server: HTTPServer, path: str, *answers: Response | Callable) -> Script:
    script = Script(*answers)
    server.expect_request(path).respond_with_handler(script)
    return script


def tif_ref(server: HTTPServer, name: str = "x.tif", **kw: object) -> FileRef:
    return FileRef(url=server.url_for(f"/{name}"), name=name, **kw)


# --- plain transfers ---------------------------------------------------------------------------


def test_plain_geotiff_download(httpserver, tmp_path, tif, waits):
    script = serve(httpserver, "/x.tif", Response(tif, content_type="image/tiff"))
    path = make_fetcher(waits).fetch(tif_ref(httpserver, kind="geotiff"), tmp_path)
    assert path == tmp_path / "x.tif"
    assert path.read_bytes() == tif
    assert not part_of(path).exists()
    assert script.count == 1 and script.ranges == [None] and waits == []
    with rasterio.open(path) as ds:
        assert ds.shape == (16, 16) and ds.crs.to_epsg() == 32633


def test_user_agent_and_sub_folder(httpserver, tmp_path, tif, waits):
    agents: list[str] = []

    def handler(request: Request) -> Response:
        agents.append(request.headers.get("User-Agent", ""))
        return Response(tif, content_type="image/tiff")

    httpserver.expect_request("/x.tif").respond_with_handler(handler)
    ref = FileRef(url=httpserver.url_for("/x.tif"), name="2024/x.tif")
    path = make_fetcher(waits).fetch(ref, tmp_path)
    assert path == tmp_path / "2024" / "x.tif" and path.read_bytes() == tif
    assert agents == ["lstfill/0.1.0"]


def test_complete_file_makes_no_request(httpserver, tmp_path, tif, waits):
    (tmp_path / "x.tif").write_bytes(tif)
    ref = tif_ref(httpserver, size=len(tif))
    assert make_fetcher(waits).fetch(ref, tmp_path) == tmp_path / "x.tif"
    unverified = tif_ref(httpserver)  # no size or checksum: the file must open as GeoTIFF
    assert make_fetcher(waits).fetch(unverified, tmp_path) == tmp_path / "x.tif"
    assert len(httpserver.log) == 0


def test_complete_part_from_crashed_run_is_renamed_without_request(httpserver, tmp_path, tif):
    part_of(tmp_path / "x.tif").write_bytes(tif)
    path = make_fetcher([]).fetch(tif_ref(httpserver, size=len(tif)), tmp_path)
    assert path.read_bytes() == tif and not part_of(path).exists()
    assert len(httpserver.log) == 0


# --- retries and waits -------------------------------------------------------------------------


def test_429_honours_retry_after(httpserver, tmp_path, tif, waits):
    busy = Response("slow down", status=429, headers={"Retry-After": "7"})
    script = serve(httpserver, "/x.tif", busy, Response(tif))
    path = make_fetcher(waits).fetch(tif_ref(httpserver), tmp_path)
    assert path.read_bytes() == tif
    assert waits == [7.0] and script.count == 2


def test_429_honours_geosphere_ratelimit_reset(httpserver, tmp_path, tif, waits):
    busy = Response("slow down", status=429, headers={"ratelimit-reset": "3"})
    script = serve(httpserver, "/x.tif", busy, Response(tif))
    make_fetcher(waits).fetch(tif_ref(httpserver), tmp_path)
    assert waits == [3.0] and script.count == 2


def test_503_retry_after_as_http_date_and_cap(httpserver, tmp_path, tif, waits):
    later = formatdate(time.time() + 30, usegmt=True)
    script = serve(
        httpserver,
        "/x.tif",
        Response("busy", status=503, headers={"Retry-After": later}),
        Response("busy", status=503, headers={"Retry-After": "1000"}),
        Response(tif),
    )
    make_fetcher(waits, max_backoff_s=60.0).fetch(tif_ref(httpserver), tmp_path)
    assert 27.0 <= waits[0] <= 31.0
    assert waits[1] == 60.0 and script.count == 3


def test_5xx_backs_off_exponentially(httpserver, tmp_path, tif, waits):
    script = serve(
        httpserver,
        "/x.tif",
        Response("down", status=503),
        Response("oops", status=500),
        Response(tif, content_type="image/tiff"),
    )
    path = make_fetcher(waits, backoff_s=2.0).fetch(tif_ref(httpserver), tmp_path)
    assert path.read_bytes() == tif
    assert waits == [2.0, 4.0] and script.count == 3


def test_retries_exhausted_names_attempts(httpserver, tmp_path, waits):
    script = serve(httpserver, "/x.tif", Response("down", status=503))
    with pytest.raises(DownloadError, match=r"after 3 attempts.*HTTP 503") as info:
        make_fetcher(waits, retries=2).fetch(tif_ref(httpserver), tmp_path)
    assert "test" in str(info.value) and "x.tif" in str(info.value)
    assert script.count == 3 and waits == [2.0, 4.0]
    assert not part_of(tmp_path / "x.tif").exists() and not (tmp_path / "x.tif").exists()


def test_timeout_is_retried_then_fails(tmp_path, waits):
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        ref = FileRef(url=f"http://127.0.0.1:{port}/x.tif", name="x.tif")
        started = time.monotonic()
        with pytest.raises(DownloadError, match=r"after 2 attempts.*timed out"):
            make_fetcher(waits, timeout_s=0.5, retries=1).fetch(ref, tmp_path)
    assert time.monotonic() - started < 5.0
    assert waits == [2.0]


# --- resume ------------------------------------------------------------------------------------


def test_short_body_is_resumed_with_range(httpserver, tmp_path, tif, waits):
    cut = 640  # a multiple of chunk_bytes: every chunk before the break reaches the disk
    script = serve(httpserver, "/x.tif", short(tif, cut), ranged(tif))
    path = make_fetcher(waits, chunk_bytes=64).fetch(tif_ref(httpserver), tmp_path)
    assert path.read_bytes() == tif
    assert script.ranges == [None, f"bytes={cut}-"]
    assert waits == [2.0]


def test_short_body_really_is_a_short_read(httpserver, tif):
    """Guard for the test above: the server really sends fewer bytes than it announces."""
    import requests

    httpserver.expect_request("/x.tif").respond_with_response(short(tif, 640))
    response = requests.get(httpserver.url_for("/x.tif"), stream=True, timeout=5)
    assert response.headers["Content-Length"] == str(len(tif))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for _ in response.iter_content(64):
            pass


def test_short_body_every_time_keeps_part_for_a_rerun(httpserver, tmp_path, tif, waits):
    script = serve(httpserver, "/x.tif", short(tif, 640), Response("down", status=502))
    with pytest.raises(DownloadError, match="after 2 attempts"):
        make_fetcher(waits, retries=1, chunk_bytes=64).fetch(tif_ref(httpserver), tmp_path)
    assert script.count == 2
    assert not part_of(tmp_path / "x.tif").exists()  # last error was a status: not kept

    httpserver.clear()
    script = serve(httpserver, "/x.tif", short(tif, 640))
    with pytest.raises(DownloadError, match="body|broke"):
        make_fetcher(waits, retries=0, chunk_bytes=64).fetch(tif_ref(httpserver), tmp_path)
    assert part_of(tmp_path / "x.tif").read_bytes() == tif[:640]  # kept for the rerun

    httpserver.clear()
    script = serve(httpserver, "/x.tif", ranged(tif))
    path = make_fetcher(waits).fetch(tif_ref(httpserver), tmp_path)
    assert path.read_bytes() == tif and script.ranges == ["bytes=640-"]


def test_leftover_part_from_previous_run_is_resumed(httpserver, tmp_path, tif, waits):
    part_of(tmp_path / "x.tif").write_bytes(tif[:100])
    script = serve(httpserver, "/x.tif", ranged(tif))
    path = make_fetcher(waits).fetch(tif_ref(httpserver, size=len(tif)), tmp_path)
    assert path.read_bytes() == tif
    assert script.ranges == ["bytes=100-"] and not part_of(path).exists()


def test_server_ignoring_range_restarts_cleanly(httpserver, tmp_path, tif, waits):
    part_of(tmp_path / "x.tif").write_bytes(tif[:100])
    script = serve(httpserver, "/x.tif", Response(tif, content_type="image/tiff"))
    path = make_fetcher(waits).fetch(tif_ref(httpserver), tmp_path)
    assert path.read_bytes() == tif
    assert script.ranges == ["bytes=100-"] and waits == []


def test_416_deletes_part_and_restarts_without_range(httpserver, tmp_path, tif, waits):
    part_of(tmp_path / "x.tif").write_bytes(tif + b"junk")
    script = serve(httpserver, "/x.tif", Response(status=416), Response(tif))
    path = make_fetcher(waits).fetch(tif_ref(httpserver), tmp_path)
    assert path.read_bytes() == tif
    assert script.ranges == [f"bytes={len(tif) + 4}-", None] and waits == []


def test_wrong_content_range_restarts(httpserver, tmp_path, tif, waits):
    part_of(tmp_path / "x.tif").write_bytes(tif[:100])
    wrong = Response(tif[50:], status=206, headers={"Content-Range": f"bytes 50-999/{len(tif)}"})
    script = serve(httpserver, "/x.tif", wrong, Response(tif))
    path = make_fetcher(waits).fetch(tif_ref(httpserver), tmp_path)
    assert path.read_bytes() == tif and script.ranges == ["bytes=100-", None]


def test_post_sends_json_and_never_resumes(httpserver, tmp_path, waits):
    payload = np.random.default_rng(0).bytes(3000)
    target = tmp_path / "api" / "out.bin"
    target.parent.mkdir()
    part_of(target).write_bytes(payload[:500])  # must not be resumed
    script = serve(
        httpserver,
        "/process",
        short(payload, 1024),
        Response(payload, content_type="application/octet-stream"),
    )
    body = {"input": {"bounds": [1, 2, 3, 4]}, "output": {"width": 16}}
    ref = FileRef(
        url=httpserver.url_for("/process"),
        name="api/out.bin",
        kind="none",
        method="POST",
        json=body,
    )
    path = make_fetcher(waits, chunk_bytes=64).fetch(ref, tmp_path)
    assert path.read_bytes() == payload
    assert script.methods == ["POST", "POST"] and script.bodies == [body, body]
    assert script.ranges == [None, None]


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_auth_refusal_is_not_retried(httpserver, tmp_path, waits, status):
    part_of(tmp_path / "x.tif").write_bytes(b"old bytes")
    script = serve(httpserver, "/x.tif", Response("denied", status=status))
    with pytest.raises(AuthError) as info:
        make_fetcher(waits).fetch(tif_ref(httpserver), tmp_path)
    message = str(info.value)
    assert HINT in message and f"HTTP {status}" in message and "/x.tif" in message
    assert isinstance(info.value, DownloadError)
    assert script.count == 1 and waits == []
    assert not part_of(tmp_path / "x.tif").exists()


def test_404_shows_plain_body_once(httpserver, tmp_path, waits):
    script = serve(httpserver, "/x.tif", Response("no such granule", status=404))
    with pytest.raises(DownloadError, match="HTTP 404.*no such granule"):
        make_fetcher(waits).fetch(tif_ref(httpserver), tmp_path)
    assert script.count == 1 and waits == []


def test_404_hides_html_body(httpserver, tmp_path, waits):
    page = "<html><body>internal page</body></html>"
    serve(httpserver, "/x.tif", Response(page, status=404, content_type="text/html"))
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        make_fetcher(waits).fetch(tif_ref(httpserver), tmp_path)
    assert "internal page" not in str(info.value)


def test_html_instead_of_geotiff(httpserver, tmp_path, waits):
    page = Response("<html>Earthdata Login</html>", content_type="text/html; charset=utf-8")
    script = serve(httpserver, "/x.tif", page)
    with pytest.raises(DownloadError, match="HTML page instead of a GeoTIFF"):
        make_fetcher(waits).fetch(tif_ref(httpserver, kind="geotiff"), tmp_path)
    assert script.count == 1
    assert not (tmp_path / "x.tif").exists() and not part_of(tmp_path / "x.tif").exists()


def test_garbage_geotiff_fails_verification(httpserver, tmp_path, waits):
    script = serve(httpserver, "/x.tif", Response(b"\x00garbage" * 50, content_type="image/tiff"))
    with pytest.raises(DownloadError, match="does not open as GeoTIFF"):
        make_fetcher(waits).fetch(tif_ref(httpserver, kind="geotiff"), tmp_path)
    assert script.count == 1
    assert not (tmp_path / "x.tif").exists() and not part_of(tmp_path / "x.tif").exists()


# --- size and checksum -------------------------------------------------------------------------


def test_size_mismatch_retries_once_then_fails(httpserver, tmp_path, tif, waits):
    script = serve(httpserver, "/x.tif", Response(tif))
    with pytest.raises(DownloadError, match=rf"expected {len(tif) + 5} bytes, got {len(tif)}"):
        make_fetcher(waits).fetch(tif_ref(httpserver, size=len(tif) + 5), tmp_path)
    assert script.count == 2
    assert not (tmp_path / "x.tif").exists() and not part_of(tmp_path / "x.tif").exists()


def test_checksum_mismatch_retries_once_then_fails(httpserver, tmp_path, tif, waits):
    script = serve(httpserver, "/x.tif", Response(tif))
    wrong = "0" * 64
    ref = tif_ref(httpserver, checksum=wrong, checksum_algorithm="SHA-256")
    with pytest.raises(DownloadError, match="checksum mismatch") as info:
        make_fetcher(waits).fetch(ref, tmp_path)
    assert wrong in str(info.value) and hashlib.sha256(tif).hexdigest() in str(info.value)
    assert script.count == 2 and not (tmp_path / "x.tif").exists()


@pytest.mark.parametrize(
    ("algorithm", "func"),
    [("SHA-256", hashlib.sha256), ("sha256", hashlib.sha256), ("MD5", hashlib.md5)],
)
def test_checksum_match(httpserver, tmp_path, tif, waits, algorithm, func):
    script = serve(httpserver, "/x.tif", Response(tif))
    digest = func(tif).hexdigest().upper()  # compared case-insensitively
    ref = tif_ref(httpserver, size=len(tif), checksum=digest, checksum_algorithm=algorithm)
    assert make_fetcher(waits).fetch(ref, tmp_path).read_bytes() == tif
    assert script.count == 1
    assert is_complete(tmp_path / "x.tif", ref)


# --- concurrency and pacing --------------------------------------------------------------------


@pytest.fixture
def threaded_server() -> Iterator[HTTPServer]:
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def test_fetch_all_in_order_with_bounded_concurrency(threaded_server, tmp_path, waits):
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def handler(request: Request) -> Response:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.08)
        with lock:
            state["now"] -= 1
        return Response(request.path.encode() * 20)

    for i in range(5):
        threaded_server.expect_request(f"/f{i}.bin").respond_with_handler(handler)
    refs = [
        FileRef(url=threaded_server.url_for(f"/f{i}.bin"), name=f"f{i}.bin", kind="none")
        for i in range(5)
    ]
    paths = make_fetcher(waits, provider="concurrent", concurrency=2).fetch_all(refs, tmp_path)
    assert paths == [tmp_path / f"f{i}.bin" for i in range(5)]
    assert [p.read_bytes() for p in paths] == [f"/f{i}.bin".encode() * 20 for i in range(5)]
    assert state["max"] == 2


def test_fetch_all_fetches_a_repeated_name_once(httpserver, tmp_path, waits):
    script = serve(httpserver, "/d.bin", Response(b"data"))
    ref = FileRef(url=httpserver.url_for("/d.bin"), name="d.bin", kind="none")
    paths = make_fetcher(waits, provider="dupes").fetch_all([ref, ref], tmp_path)
    assert paths == [tmp_path / "d.bin"] * 2 and script.count == 1
    assert make_fetcher(waits).fetch_all([], tmp_path) == []


def test_fetch_all_raises_first_error_and_keeps_the_rest(threaded_server, tmp_path, waits):
    threaded_server.expect_request("/bad.bin").respond_with_data("gone", status=404)
    threaded_server.expect_request("/worse.bin").respond_with_data("gone", status=410)
    threaded_server.expect_request("/ok.bin").respond_with_data(b"payload")
    names = ["ok.bin", "bad.bin", "worse.bin", "ok.bin"]
    refs = [
        FileRef(url=threaded_server.url_for(f"/{n}"), name=n.replace("ok", f"ok{i}"), kind="none")
        for i, n in enumerate(names)
    ]
    with pytest.raises(DownloadError, match="HTTP 404"):
        make_fetcher(waits, provider="partial", concurrency=2).fetch_all(refs, tmp_path)
    assert (tmp_path / "ok0.bin").read_bytes() == b"payload"
    assert (tmp_path / "ok3.bin").read_bytes() == b"payload"


def test_min_interval_spaces_request_starts(httpserver, tmp_path):
    starts: list[float] = []

    def handler(request: Request) -> Response:
        starts.append(time.monotonic())
        return Response(b"x" * 10)

    for i in range(3):
        httpserver.expect_request(f"/s{i}.bin").respond_with_handler(handler)
    fetcher = Fetcher("spaced", policy=FetchPolicy(min_interval_s=0.15, progress=False))
    for i in range(3):
        fetcher.fetch(FileRef(url=httpserver.url_for(f"/s{i}.bin"), name=f"s{i}.bin"), tmp_path)
    gaps = np.diff(starts)
    assert len(starts) == 3 and (gaps >= 0.14).all()


# --- secrecy -----------------------------------------------------------------------------------


def _assert_secret_hidden(exc: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    assert "SECRET" not in str(exc)
    assert "SECRET" not in "".join(traceback.format_exception(exc))
    # The test server's own access log (logger "werkzeug") is not the fetcher's.
    ours = [r for r in caplog.records if not r.name.startswith("werkzeug")]
    assert ours, "expected some log records"
    assert not [r.getMessage() for r in ours if "SECRET" in r.getMessage()]


def test_query_string_never_leaks_on_http_errors(httpserver, tmp_path, waits, caplog):
    caplog.set_level(logging.DEBUG)
    serve(httpserver, "/s.tif", Response("down", status=503), Response("bad sig SECRET", 404))
    url = httpserver.url_for("/s.tif") + "?token=SECRET&X-Amz-Signature=SECRET"
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        make_fetcher(waits).fetch(FileRef(url=url, name="s.tif"), tmp_path)
    assert httpserver.url_for("/s.tif") in str(info.value)
    _assert_secret_hidden(info.value, caplog)


def test_query_string_never_leaks_on_connection_errors(tmp_path, waits, caplog):
    caplog.set_level(logging.DEBUG)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: connections are refused
    url = f"http://user:pw@127.0.0.1:{port}/s.tif?token=SECRET"
    with pytest.raises(DownloadError, match="connection failed") as info:
        make_fetcher(waits, retries=1).fetch(FileRef(url=url, name="s.tif"), tmp_path)
    assert "pw@" not in str(info.value)
    _assert_secret_hidden(info.value, caplog)


def test_public_url_strips_secrets():
    url = "https://me:pw@data.example.org:8443/a/b.tif?X-Amz-Signature=abc#frag"
    assert public_url(url) == "https://data.example.org:8443/a/b.tif"
