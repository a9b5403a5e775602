"""The viewer in a real browser: headless Chromium (Debian's `chromium`, driven by Playwright)
opens the tiny run's viewers from a local HTTP server and from disk, draws every job's maps,
draws the time series of a clicked pixel, and shows every metrics.json method as a table row,
with no console error and no request leaving the viewer's own origin."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio

from lstfill.metric_tables import job_tables, methods_of

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on PATH: install Debian's `chromium` (.ci/run does) for the browser test",
)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')"
)

MAP_BACKGROUND = (0xEC, 0xEF, 0xF1)  # .panel .map in viewer.css


@pytest.fixture(scope="module")
def server(tiny_run: Path) -> Iterator[str]:
    """`python -m http.server` on 127.0.0.1 serving the tiny run's results/, stopped by its pid."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    proc = subprocess.Popen(
        [*cmd, "--directory", str(tiny_run / "results")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        # --no-sandbox: Chromium refuses to run as root (CI) with its sandbox on.
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Visit:
    """A page with what it logged and asked for."""

    def __init__(self, browser: object, url: str) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(url)

    def wait_drawn(self, job: str) -> None:
        self.page.wait_for_function(
            f"(document.body.dataset.drawn || '').startsWith('{job}:')", timeout=30000
        )


def map_share_drawn(visit: Visit, panel: str) -> float:
    """The share of a panel's map pixels that differ from the empty map's background colour
    (a screenshot of the element, decoded)."""
    import matplotlib.image

    png = visit.page.locator(f'.panel[data-panel="{panel}"] .map').screenshot()
    rgb = (matplotlib.image.imread(io.BytesIO(png), format="png")[..., :3] * 255).round()
    return float(np.mean(np.any(np.abs(rgb - MAP_BACKGROUND) > 3, axis=-1)))


def click_map(visit: Visit, panel: str, fx: float, fy: float) -> list[dict]:
    """Click a panel's map at the fraction (fx, fy) of its width and height; the series the
    page drew (panel, times, values per series)."""
    box = visit.page.locator(f'.panel[data-panel="{panel}"] .map').bounding_box()
    visit.page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    visit.page.wait_for_function("document.getElementById('series').dataset.points", timeout=30000)
    return visit.page.evaluate("window.lstfillViewer.series")


def pixel_of(visit: Visit, job: str, panel: str) -> tuple[int, int]:
    """(row, col) in `panel` of the clicked point."""
    fx, fy = visit.page.evaluate("window.lstfillViewer.pixel")
    shape = visit.page.evaluate(
        f"(() => {{ const p = LSTFILL.jobs['{job}'].panels.find((q) => q.key === '{panel}');"
        " return [p.height, p.width]; })()"
    )
    return int(fy * shape[0]), int(fx * shape[1])


def check_tables(visit: Visit, metrics_files: dict[str, Path]) -> None:
    """Every metric table of every job has exactly the methods of its metrics.json as rows, and
    its first score column shows the file's value."""
    for job, path in metrics_files.items():
        metrics = json.loads(path.read_text())
        tables = job_tables(job, metrics)
        assert tables
        for table in tables:
            selector = f'#metrics table[data-job="{job}"][data-table="{table.key}"] tbody tr'
            rows = visit.page.locator(selector)
            shown = [rows.nth(i).get_attribute("data-method") for i in range(rows.count())]
            assert shown == methods_of(job, metrics), (job, table.key)
            if not table.columns or table.rows[0][1] is None:
                continue
            first = rows.nth(0).locator("td").nth(1).inner_text()
            value = table.rows[0][1]
            assert float(first.replace(",", "")) == pytest.approx(value, rel=1e-3, abs=0.5)


def test_viewer_of_a_region_served_locally(browser, server, tiny_run: Path, tmp_path) -> None:
    results = tiny_run / "results" / "tiny"
    visit = Visit(browser, f"{server}/tiny/viewer/index.html")
    tabs = visit.page.locator("nav button")
    assert [tabs.nth(i).get_attribute("data-tab") for i in range(tabs.count())] == [
        "gapfill", "superres", "fusion", "metrics", "runs",
    ]  # fmt: skip

    # Gap-fill: maps drawn, a click draws the series, and its values are the products' values.
    visit.wait_drawn("gapfill")
    for panel in ("observed", "filled", "halfwidth"):
        assert map_share_drawn(visit, panel) > 0.3, panel
    series = click_map(visit, "filled", 0.45, 0.55)
    row, col = pixel_of(visit, "gapfill", "filled")
    filled = next(s for s in series if s["panel"] == "filled")
    products = sorted((results / "gapfill" / "filled").glob("*.tif"))
    assert len(filled["values"]) == len(products)
    for value, path in zip(filled["values"], products, strict=True):
        with rasterio.open(path) as src:
            expected = src.read(1)[row, col]
        assert value == pytest.approx(expected, abs=0.026)  # 0.05 K codes
    assert int(visit.page.locator("#series").get_attribute("data-points")) > len(products)
    assert visit.page.locator("#series .uplot canvas").count() >= 1
    visit.page.screenshot(path=str(tmp_path / "viewer_tiny_gapfill.png"), full_page=True)

    # The other jobs: maps and a series each; the slider moves the date.
    for job, panel in (("superres", "sifnn1"), ("fusion", "fused")):
        visit.page.locator(f'nav button[data-tab="{job}"]').click()
        visit.wait_drawn(job)
        assert map_share_drawn(visit, panel) > 0.3, job
        values = [v for s in click_map(visit, panel, 0.5, 0.5) for v in s["values"]]
        assert any(v is not None for v in values), job
    visit.page.locator("#next").click()
    visit.page.wait_for_function("window.lstfillViewer.t > 0")

    visit.page.locator('nav button[data-tab="metrics"]').click()
    check_tables(
        visit,
        {job: results / job / "metrics.json" for job in ("gapfill", "superres", "fusion")},
    )
    visit.page.locator('nav button[data-tab="runs"]').click()
    runs = (results / "report" / "runs.csv").read_text().strip().splitlines()
    assert visit.page.locator("#runs-table tr").count() == len(runs)  # header + one per run

    visit.page.screenshot(path=str(tmp_path / "viewer_tiny_runs.png"), full_page=True)
    print(f"screenshots: {tmp_path}")
    assert visit.errors == []
    assert visit.requests and all(r.startswith(f"{server}/") for r in visit.requests)


def test_downscaling_viewer_opens_from_disk(browser, tiny_run: Path, tmp_path) -> None:
    """Opened as a file (no server): the downscaling region's maps, series and tables."""
    results = tiny_run / "results" / "tiny_il"
    visit = Visit(browser, (results / "viewer" / "index.html").as_uri())
    visit.wait_drawn("downscale")
    assert map_share_drawn(visit, "mapped_day") > 0.3
    series = click_map(visit, "mapped_day", 0.5, 0.5)
    assert {s["panel"] for s in series} == {
        "observed_night", "mapped_night", "observed_day", "mapped_day",
    }  # fmt: skip
    check_tables(visit, {"downscale": results / "downscale" / "metrics.json"})
    visit.page.screenshot(path=str(tmp_path / "viewer_tiny_il.png"), full_page=True)
    # the link to the other region's viewer leads to it
    visit.page.locator("#regions a", has_text="tiny").click()
    visit.wait_drawn("gapfill")
    assert visit.page.evaluate("LSTFILL.index.region") == "tiny"
    assert visit.errors == []
    assert all(r.startswith("file://") or r.startswith("data:") for r in visit.requests)
