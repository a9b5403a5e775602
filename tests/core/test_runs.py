"""Run tracking: one row file per run, collected into a CSV table; optional MLflow logging."""

import json

import pytest
from fakes.mlflow import install_fake_mlflow

from lstfill import runs
from lstfill.errors import InputError


def test_row_files_are_collected_with_the_union_of_columns(tmp_path):
    path = tmp_path / "runs.csv"
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    runs.write_run(a, {"model": {"hidden": [64, 32]}, "lr": 0.001}, {"space": {"mse": 1.5}})
    runs.write_run(b, {"lr": 0.01, "dropout": 0.2}, {"space": {"mse": 1.2}}, run_name="b")
    assert json.loads(a.read_text())["params.lr"] == 0.001
    runs.collect_runs([a, b], path)
    rows = runs.read_runs(path)
    assert len(rows) == 2
    assert rows[0]["params.model.hidden"] == "64 32" and rows[0]["params.dropout"] == ""
    assert rows[1]["params.dropout"] == "0.2" and rows[1]["run"] == "b"
    assert float(rows[1]["metrics.space.mse"]) == 1.2


def test_a_missing_or_foreign_row_file_is_named(tmp_path):
    with pytest.raises(InputError, match="missing.json"):
        runs.collect_runs([tmp_path / "missing.json"], tmp_path / "runs.csv")
    (tmp_path / "other.json").write_text('["not a row"]')
    with pytest.raises(InputError, match="other.json"):
        runs.collect_runs([tmp_path / "other.json"], tmp_path / "runs.csv")
    assert not (tmp_path / "runs.csv").exists()


def test_mlflow_is_used_when_installed_and_skipped_when_not(monkeypatch):
    calls = install_fake_mlflow(monkeypatch)
    ok = runs.log_mlflow(
        {"lr": 0.001},
        {"space": {"mse": 1.5, "n": 3}, "note": "x"},
        experiment="downscale",
        tracking_uri="file:///tmp/mlruns",
    )
    assert ok and calls["experiment"] == "downscale" and calls["uri"] == "file:///tmp/mlruns"
    assert calls["params"] == {"lr": "0.001"}
    assert calls["metrics"] == {"space.mse": 1.5, "space.n": 3.0}  # text metrics are not logged
    monkeypatch.setattr(runs, "mlflow_available", lambda: False)
    assert runs.log_mlflow({}, {}, experiment="downscale") is False
