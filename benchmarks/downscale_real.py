"""The downscaling job's 9x9 task on a real 1 km LST series with elevation (a datacube on any
projected grid), space and day split, the MLP next to predict-0 and the linear baseline.

    python benchmarks/downscale_real.py CUBE.nc --json OUT.json [--settings demo|schema]
        [--base linear|zero] [--day-run-gap N] [--seed N] [--max-days N] [--hour 10.5]
        [--threads N] [--device auto]

CUBE.nc holds ``lst(time, y, x)`` in K (NaN = gap), ``elevation(y, x)`` in m, pixel-centre
coordinates ``x`` / ``y`` and the CRS in ``spatial_ref`` (``crs_wkt``), e.g.
../shared/data/gapfill_modis/modis_mod11a1_madrid.nc (MOD11A1 day LST, Terra passes at about
10:30 local solar time, the --hour default). Pixel centres become lat/lon with pyproj.

Samples are built as the workflow builds them (:func:`lstfill.downscale.real.series_samples`,
one band), written as the workflow's sample file, and each split's MLP is trained and scored by
the workflow's own steps (:func:`lstfill.downscale.steps.train`, ``steps.evaluate``): the same
seeded splits, scaler, training loop and test samples for ``model_mlp``, ``baseline_zero``
(predict a deviation of 0) and ``baseline_linear`` (least squares on the same features, fitted
on the split's training samples). ``improvement_pct`` is the MSE reduction over predict-0.
By the schema default (``model.base: linear``) the MLP corrects that same least-squares fit and
keeps the fit alone when no epoch validates better (``training.<split>.linear_only``); the day
split sends whole runs of days at most ``split.day_run_gap`` (2) days apart to one split, so a
week of consecutive dates is never shared between training and test. The day split's
``reference_pixel_mean`` (not a workflow method) predicts each test pixel's mean deviation over
the training days: what memorising pixels alone scores.
Settings: ``demo`` takes downscale.model and .training of config/config.yaml (a slimmer MLP,
fast on a CPU), ``schema`` the schema defaults (the seed's 1024-512-256-128, 50 epochs);
everything else is the schema default, except that all days are used unless --max-days.
On the Madrid cube (165 697 samples) a run takes 2-3 minutes with ``demo`` and about 13 with
``schema`` on one CPU thread of a busy 2-core machine (``--threads 1``); README.md's Downscaling
section holds the numbers.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lstfill.config import validate_config  # noqa: E402
from lstfill.downscale import steps  # noqa: E402
from lstfill.downscale.dataset import feature_names, split_codes, write_samples  # noqa: E402
from lstfill.downscale.real import pixel_latlon, series_samples  # noqa: E402
from lstfill.io import write_json  # noqa: E402
from lstfill.ranges import check_range  # noqa: E402
from lstfill.splits import TEST, TRAIN  # noqa: E402
from lstfill.tables import method_table  # noqa: E402
from lstfill.training.checkpoint import load_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("demo", "schema")
METHOD_ORDER = ("model_mlp", "baseline_linear", "baseline_zero", "reference_pixel_mean")


def load_cube(path: str | Path) -> dict[str, Any]:
    """lst (T, H, W) K, elevation (H, W) m, per-pixel lat / lon (H, W) and the dates (T,); both
    checked against their physical range and units (lstfill.ranges): LST in degrees Celsius,
    say, is refused."""
    with xr.open_dataset(path, decode_coords="all") as ds:
        crs = ds["spatial_ref"].attrs.get("crs_wkt") or ds["spatial_ref"].attrs["spatial_ref"]
        lat, lon = pixel_latlon(ds["x"].values, ds["y"].values, crs)
        order = np.argsort(ds["time"].values)
        lst = ds["lst"].transpose("time", "y", "x").values[order].astype(np.float32)
        elevation = ds["elevation"].transpose("y", "x").values.astype(np.float32)
        return {
            "lst": check_range(lst, "lst", path, ds["lst"].attrs.get("units")),
            "elevation": check_range(
                elevation, "elevation", path, ds["elevation"].attrs.get("units")
            ),
            "lat": lat,
            "lon": lon,
            "dates": ds["time"].values[order],
        }


def downscale_config(
    settings: str = "demo", overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The validated `downscale` section: schema defaults, the demo's model and training when
    `settings` is "demo", then `overrides` (top-level keys of the section) on top."""
    raw: dict[str, Any] = {"regions": {"bench": {"source": "demo"}}}
    if settings == "demo":
        demo = yaml.safe_load((ROOT / "config/config.yaml").read_text())["downscale"]
        raw.update({k: copy.deepcopy(demo[k]) for k in ("model", "training") if k in demo})
    elif settings != "schema":
        raise ValueError(f"settings must be one of {SETTINGS}, got {settings!r}")
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(raw.get(key), Mapping):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = copy.deepcopy(value)
    return validate_config({"downscale": raw})["downscale"]


def pixel_mean_scores(
    y: np.ndarray, meta: Mapping[str, np.ndarray], codes: np.ndarray
) -> dict[str, Any] | None:
    """MSE, RMSE and n of predicting each test sample by its pixel's mean target over the
    training samples (0 for a pixel without one; `n_unseen` counts those test samples); None
    when no test pixel has a training sample (the space split)."""
    pixel = meta["row"].astype(np.int64) * (int(meta["col"].max()) + 1) + meta["col"]
    ids, inverse = np.unique(pixel, return_inverse=True)
    train, test = codes == TRAIN, codes == TEST
    n = np.bincount(inverse[train], minlength=len(ids))[inverse[test]]
    if not (n > 0).any():
        return None
    total = np.bincount(inverse[train], y[train].astype(np.float64), minlength=len(ids))
    pred = np.where(n > 0, total[inverse[test]] / np.maximum(n, 1), 0.0)
    mse = float(np.mean((pred - y[test].astype(np.float64)) ** 2))
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "n": int(test.sum()),
        "n_unseen": int((n == 0).sum()),
    }


def run(cube: Mapping[str, Any], cfg: Mapping[str, Any], workdir: str | Path) -> dict[str, Any]:
    """Samples, one MLP per split and the evaluation, as the workflow runs them in `workdir`."""
    work = Path(workdir)
    times: dict[str, float] = {}
    start = time.perf_counter()
    X, y, meta, params = series_samples(
        cube["lst"], cube["elevation"], cube["lat"], cube["lon"], cube["dates"], cfg
    )
    samples = write_samples(
        work / "samples.nc", X, y, meta, params, columns=feature_names(int(cfg["radius"]))
    )
    times["samples"] = time.perf_counter() - start
    models, training = {}, {}
    for kind in cfg["split"]["kinds"]:
        t0 = time.perf_counter()
        models[kind] = work / f"model_{kind}.pt"
        metrics = steps.train(
            samples, cfg, kind, models[kind], work / f"curve_{kind}.png", work / f"work_{kind}",
            work / "runs.csv", f"downscale_real_{kind}", progress=False,
        )  # fmt: skip
        keys = ("best_epoch", "epochs_run", "seconds_per_epoch", "n_train", "n_val", "n_test")
        training[kind] = {k: metrics[k] for k in keys if k in metrics}
        training[kind]["n_dropped"] = metrics.get("n_dropped", 0)
        linear_only = load_checkpoint(models[kind])["extra"].get("linear_only")
        if linear_only is not None:
            training[kind]["linear_only"] = bool(linear_only)
        times[f"train_{kind}"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluation = steps.evaluate(samples, models, cfg, work / "metrics.json", work / "eval.png")
    times["evaluate"] = time.perf_counter() - t0
    for kind, scores in evaluation["splits"].items():
        codes = split_codes(meta, params, cfg["split"], kind)
        reference = pixel_mean_scores(y, meta, codes)
        if reference is not None:
            scores["methods"]["reference_pixel_mean"] = reference
        zero = scores["methods"]["baseline_zero"]["mse"]
        for m in scores["methods"].values():
            m["improvement_pct"] = 100.0 * (1.0 - m["mse"] / zero) if zero > 0 else float("nan")
    times["total"] = sum(times.values())
    return {
        "samples": {
            "n": int(len(y)),
            "n_days": int(len(np.unique(meta["date"]))),
            "grid_shape": params["grid_shape"],
            "band": params["band_names"][0],
        },
        "settings": {k: cfg[k] for k in ("bands", "max_days", "radius", "split", "model")},
        "training_settings": cfg["training"],
        "splits": evaluation["splits"],
        "importance": evaluation["importance"],
        "training": training,
        "runtime_s": times,
    }


def table(result: Mapping[str, Any]) -> str:
    """One block per split: MSE, RMSE, n and improvement over predict-0 of each method."""
    out = []
    for kind, scores in result["splits"].items():
        out.append(
            f"\n{kind} split: MLP improvement {scores['improvement_pct']:.1f} % over predict-0"
        )
        rows = {}
        for name in (n for n in METHOD_ORDER if n in scores["methods"]):
            m = scores["methods"][name]
            cells = [
                f"{m['mse']:.4f}",
                f"{m['rmse']:.4f}",
                str(m["n"]),
                f"{m['improvement_pct']:.1f}",
            ]
            rows[name] = [f"{c:>10s}" for c in cells]
        out.append(method_table(rows, ["mse K2", "rmse K", "n", "gain %"], 20, 10))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("cube", type=Path)
    ap.add_argument("--json", type=Path, required=True, help="where the results go")
    ap.add_argument("--settings", choices=SETTINGS, default="demo")
    ap.add_argument(
        "--base", choices=("linear", "zero"), default=None, help="model.base (default: schema)"
    )
    ap.add_argument(
        "--day-run-gap", type=int, default=None, help="split.day_run_gap (default: schema)"
    )
    ap.add_argument("--seed", type=int, default=None, help="training.seed (default: schema)")
    ap.add_argument("--max-days", type=int, default=None, help="days used (default: all)")
    ap.add_argument("--hour", type=float, default=10.5, help="overpass local solar time")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads of PyTorch")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    args = ap.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    overrides: dict[str, Any] = {
        "bands": {"day": args.hour},
        "max_days": args.max_days,
        "training": {"device": args.device} | ({} if args.seed is None else {"seed": args.seed}),
    }
    if args.base is not None:
        overrides["model"] = {"base": args.base}
    if args.day_run_gap is not None:
        overrides["split"] = {"day_run_gap": args.day_run_gap}
    cfg = downscale_config(args.settings, overrides)
    cube = load_cube(args.cube)
    with tempfile.TemporaryDirectory() as work:
        result = run(cube, cfg, work)
    result["runtime_s"]["wall"] = time.perf_counter() - start
    result = {
        "cube": str(args.cube),
        "settings_name": args.settings,
        "threads": torch.get_num_threads(),
        **result,
    }
    write_json(args.json, result)
    print(table(result))
    print(f"\nrun time {result['runtime_s']['wall']:.1f} s ({result['samples']['n']} samples)")
    return result


if __name__ == "__main__":
    main()
