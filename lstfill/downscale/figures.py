"""The downscaling figure: predicted vs observed deviation per split and the feature-group
importance."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lstfill.io import atomic_output
from lstfill.plotting import pyplot


def plot_evaluation(
    scatter: Mapping[str, tuple[np.ndarray, np.ndarray]],
    metrics: Mapping[str, Any],
    path: str | Path,
) -> None:
    """Predicted vs observed deviation per split (2-D histogram, 1:1 line) and the importance."""
    plt = pyplot()
    kinds = list(scatter)
    fig, axes = plt.subplots(
        2, len(kinds), figsize=(5.2 * len(kinds), 9), squeeze=False, constrained_layout=True
    )
    for j, kind in enumerate(kinds):
        obs, pred = scatter[kind]
        s = metrics["splits"][kind]
        ax = axes[0, j]
        lim = float(np.percentile(np.abs(np.concatenate([obs, pred])), 99.5)) or 1.0
        h = ax.hist2d(obs, pred, bins=80, range=[[-lim, lim], [-lim, lim]], cmin=1, cmap="viridis")
        fig.colorbar(h[3], ax=ax, label="samples")
        ax.plot([-lim, lim], [-lim, lim], "k--", lw=1)
        ax.set_xlabel("observed deviation from the 9x9 mean (K)")
        ax.set_ylabel("predicted deviation (K)")
        m, b = s["methods"]["model_mlp"], s["methods"]["baseline_zero"]
        lin = s["methods"].get("baseline_linear", {}).get("rmse", float("nan"))
        ax.set_title(
            f"{kind} split, test RMSE: MLP {m['rmse']:.3f} K, predict-0 {b['rmse']:.3f} K, "
            f"linear {lin:.3f} K\nMSE improvement {s['improvement_pct']:.1f} % "
            f"({s['n_samples']} samples)",
            fontsize=10,
        )
        ax = axes[1, j]
        imp = metrics["importance"][kind]
        names = list(imp)[::-1]
        ax.barh(
            names,
            [imp[n]["mse_increase_pct"] for n in names],
            xerr=[100 * imp[n]["mse_increase_std"] / m["mse"] for n in names],
            color="C1",
        )
        ax.set_xlabel("MSE rise when the group is permuted (% of model MSE)")
        ax.set_title(f"feature-group importance, {kind} split")
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
