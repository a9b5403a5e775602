"""matplotlib for modules that also do other things: imported on first use, with the Agg
backend, so the many jobs that draw nothing (predictions, datasets) do not pay its start-up."""

from __future__ import annotations

from types import ModuleType


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
