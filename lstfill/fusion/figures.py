"""The fusion evaluation figure: one withheld scene as maps (observed, fused, errors) and the
NDVI series of a few pixels (Sentinel-2 observations, coarse series, fused series, truth)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from lstfill.fusion.baselines import nearest
from lstfill.fusion.coarse import CoarseSeries
from lstfill.fusion.evaluate import first_variable
from lstfill.fusion.inputs import number_day
from lstfill.fusion.method import ArrayScene, EfastSettings, FusionResult, fuse
from lstfill.io import atomic_output
from lstfill.plotting import pyplot


def _example(scenes: Sequence[ArrayScene], metrics: dict) -> int:
    """The clearest withheld scene."""
    dates = set(metrics["test_dates"])
    candidates = [i for i, s in enumerate(scenes) if str(getattr(s, "date", s.day)) in dates]
    return max(candidates, key=lambda i: float(scenes[i].mask.mean()))


def _pixels(mask: np.ndarray, n: int = 3) -> list[tuple[int, int]]:
    """`n` pixels spread over the grid (quartiles of the rows and columns)."""
    h, w = mask.shape
    spots = [(h // 4, w // 4), (h // 2, 3 * w // 4), (3 * h // 4, w // 3)]
    return spots[:n]


def evaluation_figure(
    scenes: Sequence[ArrayScene],
    coarse: CoarseSeries,
    settings: EfastSettings,
    metrics: dict,
    daily: Mapping[float, np.ndarray],
    out_png: str | Path,
    truth: Mapping[float, np.ndarray] | None = None,
) -> Path:
    """The figure; `daily` is the operational NDVI of every day of the period
    (:func:`lstfill.fusion.evaluate.daily_fused`)."""
    plt = pyplot()
    scenes, coarse = first_variable(scenes, coarse)
    i = _example(scenes, metrics)
    target = scenes[i]
    inputs = [s for j, s in enumerate(scenes) if j != i]
    shape = target.data.shape[1:]
    fused = fuse(inputs, coarse, target.day, shape, settings)
    assert isinstance(fused, FusionResult)
    near = nearest(inputs, coarse, target.day, settings)
    obs = np.where(target.mask, target.data[0], np.nan)
    days = np.array(sorted(daily))
    period = (days[0], days[-1])
    pixels = _pixels(target.mask)
    series = np.array([[daily[d][0][r, c] for r, c in pixels] for d in days])

    fig = plt.figure(figsize=(15, 8.5), constrained_layout=True)
    grid = fig.add_gridspec(2, 4)
    lo, hi = np.nanpercentile(obs, [2, 98])
    label = number_day(target.day).isoformat()
    panels = (
        (obs, f"withheld Sentinel-2 NDVI, {label}", "YlGn", lo, hi),
        (fused.fused[0], "model_efast without it", "YlGn", lo, hi),
        (fused.fused[0] - obs, "model_efast error", "RdBu_r", -0.15, 0.15),
        (near[0] - obs, "baseline_nearest error", "RdBu_r", -0.15, 0.15),
    )
    for k, (arr, title, cmap, vmin, vmax) in enumerate(panels):
        ax = fig.add_subplot(grid[0, k])
        im = ax.imshow(arr, cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
        fig.colorbar(im, ax=ax, shrink=0.8)
    for r, c in pixels:
        ax = fig.axes[0]
        ax.plot(c, r, "o", mfc="none", mec="magenta")
    ax = fig.add_subplot(grid[1, :3])
    rc = [(r // settings.ratio, c // settings.ratio) for r, c in pixels]
    colors = ("tab:blue", "tab:orange", "tab:green")
    for k, ((r, c), (cr, cc)) in enumerate(zip(pixels, rc, strict=True)):
        color = colors[k]
        ax.plot(days, series[:, k], "-", color=color, lw=1.5, label=f"fused, pixel {k + 1}")
        ax.plot(
            coarse.days,
            coarse.values[:, 0, cr, cc],
            ":",
            color=color,
            lw=1,
            label=f"coarse, pixel {k + 1}",
        )
        s_days = [s.day for s in scenes if s.mask[r, c]]
        s_vals = [s.data[0, r, c] for s in scenes if s.mask[r, c]]
        ax.plot(s_days, s_vals, "o", color=color, ms=5, label=f"Sentinel-2, pixel {k + 1}")
        if truth:
            t_days = sorted(truth)
            ax.plot(
                t_days,
                [truth[d][r, c] for d in t_days],
                "--",
                color=color,
                lw=0.8,
                alpha=0.6,
                label=f"truth, pixel {k + 1}",
            )
    ax.axvline(target.day, color="grey", lw=0.8)
    ax.set_xlim(period[0] - 1, period[1] + 1)
    ticks = np.linspace(period[0], period[1], 6)
    ax.set_xticks(ticks, [number_day(t).isoformat() for t in ticks], fontsize=8)
    ax.set_ylabel("NDVI")
    ax.legend(fontsize=7, ncol=3)
    ax.set_title("NDVI series (the grey line is the withheld day)", fontsize=9)
    ax = fig.add_subplot(grid[1, 3])
    names = list(metrics["methods"])
    rmse = [metrics["methods"][m]["rmse"] for m in names]
    ax.barh(names, rmse, color=["tab:red" if m.startswith("model") else "grey" for m in names])
    ax.set_xlabel("NDVI RMSE, withheld scenes (mean over dates)")
    ax.invert_yaxis()
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return Path(out_png)
