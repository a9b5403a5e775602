"""Logging for workflow scripts: everything goes to the rule's log file, and the process ends the
same way for every script: a user error in one line (exit code 2), a bug with its traceback
(exit code 1), a stop signal after its temporary files are removed (see :mod:`lstfill.stops`).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path

from lstfill.errors import LstfillError
from lstfill.stops import Stopped, exit_for, install_stop_handlers

DEBUG_ENV = "LSTFILL_DEBUG"
USER_ERROR = 2


def debugging() -> bool:
    """True where the user asked for tracebacks of user errors too ($LSTFILL_DEBUG=1)."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def setup_logging(log_path: str | Path | None = None, level: int = logging.INFO) -> None:
    """Log to `log_path` (and stderr), end uncaught errors as the module docstring says, and
    turn SIGTERM/SIGINT into a clean stop."""
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
    if debugging():
        logging.getLogger("lstfill").setLevel(logging.DEBUG)
    logging.getLogger("lstfill").info("running on %s%s", socket.gethostname(), _slurm_job())
    sys.excepthook = _end_on_uncaught
    install_stop_handlers()


def _end_on_uncaught(exc_type, exc, tb) -> None:  # noqa: ANN001
    log = logging.getLogger("lstfill")
    if isinstance(exc, Stopped):
        exit_for(exc)
    if isinstance(exc, LstfillError) and not debugging():
        log.error("error: %s", exc)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(USER_ERROR)  # the excepthook cannot set the exit code otherwise
    log.error("failed: %s", exc, exc_info=(exc_type, exc, tb))


def _slurm_job() -> str:
    """' in SLURM job N' inside a SLURM allocation (step too, where there is one), else ''."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return ""
    step = os.environ.get("SLURM_STEP_ID")
    return f" in SLURM job {job}" + (f" step {step}" if step else "")
