"""The super-resolution evaluation figure: one test day as maps (coarse input, every method, fine
truth) on one colour scale, and each method's error map below it."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lstfill.io import atomic_output  # noqa: E402


def plot_comparison(shown: dict[str, np.ndarray], out_png: str | Path) -> Path:
    """`shown` holds 'truth', 'lst' (coarse input) and one fine array per method."""
    truth = shown["truth"]
    methods = [k for k in shown if k not in ("truth", "lst", "_n")]
    factor = truth.shape[0] // shown["lst"].shape[0]
    coarse = np.kron(shown["lst"], np.ones((factor, factor), dtype=np.float32))
    panels = [("coarse input (1 km)", coarse), *[(m, shown[m]) for m in methods], ("truth", truth)]
    lo, hi = np.nanpercentile(truth, [2, 98])
    n = len(panels)
    fig, axes = plt.subplots(2, n, figsize=(2.6 * n, 5.4), squeeze=False)
    for ax, (title, arr) in zip(axes[0], panels, strict=True):
        im = ax.imshow(arr, vmin=lo, vmax=hi, cmap="inferno")
        ax.set_title(title, fontsize=8)
    fig.colorbar(im, ax=axes[0, -1], fraction=0.046, label="LST (K)")
    for ax, (title, arr) in zip(axes[1], panels, strict=True):
        if title == "truth":
            ax.axis("off")
            continue
        err = arr - truth
        rmse = float(np.sqrt(np.nanmean(err**2)))
        em = ax.imshow(err, vmin=-3, vmax=3, cmap="RdBu_r")
        ax.set_title(f"error, RMSE {rmse:.2f} K", fontsize=8)
    fig.colorbar(em, ax=axes[1, -2], fraction=0.046, label="minus truth (K)")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return Path(out_png)
