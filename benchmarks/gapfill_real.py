"""Gap-fill benchmark on a real LST time series with artificial gaps from real clouds.

    python benchmarks/gapfill_real.py CUBE.nc --json OUT.json [--max-pairs 200] [--seed 0]
        [--folds 4] [--quick] [--residual-correction smooth|offset|none] [--methods ...]

Protocol (lstfill.gapfill.evaluate): every acquisition >= 99 % clear is a target, every one
20-90 % clear a donor of its cloud mask; for each (target, donor) pair the target's pixels under
the donor's gaps are hidden and every method fills them from the rest of the series.

Cross-validation in time: the targets are split into `--folds` contiguous groups. For a fold, the
learned methods train on every acquisition whose calendar day is not a target day of the fold; a
contiguous run of 12 % of those dates (seeded position) is held out for early stopping. Their LST
history (the `lst_pattern` feature, the context model's temporal neighbours) during training is
read from those training acquisitions only. At prediction a method receives the whole series with
the target's hidden pixels blanked: `baseline_temporal` and `model_context` read every other
acquisition (the protocol allows any date but the target), `model_patch_cnn` and `baseline_hgb` the
pattern of their training acquisitions, fixed at fit. No method sees a target's hidden pixels:
not as input, not as a training target, not in normalisation statistics.

Every method gets the same residual correction on the target's visible pixels
(`--residual-correction`, default "smooth": on Madrid it gives the baselines a lower median RMSE
than "offset" or "none"), as in the workflow's evaluation. It is applied to each method's output:
`model_patch_cnn` (inside `CnnFiller.fill`), the three baselines, and `model_context`, whose product
keeps the observations at visible pixels so that the correction leaves it unchanged (the network
has already read those pixels). For transparency the correction applied to the context network's
raw output at every pixel is reported too, under `extra_methods` (`model_context_raw_corrected`),
and so is an ensemble idea that was tried (`ensemble_context_climatology`, the per-pixel mean of
`model_context` and `baseline_climatology_anomaly`), so that what did not help stays on record.

Runtime: about 15 minutes on 2 CPU cores for the Madrid cube (28 dates, 112 pairs, 4 folds).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lstfill.gapfill.baselines import (  # noqa: E402
    HGBBaseline,
    fill_mean_lapse,
    fill_temporal,
    fill_with_correction,
)
from lstfill.gapfill.climatology import ClimatologyAnomaly  # noqa: E402
from lstfill.gapfill.evaluate import Pair, combine_folds, evaluate_pairs, select_pairs  # noqa: E402
from lstfill.gapfill.features import FeatureSet, select_available  # noqa: E402
from lstfill.gapfill.inputs import FillResult, LstSeries, load_series  # noqa: E402
from lstfill.gapfill.method.context import ContextFiller  # noqa: E402
from lstfill.tables import method_table  # noqa: E402

try:
    from lstfill.gapfill.method.cnn import CnnFiller  # noqa: E402
except ImportError as exc:  # pragma: no cover - depends on the checkout
    CnnFiller = None  # type: ignore[assignment,misc]
    _CNN_IMPORT_ERROR: str | None = str(exc)
else:
    _CNN_IMPORT_ERROR = None

Filler = Callable[[LstSeries, int], FillResult]

DEFAULT_FEATURES = FeatureSet(
    numeric=(
        "elevation",
        "slope",
        "aspect",
        "doy_sin",
        "doy_cos",
        "tod_sin",
        "tod_cos",
        "lst_pattern",
    ),
    categorical=("biome", "landcover", "land_cover", "water"),
)
METHODS = (
    "model_patch_cnn",
    "model_context",
    "baseline_climatology_anomaly",
    "baseline_mean_lapse",
    "baseline_temporal",
    "baseline_hgb",
)
VAL_SHARE = 0.12
# The context model's raw output at every pixel with the residual correction on top, reported
# beside the methods: the correction re-uses visible pixels the model has already read.
RAW_CORRECTED = "model_context_raw_corrected"
ENSEMBLE = "ensemble_context_climatology"
DIST_EDGES_M = (0.0, 2000.0, 5000.0, 10000.0, 20000.0, math.inf)
SIZE_EDGES_PX = (0.0, 10.0, 100.0, 1000.0, math.inf)

CONTEXT_HYPER: dict[str, Any] = {
    "base": 16,
    "depth": 3,
    "samples_per_epoch": 256,
    "val_samples": 8,
    "training": {"epochs": 30},
}
CONTEXT_QUICK: dict[str, Any] = {
    "base": 8,
    "depth": 2,
    "samples_per_epoch": 64,
    "training": {"epochs": 4},
}
# Kustura's architecture as in cnn.py; fewer patches, epochs and no MC-dropout passes so that
# four folds fit the time budget on 2 CPU cores (the benchmark scores the fill, not intervals).
CNN_HYPER: dict[str, Any] = {
    "max_per_acquisition": 500,
    "mc_passes": 0,
    "train": {"epochs": 8, "batch_size": 256, "patience": 3},
}
CNN_QUICK: dict[str, Any] = {
    "filters": (16, 16, 32, 32),
    "dense": 32,
    "max_per_acquisition": 300,
    "mc_passes": 2,
    "train": {"epochs": 2, "batch_size": 256},
}


def _days(series: LstSeries) -> np.ndarray:
    return series.times.astype("datetime64[D]")


def fold_split(
    series: LstSeries, fold_targets: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) acquisition indices of a fold: every acquisition not on a target day of the
    fold; a seeded contiguous run of VAL_SHARE of them (with some clear scene) validates."""
    days = _days(series)
    pool = np.flatnonzero(~np.isin(days, days[fold_targets]))
    n_val = max(1, int(round(VAL_SHARE * len(pool))))
    vf = series.valid_fraction()
    starts = [s for s in range(len(pool) - n_val + 1) if vf[pool[s : s + n_val]].max() >= 0.5]
    if not starts:
        starts = list(range(len(pool) - n_val + 1))
    start = starts[int(np.random.default_rng(seed).integers(len(starts)))]
    val = pool[start : start + n_val]
    return np.setdiff1d(pool, val), val


class ContextMethods:
    """The context model's product (`fill`) and its raw output at every pixel (`raw`, visible
    ones too), sharing one prediction per (series, target)."""

    def __init__(self, filler: ContextFiller) -> None:
        self.filler = filler
        self._last: tuple[LstSeries, int, np.ndarray, np.ndarray] | None = None

    def _predict(self, series: LstSeries, t: int) -> tuple[np.ndarray, np.ndarray]:
        if self._last is None or self._last[0] is not series or self._last[1] != t:
            pred, inputs = self.filler.predict(series, t)
            self._last = (series, t, pred, inputs.visible)
        return self._last[2], self._last[3]

    def fill(self, series: LstSeries, t: int) -> FillResult:
        pred, visible = self._predict(series, t)
        return self.filler.finish(series, t, pred, visible)

    def raw(self, series: LstSeries, t: int) -> FillResult:
        pred, visible = self._predict(series, t)
        return FillResult(pred, self.filler.halfwidth90(visible, series.land))


def mean_filler(a: Filler, b: Filler) -> Filler:
    """The per-pixel mean of two fillers' products (no interval)."""

    def mean(series: LstSeries, t: int) -> FillResult:
        return FillResult(0.5 * (a(series, t).lst + b(series, t).lst))

    return mean


def run_fold(
    series: LstSeries,
    pairs: list[Pair],
    fold_targets: np.ndarray,
    features: FeatureSet,
    methods: list[str],
    args: argparse.Namespace,
    fold: int,
    workroot: Path,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train the learned methods for one fold and evaluate every method on its pairs."""
    train, val = fold_split(series, fold_targets, args.seed + fold)
    allowed = np.zeros(len(series.times), dtype=bool)
    allowed[train] = True
    allowed[val] = True
    mode = args.residual_correction
    fillers: dict[str, Filler] = {}
    info: dict[str, Any] = {
        "targets": [series.ids[t] for t in fold_targets],
        "train": [series.ids[i] for i in train],
        "val": [series.ids[i] for i in val],
        "seconds": {},
    }
    for name in methods:
        start = time.perf_counter()
        if name == "model_patch_cnn":
            if CnnFiller is None:
                continue
            hyper = dict(CNN_QUICK if args.quick else CNN_HYPER)
            cnn = CnnFiller(features, residual_mode=mode, seed=args.seed, **hyper)
            samples = cnn.build_samples(series, train, val, allowed)
            res = cnn.fit((samples, series, val), workroot / f"cnn_{fold}", progress=False)
            info["cnn_best_epoch"] = res.best_epoch
            fillers[name] = cnn.fill
        elif name == "model_context":
            hyper = dict(CONTEXT_QUICK if args.quick else CONTEXT_HYPER)
            training = {**hyper.pop("training"), "seed": args.seed, "device": "cpu"}
            ctx = ContextFiller(features, training=training, **hyper)
            data = (series, train, val, allowed)
            res = ctx.fit(data, workroot / f"context_{fold}", progress=False)
            info["context_best_epoch"] = res.best_epoch
            info["context_val_loss"] = res.best_val_loss
            both = ContextMethods(ctx)
            fillers[name] = fill_with_correction(both.fill, mode)
            fillers[RAW_CORRECTED] = fill_with_correction(both.raw, mode)
        elif name == "baseline_climatology_anomaly":
            clim = ClimatologyAnomaly(seed=args.seed).fit(series, allowed)
            info["climatology"] = clim.tuning
            fillers[name] = fill_with_correction(clim.fill, mode)
        elif name == "baseline_mean_lapse":
            fillers[name] = fill_with_correction(fill_mean_lapse, mode)
        elif name == "baseline_temporal":
            fillers[name] = fill_with_correction(fill_temporal, mode)
        elif name == "baseline_hgb":
            hgb = HGBBaseline(features, seed=args.seed).fit(series, train, allowed)
            fillers[name] = fill_with_correction(hgb.fill, mode)
        info["seconds"][name] = time.perf_counter() - start
    if {"model_context", "baseline_climatology_anomaly"} <= set(fillers):
        fillers[ENSEMBLE] = mean_filler(
            fillers["model_context"], fillers["baseline_climatology_anomaly"]
        )
    fold_pairs = [p for p in pairs if p.target in set(fold_targets.tolist())]
    out = evaluate_pairs(
        series,
        fold_pairs,
        fillers,
        dist_edges_m=DIST_EDGES_M,
        size_edges_px=SIZE_EDGES_PX,
        progress=False,
    )
    return out, info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cube", type=Path)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--max-pairs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="tiny models, a smoke test")
    parser.add_argument(
        "--residual-correction", choices=("smooth", "offset", "none"), default="smooth"
    )
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    series = load_series(args.cube)
    features = select_available(series, DEFAULT_FEATURES)
    methods = list(args.methods)
    if "model_patch_cnn" in methods and CnnFiller is None:
        print(
            f"note: model_patch_cnn skipped (gapfill.method.cnn unavailable: {_CNN_IMPORT_ERROR})"
        )
        methods.remove("model_patch_cnn")
    pairs = select_pairs(series.valid_fraction(), max_pairs=args.max_pairs, seed=args.seed)
    targets = np.array(sorted({p.target for p in pairs}), dtype=int)
    if targets.size == 0:
        print("no (target, donor) pair in this series")
        return 1
    folds = [f for f in np.array_split(targets, min(args.folds, targets.size)) if f.size]
    print(
        f"{series.source}: {len(series.times)} acquisitions, {len(pairs)} pairs, "
        f"{len(folds)} folds; features {features.to_dict()}"
    )
    fold_results, fold_info = [], []
    with tempfile.TemporaryDirectory(prefix="gapfill_real_") as tmp:
        for k, fold_targets in enumerate(folds):
            t0 = time.perf_counter()
            res, info = run_fold(series, pairs, fold_targets, features, methods, args, k, Path(tmp))
            info["seconds_total"] = time.perf_counter() - t0
            fold_results.append(res)
            fold_info.append(info)
            secs = info["seconds_total"]
            print(f"fold {k + 1}/{len(folds)}: {res['n_pairs']} pairs, {secs:.0f} s", flush=True)
    summary = combine_folds(fold_results, methods)
    extra = combine_folds(fold_results, [RAW_CORRECTED, ENSEMBLE])
    n_pairs = sum(r["n_pairs"] for r in fold_results)
    elapsed = time.perf_counter() - start

    keys = ("rmse_mean", "rmse_median", "mae_mean", "bias_mean")
    rows = {n: [*(f"{m[k]:9.3f}" for k in keys), f"{m['n_pairs']:9d}"] for n, m in summary.items()}
    columns = ("rmse_mean", "rmse_med", "mae_mean", "bias_mean", "n_pairs")
    print("\n" + method_table(rows, columns, name_width=22, width=9))
    print(f"total {elapsed:.0f} s")
    for name, m in extra.items():
        print(f"({name}: rmse_mean {m['rmse_mean']:.3f}, rmse_median {m['rmse_median']:.3f})")
    out = {
        "n_pairs": n_pairs,
        "methods": summary,
        "extra_methods": extra,
        "protocol": {
            "description": fold_results[0]["protocol"],
            "targets_min_valid": 0.99,
            "donors_valid": [0.2, 0.9],
            "folds": len(folds),
            "validation_share": VAL_SHARE,
            "residual_correction": args.residual_correction,
            "history": "training acquisitions during fit; see the script's docstring for "
            "prediction",
            "fold_info": fold_info,
        },
        "config": {
            "cube": str(args.cube),
            "seed": args.seed,
            "max_pairs": args.max_pairs,
            "quick": args.quick,
            "threads": args.threads,
            "features": features.to_dict(),
            "context": CONTEXT_QUICK if args.quick else CONTEXT_HYPER,
            "cnn": CNN_QUICK if args.quick else CNN_HYPER,
            "seconds": elapsed,
        },
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
