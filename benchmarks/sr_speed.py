"""Benchmark: sharpen a full MODIS tile (1200 x 1200 at 1 km -> 4800 x 4800 at 250 m) on CPU with
the SIF-NN-SR U-Net and with the data mining sharpener (DMS); print time and peak memory.

Synthetic fields stand in for a real tile (the cost of either method does not depend on the
values: the U-Net's work is fixed by the pixel count, the DMS trees' depth by max_leaf_nodes).
The U-Net is untrained (same cost as a trained one) and runs tile by tile, so its memory is the
output plus one tile's activations; DMS fits on the 1.44 M coarse pixels and predicts the fine
grid in row chunks. Each method runs in a fresh process so its peak resident memory is its own.

    python benchmarks/sr_speed.py                   # full tile, 2 threads
    python benchmarks/sr_speed.py --size 300        # a quarter of a tile per side
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def synthetic_tile(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Coarse LST (size²) and fine NDVI ((4 size)²), smooth random fields, ~10 % cloud."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    fine = 4 * size
    base = rng.standard_normal((fine // 64 + 2, fine // 64 + 2))
    ndvi = ndimage.zoom(base, 64, order=1)[:fine, :fine]
    ndvi = (0.5 + 0.25 * np.tanh(ndvi) + 0.05 * rng.standard_normal((fine, fine))).astype(
        np.float32
    )
    lst = 305 - 15 * ndvi.reshape(size, 4, size, 4).mean(axis=(1, 3))
    cloud = ndimage.zoom(rng.standard_normal((size // 16 + 2, size // 16 + 2)), 16, order=1)
    lst[cloud[:size, :size] > 1.3] = np.nan
    return lst.astype(np.float32), ndvi


def _run(method: str, size: int, threads: int, tile: int, queue: Any) -> None:
    import torch

    from lstfill.superres.dms import dms
    from lstfill.superres.method import Sharpener, TileConfig
    from lstfill.superres.model import LossConfig

    torch.set_num_threads(threads)
    lst, ndvi = synthetic_tile(size)
    norm = {"lst_mean": 300.0, "lst_std": 5.0, "ndvi_mean": 0.5, "ndvi_std": 0.2}
    model = Sharpener(LossConfig(), 4, norm=norm, tiles=TileConfig(tile, 8))
    start = time.perf_counter()
    if method == "model_sifnn":
        out = model.predict(lst, ndvi)
    else:
        out = dms(lst, ndvi, 4, n_jobs=threads)
    seconds = time.perf_counter() - start
    queue.put(
        {
            "method": method,
            "seconds": seconds,
            "fine_px_per_s": out.size / seconds,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "finite": float(np.isfinite(out).mean()),
        }
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1200, help="coarse pixels per side")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tile", type=int, default=64, help="U-Net tile, coarse pixels")
    parser.add_argument("--methods", nargs="+", default=["model_sifnn", "baseline_dms"])
    args = parser.parse_args(argv)
    ctx = mp.get_context("spawn")
    rows = []
    for method in args.methods:
        queue = ctx.Queue()
        proc = ctx.Process(target=_run, args=(method, args.size, args.threads, args.tile, queue))
        proc.start()
        rows.append(queue.get())
        proc.join()
    n = args.size
    print(f"\n{n} x {n} -> {4 * n} x {4 * n}, {args.threads} threads")
    print(f"{'method':14s} {'seconds':>8s} {'fine px/s':>11s} {'peak MB':>8s} {'valid':>6s}")
    for r in rows:
        print(
            f"{r['method']:14s} {r['seconds']:8.1f} {r['fine_px_per_s']:11.0f} "
            f"{r['peak_mb']:8.0f} {r['finite']:6.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
