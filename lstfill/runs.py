"""Run tracking: every training run writes one row file (its time, name, parameters and
metrics, as JSON), a declared output of its rule; a collecting rule gathers the row files of a
job into one CSV table; and, when MLflow is installed and enabled, the run is logged to MLflow
too, as the seed project did with its mlruns history.

The CSV is the record that always exists; its columns are the union of every run's keys (a run
that lacks a column leaves it empty). No two jobs ever write the same file, so nothing is locked.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lstfill.errors import InputError
from lstfill.io import atomic_output, write_json

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
    """The rows of a runs table."""
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


def run_row(
    params: Mapping[str, Any], metrics: Mapping[str, Any], run_name: str | None = None
) -> dict[str, Any]:
    """One run as a flat row: time, name, `params.*` and `metrics.*` columns."""
    return {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run": run_name or "",
        **_flat("params", params),
        **_flat("metrics", metrics),
    }


def write_run(
    path: str | Path,
    params: Mapping[str, Any],
    metrics: Mapping[str, Any],
    run_name: str | None = None,
) -> dict[str, Any]:
    """Write one run's row file (JSON) at `path`; returns the row."""
    row = run_row(params, metrics, run_name)
    write_json(path, row)
    return row


def collect_runs(row_files: Sequence[str | Path], out: str | Path) -> list[dict[str, Any]]:
    """The runs table at `out` (CSV): one row per row file, in the order given; InputError
    naming a row file that is missing or not a run's row."""
    rows: list[dict[str, Any]] = []
    for path in row_files:
        try:
            row = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise InputError(path, f"cannot read the run's row: {exc}") from exc
        if not isinstance(row, dict) or "time" not in row:
            raise InputError(path, "is not a run's row (no time column)")
        rows.append(row)
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    with atomic_output(out) as tmp:
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    return rows


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
