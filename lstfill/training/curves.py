"""The training-curve figure of a run (loss per epoch, best epoch, learning rate)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstfill.io import atomic_output
from lstfill.plotting import pyplot


def plot_training_curve(history: list[dict[str, float]], path: str | Path, title: str = "") -> None:
    """PNG of train/val loss per epoch (log y if positive), best epoch marked, lr on a twin axis."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    if history:
        epochs = np.array([h["epoch"] for h in history], dtype=float)
        train = np.array([h["train_loss"] for h in history], dtype=float)
        val = np.array([h["val_loss"] for h in history], dtype=float)
        lr = np.array([h["lr"] for h in history], dtype=float)
        ax.plot(epochs, train, "o-", ms=3, label="train loss")
        ax.plot(epochs, val, "s-", ms=3, label="validation loss")
        losses = np.concatenate([train, val])
        finite = losses[np.isfinite(losses)]
        if finite.size and (finite > 0).all():
            ax.set_yscale("log")
        if np.isfinite(val).any():
            best = int(np.nanargmin(np.where(np.isfinite(val), val, np.inf)))
            ax.axvline(epochs[best], color="grey", ls=":", lw=1)
            ax.plot(
                epochs[best],
                val[best],
                "*",
                ms=12,
                color="C3",
                label=f"best: epoch {epochs[best]:.0f}, {val[best]:.4g}",
            )
        ax_lr = ax.twinx()
        ax_lr.step(epochs, lr, where="mid", color="C2", alpha=0.6, lw=1)
        ax_lr.set_ylabel("learning rate", color="C2")
        ax_lr.tick_params(axis="y", colors="C2")
        if (lr > 0).all() and lr.max() / lr.min() > 10:
            ax_lr.set_yscale("log")
        ax.legend(loc="upper right")
    else:
        ax.text(0.5, 0.5, "no epochs", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
