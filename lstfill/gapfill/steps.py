"""One function per gap-fill rule (`gapfill_<step>`): dataset, train, predict, evaluate.

Each step reads files and the `gapfill` config section and writes its outputs atomically; the
Snakemake rules (rules/gapfill.smk) and the `lstfill gapfill-*` commands call these functions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from lstfill.device import job_device
from lstfill.errors import InputError
from lstfill.gapfill.dataset import read_patches, split_patches, write_patches
from lstfill.gapfill.evaluate import evaluate_pairs, select_pairs
from lstfill.gapfill.features import FeatureSet, check_features
from lstfill.gapfill.inputs import LstSeries, load_cubes, load_series
from lstfill.gapfill.method.cnn import CnnFiller
from lstfill.io import atomic_output, write_cog, write_json
from lstfill.method import train_method
from lstfill.splits import TEST, split_blocks, split_dates
from lstfill.training.checkpoint import load_checkpoint

log = logging.getLogger(__name__)
DEVICE_KEY = "gapfill.training.device"


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
    dataset: str | Path,
    cube_paths: Sequence[str | Path],
    split_path: str | Path,
    cfg: dict[str, Any],
    checkpoint_out: str | Path,
    curve_out: str | Path,
    workdir: str | Path,
    progress: bool = True,
) -> CnnFiller:
    """Train the CNN on the patch dataset (resuming from `workdir`), calibrate its intervals on
    the validation days, and write the checkpoint and the training curve."""
    job_device(cfg["training"]["device"], DEVICE_KEY)
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
        extra={"split": split},
        progress=progress,
    )
    return filler


def load_filler(checkpoint: str | Path, device: str | torch.device = "auto") -> CnnFiller:
    """The trained filler of a checkpoint, its network on `device`."""
    state = load_checkpoint(checkpoint)
    state["path"] = str(checkpoint)
    return CnnFiller.from_state(state, device)


def predict(
    cube: str | Path,
    checkpoint: str | Path,
    product_out: str | Path,
    chunk_rows: int | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Fill the gaps of one acquisition's cube and write the product COG.

    Bands: `lst` (observed where clear, the model where not), `filled` (1 where the model
    filled, 0 where observed), `uncertainty_90` (half-width in K of the 90 % interval; for
    observed pixels 1.645 × the ECOSTRESS LST_err when the cube has it, else 0). Water and
    pixels outside the data are nodata (NaN). An all-cloud acquisition is filled by the model
    alone, with a warning. The CNN runs on `device` (the job's gapfill.training.device).
    """
    filler = load_filler(checkpoint, job_device(device, DEVICE_KEY))
    if chunk_rows:
        filler.hyper["chunk_rows"] = chunk_rows
    series = load_series(cube)
    check_features(series, filler.features)
    t = 0
    visible = series.valid[t]
    if not visible.any():
        log.warning("%s: no clear pixel; the product is the model's prediction alone", cube)
    result = filler.fill(series, t)
    land = series.land
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
            "model": "gapfill patch CNN (Kustura et al. 2025)",
            "checkpoint": Path(checkpoint).name,
            "filled_pixels": n_filled,
            "residual_correction": filler.hyper["residual_mode"],
        },
        band_names=["lst", "filled", "uncertainty_90"],
        band_tags=[
            {"units": "K", "long_name": "gap-filled land surface temperature"},
            {"units": "1", "long_name": "1 where the model filled the pixel, 0 where observed"},
            {"units": "K", "long_name": "half-width of the 90 % prediction interval"},
        ],
    )
    log.info("%s: filled %d of %d land pixels", series.ids[t], n_filled, int(land.sum()))
    return {"filled": n_filled, "land": int(land.sum())}


def _lst_err(cube: str | Path) -> np.ndarray | None:
    import xarray as xr

    with xr.open_dataset(cube) as ds:
        if "lst_err" not in ds:
            return None
        return np.asarray(ds["lst_err"].values[0], dtype=np.float32)


def evaluation_methods(
    series: LstSeries, filler: CnnFiller, train_index: np.ndarray, cfg: dict[str, Any]
) -> dict[str, Any]:
    """The CNN and the three baselines, each with the same inputs and the same residual step."""
    from lstfill.gapfill import baselines  # scikit-learn: evaluation only, seconds of start-up

    mode = cfg["residual_correction"]["mode"]
    sigma = cfg["residual_correction"]["sigma_px"]
    hgb = baselines.HGBBaseline(
        filler.features, max_iter=cfg["evaluation"]["hgb_max_iter"], seed=cfg["training"]["seed"]
    )
    hgb.fit(series, train_index, _allowed(series, train_index))

    def corrected(method: Any) -> Any:
        return baselines.fill_with_correction(method, mode, sigma)

    return {
        "model_cnn": filler.fill,
        "baseline_mean_lapse": corrected(baselines.fill_mean_lapse),
        "baseline_temporal": corrected(baselines.fill_temporal),
        "baseline_hgb": corrected(hgb.fill),
    }


def evaluate(
    cube_paths: Sequence[str | Path],
    checkpoint: str | Path,
    split_path: str | Path,
    cfg: dict[str, Any],
    metrics_out: str | Path,
    figure_out: str | Path,
    threads: int = 1,
) -> dict[str, Any]:
    """Artificial-gap evaluation on the test days: real cloud masks of other acquisitions hide
    clear pixels of each test acquisition; the CNN and the baselines are scored on exactly those
    hidden pixels, overall and (`subsets.test_blocks`) on the hidden pixels of the test blocks,
    where no training or validation patch lay. The CNN runs on gapfill.training.device. Writes
    metrics.json and the figure."""
    from lstfill.gapfill.figures import plot_evaluation

    device = job_device(cfg["training"]["device"], DEVICE_KEY)
    series = load_cubes(cube_paths)
    split = json.loads(Path(split_path).read_text())
    filler = load_filler(checkpoint, device)
    check_features(series, filler.features)
    train_index = _index(series, split["train"], split_path)
    test_index = _index(series, split["test"], split_path)
    ev = cfg["evaluation"]
    candidates = _allowed(series, test_index)
    pairs = select_pairs(
        series.valid_fraction(),
        target_min=0.0,
        donor_min=ev["donor_min_valid"],
        donor_max=ev["donor_max_valid"],
        candidates=candidates,
        max_pairs=ev["max_pairs"],
        seed=ev["seed"],
    )
    if not pairs:
        raise InputError(split_path, "no (test acquisition, donor mask) pair to evaluate on")
    with threadpool_limits(threads):
        methods = evaluation_methods(series, filler, train_index, cfg)
        result = evaluate_pairs(
            series,
            pairs,
            methods,
            dist_edges_m=ev["distance_edges_m"],
            size_edges_px=ev["gap_size_edges_px"],
            subsets={"test_blocks": block_map(series, split) == TEST},
        )
    result["split"] = {k: split[k] for k in ("train", "val", "test")}
    result["calibration"] = filler.calibration
    result["coverage_90"] = result["methods"]["model_cnn"].get("coverage_90")
    write_json(metrics_out, result)
    plot_evaluation(series, pairs, methods, result, figure_out)
    return result
