"""The training runs of a region as one table for the Snakemake report: one row per trained model
(gap-fill methods, super-resolution variants, downscaling splits) with its checkpoint's model,
creation time, key training settings and training history, its validation score where the job
selects on one, and its test score from the job's metrics.json.

Checkpoints are read with `load_checkpoint` (torch's restricted unpickler, no code runs). Their
extras are plain values (`lstfill.training.storage`): the history is a list of
{"epoch", "train_loss", "val_loss", "lr", "seconds"} dicts.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lstfill.errors import InputError
from lstfill.io import atomic_output
from lstfill.report_tables import csv_value
from lstfill.training.checkpoint import load_checkpoint

COLUMNS = (
    "job",
    "run",
    "model",
    "created",
    "epochs",
    "epochs_run",
    "best_epoch",
    "best_val_loss",
    "val_rmse",
    "test_rmse",
    "selected",
    "learning_rate",
    "batch_size",
    "seed",
    "seconds_per_epoch",
    "checkpoint",
)
SETTINGS = ("epochs", "learning_rate", "batch_size", "seed")


def training_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """epochs, learning rate, batch size and seed of the training block nearest the top of a
    checkpoint's config (each job nests it differently: `train`, `training`,
    `superres.training`, `downscale.training`); {} if there is none."""
    level: list[Mapping[str, Any]] = [config]
    while level:
        for block in level:
            if "epochs" in block and "learning_rate" in block:
                return {k: block.get(k) for k in SETTINGS}
        level = [v for block in level for v in block.values() if isinstance(v, Mapping)]
    return {}


def history_summary(extra: Mapping[str, Any]) -> dict[str, Any]:
    """epochs_run, best_epoch, best_val_loss and seconds_per_epoch of a checkpoint's history
    (the best epoch is the one stored beside it, else the lowest finite validation loss)."""
    history = extra.get("history") or []
    if not isinstance(history, list):
        history = []
    losses = {
        int(h["epoch"]): float(h["val_loss"])
        for h in history
        if isinstance(h, Mapping) and "epoch" in h and "val_loss" in h
    }
    finite = {e: v for e, v in losses.items() if math.isfinite(v)}
    best = extra.get("best_epoch")
    if not isinstance(best, int) or best not in losses:
        best = min(finite, key=finite.__getitem__) if finite else None
    seconds = [float(h["seconds"]) for h in history if isinstance(h, Mapping) and "seconds" in h]
    return {
        "epochs_run": len(history),
        "best_epoch": best,
        "best_val_loss": losses.get(best) if best is not None else None,
        "seconds_per_epoch": sum(seconds) / len(seconds) if seconds else None,
    }


def checkpoint_row(job: str, run: str, path: str | Path) -> dict[str, Any]:
    """A run's row from its checkpoint alone (scores left empty)."""
    ckpt = load_checkpoint(path)
    config = ckpt.get("config") if isinstance(ckpt.get("config"), Mapping) else {}
    extra = ckpt.get("extra") if isinstance(ckpt.get("extra"), Mapping) else {}
    settings = training_settings(config)
    return {
        "job": job,
        "run": run,
        "model": ckpt.get("model_name"),
        "created": ckpt.get("created"),
        "epochs": settings.get("epochs"),
        **history_summary(extra),
        "val_rmse": None,
        "test_rmse": None,
        "selected": None,
        **{k: settings.get(k) for k in SETTINGS if k != "epochs"},
        "checkpoint": str(path),
    }


def read_json(path: str | Path | None, what: str) -> dict[str, Any]:
    """A JSON file's object ({} for no path); InputError naming the file if it does not read."""
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read the {what}: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(path, f"the {what} is not a JSON object")
    return data


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _run_name(path: str | Path, prefix: str = "") -> str:
    stem = Path(path).stem
    return stem.removeprefix(prefix)


def gapfill_rows(
    models: Sequence[str | Path],
    selection: str | Path | None = None,
    metrics: str | Path | None = None,
) -> list[dict[str, Any]]:
    """One row per gap-fill method checkpoint ({method}.pt): validation RMSE and `selected` from
    selection.json, test RMSE (every hidden pixel of the artificial gaps) from metrics.json."""
    chosen = read_json(selection, "gap-fill selection")
    scores = read_json(metrics, "gap-fill metrics").get("methods", {})
    rows = []
    for path in models:
        method = _run_name(path)
        row = checkpoint_row("gapfill", method, path)
        row["val_rmse"] = _number(chosen.get("validation", {}).get(method, {}).get("rmse"))
        entry = scores.get(f"model_{method}", {})
        row["test_rmse"] = _number(entry.get("overall", {}).get("rmse"))
        if chosen:
            row["selected"] = "yes" if chosen.get("method") == method else "no"
        rows.append(row)
    return rows


def superres_rows(
    models: Sequence[str | Path], metrics: str | Path | None = None
) -> list[dict[str, Any]]:
    """One row per super-resolution variant checkpoint ({variant}.pt), with its test-day RMSE
    against the fine truth where metrics.json exists."""
    scores = read_json(metrics, "super-resolution metrics").get("methods", {})
    rows = []
    for path in models:
        variant = _run_name(path)
        row = checkpoint_row("superres", variant, path)
        row["test_rmse"] = _number(scores.get(f"model_{variant}", {}).get("rmse"))
        rows.append(row)
    return rows


def downscale_rows(
    models: Sequence[str | Path], metrics: str | Path | None = None
) -> list[dict[str, Any]]:
    """One row per downscaling split checkpoint (mlp_{split}.pt), with the MLP's test RMSE on
    that split."""
    splits = read_json(metrics, "downscaling metrics").get("splits", {})
    rows = []
    for path in models:
        split = _run_name(path, "mlp_")
        row = checkpoint_row("downscale", split, path)
        entry = splits.get(split, {}).get("methods", {}).get("model_mlp", {})
        row["test_rmse"] = _number(entry.get("rmse"))
        rows.append(row)
    return rows


def region_runs(
    *,
    gapfill_models: Sequence[str | Path] = (),
    gapfill_selection: str | Path | None = None,
    gapfill_metrics: str | Path | None = None,
    superres_models: Sequence[str | Path] = (),
    superres_metrics: str | Path | None = None,
    downscale_models: Sequence[str | Path] = (),
    downscale_metrics: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Every run of a region: gap-fill, then super-resolution, then downscaling."""
    return [
        *gapfill_rows(gapfill_models, gapfill_selection, gapfill_metrics),
        *superres_rows(superres_models, superres_metrics),
        *downscale_rows(downscale_models, downscale_metrics),
    ]


def write_runs_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """`rows` as a CSV with the columns of `COLUMNS` (empty where a run has no value; exact
    numbers); atomically."""
    with atomic_output(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([csv_value(row.get(c)) for c in COLUMNS])
    return Path(path)
