"""Benchmark: the downscaling job at the size of the real Israel grid (603 x 409 cells at 1 km):
sample building, MLP training throughput for the seed's architecture and the demo's, and one
day's map; print time and peak memory.

A synthetic year in the Israel file format stands in for the real one (the cost depends on the
number of valid windows, not on the values). Each step runs in a fresh process so its peak
resident memory is its own.

    python benchmarks/downscale_speed.py                  # 603 x 409, 4 days, 2 threads
    python benchmarks/downscale_speed.py --days 10        # the seed's 10-day runs
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BATCHES = 400
ARCHITECTURES = {"seed 1024-512-256-128": [1024, 512, 256, 128], "demo 256-128-64": [256, 128, 64]}


def _config(days: int, hidden: list[int]) -> dict[str, Any]:
    from lstfill.config import validate_config

    raw = {
        "downscale": {
            "regions": {"bench": {"source": "demo"}},
            "max_days": days,
            "model": {"hidden": hidden},
            "training": {"epochs": 1, "batch_size": 128, "max_batches_per_epoch": BATCHES},
        }
    }
    return validate_config(raw)["downscale"]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _prepare(folder: str, days: int, queue: Any) -> None:
    from lstfill.demo.israel import write_demo_israel
    from lstfill.downscale import steps

    paths = write_demo_israel(folder, seed=1, shape=(603, 409), n_days=days)
    steps.dem([paths["lst"]], [paths["dem"]], f"{folder}/dem_1km.tif")
    start = time.perf_counter()
    info = steps.samples(
        [paths["lst"]],
        f"{folder}/dem_1km.tif",
        _config(days, [8]),
        f"{folder}/s.nc",
        f"{folder}/s.json",
    )
    queue.put(("samples", time.perf_counter() - start, info["n_samples"], _peak_mb()))


def _train(folder: str, days: int, name: str, threads: int, queue: Any) -> None:
    import torch

    from lstfill.downscale import steps

    torch.set_num_threads(threads)
    cfg = _config(days, ARCHITECTURES[name])
    metrics = steps.train(
        f"{folder}/s.nc",
        cfg,
        "day",
        f"{folder}/m_{name[:4]}.pt",
        f"{folder}/c.png",
        f"{folder}/w_{name[:4]}",
        f"{folder}/runs.csv",
        name,
        progress=False,
    )
    n = BATCHES * 128  # one epoch of max_batches_per_epoch batches of 128 (the seed's batch)
    queue.put((f"train, {name}", metrics["seconds_per_epoch"], n, _peak_mb()))


def _map(folder: str, name: str, threads: int, queue: Any) -> None:
    import torch

    from lstfill.downscale import steps, targets

    torch.set_num_threads(threads)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        day = targets.days_of(f"{folder}/s.json")[0]
        steps.predict(
            [f"{folder}/LST_2020_NetCDF.nc"],
            f"{folder}/dem_1km.tif",
            f"{folder}/m_{name[:4]}.pt",
            day,
            False,
            f"{tmp}/map.tif",
        )
    queue.put((f"map of one day, {name}", time.perf_counter() - start, 603 * 409, _peak_mb()))


def _in_process(target: Any, *args: Any) -> list[tuple]:
    queue: Any = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(target=target, args=(*args, queue))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise SystemExit(f"{target.__name__} failed (exit {proc.exitcode})")
    out = []
    while not queue.empty():
        out.append(queue.get())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--days", type=int, default=4, help="days sampled (day and night each)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        rows += _in_process(_prepare, folder, args.days)
        for name in ARCHITECTURES:
            rows += _in_process(_train, folder, args.days, name, args.threads)
            rows += _in_process(_map, folder, name, args.threads)
    print(f"\n{'step':44s} {'seconds':>9s} {'items':>10s} {'items/s':>10s} {'peak RSS MB':>12s}")
    for step, seconds, items, peak in rows:
        print(f"{step:44s} {seconds:9.1f} {items:10d} {items / seconds:10.0f} {peak:12.0f}")


if __name__ == "__main__":
    main()
