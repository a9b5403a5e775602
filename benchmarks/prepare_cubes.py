"""Benchmark: time and peak memory of each acquisition/prepare step on a demo region.

Each step runs in a fresh process so its peak resident memory is its own. Prints a table.

    python benchmarks/prepare_cubes.py --size 160 --overpasses 36    # the default demo
    python benchmarks/prepare_cubes.py --size 640 --overpasses 8     # a 45 km region
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

X0, Y0 = 675000, 5242200  # upper-left of the demo region (UTM 32N, Inn valley)


def _region_cfg(size: int, overpasses: int) -> dict[str, Any]:
    return {
        "source": "demo",
        "start": "2023-06-01",
        "end": "2023-08-31",
        "grid": {
            "crs": "EPSG:32632",
            "bounds": [X0, Y0 - 70 * size, X0 + 70 * size, Y0],
            "resolution": 70,
        },
        "demo": {"n_overpasses": overpasses},
    }


def _step(name: str, work: Path, cfg: dict[str, Any], queue: mp.Queue) -> None:
    from lstfill.acquire import acquire
    from lstfill.config import validate_config
    from lstfill.cube import build_cube, build_s2_grid, build_static
    from lstfill.grid import Grid
    from lstfill.inventory import (
        inca_files_for,
        parse_acquisition_id,
        read_inventory,
        s2_scenes_near,
    )
    from lstfill.quicklook import plot_quicklook

    full = validate_config({"regions": {"bench": cfg}})
    prep, s2 = full["prepare"], full["prepare"]["sentinel2"]
    inv_path = work / "inventory.json"
    t0 = time.perf_counter()
    items = 1
    if name == "acquire (demo)":
        acquire("bench", full["regions"]["bench"], work, inv_path)
    else:
        inv = read_inventory(inv_path)
        grid = Grid.from_dict(inv["grid"])
        if name == "build_static":
            build_static(inv, grid, work / "static.nc")
        elif name == "build_s2_grid":
            for scene, entry in inv["sentinel2"].items():
                build_s2_grid(
                    entry["folder"],
                    grid,
                    s2["bands"],
                    s2["scl_invalid"],
                    work / "s2" / f"{scene}.nc",
                )
            items = len(inv["sentinel2"])
        elif name == "build_cube":
            for acq in inv["acquisitions"]:
                t = parse_acquisition_id(acq)
                scenes = [
                    work / "s2" / f"{s}.nc" for s in s2_scenes_near(inv, t, s2["window_days"])
                ]
                incas = inca_files_for(inv, t, prep["inca"]["cumulative_hours"])
                build_cube(
                    acq, inv, work / "static.nc", scenes, incas, prep, work / "cubes" / f"{acq}.nc"
                )
            items = len(inv["acquisitions"])
        elif name == "plot_quicklook":
            for acq in inv["acquisitions"]:
                plot_quicklook(work / "cubes" / f"{acq}.nc", work / "ql" / f"{acq}.png")
            items = len(inv["acquisitions"])
    wall = time.perf_counter() - t0
    queue.put((items, wall, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


STEPS = ("acquire (demo)", "build_static", "build_s2_grid", "build_cube", "plot_quicklook")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=160, help="grid side in 70 m pixels")
    parser.add_argument("--overpasses", type=int, default=36)
    args = parser.parse_args()
    cfg = _region_cfg(args.size, args.overpasses)
    ctx = mp.get_context("spawn")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in STEPS:
            queue = ctx.Queue()
            proc = ctx.Process(target=_step, args=(name, Path(tmp), cfg, queue))
            proc.start()
            proc.join()
            if proc.exitcode != 0:
                raise SystemExit(f"step {name} failed")
            rows.append((name, *queue.get()))
    print(
        f"\nregion {args.size} x {args.size} px at 70 m, {args.overpasses} overpasses"
        " (one process per step)"
    )
    print(f"{'step':<16} {'items':>6} {'wall s':>8} {'s/item':>8} {'peak RSS MiB':>13}")
    for name, items, wall, rss in rows:
        print(f"{name:<16} {items:>6} {wall:>8.2f} {wall / items:>8.3f} {rss:>13.0f}")
    print(f"{'total':<16} {'':>6} {sum(r[2] for r in rows):>8.2f}")


if __name__ == "__main__":
    main()
