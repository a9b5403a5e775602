"""The gap-fill evaluation figure: one artificial-gap example as maps, and error by gap size and
by distance to the nearest clear pixel for the model and every baseline."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lstfill.gapfill.evaluate import Pair, hidden_mask  # noqa: E402
from lstfill.gapfill.inputs import FillResult, LstSeries  # noqa: E402
from lstfill.io import atomic_output  # noqa: E402


def _example_pair(series: LstSeries, pairs: Sequence[Pair]) -> Pair:
    """The pair whose hidden share is closest to one half (a readable example)."""
    valid = series.valid

    def share(p: Pair) -> float:
        h = hidden_mask(valid[p.target], valid[p.donor], series.land).sum()
        return abs(h / max(valid[p.target].sum(), 1) - 0.5)

    return min(pairs, key=share)


def plot_evaluation(
    series: LstSeries,
    pairs: Sequence[Pair],
    methods: dict[str, Callable[[LstSeries, int], FillResult]],
    result: dict[str, Any],
    out_png: str | Path,
    model: str = "model_patch_cnn",
) -> Path:
    """Truth / gappy input / filled / error maps of one pair, and RMSE by gap size and distance."""
    pair = _example_pair(series, pairs)
    t = pair.target
    hidden = hidden_mask(series.valid[t], series.valid[pair.donor], series.land)
    gappy = series.with_hidden(t, hidden)
    filled = methods[model](gappy, t).lst
    truth = series.lst[t]
    lo, hi = np.nanpercentile(truth, [2, 98])
    err = np.where(hidden, filled - truth, np.nan)

    fig = plt.figure(figsize=(15, 8.5), constrained_layout=True)
    grid = fig.add_gridspec(2, 4)
    panels = (
        (truth, f"observed LST (K), {series.ids[t]}", "inferno", lo, hi),
        (
            gappy.lst[t],
            f"input with hidden pixels (mask of {series.ids[pair.donor]})",
            "inferno",
            lo,
            hi,
        ),
        (
            np.where(series.land, np.where(hidden, filled, truth), np.nan),
            f"{model} filled",
            "inferno",
            lo,
            hi,
        ),
        (err, f"{model} error on hidden pixels (K)", "RdBu_r", -4, 4),
    )
    for i, (arr, title, cmap, vmin, vmax) in enumerate(panels):
        ax = fig.add_subplot(grid[0, i])
        im = ax.imshow(arr, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.8)
    strata = (
        ("by_gap_size", "gap size (pixels)"),
        ("by_distance", "distance to nearest clear pixel (m)"),
    )
    for j, (key, xlabel) in enumerate(strata):
        ax = fig.add_subplot(grid[1, 2 * j : 2 * j + 2])
        names = list(result["methods"])
        labels = list(result["methods"][model][key])
        width = 0.8 / len(names)
        for k, name in enumerate(names):
            bins = result["methods"][name][key]
            vals = [bins.get(lab, {}).get("rmse", np.nan) for lab in labels]
            ax.bar(np.arange(len(labels)) + k * width, vals, width, label=name)
        ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("RMSE on hidden pixels (K)")
        ax.grid(axis="y", alpha=0.3)
        if j == 0:
            ax.legend(fontsize=8)
    fig.suptitle(
        f"artificial-gap evaluation: {result['n_pairs']} pairs, "
        f"{result['n_hidden_pixels']} hidden pixels"
    )
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return Path(out_png)
