"""Run tracking of the downscaling job: the CSV runs table and the optional MLflow logging."""

import sys
import types

from lstfill.downscale import runs


def test_runs_table_appends_rows_with_the_union_of_columns(tmp_path):
    path = tmp_path / "runs.csv"
    runs.append_run(path, {"model": {"hidden": [64, 32]}, "lr": 0.001}, {"space": {"mse": 1.5}})
    runs.append_run(path, {"lr": 0.01, "dropout": 0.2}, {"space": {"mse": 1.2}}, run_name="b")
    rows = runs.read_runs(path)
    assert len(rows) == 2
    assert rows[0]["params.model.hidden"] == "64 32" and rows[0]["params.dropout"] == ""
    assert rows[1]["params.dropout"] == "0.2" and rows[1]["run"] == "b"
    assert float(rows[1]["metrics.space.mse"]) == 1.2
    assert runs.read_runs(tmp_path / "none.csv") == []


def test_mlflow_is_used_when_installed_and_skipped_when_not(monkeypatch):
    calls: dict = {}

    class _Run:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    fake = types.SimpleNamespace(
        set_tracking_uri=lambda uri: calls.setdefault("uri", uri),
        set_experiment=lambda name: calls.setdefault("experiment", name),
        start_run=lambda run_name=None: _Run(),
        log_params=lambda p: calls.setdefault("params", p),
        log_metrics=lambda m: calls.setdefault("metrics", m),
    )
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    monkeypatch.setattr(runs, "mlflow_available", lambda: True)
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
