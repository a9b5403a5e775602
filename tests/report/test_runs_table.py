"""The report's runs table: one row per trained model of a region, read from tiny checkpoints
(with a training history), the gap-fill selection and each job's metrics.json."""

import csv
import json
from pathlib import Path

import pytest
import torch

from lstfill.errors import InputError
from lstfill.runs_table import (
    COLUMNS,
    history_summary,
    region_runs,
    training_settings,
    write_runs_csv,
)
from lstfill.training.checkpoint import save_checkpoint

TRAINING = {"epochs": 12, "batch_size": 256, "learning_rate": 0.001, "seed": 3}


def _history(losses: list[float]) -> list[dict[str, float]]:
    return [
        {"epoch": i + 1, "train_loss": v + 0.1, "val_loss": v, "lr": 0.001, "seconds": 2.0 + i}
        for i, v in enumerate(losses)
    ]


def _checkpoint(path: Path, name: str, config: dict, losses: list[float], best: int | None):
    model = torch.nn.Linear(2, 1)
    extra = {"history": _history(losses)}
    if best is not None:
        extra["best_epoch"] = best
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        path,
        model_name=name,
        model_kwargs={"in_features": 2},
        state_dict=model.state_dict(),
        normalisation={},
        features={},
        config=config,
        extra=extra,
    )
    return path


@pytest.fixture
def region(tmp_path: Path) -> dict:
    """A region folder shaped as results/{region}/: two gap-fill methods, one super-resolution
    variant, two downscaling splits, the selection and each job's metrics."""
    root = tmp_path / "results/r"
    gap = root / "gapfill/model"
    files = {
        "gapfill_models": [
            _checkpoint(
                gap / "patch_cnn.pt",
                "gapfill_patch_cnn",
                {"hyper": {"seed": 0}, "train": TRAINING},
                [0.5, 0.3, 0.35],
                2,
            ),
            _checkpoint(
                gap / "context.pt",
                "context_unet",
                {"base": 4, "training": {**TRAINING, "batch_size": 16}},
                [0.6, 0.4, 0.2, 0.25],
                3,
            ),
        ],
        "superres_models": [
            _checkpoint(
                root / "superres/model/sifnn1.pt",
                "sifnn_unet",
                {"loss": {"alpha": 0.99}, "superres": {"training": TRAINING}},
                [0.01, float("nan"), 0.008],
                None,  # no stored best epoch: the lowest finite validation loss
            )
        ],
        "downscale_models": [
            _checkpoint(
                root / "downscale/model/mlp_space.pt",
                "downscale_mlp",
                {"downscale": {"training": {**TRAINING, "learning_rate": 0.01}}},
                [0.9, 0.83, 0.85],
                2,
            )
        ],
    }
    selection = gap / "selection.json"
    selection.write_text(
        json.dumps(
            {
                "method": "context",
                "validation": {"patch_cnn": {"rmse": 2.32}, "context": {"rmse": 2.04}},
            }
        )
    )
    gap_metrics = root / "gapfill/metrics.json"
    gap_metrics.write_text(
        json.dumps(
            {
                "methods": {
                    "model_patch_cnn": {"overall": {"rmse": 2.142}},
                    "model_context": {"overall": {"rmse": 2.147}},
                    "baseline_hgb": {"overall": {"rmse": 2.34}},
                }
            }
        )
    )
    sr_metrics = root / "superres/metrics.json"
    sr_metrics.write_text(json.dumps({"methods": {"model_sifnn1": {"rmse": 2.027}}}))
    ds_metrics = root / "downscale/metrics.json"
    ds_metrics.write_text(
        json.dumps({"splits": {"space": {"methods": {"model_mlp": {"rmse": 0.9185}}}}})
    )
    files |= {
        "gapfill_selection": selection,
        "gapfill_metrics": gap_metrics,
        "superres_metrics": sr_metrics,
        "downscale_metrics": ds_metrics,
    }
    return files


def test_one_row_per_model_with_history_and_scores(region, tmp_path):
    rows = region_runs(**region)
    assert [(r["job"], r["run"]) for r in rows] == [
        ("gapfill", "patch_cnn"),
        ("gapfill", "context"),
        ("superres", "sifnn1"),
        ("downscale", "space"),
    ]
    cnn, context, sr, ds = rows
    assert cnn["model"] == "gapfill_patch_cnn" and cnn["created"]
    assert (cnn["best_epoch"], cnn["best_val_loss"], cnn["epochs_run"]) == (2, 0.3, 3)
    assert (cnn["val_rmse"], cnn["test_rmse"], cnn["selected"]) == (2.32, 2.142, "no")
    assert (context["best_epoch"], context["best_val_loss"]) == (3, 0.2)
    assert (context["val_rmse"], context["test_rmse"], context["selected"]) == (2.04, 2.147, "yes")
    assert (context["epochs"], context["batch_size"], context["seed"]) == (12, 16, 3)
    assert (sr["best_epoch"], sr["best_val_loss"], sr["test_rmse"]) == (3, 0.008, 2.027)
    assert sr["val_rmse"] is None and sr["selected"] is None
    assert (ds["best_epoch"], ds["best_val_loss"], ds["test_rmse"]) == (2, 0.83, 0.9185)
    assert ds["learning_rate"] == 0.01
    assert cnn["seconds_per_epoch"] == pytest.approx(3.0)

    out = write_runs_csv(rows, tmp_path / "runs.csv")
    with out.open(newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == list(COLUMNS)
    assert float(table[1]["best_val_loss"]) == 0.2 and table[1]["selected"] == "yes"
    assert table[2]["val_rmse"] == "" and table[3]["run"] == "space"


def test_a_region_without_selection_or_metrics(region):
    rows = region_runs(gapfill_models=region["gapfill_models"])
    assert [r["test_rmse"] for r in rows] == [None, None]
    assert [r["selected"] for r in rows] == [None, None]


def test_unreadable_metrics_name_the_file(region, tmp_path):
    bad = tmp_path / "metrics.json"
    bad.write_text("[1, 2")
    with pytest.raises(InputError, match="metrics.json"):
        region_runs(superres_models=region["superres_models"], superres_metrics=bad)


def test_history_summary():
    summary = history_summary({"history": _history([0.5, 0.25, 0.3]), "best_epoch": 2})
    assert (summary["best_epoch"], summary["best_val_loss"], summary["epochs_run"]) == (2, 0.25, 3)
    assert history_summary({}) == {
        "epochs_run": 0,
        "best_epoch": None,
        "best_val_loss": None,
        "seconds_per_epoch": None,
    }


def test_training_settings_are_found_where_each_job_nests_them():
    assert training_settings({"train": TRAINING, "hyper": {"seed": 0}})["seed"] == 3
    assert training_settings({"superres": {"training": TRAINING}})["epochs"] == 12
    assert training_settings({"model": {"hidden": [8]}}) == {}
