"""Logging for workflow scripts: everything, tracebacks included, goes to the rule's log file."""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path


def setup_logging(log_path: str | Path | None = None, level: int = logging.INFO) -> None:
    """Log to `log_path` (and stderr); uncaught exceptions are logged before the script exits."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    logging.getLogger("lstfill").info("running on %s%s", socket.gethostname(), _slurm_job())

    def _hook(exc_type, exc, tb):  # noqa: ANN001
        logging.getLogger("lstfill").error("failed: %s", exc, exc_info=(exc_type, exc, tb))

    sys.excepthook = _hook


def _slurm_job() -> str:
    """' in SLURM job N' inside a SLURM allocation (step too, where there is one), else ''."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return ""
    step = os.environ.get("SLURM_STEP_ID")
    return f" in SLURM job {job}" + (f" step {step}" if step else "")
