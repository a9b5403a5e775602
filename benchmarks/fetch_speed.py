"""Benchmark: the shared fetcher against a local HTTP server (no network): throughput and peak
memory of a large file, with and without a SHA-256 check, a transfer cut at half resumed with
HTTP Range, and many small files through the per-provider concurrency limit.

Streaming must keep memory flat whatever the file size (the peak resident memory is measured in
a fresh process per case). Loopback bandwidth is far above any real service, so the numbers are
the fetcher's own cost, the ceiling a real download can reach.

    python benchmarks/fetch_speed.py              # 512 MB file, 200 x 256 kB files
    python benchmarks/fetch_speed.py --size-mb 2048
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves files of the root folder with Range support; `/cut/<name>` stops half-way once."""

    root: Path
    cut_done: set[str] = set()

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        cut = self.path.startswith("/cut/")
        name = self.path.removeprefix("/cut/").lstrip("/")
        path = self.root / name
        size = path.stat().st_size
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(size - start))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        stop = size
        if cut and name not in self.cut_done:
            self.cut_done.add(name)
            stop = size // 2
        with open(path, "rb") as f:
            f.seek(start)
            left = stop - start
            while left > 0:
                chunk = f.read(min(1 << 20, left))
                self.wfile.write(chunk)
                left -= len(chunk)


def _serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = type("H", (_Handler,), {"root": root, "cut_done": set()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _case(kind: str, base: str, root: str, dest: str, queue: Any) -> None:
    """One measured case in a fresh process: (seconds, MB moved, peak RSS MB)."""
    from lstfill.download.base import FileRef
    from lstfill.download.fetch import Fetcher, FetchPolicy

    policy = FetchPolicy(progress=False, backoff_s=0.01, concurrency=4)
    fetcher = Fetcher("bench", policy=policy)
    big = Path(root) / "big.bin"
    start = time.perf_counter()
    if kind in ("plain", "sha256", "resume"):
        digest = _sha256(big) if kind == "sha256" else None
        start = time.perf_counter()
        url = f"{base}/cut/big.bin" if kind == "resume" else f"{base}/big.bin"
        ref = FileRef(
            url,
            "big.bin",
            size=big.stat().st_size,
            checksum=digest,
            checksum_algorithm="SHA-256" if digest else None,
            kind="none",
        )
        fetcher.fetch(ref, Path(dest))
        moved = big.stat().st_size
    else:
        names = sorted(p.name for p in Path(root).glob("small_*.bin"))
        refs = [FileRef(f"{base}/{n}", n, kind="none") for n in names]
        fetcher.fetch_all(refs, Path(dest))
        moved = sum((Path(root) / n).stat().st_size for n in names)
    seconds = time.perf_counter() - start
    queue.put((seconds, moved / 1e6, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--small", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "srv"
        root.mkdir()
        with open(root / "big.bin", "wb") as f:
            for _ in range(args.size_mb):
                f.write(os.urandom(1 << 20))
        for i in range(args.small):
            (root / f"small_{i:04d}.bin").write_bytes(os.urandom(256 * 1024))
        server, base = _serve(root)
        rows = []
        ctx = mp.get_context("spawn")
        for kind, label in (
            ("plain", f"{args.size_mb} MB file"),
            ("sha256", f"{args.size_mb} MB file + SHA-256 check"),
            ("resume", f"{args.size_mb} MB file, cut at half, resumed"),
            ("small", f"{args.small} files of 256 kB, 4 at a time"),
        ):
            dest = Path(tmp) / f"dest_{kind}"
            queue = ctx.Queue()
            proc = ctx.Process(target=_case, args=(kind, base, str(root), str(dest), queue))
            proc.start()
            seconds, mb, peak = queue.get()
            proc.join()
            rows.append((label, seconds, mb / seconds, peak))
        server.shutdown()
    print(f"{'case':<44} {'time s':>8} {'MB/s':>8} {'peak RSS MB':>12}")
    for label, seconds, rate, peak in rows:
        print(f"{label:<44} {seconds:8.2f} {rate:8.0f} {peak:12.0f}")


if __name__ == "__main__":
    main()
