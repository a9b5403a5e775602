"""One function per gap-fill rule (`gapfill_<step>`): dataset, train, select, predict, evaluate.

Every method of `gapfill.methods` is trained (`train`, one checkpoint each); `select` scores them
on artificial gaps of the validation days and names the product's method (`gapfill.method`, or
the lowest validation RMSE for `auto`); `predict_selected` fills each acquisition with it;
`evaluate` scores every method and every baseline on the same hidden pixels of the test days.
Each step reads files and the `gapfill` config section and writes its outputs atomically; the
Snakemake rules (rules/gapfill.smk), and through them the `lstfill gapfill <step>` commands,
call these functions. The module stays whole (about 620 lines): the steps share the split, index,
loading and product-tag helpers, and one file per rule would import each other in a circle.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from lstfill.device import job_device
from lstfill.errors import InputError
from lstfill.gapfill.dataset import read_patches, split_patches, write_patches
from lstfill.gapfill.evaluate import evaluate_pairs, no_clear_targets, select_pairs
from lstfill.gapfill.features import FeatureSet, check_features
from lstfill.gapfill.inputs import FillResult, LstSeries, load_cubes, load_series
from lstfill.gapfill.method import METHODS, method_key
from lstfill.gapfill.method.cnn import CnnFiller
from lstfill.gapfill.method.context import ContextFiller
from lstfill.io import FLAG_OVERVIEWS, SMOOTH_OVERVIEWS, atomic_output, write_cog, write_json
from lstfill.method import load_method, train_method
from lstfill.splits import TEST, split_blocks, split_dates

log = logging.getLogger(__name__)
DEVICE_KEY = "gapfill.training.device"
Filler = Callable[[LstSeries, int], FillResult]


def features_from_config(cfg: dict[str, Any]) -> FeatureSet:
    f = cfg["features"]
    return FeatureSet(tuple(f["numeric"]), tuple(f["categorical"]))


def cnn_from_config(cfg: dict[str, Any]) -> CnnFiller:
    """An untrained patch CNN filler with the config's architecture and training settings."""
    return CnnFiller(
        features_from_config(cfg),
        patch=cfg["patch_size"],
        filters=cfg["model"]["filters"],
        dense=cfg["model"]["dense"],
        dropout=cfg["model"]["dropout"],
        train=cfg["training"],
        max_per_acquisition=cfg["max_patches_per_acquisition"],
        mc_passes=cfg["mc_passes"],
        residual_mode=cfg["residual_correction"]["mode"],
        sigma_px=cfg["residual_correction"]["sigma_px"],
        chunk_rows=cfg["chunk_rows"],
        seed=cfg["training"]["seed"],
    )


def context_from_config(cfg: dict[str, Any]) -> ContextFiller:
    """An untrained context U-Net with the config's settings, on the job's device."""
    c = dict(cfg["context"])
    training = {**c.pop("training"), "device": cfg["training"]["device"]}
    return ContextFiller(features_from_config(cfg), training=training, **c)


def region_split(series: LstSeries, split_cfg: dict[str, Any]) -> dict[str, Any]:
    """Date split (by calendar day) and block map of a region, as JSON-ready acquisition ids."""
    dates = split_dates(
        series.times,
        series.valid_fraction(),
        n_test=split_cfg["test_days"],
        n_val=split_cfg["val_days"],
        min_valid_test=split_cfg["min_valid_test"],
        seed=split_cfg["seed"],
    )
    return {
        "train": [series.ids[i] for i in dates.train],
        "val": [series.ids[i] for i in dates.val],
        "test": [series.ids[i] for i in dates.test],
        "block_size": split_cfg["block_size"],
        "val_block_fraction": split_cfg["val_block_fraction"],
        "test_block_fraction": split_cfg["test_block_fraction"],
        "seed": split_cfg["seed"],
    }


def block_map(series: LstSeries, split: dict[str, Any]) -> np.ndarray:
    return split_blocks(
        series.grid.shape,
        split["block_size"],
        val_fraction=split["val_block_fraction"],
        test_fraction=split["test_block_fraction"],
        seed=split["seed"],
    )


def _index(series: LstSeries, ids: Sequence[str], path: str | Path) -> np.ndarray:
    pos = {a: i for i, a in enumerate(series.ids)}
    missing = [a for a in ids if a not in pos]
    if missing:
        raise InputError(path, f"acquisitions {missing} of the split are not among the cubes")
    return np.array([pos[a] for a in ids], dtype=int)


def _allowed(series: LstSeries, index: np.ndarray) -> np.ndarray:
    out = np.zeros(len(series.times), dtype=bool)
    out[index] = True
    return out


def dataset(
    cube_paths: Sequence[str | Path],
    cfg: dict[str, Any],
    dataset_out: str | Path,
    split_out: str | Path,
) -> None:
    """Split the region's acquisitions, sample training/validation patches, fit normalisation.

    Writes the patch NetCDF (with the normalisation statistics, the block map and the training
    split's LST pattern) and the split as JSON (which acquisition is train, val or test).
    """
    series = load_cubes(cube_paths)
    features = features_from_config(cfg)
    check_features(series, features)
    split = region_split(series, cfg["split"])
    train = _index(series, split["train"], split_out)
    val = _index(series, split["val"], split_out)
    blocks = block_map(series, split)
    samples = split_patches(
        series,
        train,
        val,
        _allowed(series, train),
        features,
        size=cfg["patch_size"],
        max_per_acquisition=cfg["max_patches_per_acquisition"],
        rng=np.random.default_rng(cfg["split"]["seed"]),
        blocks=blocks,
    )
    log.info(
        "%d training patches from %d acquisitions, %d validation patches from %d",
        len(samples["train"]),
        len(train),
        len(samples["val"]),
        len(val),
    )
    night, day = samples["patterns"]
    maps = {"pattern_night": night, "pattern_day": day, "block_split": blocks.astype(np.int8)}
    attrs = {"patch_size": cfg["patch_size"], "acquisitions": series.ids, "split": split}
    splits = {"train": samples["train"], "val": samples["val"]}
    write_patches(dataset_out, splits, features, samples["norm"], attrs, maps)
    with atomic_output(split_out) as tmp:
        tmp.write_text(json.dumps(split, indent=2))


def train(
    dataset: str | Path | None,
    cube_paths: Sequence[str | Path],
    split_path: str | Path,
    cfg: dict[str, Any],
    checkpoint_out: str | Path,
    curve_out: str | Path,
    workdir: str | Path,
    progress: bool = True,
    method: str = "patch_cnn",
) -> CnnFiller | ContextFiller:
    """Train `method` (a key of METHODS; resuming from `workdir`), calibrate its intervals on
    the validation days, and write the checkpoint and the training curve. The patch CNN learns
    from the patch dataset, the context U-Net from the cubes of the split's days."""
    job_device(cfg["training"]["device"], DEVICE_KEY)
    if method == "context":
        return train_context(
            cube_paths, split_path, cfg, checkpoint_out, curve_out, workdir, progress
        )
    if method != "patch_cnn":
        raise InputError("gapfill.methods", f"unknown gap-fill method {method!r}")
    if dataset is None:
        raise InputError("gapfill_train", "the patch CNN trains on the patch dataset; give it")
    splits, features, norm, maps, attrs = read_patches(dataset)
    filler = cnn_from_config(cfg)
    if int(json.loads(str(attrs["patch_size"]))) != cfg["patch_size"]:
        raise InputError(
            dataset,
            f"dataset patch size {attrs['patch_size']} differs from the config's "
            f"{cfg['patch_size']}; rebuild it",
        )
    if filler.features != features:
        raise InputError(
            dataset, f"dataset features {features.to_dict()} differ from the config's; rebuild it"
        )
    samples = {
        "train": splits["train"],
        "val": splits["val"],
        "norm": norm,
        "patterns": (maps["pattern_night"], maps["pattern_day"]),
    }
    series = load_cubes(cube_paths)
    split = json.loads(Path(split_path).read_text())
    fingerprint = {
        "dataset": norm.to_dict(),
        "features": features.to_dict(),
        "training": cfg["training"],
        **filler.hyper,
    }
    train_method(
        filler,
        (samples, series, _index(series, split["val"], split_path)),
        fingerprint,
        workdir,
        checkpoint_out,
        curve_out,
        title="gap-fill patch CNN",
        inputs=[dataset, *cube_paths, split_path],
        extra={"split": split},
        progress=progress,
    )
    return filler


def train_context(
    cube_paths: Sequence[str | Path],
    split_path: str | Path,
    cfg: dict[str, Any],
    checkpoint_out: str | Path,
    curve_out: str | Path,
    workdir: str | Path,
    progress: bool = True,
) -> ContextFiller:
    """Train the context U-Net on artificial gaps of the training days (their LST and the
    validation days' as its history), early-stopped and calibrated on the validation days. The
    test blocks of the spatial split are never a loss target."""
    series = load_cubes(cube_paths)
    split = json.loads(Path(split_path).read_text())
    filler = context_from_config(cfg)
    check_features(series, filler.features)
    train = _index(series, split["train"], split_path)
    val = _index(series, split["val"], split_path)
    allowed = _allowed(series, np.concatenate([train, val]))
    unscored = block_map(series, split) == TEST
    fingerprint = {
        "method": "context",
        "split": split,
        "acquisitions": series.ids,
        "features": filler.features.to_dict(),
        "context": filler.cfg.to_dict(),
    }
    train_method(
        filler,
        (series, train, val, allowed, unscored),
        fingerprint,
        workdir,
        checkpoint_out,
        curve_out,
        title="gap-fill context U-Net",
        inputs=[*cube_paths, split_path],
        extra={"split": split},
        progress=progress,
    )
    return filler


def load_filler(
    checkpoint: str | Path, device: str | torch.device = "auto"
) -> CnnFiller | ContextFiller:
    """The trained gap-fill method of a checkpoint (either kind), its network on `device`."""
    return load_method(checkpoint, METHODS, device)  # type: ignore[return-value]


def product_filler(filler: CnnFiller | ContextFiller, cfg: dict[str, Any]) -> Filler:
    """A trained method as it is scored: with the residual correction every method gets (the
    CNN applies its own inside `fill`; the context model's product keeps the observations at
    visible pixels, so the correction leaves it as it is)."""
    if isinstance(filler, CnnFiller):
        return filler.fill
    from lstfill.gapfill.baselines import fill_with_correction  # scikit-learn: seconds

    mode = cfg["residual_correction"]["mode"]
    return fill_with_correction(filler.fill, mode, cfg["residual_correction"]["sigma_px"])


def _pairs(series: LstSeries, index: np.ndarray, ev: dict[str, Any], max_pairs: int) -> list[Any]:
    """(target, donor) pairs with targets among the acquisitions `index` (any clear share but
    none: an acquisition with no clear pixel is never a target, see `_no_clear_targets`)."""
    return select_pairs(
        series.valid_fraction(),
        target_min=0.0,
        donor_min=ev["donor_min_valid"],
        donor_max=ev["donor_max_valid"],
        candidates=_allowed(series, index),
        max_pairs=max_pairs,
        seed=ev["seed"],
    )


def _no_clear_targets(series: LstSeries, index: np.ndarray, days: str) -> list[str]:
    """Ids of the acquisitions `index` (the `days`: validation or test) left out as targets
    because they have no clear pixel, each logged at WARNING."""
    ids = [
        series.ids[i] for i in no_clear_targets(series.valid_fraction(), _allowed(series, index))
    ]
    for acq in ids:
        log.warning("%s day %s has no clear pixel: it is no evaluation target", days, acq)
    return ids


def select(
    cube_paths: Sequence[str | Path],
    checkpoints: Sequence[str | Path],
    split_path: str | Path,
    cfg: dict[str, Any],
    selection_out: str | Path,
    threads: int = 1,
) -> dict[str, Any]:
    """Score every trained method on artificial gaps of the validation days (the evaluation
    protocol, on days no method trained on) and write which one makes the products: the
    configured `gapfill.method`, or for `auto` the one with the lowest RMSE. Scores at most
    `selection_pairs` pairs, with the evaluation's donor range and seed (not its max_pairs, so
    that a change to the test-day evaluation re-selects nothing)."""
    device = job_device(cfg["training"]["device"], DEVICE_KEY)
    series = load_cubes(cube_paths)
    split = json.loads(Path(split_path).read_text())
    fillers = {}
    for path in checkpoints:
        filler = load_filler(path, device)
        check_features(series, filler.features)
        fillers[method_key(filler)] = (filler, Path(path).name)
    val = _index(series, split["val"], split_path)
    _no_clear_targets(series, val, "validation")
    pairs = _pairs(series, val, cfg["evaluation"], cfg["selection_pairs"])
    validation: dict[str, Any] = {}
    if pairs:
        methods = {key: product_filler(f, cfg) for key, (f, _) in fillers.items()}
        with threadpool_limits(threads):
            result = evaluate_pairs(
                series,
                pairs,
                methods,
                dist_edges_m=(0.0, math.inf),
                size_edges_px=(0.0, math.inf),
                progress=False,
            )
        validation = {
            key: {
                "rmse": m["overall"]["rmse"],
                "rmse_median": m["rmse_median"],
                "coverage_90": m.get("coverage_90"),
                "n_pairs": m["n_pairs"],
            }
            for key, m in result["methods"].items()
        }
    if cfg["method"] != "auto":
        chosen, rule = cfg["method"], "gapfill.method"
    elif validation:
        chosen = min(validation, key=lambda k: validation[k]["rmse"])
        rule = "lowest RMSE on artificial gaps of the validation days (gapfill.method: auto)"
    else:
        chosen = next(iter(fillers))
        rule = "no validation pair to score on: the first of gapfill.methods"
        log.warning("%s: %s", split_path, rule)
    if chosen not in fillers:
        raise InputError("gapfill.method", f"{chosen!r} was not trained (gapfill.methods)")
    log.info("gap-fill products from %s (%s)", chosen, rule)
    out = {
        "method": chosen,
        "checkpoint": fillers[chosen][1],
        "rule": rule,
        "validation": validation,
        "validation_pairs": len(pairs),
    }
    write_json(selection_out, out)
    return out


def predict_selected(
    cube: str | Path,
    checkpoints: Sequence[str | Path],
    selection: str | Path,
    product_out: str | Path,
    cube_paths: Sequence[str | Path] = (),
    chunk_rows: int | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """`predict` with the checkpoint that `select` named."""
    chosen = json.loads(Path(selection).read_text())["checkpoint"]
    by_name = {Path(p).name: p for p in checkpoints}
    if chosen not in by_name:
        raise InputError(selection, f"names checkpoint {chosen!r}, not among {sorted(by_name)}")
    return predict(cube, by_name[chosen], product_out, chunk_rows, device, cube_paths)


def predict(
    cube: str | Path,
    checkpoint: str | Path,
    product_out: str | Path,
    chunk_rows: int | None = None,
    device: str = "auto",
    cube_paths: Sequence[str | Path] = (),
) -> dict[str, Any]:
    """Fill the gaps of one acquisition's cube with a trained method and write the product COG.

    Bands: `lst` (observed where clear, the model where not), `filled` (1 where the model
    filled, 0 where observed), `uncertainty_90` (half-width in K of the 90 % interval; for
    observed pixels 1.645 × the ECOSTRESS LST_err when the cube has it, else 0). Water and
    pixels outside the data are nodata (NaN). The tags say how much was observed
    (`clear_tags`); an acquisition with no clear pixel is filled by the model alone, with a
    warning and a `no_clear_pixel` tag. The network runs on `device` (the job's
    gapfill.training.device). The context model reads the region's other acquisitions too
    (`cube_paths`, which must include `cube`): their LST gives its temporal neighbours and the
    persistent pattern.
    """
    filler = load_filler(checkpoint, job_device(device, DEVICE_KEY))
    series, t = _target_series(cube, filler, cube_paths)
    if chunk_rows and isinstance(filler, CnnFiller):
        filler.hyper["chunk_rows"] = chunk_rows
    check_features(series, filler.features)
    visible = series.valid[t]
    land = series.land
    clear = clear_tags(visible, land, cube)
    if "no_clear_pixel" in clear:
        log.warning(
            "%s: %s; the product is the model's prediction alone", cube, clear["no_clear_pixel"]
        )
    result = filler.fill(series, t)
    lst = np.where(visible, series.lst[t], result.lst)
    if not np.isfinite(lst[land]).all():
        raise InputError(cube, "prediction left NaN on land pixels (non-finite features?)")
    filled = np.where(land, (~visible).astype(np.float32), np.nan)
    half = result.halfwidth90 if result.halfwidth90 is not None else np.zeros_like(lst)
    err = _lst_err(cube)
    observed_half = 1.645 * err if err is not None else np.zeros_like(lst)
    half = np.where(visible, np.nan_to_num(observed_half), half)
    lst = np.where(land, lst, np.nan)
    half = np.where(land, half, np.nan)
    n_filled = int(np.nansum(filled))
    write_cog(
        product_out,
        np.stack([lst, filled, half]).astype(np.float32),
        series.grid.transform,
        series.grid.crs,
        nodata=float("nan"),
        tags={
            "acquisition": series.ids[t],
            "method": method_key(filler),
            "model": MODEL_TITLES[method_key(filler)],
            "checkpoint": Path(checkpoint).name,
            "filled_pixels": n_filled,
            **clear,
        },
        band_names=["lst", "filled", "uncertainty_90"],
        band_resampling=[SMOOTH_OVERVIEWS, FLAG_OVERVIEWS, SMOOTH_OVERVIEWS],  # 0/1 stays 0/1
        band_tags=[
            {"units": "K", "long_name": "gap-filled land surface temperature"},
            {"units": "1", "long_name": "1 where the model filled the pixel, 0 where observed"},
            {"units": "K", "long_name": "half-width of the 90 % prediction interval"},
        ],
    )
    log.info("%s: filled %d of %d land pixels", series.ids[t], n_filled, int(land.sum()))
    return {"filled": n_filled, "land": int(land.sum())}


MODEL_TITLES = {
    "patch_cnn": "gap-fill patch CNN (Kustura et al. 2025), smooth residual correction",
    "context": "gap-fill context U-Net reading the acquisition's visible LST",
}


def _target_series(
    cube: str | Path, filler: CnnFiller | ContextFiller, cube_paths: Sequence[str | Path]
) -> tuple[LstSeries, int]:
    """The series a method fills acquisition `cube` from, and the cube's index in it: the cube
    alone for the patch CNN (its history is in the checkpoint), the region's cubes for the
    context model."""
    target = load_series(cube)
    if isinstance(filler, CnnFiller):
        return target, 0
    if not cube_paths:
        raise InputError(cube, "the context model needs the region's other cubes to fill it")
    series = load_cubes(cube_paths)
    return series, int(_index(series, target.ids, cube)[0])


def clear_tags(visible: np.ndarray, land: np.ndarray, cube: str | Path) -> dict[str, Any]:
    """The product tags saying how much of it was observed: `clear_fraction` (share of the land
    pixels observed clear) and `clear_pixels`; with no clear pixel, `no_clear_pixel` says why
    (the cube's `no_clear_reason`: no overlap, no valid LST or cloud) and that the product is
    model output alone."""
    n_land = int(np.asarray(land, bool).sum())
    n_clear = int((np.asarray(visible, bool) & land).sum())
    tags: dict[str, Any] = {"clear_fraction": round(n_clear / max(n_land, 1), 6)}
    tags["clear_pixels"] = n_clear
    if n_clear == 0:
        import xarray as xr

        with xr.open_dataset(cube) as ds:
            reason = ds.attrs.get("no_clear_reason")
        why = f" ({reason})" if reason else ""
        tags["no_clear_pixel"] = f"no clear pixel{why}: every land pixel is model output"
    return tags


def _lst_err(cube: str | Path) -> np.ndarray | None:
    import xarray as xr

    with xr.open_dataset(cube) as ds:
        if "lst_err" not in ds:
            return None
        return np.asarray(ds["lst_err"].values[0], dtype=np.float32)


def evaluation_methods(
    series: LstSeries,
    fillers: Sequence[CnnFiller | ContextFiller],
    train_index: np.ndarray,
    cfg: dict[str, Any],
    val_index: np.ndarray | None = None,
) -> dict[str, Filler]:
    """Every trained method (`model_<key>`) and the four baselines, each with the same inputs
    and the same residual step. The learned baselines learn from the training days; the
    gradient boosting's LST pattern reads the validation days too, as the context model's
    history does; the climatology's scales are tuned on the training days."""
    from lstfill.gapfill import baselines  # scikit-learn: evaluation only, seconds of start-up
    from lstfill.gapfill.climatology import ClimatologyAnomaly

    mode = cfg["residual_correction"]["mode"]
    sigma = cfg["residual_correction"]["sigma_px"]
    features = features_from_config(cfg)
    hgb = baselines.HGBBaseline(
        features, max_iter=cfg["evaluation"]["hgb_max_iter"], seed=cfg["training"]["seed"]
    )
    history = train_index if val_index is None else np.concatenate([train_index, val_index])
    hgb.fit(series, train_index, _allowed(series, history))
    clim = ClimatologyAnomaly(seed=cfg["training"]["seed"])
    clim.fit(series, _allowed(series, train_index))
    log.info("climatology baseline tuned on the training days: %s", clim.tuning or "defaults")

    def corrected(method: Any) -> Any:
        return baselines.fill_with_correction(method, mode, sigma)

    methods: dict[str, Filler] = {f"model_{method_key(f)}": product_filler(f, cfg) for f in fillers}
    return {
        **methods,
        "baseline_climatology_anomaly": corrected(clim.fill),
        "baseline_mean_lapse": corrected(baselines.fill_mean_lapse),
        "baseline_temporal": corrected(baselines.fill_temporal),
        "baseline_hgb": corrected(hgb.fill),
    }


def evaluate(
    cube_paths: Sequence[str | Path],
    checkpoints: str | Path | Sequence[str | Path],
    split_path: str | Path,
    cfg: dict[str, Any],
    metrics_out: str | Path,
    figure_out: str | Path,
    threads: int = 1,
    selection: str | Path | None = None,
) -> dict[str, Any]:
    """Artificial-gap evaluation on the test days: real cloud masks of other acquisitions hide
    clear pixels of each test acquisition; every trained method and every baseline is scored
    on exactly those hidden pixels, overall and (`subsets.test_blocks`) on the hidden pixels of
    the test blocks, where no training or validation sample was a target. The networks run on
    gapfill.training.device. metrics.json names the product's method and how it was chosen
    (`selection`, the output of `select`; without it, the first checkpoint's method); its
    `coverage_90` is that method's. Writes metrics.json and the figure."""
    from lstfill.gapfill.figures import plot_evaluation

    device = job_device(cfg["training"]["device"], DEVICE_KEY)
    series = load_cubes(cube_paths)
    split = json.loads(Path(split_path).read_text())
    paths = [checkpoints] if isinstance(checkpoints, (str, Path)) else list(checkpoints)
    fillers = [load_filler(p, device) for p in paths]
    for filler in fillers:
        check_features(series, filler.features)
    if selection is not None:
        chosen = json.loads(Path(selection).read_text())
    else:
        chosen = {"method": method_key(fillers[0]), "rule": "the only method evaluated"}
    train_index = _index(series, split["train"], split_path)
    test_index = _index(series, split["test"], split_path)
    ev = cfg["evaluation"]
    no_clear = _no_clear_targets(series, test_index, "test")
    pairs = _pairs(series, test_index, ev, ev["max_pairs"])
    if not pairs:
        raise InputError(
            split_path,
            "no (test acquisition, donor mask) pair to evaluate on"
            + (f" ({len(no_clear)} test days have no clear pixel)" if no_clear else ""),
        )
    with threadpool_limits(threads):
        val_index = _index(series, split["val"], split_path)
        methods = evaluation_methods(series, fillers, train_index, cfg, val_index)
        result = evaluate_pairs(
            series,
            pairs,
            methods,
            dist_edges_m=ev["distance_edges_m"],
            size_edges_px=ev["gap_size_edges_px"],
            subsets={"test_blocks": block_map(series, split) == TEST},
        )
    model = f"model_{chosen['method']}"
    result["split"] = {k: split[k] for k in ("train", "val", "test")}
    result["n_targets_excluded_no_clear"] = len(no_clear)
    result["targets_excluded_no_clear"] = no_clear
    result["selected_method"] = chosen["method"]
    result["selection"] = chosen
    result["calibration"] = {method_key(f): f.calibration for f in fillers}
    result["coverage_90"] = result["methods"][model].get("coverage_90")
    write_json(metrics_out, result)
    plot_evaluation(series, pairs, methods, result, figure_out, model=model)
    return result
