"""A recording stand-in for the `mlflow` module, so run tracking is tested without MLflow."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from lstfill import runs


class _Run:
    def __enter__(self) -> _Run:
        return self

    def __exit__(self, *exc: object) -> bool:
        return False


def install_fake_mlflow(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Put a fake `mlflow` in `sys.modules` and tell lstfill.runs it is installed; returns the
    dict it records into: "uri", "experiment", "run_name", "params", "metrics"."""
    calls: dict[str, Any] = {}

    def start_run(run_name: str | None = None) -> _Run:
        calls["run_name"] = run_name
        return _Run()

    fake = types.SimpleNamespace(
        set_tracking_uri=lambda uri: calls.setdefault("uri", uri),
        set_experiment=lambda name: calls.setdefault("experiment", name),
        start_run=start_run,
        log_params=lambda p: calls.setdefault("params", p),
        log_metrics=lambda m: calls.setdefault("metrics", m),
    )
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    monkeypatch.setattr(runs, "mlflow_available", lambda: True)
    return calls
