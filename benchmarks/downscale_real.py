"""The downscaling job's 9x9 task on a real 1 km LST series with elevation (a datacube on any
projected grid), space and day split, the MLP next to predict-0 and the linear baseline.

    python benchmarks/downscale_real.py CUBE.nc --json OUT.json [--settings demo|schema]
        [--max-days N] [--hour 10.5] [--device auto]

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
Settings: ``demo`` takes downscale.model and .training of config/config.yaml (a slimmer MLP,
fast on a CPU), ``schema`` the schema defaults (the seed's 1024-512-256-128, 50 epochs);
everything else is the schema default, except that all days are used unless --max-days.
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
import xarray as xr
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lstfill.config import validate_config  # noqa: E402
from lstfill.downscale import steps  # noqa: E402
from lstfill.downscale.dataset import feature_names, write_samples  # noqa: E402
from lstfill.downscale.real import pixel_latlon, series_samples  # noqa: E402
from lstfill.io import write_json  # noqa: E402
from lstfill.tables import method_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("demo", "schema")
METHOD_ORDER = ("model_mlp", "baseline_linear", "baseline_zero")


def load_cube(path: str | Path) -> dict[str, Any]:
    """lst (T, H, W) K, elevation (H, W) m, per-pixel lat / lon (H, W) and the dates (T,)."""
    with xr.open_dataset(path, decode_coords="all") as ds:
        crs = ds["spatial_ref"].attrs.get("crs_wkt") or ds["spatial_ref"].attrs["spatial_ref"]
        lat, lon = pixel_latlon(ds["x"].values, ds["y"].values, crs)
        order = np.argsort(ds["time"].values)
        return {
            "lst": ds["lst"].transpose("time", "y", "x").values[order].astype(np.float32),
            "elevation": ds["elevation"].transpose("y", "x").values.astype(np.float32),
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
        times[f"train_{kind}"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluation = steps.evaluate(samples, models, cfg, work / "metrics.json", work / "eval.png")
    times["evaluate"] = time.perf_counter() - t0
    for scores in evaluation["splits"].values():
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
        for name in METHOD_ORDER:
            m = scores["methods"][name]
            cells = [
                f"{m['mse']:.4f}",
                f"{m['rmse']:.4f}",
                str(m["n"]),
                f"{m['improvement_pct']:.1f}",
            ]
            rows[name] = [f"{c:>10s}" for c in cells]
        out.append(method_table(rows, ["mse K2", "rmse K", "n", "gain %"], 16, 10))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("cube", type=Path)
    ap.add_argument("--json", type=Path, required=True, help="where the results go")
    ap.add_argument("--settings", choices=SETTINGS, default="demo")
    ap.add_argument("--max-days", type=int, default=None, help="days used (default: all)")
    ap.add_argument("--hour", type=float, default=10.5, help="overpass local solar time")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    cfg = downscale_config(
        args.settings,
        {
            "bands": {"day": args.hour},
            "max_days": args.max_days,
            "training": {"device": args.device},
        },
    )
    cube = load_cube(args.cube)
    with tempfile.TemporaryDirectory() as work:
        result = run(cube, cfg, work)
    result["runtime_s"]["wall"] = time.perf_counter() - start
    result = {"cube": str(args.cube), "settings_name": args.settings, **result}
    write_json(args.json, result)
    print(table(result))
    print(f"\nrun time {result['runtime_s']['wall']:.1f} s ({result['samples']['n']} samples)")
    return result


if __name__ == "__main__":
    main()
