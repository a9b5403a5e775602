"""One function per super-resolution rule (`superres_<step>`): arguments (inputs..., settings,
outputs...), called by the workflow scripts and the CLI. PyTorch is imported inside the steps
that need it, so the many `superres_scene` jobs start without it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lstfill.device import job_device
from lstfill.errors import InputError
from lstfill.io import write_cog, write_json
from lstfill.splits import SPLIT_CODES, codes_by_day, split_days_by_share
from lstfill.superres.inputs import build_day_scene, read_day_scene, write_day_scene

log = logging.getLogger(__name__)


def scene(lst_path: str | Path, refl_path: str | Path, cfg: dict, out: str | Path) -> Path:
    """MOD11A1 + MOD09GQ granules of one day -> the day-scene NetCDF."""
    day = build_day_scene(
        lst_path,
        refl_path,
        max_lst_error_k=cfg["max_lst_error_k"],
        max_modland_qa=cfg["max_modland_qa"],
    )
    return write_day_scene(day, out)


def dataset(
    scene_paths: Sequence[str | Path], cfg: dict, patches_out: str | Path, split_out: str | Path
) -> dict[str, Any]:
    """Cut clean patch pairs, split the days (validation days among those with patches),
    normalise on the training patches; write the patches and the split."""
    from lstfill.superres.dataset import build_patch_pairs, normalisation, write_patch_pairs

    scenes = [read_day_scene(p) for p in scene_paths]
    pairs = build_patch_pairs(scenes, cfg)
    sp = cfg["split"]
    split = split_days_by_share(
        [s.date for s in scenes],
        [float(np.isfinite(s.lst).mean()) for s in scenes],
        [int((pairs.date == np.datetime64(s.date, "D")).sum()) for s in scenes],
        n_val=sp["val_days"],
        n_test=sp["test_days"],
        min_valid_test=sp["min_valid_test"],
        seed=sp["seed"],
    )
    pairs.split = codes_by_day(pairs.date, split)
    norm = normalisation(pairs)
    write_patch_pairs(pairs, norm, patches_out)
    counts = {k: int((pairs.split == v).sum()) for k, v in SPLIT_CODES.items()}
    info = {**split, "patches": counts, "factor": pairs.factor}
    write_json(split_out, info)
    log.info("superres dataset: %s patches (train/val/test)", counts)
    return info


def train(
    patches: str | Path,
    cfg: dict,
    variant: str,
    checkpoint_out: str | Path,
    curve_out: str | Path,
    workdir: str | Path,
    progress: bool = True,
) -> Any:
    """Train one variant (resuming from `workdir`) and write its checkpoint and curve."""
    from lstfill.method import train_method
    from lstfill.superres.dataset import read_patch_pairs
    from lstfill.superres.method import DEVICE_KEY, sharpener_from_config
    from lstfill.training.rng import seed_everything

    job_device(cfg["training"]["device"], DEVICE_KEY)
    pairs, norm = read_patch_pairs(patches)
    seed_everything(int(cfg["training"]["seed"]))  # initial weights from the config's seed
    model = sharpener_from_config(cfg, variant, pairs.factor)
    fingerprint = {
        "dataset": norm,
        "n_patches": len(pairs),
        "loss": model.loss_cfg.to_dict(),
        "model": cfg["model"],
        "crop": cfg["crop"],
        "training": cfg["training"],
    }
    train_method(
        model,
        (pairs, norm),
        fingerprint,
        workdir,
        checkpoint_out,
        curve_out,
        title=f"SIF-NN-SR {variant}",
        inputs=[patches],
        progress=progress,
    )
    return model


def predict(scene_path: str | Path, checkpoint: str | Path, device: str, out: str | Path) -> float:
    """Sharpen one day scene to a 250 m COG on `device` (the job's superres.training.device);
    returns (and tags) the energy-conservation residual: RMS of the PSF-degraded product minus
    the coarse input (K). Tags `clear_fraction`, the share of the scene's 1 km pixels with
    valid LST. An all-cloud day gets an all-nodata product with a warning, NaN residual,
    clear_fraction 0 and a `no_clear_pixel` tag."""
    from lstfill.method import load_method
    from lstfill.superres.method import DEVICE_KEY, METHODS, energy_residual

    dev = job_device(device, DEVICE_KEY)
    scene = read_day_scene(scene_path)
    model = load_method(checkpoint, METHODS)
    if model.factor != scene.factor:
        raise InputError(
            checkpoint,
            f"was trained for factor {model.factor}, the scene {scene_path} has {scene.factor}",
        )
    clear: dict[str, Any] = {"clear_fraction": round(float(np.isfinite(scene.lst).mean()), 6)}
    if clear["clear_fraction"] > 0:
        fine = model.predict(scene.lst, scene.ndvi, dev)
        resid = energy_residual(fine, scene.lst, scene.factor, model.loss_cfg.mtf)
    else:  # an all-cloud day: nothing to sharpen, but the day still gets its (empty) product
        log.warning(
            "%s has no valid LST pixel (clear_fraction 0); writing an all-nodata product",
            scene_path,
        )
        fine = np.full(scene.ndvi.shape, np.nan, dtype=np.float32)
        resid = float("nan")
        clear["no_clear_pixel"] = "no valid LST pixel (cloud or fill): the product is all nodata"
    write_cog(
        out,
        fine,
        scene.fine_transform,
        scene.crs,
        nodata=float("nan"),
        tags={
            "date": scene.date.isoformat(),
            "units": "K",
            "method": f"SIF-NN-SR {model.loss_cfg.variant}",
            "energy_residual_rms_k": f"{resid:.4f}",
            **clear,
        },
        band_names=["lst"],
    )
    log.info("%s: energy-conservation residual %.3f K", out, resid)
    return resid


def evaluate(
    scene_paths: Sequence[str | Path],
    truth_paths: Sequence[str | Path],
    split_path: str | Path,
    checkpoints: dict[str, str | Path],
    cfg: dict,
    metrics_out: str | Path,
    figure_out: str | Path,
) -> dict[str, Any]:
    """The evaluation of every variant and baseline on the test days (`evaluate.score_test_days`):
    metrics.json and the comparison figure."""
    from lstfill.superres.evaluate import score_test_days  # scipy.signal: evaluation only
    from lstfill.superres.figures import plot_comparison

    result, shown = score_test_days(scene_paths, truth_paths, split_path, checkpoints, cfg)
    write_json(metrics_out, result)
    plot_comparison(shown, figure_out)
    return result
