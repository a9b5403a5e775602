"""Benchmark: gap-fill CNN training time per epoch, prediction throughput and peak memory on a
full ECOSTRESS tile (1568 x 1568 pixels at 70 m) on CPU.

A synthetic cube with the demo's feature set stands in for a real one (the speed of the CNN does
not depend on the values). Each stage runs in a fresh process so its peak resident memory is its
own. Prints a table.

    python benchmarks/gapfill_speed.py                               # paper architecture
    python benchmarks/gapfill_speed.py --filters 32,32,64,64 --dense 64   # the demo's CNN
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

FEATURES = (
    "b02 b03 b04 b08 b11 b12 ndvi ndwi ndmi ndbi t2m gl rh2m uu vv t2m_6h gl_6h "
    "elevation slope tree_cover imperviousness doy_sin doy_cos tod_sin tod_cos lst_pattern"
).split()


def synthetic_cube(path: Path, size: int, seed: int = 0) -> None:
    """A one-acquisition lstfill cube of size² pixels: smooth random fields, ~40 % cloud."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)
    import xarray as xr
    from scipy import ndimage

    rng = np.random.default_rng(seed)

    def field(scale: float, offset: float) -> np.ndarray:
        f = ndimage.zoom(rng.standard_normal((size // 32 + 2, size // 32 + 2)), 32, order=1)
        return (offset + scale * f[:size, :size]).astype(np.float32)

    x = 600000 + 70 * (np.arange(size) + 0.5)
    y = 5300000 - 70 * (np.arange(size) + 0.5)
    lst = field(5, 300)
    cloud = field(1, 0) > 0.25
    dyn = {n: field(0.1, 0.2) for n in FEATURES[:10]}
    dyn.update({n: field(2, 290 if n.startswith("t2m") else 5) for n in FEATURES[10:17]})
    ds = xr.Dataset(
        {
            "lst": (("time", "y", "x"), np.where(cloud, np.nan, lst)[None]),
            "lst_valid": (("time", "y", "x"), (~cloud).astype(np.uint8)[None]),
            **{k: (("time", "y", "x"), v[None]) for k, v in dyn.items()},
            "elevation": (("y", "x"), field(300, 1000)),
            "slope": (("y", "x"), np.abs(field(10, 0))),
            "tree_cover": (("y", "x"), np.clip(field(30, 40), 0, 100)),
            "imperviousness": (("y", "x"), np.clip(field(20, 5), 0, 100)),
            "water": (("y", "x"), (field(1, 0) > 1.8).astype(np.uint8)),
        },
        coords={"time": [np.datetime64("2023-07-01T10:30:00", "ns")], "y": y, "x": x},
    )
    ds.rio.write_crs("EPSG:32633", inplace=True)
    ds.to_netcdf(path)


def _filler(args: argparse.Namespace) -> Any:
    from lstfill.gapfill.features import FeatureSet
    from lstfill.gapfill.method.cnn import CnnFiller

    return CnnFiller(
        FeatureSet(tuple(FEATURES), ("water",)),
        filters=tuple(int(v) for v in args.filters.split(",")),
        dense=args.dense,
        mc_passes=args.mc_passes,
        chunk_rows=args.chunk_rows,
        train={"epochs": 1, "batch_size": 512, "device": "cpu"},
        max_per_acquisition=args.patches,
    )


def _stage(name: str, cube: Path, work: Path, args: argparse.Namespace, queue: mp.Queue) -> None:
    import torch

    from lstfill.gapfill.inputs import load_series

    torch.set_num_threads(args.threads)
    series = load_series(cube)
    filler = _filler(args)
    out: dict[str, Any] = {}
    allowed = np.ones(1, dtype=bool)
    if name == "train_epoch":
        samples = filler.build_samples(series, np.array([0]), np.array([0]), allowed)
        samples["val"] = samples["train"]
        start = time.perf_counter()
        res = filler.fit_samples(samples, work / "train", progress=False)
        out = {"seconds": time.perf_counter() - start, "n": len(samples["train"])}
        out["epoch_seconds"] = res.history[0]["seconds"]
    else:
        samples = filler.build_samples(series, np.array([0]), np.array([0]), allowed)
        filler.norm = samples["norm"]
        filler.patterns = samples["patterns"]
        filler.model = filler.new_model(filler.norm).eval()
        start = time.perf_counter()
        pred, _ = filler.predict(series, 0)
        out = {"seconds": time.perf_counter() - start, "n": pred.size}
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1568, help="tile side in pixels")
    ap.add_argument("--filters", default="128,128,512,512", help="CNN filters per branch")
    ap.add_argument("--dense", type=int, default=128)
    ap.add_argument("--patches", type=int, default=50_000, help="training patches in one epoch")
    ap.add_argument("--mc-passes", type=int, default=0, help="MC-dropout passes when predicting")
    ap.add_argument("--chunk-rows", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cube = work / "cube.nc"
        synthetic_cube(cube, args.size)
        for name in ("train_epoch", "predict_tile"):
            queue: mp.Queue = ctx.Queue()
            proc = ctx.Process(target=_stage, args=(name, cube, work, args, queue))
            proc.start()
            res = queue.get()
            proc.join()
            rows.append((name, res))
    print(
        f"gap-fill CNN, filters {args.filters}, dense {args.dense}, "
        f"tile {args.size}x{args.size}, {args.threads} threads, MC passes {args.mc_passes}, "
        f"chunk {args.chunk_rows} rows"
    )
    print(f"{'stage':<14}{'items':>12}{'seconds':>10}{'items/s':>12}{'peak MB':>10}")
    for name, r in rows:
        secs = r.get("epoch_seconds", r["seconds"])
        print(f"{name:<14}{r['n']:>12d}{secs:>10.1f}{r['n'] / secs:>12.0f}{r['peak_mb']:>10.0f}")


if __name__ == "__main__":
    main()
