"""Run tracking of the downscaling job: every training run appends one row (its parameters and
metrics) to a CSV table, and, when MLflow is installed and enabled, logs the same to MLflow, as
the seed project did with its mlruns history.

The CSV is the record that always exists; its columns are the union of every run's keys (a run
that lacks a column leaves it empty), rewritten atomically so that a crash never truncates it.
"""

from __future__ import annotations

import csv
import datetime as dt
import fcntl
import importlib.util
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lstfill.io import atomic_output

log = logging.getLogger(__name__)


def _flat(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"prefix.a.b": 1}; lists and tuples become text."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(_flat(name, value))
        elif isinstance(value, list | tuple):
            out[name] = " ".join(str(v) for v in value)
        else:
            out[name] = value
    return out


def read_runs(path: str | Path) -> list[dict[str, str]]:
    """The rows of a runs table (empty when the file does not exist yet)."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def append_run(
    path: str | Path,
    params: Mapping[str, Any],
    metrics: Mapping[str, Any],
    run_name: str | None = None,
) -> dict[str, Any]:
    """Append one run (time, name, `params.*`, `metrics.*` columns) to the CSV at `path`."""
    row: dict[str, Any] = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run": run_name or "",
        **_flat("params", params),
        **_flat("metrics", metrics),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # two training jobs of a region may finish together: read-append-rewrite under a lock
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = [*read_runs(path), row]
        columns: list[str] = []
        for r in rows:
            columns += [k for k in r if k not in columns]
        with atomic_output(path) as tmp:
            with tmp.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=columns)
                writer.writeheader()
                writer.writerows(rows)
    return row


def mlflow_available() -> bool:
    return importlib.util.find_spec("mlflow") is not None


def log_mlflow(
    params: Mapping[str, Any],
    metrics: Mapping[str, Any],
    *,
    experiment: str,
    tracking_uri: str | None = None,
    run_name: str | None = None,
) -> bool:
    """Log the run to MLflow when it is installed; False (and a warning) when it is not."""
    if not mlflow_available():
        log.warning("run tracking: mlflow is not installed; the run is only in the CSV table")
        return False
    import mlflow

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    numeric = {
        k: float(v)
        for k, v in _flat("", metrics).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    with mlflow.start_run(run_name=run_name):
        mlflow.log_params({k: str(v)[:500] for k, v in _flat("", params).items()})
        mlflow.log_metrics(numeric)
    return True
