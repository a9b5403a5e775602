"""Vendoring the viewer's npm libraries, offline: small tarballs served from a local HTTP server
on 127.0.0.1 (retries, truncation, integrity, unsafe members, atomic output, the cache)."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import tarfile
from collections.abc import Callable, Iterator

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from lstfill.download.base import DownloadError
from lstfill.download.fetch import Fetcher, FetchPolicy
from lstfill.errors import InputError
from lstfill.viewer import vendor
from lstfill.viewer.vendor import NpmPackage, cache_dir, fetch_tarball, vendor_assets

JS = b"/* lib 1.0.0 */\nwindow.lib = function () { return 42; };\n"
CSS = b".lib { color: #123456; }\n"
LICENSE = b"MIT License\n\nCopyright (c) the lib authors\n"
FILES = {
    "package/dist/lib.js": "lib.js",
    "package/dist/lib.css": "lib.css",
    "package/LICENSE": "LICENSE",
}


# --- helpers -------------------------------------------------------------------------------------


def make_tgz(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """A gzipped tarball holding `members` (name -> bytes) and symlinks (name -> target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


LIB_TGZ = make_tgz(
    {
        "package/package.json": b'{"name": "lib", "version": "1.0.0"}',
        "package/dist/lib.js": JS,
        "package/dist/lib.css": CSS,
        "package/src/not-listed.js": b"// not vendored\n",
        "package/LICENSE": LICENSE,
    }
)


def package(data: bytes = LIB_TGZ, name: str = "lib", files: dict[str, str] = FILES) -> NpmPackage:
    return NpmPackage(name=name, version="1.0.0", integrity=sri(data), files=files)


def tgz_path(name: str = "lib") -> str:
    return f"/{name}/-/{name}-1.0.0.tgz"


def tgz(data: bytes) -> Response:
    return Response(data, content_type="application/octet-stream")


def short(data: bytes, cut: int) -> Response:
    """Promises all of `data` (Content-Length) but sends only `cut` bytes, then closes."""
    response = tgz(data[:cut])
    response.headers["Content-Length"] = str(len(data))
    return response


class Script:
    """Answers with the given responses in turn (repeating the last) and records Range headers."""

    def __init__(self, *answers: Response | Callable[[Request], Response]) -> None:
        self.answers = answers
        self.ranges: list[str | None] = []

    def __call__(self, request: Request) -> Response:
        self.ranges.append(request.headers.get("Range"))
        answer = self.answers[min(len(self.ranges), len(self.answers)) - 1]
        return answer if isinstance(answer, Response) else answer(request)


def ranged(data: bytes) -> Callable[[Request], Response]:
    """Serves `data`, honouring a Range header with 206."""

    def handler(request: Request) -> Response:
        if not request.headers.get("Range"):
            return tgz(data)
        start = int(request.headers["Range"].removeprefix("bytes=").split("-")[0])
        headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
        return Response(data[start:], status=206, headers=headers)

    return handler


@pytest.fixture(scope="module")
def _registry_server() -> Iterator[HTTPServer]:
    srv = HTTPServer(host="127.0.0.1", port=0)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()  # takes 0.5 s: once per module, not per test


@pytest.fixture
def server(_registry_server: HTTPServer) -> Iterator[HTTPServer]:
    """A local registry on 127.0.0.1 (this module's own), with no handlers and an empty log."""
    _registry_server.clear()
    yield _registry_server
    _registry_server.clear()


def serve(server: HTTPServer, *answers: Response | Callable, path: str = tgz_path()) -> Script:
    script = Script(*answers)
    server.expect_request(path).respond_with_handler(script)
    return script


def registry(server: HTTPServer) -> str:
    return server.url_for("/").rstrip("/")


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def fetcher(waits: list[float]) -> Fetcher:
    """Three retries with recorded (not slept) back-off waits; small chunks, so a cut body
    leaves a part file to resume."""
    policy = FetchPolicy(retries=3, backoff_s=2.0, timeout_s=5.0, progress=False, chunk_bytes=32)
    return Fetcher("npm-test", policy=policy, sleep=waits.append)


# --- the pinned manifest and the cache folder ----------------------------------------------------


def test_pinned_packages_are_well_formed():
    by_name = {pkg.name: pkg for pkg in vendor.PACKAGES}
    assert {n: p.version for n, p in by_name.items()} == {"leaflet": "1.9.4", "uplot": "1.6.32"}
    for pkg in vendor.PACKAGES:
        assert re.fullmatch(r"sha512-[A-Za-z0-9+/]{86}==", pkg.integrity), pkg.integrity
        assert len(base64.b64decode(pkg.integrity.removeprefix("sha512-"))) == 64
        assert all(src.startswith("package/") for src in pkg.files)
    assert dict(by_name["leaflet"].files) == {
        "package/dist/leaflet.js": "leaflet.js",
        "package/dist/leaflet.css": "leaflet.css",
        "package/LICENSE": "LICENSE",
    }
    assert dict(by_name["uplot"].files) == {
        "package/dist/uPlot.iife.min.js": "uPlot.iife.min.js",
        "package/dist/uPlot.min.css": "uPlot.min.css",
        "package/LICENSE": "LICENSE",
    }
    assert (
        by_name["leaflet"].tarball_url(vendor.DEFAULT_REGISTRY)
        == "https://registry.npmjs.org/leaflet/-/leaflet-1.9.4.tgz"
    )
    assert by_name["uplot"].tarball_url("http://mirror/npm/") == (
        "http://mirror/npm/uplot/-/uplot-1.6.32.tgz"
    )


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LSTFILL_NPM_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_dir() == tmp_path / "home/.cache/lstfill/npm"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg/lstfill/npm"
    monkeypatch.setenv("LSTFILL_NPM_CACHE", str(tmp_path / "npm"))
    assert cache_dir() == tmp_path / "npm"


# --- success and the cache -----------------------------------------------------------------------


def test_vendor_extracts_only_the_listed_files(server, tmp_path, fetcher, waits):
    script = serve(server, tgz(LIB_TGZ))
    dest, cache = tmp_path / "site/vendor", tmp_path / "cache"
    written = vendor_assets(
        dest, cache=cache, registry=registry(server), packages=[package()], fetcher=fetcher
    )
    assert written == {"lib": [dest / "lib/lib.js", dest / "lib/lib.css", dest / "lib/LICENSE"]}
    assert (dest / "lib/lib.js").read_bytes() == JS
    assert (dest / "lib/lib.css").read_bytes() == CSS
    assert (dest / "lib/LICENSE").read_bytes() == LICENSE
    assert sorted(p.name for p in (dest / "lib").iterdir()) == ["LICENSE", "lib.css", "lib.js"]
    assert sorted(p.name for p in dest.iterdir()) == ["lib"]  # no staging folder left
    assert (cache / "lib-1.0.0.tgz").read_bytes() == LIB_TGZ
    assert script.ranges == [None] and waits == []


def test_cached_tarball_is_used_without_a_request(server, tmp_path, fetcher):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "lib-1.0.0.tgz").write_bytes(LIB_TGZ)
    written = vendor_assets(
        tmp_path / "out",
        cache=cache,
        registry=registry(server),
        packages=[package()],
        fetcher=fetcher,
    )
    assert written["lib"][0].read_bytes() == JS
    assert server.log == []  # not one request reached the server


def test_second_run_needs_no_network(server, tmp_path, fetcher):
    serve(server, tgz(LIB_TGZ))
    kw = dict(cache=tmp_path / "cache", registry=registry(server), packages=[package()])
    vendor_assets(tmp_path / "a", fetcher=fetcher, **kw)
    vendor_assets(tmp_path / "b", fetcher=fetcher, **kw)
    assert len(server.log) == 1
    assert (tmp_path / "b/lib/lib.css").read_bytes() == CSS


def test_corrupt_cached_tarball_is_fetched_again(server, tmp_path, fetcher):
    script = serve(server, tgz(LIB_TGZ))
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "lib-1.0.0.tgz").write_bytes(LIB_TGZ[:-10])
    path = fetch_tarball(package(), cache, registry(server), fetcher=fetcher)
    assert path == cache / "lib-1.0.0.tgz" and path.read_bytes() == LIB_TGZ
    assert len(script.ranges) == 1


# --- failures ------------------------------------------------------------------------------------


def test_integrity_mismatch_is_refused_and_deleted(server, tmp_path, fetcher):
    evil = make_tgz({name: b"alert('pwned')\n" for name in FILES})
    serve(server, tgz(evil))
    dest, cache = tmp_path / "out", tmp_path / "cache"
    pkg = package()  # pins LIB_TGZ's hash
    with pytest.raises(InputError) as err:
        vendor_assets(dest, cache=cache, registry=registry(server), packages=[pkg], fetcher=fetcher)
    msg = str(err.value)
    assert "lib 1.0.0" in msg and registry(server) + tgz_path() in msg
    assert f"expected {pkg.integrity}" in msg and f"got {sri(evil)}" in msg
    assert not dest.exists()
    assert list(cache.iterdir()) == []  # neither the tarball nor a part file stays


@pytest.mark.parametrize("status", [429, 503])
def test_rate_limit_and_server_error_are_retried(server, tmp_path, fetcher, waits, status):
    script = serve(server, Response("slow down", status=status), tgz(LIB_TGZ))
    written = vendor_assets(
        tmp_path / "out",
        cache=tmp_path / "cache",
        registry=registry(server),
        packages=[package()],
        fetcher=fetcher,
    )
    assert written["lib"][1].read_bytes() == CSS
    assert len(script.ranges) == 2 and waits == [2.0]


def test_not_found_is_one_line_naming_url_and_cache(server, tmp_path, fetcher, waits):
    serve(server, Response("Not found", status=404))
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError) as err:
        fetch_tarball(package(), cache, registry(server), fetcher=fetcher)
    msg = str(err.value)
    assert "\n" not in msg
    assert registry(server) + tgz_path() in msg and "404" in msg
    assert f"put lib-1.0.0.tgz into {cache} by hand" in msg
    assert waits == []  # a 404 is not retried
    assert not (cache / "lib-1.0.0.tgz").exists()


def test_truncated_body_is_resumed(server, tmp_path, fetcher):
    script = serve(server, short(LIB_TGZ, 100), ranged(LIB_TGZ))
    path = fetch_tarball(package(), tmp_path, registry(server), fetcher=fetcher)
    assert path.read_bytes() == LIB_TGZ
    assert script.ranges == [None, "bytes=96-"]  # whole 32-byte chunks were kept


def test_always_truncated_body_is_never_accepted(server, tmp_path, fetcher, waits):
    script = serve(server, short(LIB_TGZ, 100))
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="failed after 4 attempts; last error: transfer broke"):
        fetch_tarball(package(), cache, registry(server), fetcher=fetcher)
    assert len(script.ranges) == 4 and waits == [2.0, 4.0, 8.0]
    assert not (cache / "lib-1.0.0.tgz").exists()
    # only the hidden part file stays, for the next run to resume
    assert (cache / ".lib-1.0.0.tgz.part").read_bytes() == LIB_TGZ[:96]


# --- unsafe tarballs and atomic output -----------------------------------------------------------


@pytest.mark.parametrize(
    ("members", "links", "files"),
    [
        ({"../evil": b"x"}, None, {"../evil": "evil.js"}),
        ({"package/../../evil": b"x"}, None, {"package/../../evil": "evil.js"}),
        ({"/tmp/evil": b"x"}, None, {"/tmp/evil": "evil.js"}),
        ({"package/dist/lib.js": b"x"}, None, {"package/dist/lib.js": "../evil.js"}),
        ({}, {"package/dist/lib.js": "../../../../evil"}, {"package/dist/lib.js": "lib.js"}),
    ],
    ids=["dotdot", "package-dotdot", "absolute", "out-dotdot", "symlink"],
)
def test_unsafe_members_are_refused(server, tmp_path, fetcher, members, links, files):
    data = make_tgz(members, links)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "lib-1.0.0.tgz").write_bytes(data)
    dest = tmp_path / "a/b/out"
    with pytest.raises(InputError, match="lib: (refused|member .* is not a regular file)"):
        vendor_assets(
            dest,
            cache=cache,
            registry=registry(server),
            packages=[package(data, files=files)],
            fetcher=fetcher,
        )
    assert not list(tmp_path.rglob("evil*"))
    assert list(dest.iterdir()) == []  # no package folder, no staging folder
    assert server.log == []


def test_missing_member_is_named(tmp_path, fetcher):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "lib-1.0.0.tgz").write_bytes(LIB_TGZ)
    files = {**FILES, "package/dist/lib.min.js": "lib.min.js"}
    with pytest.raises(InputError, match="no member 'package/dist/lib.min.js'"):
        vendor_assets(
            tmp_path / "out", cache=cache, packages=[package(files=files)], fetcher=fetcher
        )
    assert list((tmp_path / "out").iterdir()) == []


def test_a_failing_package_leaves_every_package_folder_unchanged(tmp_path, fetcher):
    cache = tmp_path / "cache"
    cache.mkdir()
    bad = make_tgz({"package/other.js": b"x"})
    (cache / "lib-1.0.0.tgz").write_bytes(LIB_TGZ)
    (cache / "bad-1.0.0.tgz").write_bytes(bad)
    dest = tmp_path / "out"
    (dest / "lib").mkdir(parents=True)
    (dest / "lib/lib.js").write_bytes(b"old")
    good_pkg, bad_pkg = package(), package(bad, name="bad", files={"package/x.js": "x.js"})
    with pytest.raises(InputError, match="bad: no member"):
        vendor_assets(dest, cache=cache, packages=[good_pkg, bad_pkg], fetcher=fetcher)
    assert sorted(p.name for p in dest.iterdir()) == ["lib"]
    assert [p.name for p in (dest / "lib").iterdir()] == ["lib.js"]
    assert (dest / "lib/lib.js").read_bytes() == b"old"
    # and once it succeeds, the old folder is replaced as a whole
    written = vendor_assets(dest, cache=cache, packages=[good_pkg], fetcher=fetcher)
    assert (dest / "lib/lib.js").read_bytes() == JS and len(written["lib"]) == 3


# --- the command line ----------------------------------------------------------------------------


def test_main_fills_the_cache(server, tmp_path, monkeypatch, capsys):
    serve(server, tgz(LIB_TGZ))
    monkeypatch.setattr(vendor, "PACKAGES", (package(),))
    cache = tmp_path / "cache"
    assert vendor.main(["--cache", str(cache), "--registry", registry(server)]) == 0
    assert capsys.readouterr().out == f"lib 1.0.0: {cache / 'lib-1.0.0.tgz'}\n"
    assert (cache / "lib-1.0.0.tgz").read_bytes() == LIB_TGZ
    # a second run is served from the cache
    assert vendor.main(["--cache", str(cache), "--registry", registry(server)]) == 0
    assert len(server.log) == 1


def test_main_reports_a_failure_in_one_line(server, tmp_path, monkeypatch, capsys):
    serve(server, Response("gone", status=404))
    monkeypatch.setattr(vendor, "PACKAGES", (package(),))
    assert vendor.main(["--cache", str(tmp_path), "--registry", registry(server)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstfill: error: cannot download viewer library lib 1.0.0 from ")
    assert err.count("\n") == 1
