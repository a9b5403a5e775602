"""The downscaling job's steps, one function per workflow rule: the demo region, the DEM on the
LST grid, the cached samples, training per split, the maps and the evaluation.

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
import torch
from torch import nn
from torch.utils.data import TensorDataset

from lstfill.device import job_device, resolve_device
from lstfill.downscale.evaluate import (
    linear_baseline,
    permutation_importance,
    split_scores,
)
from lstfill.downscale.model import Mlp, predict
from lstfill.downscale.runs import append_run, log_mlflow
from lstfill.downscale.samples import (
    DROPPED,
    GROUPS,
    Scaler,
    feature_names,
    fit_scaler,
    read_samples,
    split_by_day,
    split_by_space,
    window_samples,
    write_samples,
)
from lstfill.downscale.targets import DEMO_LST_NAME, DEMO_YEAR, SAMPLE_KEYS
from lstfill.errors import ConfigError, InputError, LstfillError
from lstfill.io import atomic_output, read_raster, write_cog, write_json
from lstfill.plotting import pyplot
from lstfill.sources import israel, srtm
from lstfill.splits import TEST, TRAIN, VAL
from lstfill.training.checkpoint import load_checkpoint, save_checkpoint
from lstfill.training.curves import plot_training_curve
from lstfill.training.loop import fit
from lstfill.training.rng import seed_everything
from lstfill.training.settings import TrainConfig
from lstfill.training.workdir import reset_stale_workdir

log = logging.getLogger(__name__)

MODEL_NAME = "downscale_mlp"
DEVICE_KEY = "downscale.training.device"
SPLIT_NAMES = {TRAIN: "train", VAL: "val", TEST: "test"}


# ------------------------------------------------------------------------------ inputs


def write_demo_region(
    lst_out: str | Path, dem_out: str | Path, settings: Mapping[str, Any]
) -> None:
    """The synthetic Israel-format region (`lstfill.sources.demo_israel`) at the two paths."""
    from lstfill.sources.demo_israel import write_demo_israel

    lst_out, dem_out = Path(lst_out), Path(dem_out)
    if lst_out.name != DEMO_LST_NAME or lst_out.parent != dem_out.parent:
        raise ValueError(f"demo files go to one folder as {DEMO_LST_NAME} and a DEM")
    paths = write_demo_israel(
        lst_out.parent,
        settings["seed"],
        shape=(settings["rows"], settings["cols"]),
        n_days=settings["n_days"],
        year=DEMO_YEAR,
    )
    if paths["dem"] != dem_out:
        paths["dem"].replace(dem_out)


def _grid(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(lat, lon) cell centres of a yearly file, north-up (reads one day only)."""
    year, days = israel.file_days(path)
    if len(days) == 0:
        raise InputError(path, "holds no day")
    one = israel.read_israel_lst(path, days=days[:1])
    return one.lat, one.lon


def _check_same_grid(lst_files: Sequence[str | Path]) -> tuple[np.ndarray, np.ndarray]:
    """The common grid of all yearly files; InputError naming a file on another grid."""
    lat, lon = _grid(lst_files[0])
    for path in lst_files[1:]:
        la, lo = _grid(path)
        if (
            la.shape != lat.shape
            or lo.shape != lon.shape
            or not (np.allclose(la, lat, atol=1e-6) and np.allclose(lo, lon, atol=1e-6))
        ):
            raise InputError(path, f"is on another grid than {lst_files[0]}")
    return lat, lon


def align_dem(
    lst_files: Sequence[str | Path], dem_files: Sequence[str | Path], out: str | Path
) -> None:
    """The DEM (tiles mosaicked) block-averaged onto the LST cells, as a COG (m, NaN nodata)."""
    lat, lon = _check_same_grid(lst_files)
    tiles = [srtm.read_dem(p) for p in dem_files]
    dem = srtm.mosaic(tiles) if len(tiles) > 1 else tiles[0]
    on_grid = israel.dem_on_grid(dem.data, dem.transform, lat, lon, dem_crs=dem.crs)
    if not np.isfinite(on_grid).any():
        raise InputError(dem_files[0], "the DEM does not overlap the LST grid")
    write_cog(
        out,
        on_grid.astype(np.float32),
        israel.grid_transform(lat, lon),
        israel.CRS_LATLON,
        nodata=float("nan"),
        tags={"units": "m", "method": "block average onto the LST grid"},
        band_names=["elevation"],
    )


def _read_dem(path: str | Path, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The aligned DEM, checked to lie on the LST grid (shape and position)."""
    data, transform, _, _, _ = read_raster(path, expected_crs=israel.CRS_LATLON)
    shape = (len(lat), len(lon))
    if data.shape != shape or not transform.almost_equals(
        israel.grid_transform(lat, lon), precision=1e-6
    ):
        raise InputError(path, f"DEM grid {data.shape} is not the LST grid {shape} of the files")
    return data.astype(np.float32)


# ------------------------------------------------------------------------------ samples


def select_days(
    files: Sequence[str | Path], max_days: int | None
) -> list[tuple[Path, int, list[int]]]:
    """(file, year, days) to sample: all days of all files, or `max_days` spread evenly."""
    pairs = []
    for path in files:
        year, days = israel.file_days(path)
        pairs += [(Path(path), year, int(d)) for d in days]
    pairs.sort(key=lambda p: (p[1], p[2]))
    if not pairs:
        raise InputError(files[0], "the LST files hold no day")
    if max_days is not None and len(pairs) > max_days:
        pick = np.unique(np.round(np.linspace(0, len(pairs) - 1, max_days)).astype(int))
        pairs = [pairs[i] for i in pick]
    out: dict[Path, tuple[int, list[int]]] = {}
    for path, year, day in pairs:
        out.setdefault(path, (year, []))[1].append(day)
    return [(path, year, days) for path, (year, days) in out.items()]


def _yyyymmdd(year: int, doy: int) -> int:
    d = dt.date(year, 1, 1) + dt.timedelta(days=doy)
    return d.year * 10000 + d.month * 100 + d.day


def build_samples(
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
    lat, lon = _check_same_grid(lst_files)
    dem = _read_dem(dem_path, lat, lon)
    xs, ys, meta_parts = [], [], []
    per_band = {b: 0 for b in bands}
    days_out = []
    for path, year, days in select_days(lst_files, cfg["max_days"]):
        data = israel.read_israel_lst(path, qa_strict=cfg["qa_strict"], days=days)
        for k, doy in enumerate(data.days):
            date = _yyyymmdd(year, int(doy))
            days_out.append(date)
            for b_idx, (band, hour) in enumerate(bands.items()):
                X, y, rc = window_samples(
                    data.lst(band)[k], dem, lat, lon, int(doy), hour, radius=radius
                )
                cap = cfg["max_samples_per_image"]
                if cap is not None and len(y) > cap:
                    rng = np.random.default_rng([date, b_idx])
                    keep = np.sort(rng.choice(len(y), cap, replace=False))
                    X, y, rc = X[keep], y[keep], rc[keep]
                xs.append(X)
                ys.append(y)
                meta_parts.append((date, b_idx, rc))
                per_band[band] += len(y)
    n = sum(len(y) for y in ys)
    if n == 0:
        raise InputError(
            lst_files[0],
            f"no {2 * radius + 1}² window with valid LST and DEM on any selected day",
        )
    meta = {
        "date": np.concatenate([np.full(len(rc), d, np.int32) for d, _, rc in meta_parts]),
        "band": np.concatenate([np.full(len(rc), b, np.int8) for _, b, rc in meta_parts]),
        "row": np.concatenate([rc[:, 0] for _, _, rc in meta_parts]).astype(np.int32),
        "col": np.concatenate([rc[:, 1] for _, _, rc in meta_parts]).astype(np.int32),
    }
    params["grid_shape"] = [len(lat), len(lon)]
    params["band_names"] = list(bands)
    write_samples(
        samples_out,
        np.concatenate(xs),
        np.concatenate(ys),
        meta,
        params,
        columns=feature_names(radius),
    )
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


def split_codes(
    meta: Mapping[str, np.ndarray], params: Mapping[str, Any], split: Mapping[str, Any], kind: str
) -> np.ndarray:
    """TRAIN/VAL/TEST (or DROPPED) per sample for the `kind` ("day" or "space") split."""
    ratios = [float(r) for r in split["ratios"]]
    if kind == "day":
        try:
            return split_by_day(meta["date"], tuple(ratios), split["seed"])
        except ValueError as exc:  # fewer than three days
            raise LstfillError(f"day split: {exc}; raise downscale.max_days") from exc
    if kind == "space":
        total = sum(ratios)
        rc = np.stack([meta["row"], meta["col"]], axis=1)
        return split_by_space(
            rc,
            tuple(params["grid_shape"]),
            split["block_size"],
            ratios[1] / total,
            ratios[2] / total,
            split["seed"],
            radius=int(params["radius"]),
        )
    raise ConfigError("downscale.split.kinds", f"unknown split {kind!r} (space or day)")


def _split_counts(codes: np.ndarray) -> dict[str, int]:
    counts = {name: int((codes == code).sum()) for code, name in SPLIT_NAMES.items()}
    counts["dropped"] = int((codes == DROPPED).sum())
    return counts


def _need_all_splits(codes: np.ndarray, kind: str, samples: str | Path) -> None:
    counts = _split_counts(codes)
    empty = [name for name in ("train", "val", "test") if counts[name] == 0]
    if empty:
        raise LstfillError(
            f"{samples}: the {kind} split leaves no {', '.join(empty)} samples ({counts}); "
            "use more days, a larger region or a smaller downscale.split.block_size"
        )


# ------------------------------------------------------------------------------ training


def load_mlp(path: str | Path, device: str | torch.device = "cpu") -> tuple[Mlp, Scaler, dict]:
    """The trained MLP (eval mode, on `device`), its scaler and the checkpoint."""
    ckpt = load_checkpoint(path)
    if ckpt["model_name"] != MODEL_NAME:
        raise InputError(path, f"holds a {ckpt['model_name']} model, not {MODEL_NAME}")
    model = Mlp(**ckpt["model_kwargs"])
    model.load_state_dict(ckpt["state_dict"])
    model.to(resolve_device(device)).eval()
    return model, Scaler.from_dict(ckpt["normalisation"]), ckpt


def train(
    samples: str | Path,
    cfg: Mapping[str, Any],
    kind: str,
    model_out: str | Path,
    curve_out: str | Path,
    workdir: str | Path,
    runs_csv: str | Path,
    run_name: str,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the MLP of one split (resuming from `workdir`), write its checkpoint and curve, and
    append the run (parameters, predict-0 and model test MSE) to the runs table."""
    job_device(cfg["training"]["device"], DEVICE_KEY)
    X, y, meta, params = read_samples(samples)
    codes = split_codes(meta, params, cfg["split"], kind)
    _need_all_splits(codes, kind, samples)
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
    }
    train_cfg = TrainConfig.from_dict(cfg["training"])
    seed_everything(train_cfg.seed)  # initial weights from the config's seed
    model = Mlp(**model_kwargs)
    fingerprint = {
        "samples": params,
        "n_samples": len(y),
        "kind": kind,
        "split": cfg["split"],
        "scaling": cfg["scaling"],
        "model": model_kwargs,
        "training": cfg["training"],
    }
    reset_stale_workdir(workdir, fingerprint)
    result = fit(
        model,
        TensorDataset(torch.from_numpy(x_tr), torch.from_numpy(y_tr)),
        TensorDataset(torch.from_numpy(x_va), torch.from_numpy(y_va)),
        nn.MSELoss(),
        train_cfg,
        workdir,
        progress=progress,
    )
    model.cpu()
    save_checkpoint(
        model_out,
        model_name=MODEL_NAME,
        model_kwargs=model_kwargs,
        state_dict=model.state_dict(),
        normalisation=scaler.to_dict(),
        features={"columns": columns, "radius": int(params["radius"]), "bands": cfg["bands"]},
        config={"downscale": {k: cfg[k] for k in ("split", "scaling", "model", "training")}},
        extra={"split": kind, "best_epoch": result.best_epoch, "samples": params},
    )
    plot_training_curve(result.history, curve_out, title=f"downscaling MLP, {kind} split")
    scores = split_scores(y_te, predict(model, x_te))
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
        **{f"n_{k}": v for k, v in _split_counts(codes).items()},
    }
    run_params = {
        "split_kind": kind,
        "n_days": len(np.unique(meta["date"])),
        "samples": params,
        "scaling": cfg["scaling"],
        "split": cfg["split"],
        "model": cfg["model"],
        "training": cfg["training"],
    }
    append_run(runs_csv, run_params, metrics, run_name)
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


def _file_for_year(lst_files: Sequence[str | Path], year: int) -> Path:
    for path in lst_files:
        if israel.file_days(path)[0] == year:
            return Path(path)
    raise InputError(lst_files[0], f"no LST file of {year} among {[str(p) for p in lst_files]}")


def predict_map(
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
        _file_for_year(lst_files, date.year), qa_strict=qa_strict, days=[doy]
    )
    dem = _read_dem(dem_path, data.lat, data.lon)
    model, scaler, ckpt = load_mlp(model_path, dev)
    radius = int(ckpt["features"]["radius"])
    bands = dict(ckpt["features"]["bands"])
    maps, band_tags, scores = [], [], {}
    for band, hour in bands.items():
        lst = data.lst(band)[0]
        X, y, rc = window_samples(lst, dem, data.lat, data.lon, doy, hour, radius=radius)
        out_map = np.full(lst.shape, np.nan, np.float32)
        if len(y):
            dev = predict(model, scaler.transform(X))
            out_map[rc[:, 0], rc[:, 1]] = X[:, scaler.columns.index("lst_avg")] + dev
            scores[f"{band}_rmse_k"] = float(np.sqrt(np.mean((dev - y) ** 2)))
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
            "method": f"9x9 mean LST + MLP deviation ({ckpt['extra']['split']}-split model)",
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
        _need_all_splits(codes, kind, samples)
        model, scaler, _ = load_mlp(path, device)
        test = codes == TEST
        xs, yt = scaler.transform(X[test]), y[test]
        pred = predict(model, xs)
        linear = np.zeros(test.sum(), np.float32)
        for b_idx in range(len(params["band_names"])):  # one linear fit per overpass
            band = meta["band"] == b_idx
            fit_b = band & (codes == TRAIN)
            if fit_b.any():
                linear[band[test]] = linear_baseline(X[fit_b], y[fit_b])(X[band & test])
        scores = split_scores(yt, pred, {"baseline_linear": linear})
        scores["counts"] = _split_counts(codes)
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
            lambda x, m=model: predict(m, x),
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


def plot_evaluation(
    scatter: Mapping[str, tuple[np.ndarray, np.ndarray]],
    metrics: Mapping[str, Any],
    path: str | Path,
) -> None:
    """Predicted vs observed deviation per split (2-D histogram, 1:1 line) and the importance."""
    plt = pyplot()
    kinds = list(scatter)
    fig, axes = plt.subplots(
        2, len(kinds), figsize=(5.2 * len(kinds), 9), squeeze=False, constrained_layout=True
    )
    for j, kind in enumerate(kinds):
        obs, pred = scatter[kind]
        s = metrics["splits"][kind]
        ax = axes[0, j]
        lim = float(np.percentile(np.abs(np.concatenate([obs, pred])), 99.5)) or 1.0
        h = ax.hist2d(obs, pred, bins=80, range=[[-lim, lim], [-lim, lim]], cmin=1, cmap="viridis")
        fig.colorbar(h[3], ax=ax, label="samples")
        ax.plot([-lim, lim], [-lim, lim], "k--", lw=1)
        ax.set_xlabel("observed deviation from the 9x9 mean (K)")
        ax.set_ylabel("predicted deviation (K)")
        m, b = s["methods"]["model_mlp"], s["methods"]["baseline_zero"]
        lin = s["methods"].get("baseline_linear", {}).get("rmse", float("nan"))
        ax.set_title(
            f"{kind} split, test RMSE: MLP {m['rmse']:.3f} K, predict-0 {b['rmse']:.3f} K, "
            f"linear {lin:.3f} K\nMSE improvement {s['improvement_pct']:.1f} % "
            f"({s['n_samples']} samples)",
            fontsize=10,
        )
        ax = axes[1, j]
        imp = metrics["importance"][kind]
        names = list(imp)[::-1]
        ax.barh(
            names,
            [imp[n]["mse_increase_pct"] for n in names],
            xerr=[100 * imp[n]["mse_increase_std"] / m["mse"] for n in names],
            color="C1",
        )
        ax.set_xlabel("MSE rise when the group is permuted (% of model MSE)")
        ax.set_title(f"feature-group importance, {kind} split")
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
