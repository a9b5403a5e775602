"""A job's product quicklook for the Snakemake report: every panel of the viewer (input, product,
uncertainty) on one representative date, side by side with shared colour scales."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from lstfill.io import atomic_output
from lstfill.plotting import pyplot
from lstfill.viewer.build import COLOUR_MAPS
from lstfill.viewer.layers import JobView


def representative_time(view: JobView) -> dt.datetime:
    """The date with the most panels, and among those the one whose input (the first panel)
    is closest to half valid: a map that shows both what was observed and what was made."""

    def score(when: dt.datetime) -> tuple[int, float]:
        frames = [p.frame_at(when) for p in view.panels]
        first = frames[0]
        valid = float(np.isfinite(first).mean()) if first is not None else 0.0
        return (sum(f is not None for f in frames), -abs(valid - 0.5))

    return max(view.times, key=score)


def plot_product(view: JobView, out_png: str | Path, dpi: int = 100) -> Path:
    """Write the quicklook of `view` on its representative date."""
    plt = pyplot()
    when = representative_time(view)
    shown = [(p, p.frame_at(when)) for p in view.panels]
    shown = [(p, f) for p, f in shown if f is not None]
    ranges = {}
    for kind in {p.kind for p, _ in shown}:
        values = np.concatenate([f[np.isfinite(f)] for p, f in shown if p.kind == kind] or [[]])
        lo, hi = np.percentile(values, [2, 98]) if values.size else (0.0, 1.0)
        ranges[kind] = (0.0 if kind == "uncertainty" else float(lo), float(hi))
    fig, axes = plt.subplots(1, len(shown), figsize=(3.6 * len(shown), 3.8), squeeze=False)
    for ax, (panel, frame) in zip(axes[0], shown, strict=True):
        lo, hi = ranges[panel.kind]
        image = ax.imshow(frame, cmap=COLOUR_MAPS[panel.kind], vmin=lo, vmax=hi,
                          interpolation="nearest")  # fmt: skip
        ax.set_title(panel.title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        bar = fig.colorbar(image, ax=ax, orientation="horizontal", fraction=0.05, pad=0.04)
        bar.set_label("NDVI" if panel.units == "1" else panel.units, fontsize=8)
    stamp = (
        f"{when:%Y-%m-%d}" if (when.hour, when.minute) == (0, 0) else f"{when:%Y-%m-%d %H:%M} UTC"
    )
    fig.suptitle(f"{view.title}: {stamp}", fontsize=10)
    fig.tight_layout()
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return Path(out_png)
