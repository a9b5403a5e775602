"""One function per downscaling rule (`downscale_<step>`): the DEM on the LST grid, the cached
samples, training per split (with its run row), the maps and the evaluation.

Every step recomputes the splits from the samples and the `downscale.split` config with the same
seeded functions, so training and evaluation always agree on which samples are held out.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lstfill.device import job_device
from lstfill.downscale.baselines import linear_baseline
from lstfill.downscale.dataset import (
    GROUPS,
    day_run_gap,
    feature_names,
    fit_scaler,
    image_samples,
    need_all_splits,
    read_samples,
    split_codes,
    split_counts,
    stack_images,
    window_samples,
    write_samples,
)
from lstfill.downscale.evaluate import (
    permutation_importance,
    split_scores,
)
from lstfill.downscale.figures import plot_evaluation
from lstfill.downscale.inputs import check_same_grid, file_for_year, read_dem, select_days, yyyymmdd
from lstfill.downscale.method import METHODS, MlpMethod
from lstfill.downscale.targets import SAMPLE_KEYS
from lstfill.errors import InputError, LstfillError
from lstfill.io import write_cog, write_json
from lstfill.method import load_method, train_method
from lstfill.runs import log_mlflow, write_run
from lstfill.sources import israel, israel_grid, srtm
from lstfill.splits import TEST, TRAIN, VAL
from lstfill.training.rng import seed_everything
from lstfill.training.settings import TrainConfig

log = logging.getLogger(__name__)

DEVICE_KEY = "downscale.training.device"
SPLIT_NAMES = {TRAIN: "train", VAL: "val", TEST: "test"}


# ------------------------------------------------------------------------------ inputs


def dem(lst_files: Sequence[str | Path], dem_files: Sequence[str | Path], out: str | Path) -> None:
    """The DEM (tiles mosaicked) block-averaged onto the LST cells, as a COG (m, NaN nodata)."""
    lat, lon = check_same_grid(lst_files)
    tiles = [srtm.read_dem(p) for p in dem_files]
    dem = srtm.mosaic(tiles) if len(tiles) > 1 else tiles[0]
    on_grid = israel_grid.dem_on_grid(dem.data, dem.transform, lat, lon, dem_crs=dem.crs)
    if not np.isfinite(on_grid).any():
        raise InputError(dem_files[0], "the DEM does not overlap the LST grid")
    write_cog(
        out,
        on_grid.astype(np.float32),
        israel_grid.grid_transform(lat, lon),
        israel_grid.CRS_LATLON,
        nodata=float("nan"),
        tags={"units": "m", "method": "block average onto the LST grid"},
        band_names=["elevation"],
    )


# ------------------------------------------------------------------------------ samples


def samples(
    lst_files: Sequence[str | Path],
    dem_path: str | Path,
    cfg: Mapping[str, Any],
    samples_out: str | Path,
    info_out: str | Path,
) -> dict[str, Any]:
    """Every valid window of the selected days and bands as one sample file, and a summary JSON
    (its days, counts and grid) that the workflow reads to list the maps."""
    bands = dict(cfg["bands"])
    radius = int(cfg["radius"])
    params = {k: cfg[k] for k in SAMPLE_KEYS}
    params["files"] = [Path(p).name for p in lst_files]
    lat, lon = check_same_grid(lst_files)
    dem = read_dem(dem_path, lat, lon)
    images = []
    per_band = {b: 0 for b in bands}
    days_out = []
    for path, year, days in select_days(lst_files, cfg["max_days"]):
        data = israel.read_israel_lst(path, qa_strict=cfg["qa_strict"], days=days)
        for k, doy in enumerate(data.days):
            date = yyyymmdd(year, int(doy))
            days_out.append(date)
            for b_idx, (band, hour) in enumerate(bands.items()):
                X, y, rc = image_samples(
                    data.lst(band)[k],
                    dem,
                    lat,
                    lon,
                    int(doy),
                    hour,
                    radius=radius,
                    cap=cfg["max_samples_per_image"],
                    date=date,
                    band_index=b_idx,
                )
                images.append((date, b_idx, X, y, rc))
                per_band[band] += len(y)
    n = sum(len(y) for *_, y, _ in images)
    if n == 0:
        raise InputError(
            lst_files[0],
            f"no {2 * radius + 1}² window with valid LST and DEM on any selected day",
        )
    X, y, meta = stack_images(images)
    params["grid_shape"] = [len(lat), len(lon)]
    params["band_names"] = list(bands)
    write_samples(samples_out, X, y, meta, params, columns=feature_names(radius))
    info = {
        "days": [str(d) for d in days_out],
        "n_samples": n,
        "per_band": per_band,
        "grid_shape": params["grid_shape"],
        "samples": Path(samples_out).name,
    }
    write_json(info_out, info)
    log.info("%d samples from %d days (%s)", n, len(days_out), per_band)
    return info


# ------------------------------------------------------------------------------ splits


# ------------------------------------------------------------------------------ training


def train(
    samples: str | Path,
    cfg: Mapping[str, Any],
    kind: str,
    model_out: str | Path,
    curve_out: str | Path,
    workdir: str | Path,
    run_out: str | Path,
    run_name: str,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the MLP of one split (resuming from `workdir`), write its checkpoint and curve, and
    write the run's row (parameters, predict-0 and model test MSE)."""
    job_device(cfg["training"]["device"], DEVICE_KEY)
    X, y, meta, params = read_samples(samples)
    # the effective day-run gap goes into the checkpoint, so evaluate can check it splits alike
    split_cfg = {**cfg["split"], "day_run_gap": day_run_gap(cfg["split"])}
    codes = split_codes(meta, params, split_cfg, kind)
    need_all_splits(codes, kind, samples)
    columns = feature_names(int(params["radius"]))
    scaler = fit_scaler(X[codes == TRAIN], cfg["scaling"], columns=columns)
    Xs = scaler.transform(X)
    del X

    def subset(code: int) -> tuple[np.ndarray, np.ndarray]:
        return Xs[codes == code], y[codes == code]

    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = subset(TRAIN), subset(VAL), subset(TEST)
    model_kwargs = {
        "n_in": len(columns),
        "hidden": list(cfg["model"]["hidden"]),
        "dropout": cfg["model"]["dropout"],
        "base": cfg["model"]["base"],
    }
    train_cfg = TrainConfig.from_dict(cfg["training"])
    seed_everything(train_cfg.seed)  # initial weights from the config's seed
    model = MlpMethod(
        model_kwargs,
        scaler,
        train_cfg,
        features={"columns": columns, "radius": int(params["radius"]), "bands": cfg["bands"]},
        config={
            "downscale": {
                "split": split_cfg,
                **{k: cfg[k] for k in ("scaling", "model", "training")},
            }
        },
    )
    fingerprint = {
        "samples": params,
        "n_samples": len(y),
        "kind": kind,
        "split": split_cfg,
        "scaling": cfg["scaling"],
        "model": model_kwargs,
        "training": cfg["training"],
    }
    result = train_method(
        model,
        (x_tr, y_tr, x_va, y_va),
        fingerprint,
        workdir,
        model_out,
        curve_out,
        title=f"downscaling MLP, {kind} split",
        inputs=[samples],
        extra={"split": kind, "samples": params},
        progress=progress,
    )
    model.net.cpu()
    scores = split_scores(y_te, model.predict(x_te, scaled=True))
    metrics = {
        "trivial_mse": scores["methods"]["baseline_zero"]["mse"],
        "model_mse": scores["methods"]["model_mlp"]["mse"],
        "mse_improvement": scores["methods"]["baseline_zero"]["mse"]
        - scores["methods"]["model_mlp"]["mse"],
        "mse_improvement_pct": scores["improvement_pct"],
        "best_epoch": result.best_epoch,
        "best_val_mse": result.best_val_loss,
        "epochs_run": len(result.history),
        "seconds_per_epoch": float(np.mean([h["seconds"] for h in result.history])),
        **{f"n_{k}": v for k, v in split_counts(codes).items()},
    }
    run_params = {
        "split_kind": kind,
        "n_days": len(np.unique(meta["date"])),
        "samples": params,
        "scaling": cfg["scaling"],
        "split": split_cfg,
        "model": cfg["model"],
        "training": cfg["training"],
    }
    write_run(run_out, run_params, metrics, run_name)
    if cfg["mlflow"]["enabled"]:
        log_mlflow(
            run_params,
            metrics,
            experiment=cfg["mlflow"]["experiment"],
            tracking_uri=cfg["mlflow"]["tracking_uri"],
            run_name=run_name,
        )
    log.info(
        "%s split: test MSE %.4f (predict-0 %.4f), improvement %.1f %%",
        kind,
        metrics["model_mse"],
        metrics["trivial_mse"],
        metrics["mse_improvement_pct"],
    )
    return metrics


# ------------------------------------------------------------------------------ maps


def predict(
    lst_files: Sequence[str | Path],
    dem_path: str | Path,
    model_path: str | Path,
    day: str,
    qa_strict: bool,
    out: str | Path,
    device: str = "auto",
) -> dict[str, float]:
    """One COG per date, one band per LST band: the 9x9 mean plus the predicted deviation where
    the whole window is valid, NaN elsewhere. Returns (and tags) each band's RMSE against the
    observed LST at those pixels next to the predict-0 RMSE. The MLP runs on `device` (the
    job's downscale.training.device)."""
    dev = job_device(device, DEVICE_KEY)
    date = dt.datetime.strptime(day, "%Y%m%d").date()
    doy = date.timetuple().tm_yday - 1
    data = israel.read_israel_lst(
        file_for_year(lst_files, date.year), qa_strict=qa_strict, days=[doy]
    )
    dem = read_dem(dem_path, data.lat, data.lon)
    model = load_method(model_path, METHODS, dev)
    radius = int(model.features["radius"])
    bands = dict(model.features["bands"])
    maps, band_tags, scores = [], [], {}
    for band, hour in bands.items():
        lst = data.lst(band)[0]
        X, y, rc = window_samples(lst, dem, data.lat, data.lon, doy, hour, radius=radius)
        out_map = np.full(lst.shape, np.nan, np.float32)
        if len(y):
            deviation = model.predict(X)
            out_map[rc[:, 0], rc[:, 1]] = X[:, model.scaler.columns.index("lst_avg")] + deviation
            scores[f"{band}_rmse_k"] = float(np.sqrt(np.mean((deviation - y) ** 2)))
            zero = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
            scores[f"{band}_baseline_zero_rmse_k"] = zero
        else:
            log.warning("%s %s: no fully valid window; the band is all nodata", day, band)
        maps.append(out_map)
        band_tags.append({"overpass_hour": hour, "pixels": len(y)})
    write_cog(
        out,
        np.stack(maps),
        data.transform,
        data.crs,
        nodata=float("nan"),
        tags={
            "date": date.isoformat(),
            "units": "K",
            "method": f"9x9 mean LST + MLP deviation ({model.extra['split']}-split model)",
            **{k: f"{v:.4f}" for k, v in scores.items()},
        },
        band_names=list(bands),
        band_tags=band_tags,
    )
    return scores


# ------------------------------------------------------------------------------ evaluation


def evaluate(
    samples: str | Path,
    models: Mapping[str, str | Path],
    cfg: Mapping[str, Any],
    metrics_out: str | Path,
    figure_out: str | Path,
) -> dict[str, Any]:
    """Each split's model next to predict-0 and a linear least-squares fit of the same features
    (one per band, on the split's training samples) on the same test samples, overall and per band,
    and permutation importance per feature group; writes metrics.json and the figure. The MLPs
    run on downscale.training.device."""
    device = job_device(cfg["training"]["device"], DEVICE_KEY)
    X, y, meta, params = read_samples(samples)
    columns = feature_names(int(params["radius"]))
    # GROUPS lists the 9x9 window's columns; the height differences follow the samples' radius
    groups = {
        g: [columns.index(c) for c in cols] for g, cols in GROUPS.items() if g != "height_diffs"
    }
    groups["height_diffs"] = [i for i, c in enumerate(columns) if c.startswith("hd_")]
    imp_cfg = cfg["importance"]
    out: dict[str, Any] = {"splits": {}, "importance": {}, "samples": params}
    scatter = {}
    for kind, path in models.items():
        codes = split_codes(meta, params, cfg["split"], kind)
        need_all_splits(codes, kind, samples)
        model = load_method(path, METHODS, device)
        if kind == "day":  # a model trained on other days than these splits leave out
            trained = model.config.get("downscale", {}).get("split", {}).get("day_run_gap", 0)
            if int(trained) != day_run_gap(cfg["split"]):
                raise LstfillError(
                    f"{path}: trained with downscale.split.day_run_gap {trained}, evaluated with "
                    f"{day_run_gap(cfg['split'])}; train it again with the same setting"
                )
        test = codes == TEST
        xs, yt = model.scaler.transform(X[test]), y[test]
        pred = model.predict(xs, scaled=True)
        linear = np.zeros(test.sum(), np.float32)
        for b_idx in range(len(params["band_names"])):  # one linear fit per overpass
            band = meta["band"] == b_idx
            fit_b = band & (codes == TRAIN)
            if fit_b.any():
                linear[band[test]] = linear_baseline(X[fit_b], y[fit_b])(X[band & test])
        scores = split_scores(yt, pred, {"baseline_linear": linear})
        scores["counts"] = split_counts(codes)
        scores["by_band"] = {}
        for b_idx, band in enumerate(params["band_names"]):
            sel = meta["band"][test] == b_idx
            if sel.any():
                scores["by_band"][band] = split_scores(
                    yt[sel], pred[sel], {"baseline_linear": linear[sel]}
                )
        if kind == "day":
            scores["test_days"] = sorted(str(d) for d in np.unique(meta["date"][test]))
        out["splits"][kind] = scores
        rng = np.random.default_rng(cfg["split"]["seed"])
        sub = np.arange(len(yt))
        if imp_cfg["max_samples"] is not None and len(sub) > imp_cfg["max_samples"]:
            sub = np.sort(rng.choice(len(yt), imp_cfg["max_samples"], replace=False))
        out["importance"][kind] = permutation_importance(
            lambda x, m=model: m.predict(x, scaled=True),
            xs[sub],
            yt[sub],
            groups,
            n_repeats=imp_cfg["n_repeats"],
            seed=cfg["split"]["seed"],
        )
        scatter[kind] = (yt, pred)
    write_json(metrics_out, out)
    plot_evaluation(scatter, out, figure_out)
    return out
