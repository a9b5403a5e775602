"""Benchmark: EFAST fusion of one day of a full Sentinel-2 tile, reading to writing, on CPU.

    python benchmarks/fusion_speed.py [--json OUT.json] [--size 5490] [--ratio 15]
        [--coarse-dates 60] [--fine-scenes 8] [--bands 1] [--threads 2] [--workdir DIR]
        [--block-rows N] [--compress none] [--cog-compress deflate] [--profile OUT.prof]

The case: 5490 x 5490 fine pixels (a Sentinel-2 tile at 20 m), ratio 15 (366 x 366 coarse
pixels), 60 daily coarse dates around the day and 8 fine scenes within +-30 days. Values are
synthetic (the speed does not depend on them): a smooth NDVI-like field plus texture and a
spatially varying trend; the coarse series is the block mean of the day's field plus noise,
with cloudy coarse pixels (compact blobs, 0-25 % of a date); each fine scene carries compact
cloud blobs covering 10-60 % of it.

Setup (not timed, in a process of its own): the fine scenes are written as tiled float32
GeoTIFFs (NaN = masked) plus a uint8 valid-mask GeoTIFF each, and the coarse series as one
GeoTIFF (one band per date and fused band), into a temporary folder on local disk (or
--workdir; the files are then in the page cache, as on a node that has just fetched them).

Timed, in a fresh process that does only this (so its peak resident memory is its own): the
coarse GeoTIFF is read; ``lstfill.fusion.method.fuse(..., block_rows, threads, sink)`` runs on
:class:`GeoTiffScene` readers (windowed rasterio reads, one dataset per thread and file:
rasterio datasets are not thread-safe); the sink writes each block into a tiled, uncompressed
float32 GTiff (bands: fused bands, weight, days_to_fine, flag) opened once, writes guarded by a
lock; the GTiff is converted to a COG (GDAL's COG driver, the options of
:func:`lstfill.io.write_cog`: deflate, 256-pixel blocks, overviews). Stage times come from
wrapping, in the timed process only, the module functions ``fuse`` calls (``plan_day``,
``coarse_at``, ``masked_share``, ``cloud_distance``, ``acquisition_weights``, ``fuse_block``)
plus the readers and the sink; per-block stages are summed over threads (so with 2 threads they
can add up to twice their wall time). ``mosaics`` is ``fuse_block`` minus its reading.

Peak memory: ``ru_maxrss`` and ``VmHWM`` (/proc/self/status) of the timed process, measured
without tracemalloc (--tracemalloc adds a separate, slower run that reports the traced Python /
NumPy allocation peak). --profile writes a cProfile of a separate timed run and prints its top
functions. Goal: <= 5 s on 2 CPU cores and <= 2 GB, memory not growing with the tile (compare
--size 2745). Reference (published Python-loop EFAST, same case): 24 s, 1.9 GB.

This script is one benchmark harness, kept whole (past the project's ~400-line guide) because
every part of it exists for this measurement only and reads best next to the others: the
synthetic tile is written as the plain tiled GeoTIFFs a node would have fetched (not lstfill's
COG products), the windowed readers and the sink carry the stage timers, and the timers are
installed by patching ``lstfill.fusion.method`` in the timed child process alone. The method,
its coarse series, the nested grid, the block mean and the COG options are the package's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import multiprocessing as mp
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REFERENCE = {"name": "published EFAST (Python loop)", "seconds": 24.0, "peak_mb": 1900.0}
GOAL = {"seconds": 5.0, "peak_mb": 2048.0}
DAY = dt.date(2023, 7, 1)
PIXEL = 20.0
ORIGIN = (600000.0, 5300040.0)
CRS = "EPSG:32633"
TILE = 512
EXTRA = ("weight", "days_to_fine", "flag")
SEED = 0
# GDAL's block cache in the timed run (rasterio takes it in bytes); it counts in the peak
# memory. GDAL's default is 5 % of the RAM (1.2 GB here).
GDAL_CACHE_MB = 512


# ------------------------------------------------------------------------------ setup


def fine_offsets(n: int, max_days: float = 30.0) -> list[float]:
    """`n` fine acquisition days spread over +-(max_days - 2) around the day, none on it."""
    offs = np.round(np.linspace(-(max_days - 2), max_days - 2, n))
    return [float(o if o != 0 else 1.0) for o in offs]


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], scale: int) -> np.ndarray:
    """A smooth random field, zero mean, unit-ish spread, features about `scale` pixels wide."""
    from scipy import ndimage

    h, w = shape
    small = rng.standard_normal((h // scale + 3, w // scale + 3)).astype(np.float32)
    small = ndimage.gaussian_filter(small, 0.7)
    big = ndimage.zoom(small, scale, order=1)[:h, :w]
    return (big / (big.std() + 1e-6)).astype(np.float32)


def _blobs(rng: np.random.Generator, shape: tuple[int, int], cover: float, scale: int):
    """Compact blobs covering `cover` of the grid (a thresholded smooth field)."""
    field = _smooth_field(rng, shape, scale)
    if cover <= 0:
        return np.zeros(shape, dtype=bool)
    sample = field[:: max(1, shape[0] // 256), :: max(1, shape[1] // 256)]
    return field > np.quantile(sample, 1.0 - cover)


def _coarse_mean(a: np.ndarray, ratio: int) -> np.ndarray:
    """`a` averaged onto the nested coarse grid (a partial edge block: the mean of its pixels)."""
    from lstfill.fusion.nesting import coarse_shape
    from lstfill.raster import block_mean

    ch, cw = coarse_shape(a.shape, ratio)
    pad = ((0, ch * ratio - a.shape[0]), (0, cw * ratio - a.shape[1]))
    return block_mean(np.pad(a, pad, constant_values=np.nan), ratio, min_valid=1 / ratio**2)


def _profile(data_shape: tuple[int, int, int], dtype, transform, nodata, tiled: bool) -> dict:
    """A plain GTiff profile (bands, height, width), tiled in blocks of up to TILE pixels."""
    count, height, width = data_shape
    profile = {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": count,
        "dtype": dtype,
        "crs": CRS,
        "transform": transform,
        "nodata": nodata,
    }
    if tiled and height >= 16 and width >= 16:
        block = min(TILE, 16 * (min(height, width) // 16))
        profile.update(tiled=True, blockxsize=block, blockysize=block)
    return profile


def _write(path: Path, data: np.ndarray, transform, compress: str, nodata, tiled=True) -> None:
    """`data` as a plain GTiff, the format of fetched inputs (lstfill.io.write_cog writes the
    products: deflate and overviews, which would change what the timed part reads)."""
    import rasterio

    data = data if data.ndim == 3 else data[None]
    profile = _profile(data.shape, data.dtype, transform, nodata, tiled)
    if compress != "none":
        profile["compress"] = compress
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def setup(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Write the synthetic inputs into `workdir`; their manifest (also manifest.json)."""
    from affine import Affine

    from lstfill.fusion.inputs import day_number

    rng = np.random.default_rng(SEED)
    size, ratio, bands = args.size, args.ratio, args.bands
    shape = (size, size)
    transform = Affine(PIXEL, 0, ORIGIN[0], 0, -PIXEL, ORIGIN[1])
    coarse_transform = transform @ Affine.scale(ratio)
    day = day_number(DAY)
    # per band: a smooth field + texture, a smooth trend per day
    base, trend = [], []
    for b in range(bands):
        field = 0.45 + 0.15 * _smooth_field(rng, shape, max(4, size // 40))
        texture = 0.04 * _smooth_field(rng, shape, 3)
        base.append((field + texture + 0.01 * b).astype(np.float32))
        trend.append(0.004 + 0.002 * _smooth_field(rng, shape, max(4, size // 20)))
    scenes = []
    for k, off in enumerate(fine_offsets(args.fine_scenes)):
        cover = float(rng.uniform(0.10, 0.60))
        cloud = _blobs(rng, shape, cover, max(2 * ratio, size // 60))
        data = np.stack([base[b] + trend[b] * off for b in range(bands)])
        data += 0.01 * rng.standard_normal(data.shape, dtype=np.float32)
        data[:, cloud] = np.nan
        fine, mask = workdir / f"fine_{k}.tif", workdir / f"fine_{k}_valid.tif"
        _write(fine, data.astype(np.float32), transform, args.compress, float("nan"))
        _write(mask, (~cloud).astype(np.uint8), transform, args.compress, None)
        scenes.append(
            {"day": day + off, "data": str(fine), "mask": str(mask), "masked": float(cloud.mean())}
        )
        del data, cloud
    n = args.coarse_dates
    coarse_days = [day - n // 2 + j for j in range(n)]
    cbase = [_coarse_mean(base[b], ratio) for b in range(bands)]
    ctrend = [_coarse_mean(trend[b], ratio) for b in range(bands)]
    cshape = cbase[0].shape
    coarse = np.empty((n, bands, *cshape), dtype=np.float32)
    cloudy_share = []
    for j, cday in enumerate(coarse_days):
        off = cday - day
        cloud = _blobs(rng, cshape, float(rng.uniform(0.0, 0.25)), max(2, cshape[0] // 12))
        cloudy_share.append(float(cloud.mean()))
        for b in range(bands):
            noise = 0.01 * rng.standard_normal(cshape).astype(np.float32)
            coarse[j, b] = np.where(cloud, np.nan, cbase[b] + ctrend[b] * off + noise)
    coarse_path = workdir / "coarse.tif"
    _write(
        coarse_path,
        coarse.reshape(n * bands, *cshape),
        coarse_transform,
        "none",
        float("nan"),
        tiled=False,
    )
    manifest = {
        "size": size,
        "ratio": ratio,
        "bands": bands,
        "day": day,
        "transform": list(transform)[:6],
        "scenes": scenes,
        "coarse": {"path": str(coarse_path), "days": coarse_days, "shape": list(cshape)},
        "coarse_cloudy_share": float(np.mean(cloudy_share)),
        "fine_masked_share": [s["masked"] for s in scenes],
    }
    (workdir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


# ------------------------------------------------------------------------------ timed part


class Stages:
    """Thread-safe accumulators of seconds per stage; a per-thread phase ("plan" / "blocks")."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def phase(self) -> str:
        return getattr(self._local, "phase", "plan")

    @phase.setter
    def phase(self, value: str) -> None:
        self._local.phase = value

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self.seconds[name] += seconds
            self.calls[name] += 1

    def wrap(self, name: str, func: Callable) -> Callable:
        def timed(*a, **kw):
            start = time.perf_counter()
            try:
                return func(*a, **kw)
            finally:
                self.add(name, time.perf_counter() - start)

        return timed


class GeoTiffScene:
    """A fine scene read in windows from a float32 GeoTIFF and its uint8 valid mask (one rasterio
    dataset per thread and file, closed by :meth:`close_all`)."""

    _opened: list = []
    _opened_lock = threading.Lock()

    def __init__(self, day: float, data: str, mask: str, width: int, stages: Stages) -> None:
        self.day = day
        self.data_path, self.mask_path, self.width = data, mask, width
        self.stages = stages
        self._local = threading.local()

    def _dataset(self, path: str):
        import rasterio

        cache = self._local.__dict__.setdefault("datasets", {})
        if path not in cache:
            ds = rasterio.open(path)
            cache[path] = ds
            with self._opened_lock:
                self._opened.append(ds)
        return cache[path]

    def _window(self, rows: slice):
        from rasterio.windows import Window

        return Window(0, rows.start, self.width, rows.stop - rows.start)

    def _read(self, path: str, rows: slice, *band: int) -> np.ndarray:
        """A window of rows of `path` (all bands, or `band`), timed as this phase's reading."""
        start = time.perf_counter()
        out = self._dataset(path).read(*band, window=self._window(rows))
        self.stages.add(f"read_{self.stages.phase}", time.perf_counter() - start)
        return out

    def valid(self, rows: slice) -> np.ndarray:
        return self._read(self.mask_path, rows, 1).view(bool)

    def values(self, rows: slice) -> np.ndarray:
        return self._read(self.data_path, rows)

    @classmethod
    def close_all(cls) -> None:
        with cls._opened_lock:
            for ds in cls._opened:
                ds.close()
            cls._opened.clear()


def _instrument(stages: Stages) -> Callable[[], None]:
    """Wrap the module functions `fuse` calls with stage timers; returns the undo."""
    import lstfill.fusion.method as method

    names = {
        "plan_day": "plan",
        "coarse_at": "plan_coarse",
        "masked_share": "plan_masked_share",
        "cloud_distance": "plan_cloud_distance",
        "acquisition_weights": "plan_acquisition_weights",
    }
    saved = {n: getattr(method, n) for n in [*names, "fuse_block"]}
    for n, stage in names.items():
        setattr(method, n, stages.wrap(stage, saved[n]))
    block = saved["fuse_block"]

    def fuse_block(*a, **kw):
        stages.phase = "blocks"
        start = time.perf_counter()
        try:
            return block(*a, **kw)
        finally:
            stages.add("fuse_block", time.perf_counter() - start)

    method.fuse_block = fuse_block

    def undo() -> None:
        for n, f in saved.items():
            setattr(method, n, f)

    return undo


def _vm_hwm_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def timed(manifest: dict[str, Any], out_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The whole fusion of the day, reading to writing: seconds per stage and the COG's path."""
    import rasterio
    import rasterio.shutil
    from affine import Affine
    from rasterio.windows import Window

    from lstfill.fusion import method
    from lstfill.fusion.coarse import CoarseSeries
    from lstfill.fusion.method import EfastSettings
    from lstfill.io import cog_options

    stages = Stages()
    undo = _instrument(stages)
    size, bands = manifest["size"], manifest["bands"]
    settings = EfastSettings(ratio=manifest["ratio"])
    tmp_path, cog_path = out_dir / "fused_staging.tif", out_dir / "fused_cog.tif"
    count = bands + len(EXTRA)
    lock = threading.Lock()
    env = rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 2**20)
    try:
        with env:
            start = time.perf_counter()
            # coarse series
            t0 = time.perf_counter()
            with rasterio.open(manifest["coarse"]["path"]) as src:
                values = src.read()
            days = manifest["coarse"]["days"]
            coarse = CoarseSeries(
                np.array(days), values.reshape(len(days), bands, *values.shape[1:])
            )
            stages.add("read_coarse", time.perf_counter() - t0)
            scenes = [
                GeoTiffScene(s["day"], s["data"], s["mask"], size, stages)
                for s in manifest["scenes"]
            ]
            transform = Affine(*manifest["transform"])
            profile = _profile((count, size, size), "float32", transform, float("nan"), True)
            # band-interleaved: each band written is whole tiles of its own (pixel interleave
            # makes every band write a read-modify-write of the shared tiles)
            profile["interleave"] = "band"
            with rasterio.open(tmp_path, "w", **profile) as dst:
                for i, name in enumerate([*(f"band_{b}" for b in range(bands)), *EXTRA]):
                    dst.set_band_description(i + 1, name)

                def sink(rows: slice, arrays: dict[str, np.ndarray]) -> None:
                    t = time.perf_counter()
                    window = Window(0, rows.start, size, rows.stop - rows.start)
                    with lock:
                        waited = time.perf_counter()
                        dst.write(
                            arrays["fused"].astype(np.float32), range(1, bands + 1), window=window
                        )
                        for i, key in enumerate(EXTRA):
                            dst.write(arrays[key].astype(np.float32), bands + 1 + i, window=window)
                    end = time.perf_counter()
                    stages.add("write_blocks", end - waited)
                    stages.add("write_lock_wait", waited - t)

                t0 = time.perf_counter()
                info = method.fuse(
                    scenes,
                    coarse,
                    manifest["day"],
                    (size, size),
                    settings,
                    block_rows=args.block_rows or None,
                    threads=args.threads,
                    sink=sink,
                )
                stages.add("fuse_wall", time.perf_counter() - t0)
                t0 = time.perf_counter()
            stages.add("close_staging", time.perf_counter() - t0)
            GeoTiffScene.close_all()
            t0 = time.perf_counter()
            # the fusion product's options (lstfill.fusion.steps.predict), threads as the run's
            options = cog_options(np.float32, (size, size), "nearest", args.threads)
            options["OVERVIEWS"] = args.overviews.upper()
            if args.cog_compress != "deflate":
                options["COMPRESS"] = args.cog_compress.upper()
            rasterio.shutil.copy(str(tmp_path), str(cog_path), driver="COG", **options)
            stages.add("cog", time.perf_counter() - t0)
            total = time.perf_counter() - start
    finally:
        undo()
        GeoTiffScene.close_all()
    tmp_path.unlink(missing_ok=True)
    s = dict(stages.seconds)
    reading_blocks = s.get("read_blocks", 0.0)
    stage_table = {
        "read_coarse": s.get("read_coarse", 0.0),
        "plan_total": s.get("plan", 0.0),
        "plan_coarse": s.get("plan_coarse", 0.0),
        "plan_weights": s.get("plan_masked_share", 0.0)
        + s.get("plan_cloud_distance", 0.0)
        + s.get("plan_acquisition_weights", 0.0),
        "plan_read_masks": s.get("read_plan", 0.0),
        "blocks_read": reading_blocks,
        "blocks_mosaics": s.get("fuse_block", 0.0) - reading_blocks,
        "blocks_write": s.get("write_blocks", 0.0),
        "blocks_write_lock_wait": s.get("write_lock_wait", 0.0),
        "fuse_wall": s.get("fuse_wall", 0.0),
        "close_staging": s.get("close_staging", 0.0),
        "cog": s.get("cog", 0.0),
    }
    return {
        "seconds": total,
        "stages": stage_table,
        "raw_stages": s,
        "calls": dict(stages.calls),
        "cog": str(cog_path),
        "fused_days": info.fine_days,
        "dropped_days": info.dropped_days,
        "coarse_dates_used": info.coarse_dates,
    }


def _child(kind: str, manifest: dict, out_dir: str, args: argparse.Namespace, queue) -> None:
    try:
        if kind == "setup":
            queue.put(setup(Path(out_dir), args))
            return
        if kind == "tracemalloc":
            import tracemalloc

            tracemalloc.start()
            res = timed(manifest, Path(out_dir), args)
            res["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        elif kind == "profile":
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            res = timed(manifest, Path(out_dir), args)
            prof.disable()
            prof.dump_stats(str(args.profile))
            stats = pstats.Stats(prof).sort_stats("tottime")
            stats.print_stats(25)
        else:
            res = timed(manifest, Path(out_dir), args)
        res["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        res["vm_hwm_mb"] = _vm_hwm_mb()
        queue.put(res)
    except BaseException as exc:  # report it to the parent rather than hang
        queue.put({"error": f"{type(exc).__name__}: {exc}"})
        raise


def in_child(kind: str, manifest: dict, out_dir: Path, args: argparse.Namespace) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(kind, manifest, str(out_dir), args, queue))
    proc.start()
    res = queue.get()
    proc.join()
    if "error" in res:
        raise SystemExit(f"{kind} failed: {res['error']}")
    return res


# ------------------------------------------------------------------------------ report


def report(res: dict[str, Any], manifest: dict[str, Any], args: argparse.Namespace) -> dict:
    """The JSON written: seconds, peak_mb, stages, settings (and the reference / goal)."""
    cshape = manifest["coarse"]["shape"]
    return {
        "seconds": res["seconds"],
        "peak_mb": res.get("ru_maxrss_mb", math.nan),
        "peak": {
            "ru_maxrss_mb": res.get("ru_maxrss_mb", math.nan),
            "vm_hwm_mb": res.get("vm_hwm_mb", math.nan),
            "traced_peak_mb": res.get("traced_peak_mb", math.nan),
        },
        "stages": res["stages"],
        "stage_calls": res.get("calls", {}),
        "settings": {
            "size": args.size,
            "ratio": args.ratio,
            "coarse_shape": cshape,
            "coarse_dates": args.coarse_dates,
            "fine_scenes": args.fine_scenes,
            "bands": args.bands,
            "threads": args.threads,
            "block_rows": args.block_rows or None,
            "compress": args.compress,
            "cog_compress": args.cog_compress,
            "overviews": args.overviews,
            "gdal_cache_mb": GDAL_CACHE_MB,
            "fine_masked_share": manifest["fine_masked_share"],
            "coarse_cloudy_share": manifest["coarse_cloudy_share"],
            "fine_days_used": res.get("fused_days"),
            "fine_days_dropped": res.get("dropped_days"),
        },
        "reference": REFERENCE,
        "goal": GOAL,
    }


def print_table(out: dict[str, Any]) -> None:
    st = out["settings"]
    print(
        f"\nEFAST, one day of {st['size']} x {st['size']} fine px (ratio {st['ratio']}, coarse "
        f"{st['coarse_shape'][0]} x {st['coarse_shape'][1]}), {st['coarse_dates']} coarse dates, "
        f"{st['fine_scenes']} fine scenes, {st['bands']} band(s), {st['threads']} thread(s)"
    )
    print(f"{'stage':28s} {'seconds':>8s}")
    for name, secs in out["stages"].items():
        print(f"{name:28s} {secs:8.2f}")
    print(f"\n{'run':34s} {'seconds':>8s} {'peak MB':>8s}")
    print(f"{'lstfill EFAST (this run)':34s} {out['seconds']:8.2f} {out['peak_mb']:8.0f}")
    ref = out["reference"]
    print(f"{ref['name']:34s} {ref['seconds']:8.2f} {ref['peak_mb']:8.0f}")
    print(f"{'goal':34s} {out['goal']['seconds']:8.2f} {out['goal']['peak_mb']:8.0f}")
    peak = out["peak"]
    print(
        f"peak: ru_maxrss {peak['ru_maxrss_mb']:.0f} MB, VmHWM {peak['vm_hwm_mb']:.0f} MB"
        + (
            f", tracemalloc peak {peak['traced_peak_mb']:.0f} MB"
            if math.isfinite(peak["traced_peak_mb"])
            else ""
        )
    )
    print("(block stages are summed over threads; plan_* are parts of plan_total)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--size", type=int, default=5490, help="fine tile side in pixels")
    ap.add_argument("--ratio", type=int, default=15)
    ap.add_argument("--coarse-dates", type=int, default=60)
    ap.add_argument("--fine-scenes", type=int, default=8)
    ap.add_argument("--bands", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--block-rows", type=int, default=0, help="0: fuse's default")
    ap.add_argument("--workdir", type=Path, default=None, help="kept; default a temp folder")
    ap.add_argument("--compress", default="none", help="GTiff compression of the fine inputs")
    ap.add_argument("--cog-compress", default="deflate", help="COG compression (none, ...)")
    ap.add_argument(
        "--overviews", default="auto", choices=("auto", "none"), help="COG overviews (auto)"
    )
    ap.add_argument("--tracemalloc", action="store_true", help="also a traced run (slower)")
    ap.add_argument("--profile", type=Path, default=None, help="also a cProfile run, to here")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="fusion_speed_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        manifest = in_child("setup", {}, work, args)
        print(f"setup: {time.perf_counter() - t0:.1f} s in {work}", flush=True)
        res = in_child("timed", manifest, work, args)
        if args.tracemalloc:
            res["traced_peak_mb"] = in_child("tracemalloc", manifest, work, args)["traced_peak_mb"]
        if args.profile:
            prof = in_child("profile", manifest, work, args)
            print(f"profiled run: {prof['seconds']:.2f} s (profile in {args.profile})")
        out = report(res, manifest, args)
        print_table(out)
        if args.json:
            from lstfill.io import write_json

            args.json.parent.mkdir(parents=True, exist_ok=True)
            write_json(args.json, out)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
