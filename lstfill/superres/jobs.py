"""The super-resolution job as the workflow runs it: day scenes, dataset, training, products and
the evaluation against a fine truth, each a function of files and the `superres` config."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lstfill.baselines.bicubic import bicubic
from lstfill.device import job_device
from lstfill.errors import InputError
from lstfill.io import read_raster, write_cog, write_json
from lstfill.superres import data
from lstfill.superres.model import LossConfig
from lstfill.superres.sharpen import Sharpener, TileConfig, energy_residual
from lstfill.training.curves import plot_training_curve
from lstfill.training.rng import seed_everything
from lstfill.training.settings import TrainConfig
from lstfill.training.workdir import reset_stale_workdir

log = logging.getLogger(__name__)
DEVICE_KEY = "superres.training.device"
Method = Callable[[np.ndarray, np.ndarray], np.ndarray]


def build_dataset(
    scene_paths: Sequence[str | Path], cfg: dict, patches_out: str | Path, split_out: str | Path
) -> dict[str, Any]:
    """Cut clean patch pairs, split the days (validation days among those with patches),
    normalise on the training patches; write the patches and the split."""
    scenes = [data.read_day_scene(p) for p in scene_paths]
    pairs = data.build_patch_pairs(scenes, cfg)
    sp = cfg["split"]
    split = data.split_days(
        [s.date for s in scenes],
        [float(np.isfinite(s.lst).mean()) for s in scenes],
        [int((pairs.date == np.datetime64(s.date, "D")).sum()) for s in scenes],
        n_val=sp["val_days"],
        n_test=sp["test_days"],
        min_valid_test=sp["min_valid_test"],
        seed=sp["seed"],
    )
    pairs.split = data.split_codes(pairs.date, split)
    norm = data.normalisation(pairs)
    data.write_patch_pairs(pairs, norm, patches_out)
    counts = {k: int((pairs.split == v).sum()) for k, v in data.SPLIT_CODES.items()}
    info = {**split, "patches": counts, "factor": pairs.factor}
    write_json(split_out, info)
    log.info("superres dataset: %s patches (train/val/test)", counts)
    return info


def sharpener_from_config(cfg: dict, variant: str, factor: int) -> Sharpener:
    """An untrained Sharpener for `variant` of the `superres` config."""
    if variant not in cfg["variants"]:
        raise InputError("superres.variants", f"has no variant {variant!r}")
    loss = LossConfig(variant=variant, mtf=cfg["psf_mtf"], **cfg["variants"][variant])
    model = cfg["model"]
    return Sharpener(
        loss,
        factor,
        tuple(model["channels"]),
        model["residual"],
        tiles=TileConfig(**cfg["tiles"]),
    )


def train(
    patches: str | Path,
    cfg: dict,
    variant: str,
    checkpoint_out: str | Path,
    curve_out: str | Path,
    workdir: str | Path,
    progress: bool = True,
) -> Sharpener:
    """Train one variant (resuming from `workdir`) and write its checkpoint and curve."""
    job_device(cfg["training"]["device"], DEVICE_KEY)
    pairs, norm = data.read_patch_pairs(patches)
    train_cfg = TrainConfig.from_dict(cfg["training"])
    seed_everything(train_cfg.seed)  # initial weights from the config's seed
    model = sharpener_from_config(cfg, variant, pairs.factor)
    fingerprint = {
        "dataset": norm,
        "n_patches": len(pairs),
        "loss": model.loss_cfg.to_dict(),
        "model": cfg["model"],
        "crop": cfg["crop"],
        "training": cfg["training"],
    }
    reset_stale_workdir(workdir, fingerprint)
    result = model.fit(pairs, norm, train_cfg, workdir, crop=cfg["crop"], progress=progress)
    model.save(checkpoint_out, {"superres": cfg}, {"best_epoch": result.best_epoch})
    plot_training_curve(result.history, curve_out, title=f"SIF-NN-SR {variant}")
    return model


def write_product(
    scene_path: str | Path, checkpoint: str | Path, out: str | Path, device: str = "auto"
) -> float:
    """Sharpen one day scene to a 250 m COG on `device` (the job's superres.training.device);
    returns (and tags) the energy-conservation residual: RMS of the PSF-degraded product minus
    the coarse input (K). An all-cloud day gets an all-nodata product with a warning (NaN
    residual)."""
    dev = job_device(device, DEVICE_KEY)
    scene = data.read_day_scene(scene_path)
    model = Sharpener.load(checkpoint)
    if model.factor != scene.factor:
        raise InputError(
            checkpoint,
            f"was trained for factor {model.factor}, the scene {scene_path} has {scene.factor}",
        )
    if np.isfinite(scene.lst).any():
        fine = model.predict(scene.lst, scene.ndvi, dev)
        resid = energy_residual(fine, scene.lst, scene.factor, model.loss_cfg.mtf)
    else:  # an all-cloud day: nothing to sharpen, but the day still gets its (empty) product
        log.warning("%s has no valid LST pixel; writing an all-nodata product", scene_path)
        fine = np.full(scene.ndvi.shape, np.nan, dtype=np.float32)
        resid = float("nan")
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
        },
        band_names=["lst"],
    )
    log.info("%s: energy-conservation residual %.3f K", out, resid)
    return resid


def baseline_methods(cfg: dict, factor: int) -> dict[str, Method]:
    """The classical baselines with the model's inputs: coarse LST and fine NDVI."""
    from lstfill.baselines.dms import dms  # scikit-learn: evaluation only
    from lstfill.baselines.tsharp import tsharp

    b = cfg["baselines"]
    return {
        "baseline_bicubic": lambda lst, ndvi: bicubic(lst, factor),
        "baseline_tsharp": lambda lst, ndvi: tsharp(
            lst, ndvi, factor, basis=b["tsharp_basis"], min_t=b["min_t"]
        ),
        "baseline_dms": lambda lst, ndvi: dms(
            lst,
            ndvi,
            factor,
            n_estimators=b["dms_estimators"],
            moving_window=b["dms_moving_window"],
        ),
    }


def _mean(values: list[float]) -> float:
    v = [x for x in values if math.isfinite(x)]
    return float(np.mean(v)) if v else math.nan


def evaluate(
    scene_paths: Sequence[str | Path],
    truth_paths: Sequence[str | Path],
    split_path: str | Path,
    checkpoints: dict[str, str | Path],
    cfg: dict,
    metrics_out: str | Path,
    figure_out: str | Path,
) -> dict[str, Any]:
    """Every model and baseline on the test days of the split, scored against the fine truth on
    the same pixels (valid in every product and in the truth). `truth_paths[i]` is the truth of
    `scene_paths[i]`. The models run on superres.training.device. Writes metrics.json and a
    figure."""
    from lstfill.superres.figures import plot_comparison
    from lstfill.superres.quality import quality_metrics  # scipy.signal: evaluation only

    device = job_device(cfg["training"]["device"], DEVICE_KEY)
    if len(scene_paths) != len(truth_paths):
        raise ValueError("one truth raster per scene is needed")
    test_days = set(json.loads(Path(split_path).read_text())["test"])
    scenes = [(data.read_day_scene(s), s, t) for s, t in zip(scene_paths, truth_paths, strict=True)]
    chosen = [c for c in scenes if c[0].date.isoformat() in test_days]
    if not chosen:
        raise InputError(split_path, f"none of its test days {sorted(test_days)} has a scene")
    models = {f"model_{name}": Sharpener.load(path) for name, path in checkpoints.items()}
    per_day: list[dict[str, Any]] = []
    shown: dict[str, np.ndarray] | None = None
    for scene, scene_path, truth_path in chosen:
        truth, _, _, _, _ = read_raster(truth_path)
        if truth.shape != scene.ndvi.shape:
            raise InputError(
                truth_path,
                f"shape {truth.shape} is not the scene's fine grid "
                f"{scene.ndvi.shape} ({scene_path})",
            )
        methods: dict[str, Method] = {
            name: (lambda lst, ndvi, m=m: m.predict(lst, ndvi, device))
            for name, m in models.items()
        }
        methods.update(baseline_methods(cfg, scene.factor))
        outputs = {name: fn(scene.lst, scene.ndvi) for name, fn in methods.items()}
        mask = np.isfinite(truth) & np.all([np.isfinite(o) for o in outputs.values()], axis=0)
        if not mask.any():
            log.warning("%s: no pixel valid in every product; skipped", scene_path)
            continue
        bic = outputs["baseline_bicubic"]
        day = {"date": scene.date.isoformat(), "n": int(mask.sum()), "methods": {}}
        for name, out in outputs.items():
            q = quality_metrics(out, truth, bicubic=bic, mask=mask)
            q["energy_residual_rms_k"] = energy_residual(
                out, scene.lst, scene.factor, cfg["psf_mtf"]
            )
            day["methods"][name] = q
        per_day.append(day)
        if shown is None or mask.sum() > shown["_n"]:
            shown = {"_n": mask.sum(), "truth": truth, "lst": scene.lst, **outputs}
    if not per_day:
        raise InputError(
            scene_paths[0] if scene_paths else "superres", "no test day has pixels to score"
        )
    names = list(per_day[0]["methods"])
    keys = [k for k in per_day[0]["methods"][names[0]] if k != "n"]
    summary = {
        name: {
            **{k: _mean([d["methods"][name][k] for d in per_day]) for k in keys},
            "n_pixels": int(sum(d["n"] for d in per_day)),
        }
        for name in names
    }
    result = {
        "split": json.loads(Path(split_path).read_text()),
        "protocol": "Each test day's coarse LST (with its cloud gaps) and fine NDVI are sharpened "
        "by every method; metrics compare with the fine truth on pixels valid in every product, "
        "averaged over the test days. frr: share of the spectral energy bicubic loses that the "
        "method recovers. energy_residual_rms_k: PSF-degraded product minus the coarse input.",
        "n_days": len(per_day),
        "methods": summary,
        "days": per_day,
    }
    write_json(metrics_out, result)
    assert shown is not None
    plot_comparison(shown, figure_out)
    return result
