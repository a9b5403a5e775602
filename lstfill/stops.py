"""Clean stops: SIGTERM and SIGINT unwind the running step so that its temporary files go.

SLURM sends SIGTERM at a job's time limit and on `scancel`; Snakemake and a terminal send SIGINT.
Python's default SIGTERM handler ends the process at once, so the `finally` blocks of
:func:`lstfill.io.atomic_output` never run and hidden `.name.tmp` files stay beside the outputs.
:func:`install_stop_handlers` turns either signal into a :class:`Stopped` exception instead: the
stack unwinds, every temporary file is removed, and :func:`exit_for` ends the process the way the
signal would have (killed by that signal, so the caller sees the signal's code, 128 + n in a
shell).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(BaseException):
    """The process was asked to stop by a signal (a BaseException, so that `except Exception`
    clauses do not swallow it)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


def _raise_stopped(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
    # a second signal while unwinding is ignored: the cleanup of the first must finish
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise Stopped(signum)


def install_stop_handlers() -> None:
    """Turn SIGTERM and SIGINT into :class:`Stopped` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in STOP_SIGNALS:
        signal.signal(sig, _raise_stopped)


def exit_for(stop: Stopped) -> None:
    """End the process as the signal itself would have: default handler, then the signal again."""
    logging.getLogger("lstfill").error(
        "%s: the step stopped; its temporary files were removed", stop
    )
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(stop.signum, signal.SIG_DFL)
    os.kill(os.getpid(), stop.signum)
    os._exit(128 + stop.signum)  # only reached where the signal cannot end the process
