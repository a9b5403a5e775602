"""Benchmark: the offline viewer's size and speed. For each region's viewer that `make demo` has
written (results/*/viewer), its size per part and, in headless Chromium (Debian's `chromium`,
driven by Playwright), served by `python -m http.server` and opened from disk: the time from
navigation to the first map drawn, to every job's first map, and from a click to the drawn time
series of that pixel (which decodes every frame of the job).

    python benchmarks/viewer_load.py
    python benchmarks/viewer_load.py --results results --repeat 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def serve(root: Path) -> tuple[subprocess.Popen, str]:
    """A local static server of `root` (stopped by the caller, by pid)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    proc = subprocess.Popen(
        [*cmd, "--directory", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


def visit(browser, url: str) -> dict[str, float]:
    """Seconds to the first map, to each other job's first map, and from a click to its series."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_function("document.body.dataset.drawn", timeout=60000)
    out = {"first map": time.perf_counter() - start}
    jobs = page.evaluate("LSTFILL.index.jobs.map((j) => j.job)")
    for job in jobs:
        if job != jobs[0]:
            start = time.perf_counter()
            page.locator(f'nav button[data-tab="{job}"]').click()
            page.wait_for_function(f"(document.body.dataset.drawn || '').startsWith('{job}:')")
            out[f"{job} map"] = time.perf_counter() - start
        box = page.locator(".panel .map").last.bounding_box()
        start = time.perf_counter()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_function("document.getElementById('series').dataset.points")
        out[f"{job} series"] = time.perf_counter() - start
    page.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("no chromium on PATH (Debian package `chromium`)")
    viewers = sorted(args.results.glob("*/viewer/index.html"))
    if not viewers:
        sys.exit(f"no viewer under {args.results}: run `make demo` first")
    proc, server = serve(args.results.resolve())
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            print(f"{'region':12s} {'part':10s} {'MB':>7s}")
            for index in viewers:
                folder = index.parent
                for part in ("data", "vendor"):
                    print(f"{folder.parent.name:12s} {part:10s} {folder_mb(folder / part):7.2f}")
                print(f"{folder.parent.name:12s} {'total':10s} {folder_mb(folder):7.2f}")
            print()
            print(f"{'region':12s} {'opened':6s} {'step':18s} {'best s':>7s} {'worst s':>8s}")
            for index in viewers:
                region = index.parent.parent.name
                rel = index.resolve().relative_to(args.results.resolve())
                for how, url in (("http", f"{server}/{rel}"), ("file", index.resolve().as_uri())):
                    runs = [visit(browser, url) for _ in range(args.repeat)]
                    for step in runs[0]:
                        values = [r[step] for r in runs]
                        print(f"{region:12s} {how:6s} {step:18s} {min(values):7.3f} "
                              f"{max(values):8.3f}")  # fmt: skip
            browser.close()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
