"""PNG quicklooks of a cube (LST with gaps, NDVI, T2M, DEM) and a summary of a region's cubes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

from lstfill.io import atomic_output  # noqa: E402

PANELS = (
    ("lst", "LST (K), gaps blank", "inferno"),
    ("ndvi", "NDVI (nearest clear S2)", "YlGn"),
    ("t2m", "INCA T2M (K)", "coolwarm"),
    ("elevation", "elevation (m)", "terrain"),
)


def plot_quicklook(cube_path: str | Path, out_png: str | Path, dpi: int = 100) -> Path:
    """Four panels of one cube, with grid extent in km and the acquisition time in the title."""
    with xr.open_dataset(cube_path) as ds:
        extent = [float(ds.x.min()), float(ds.x.max()), float(ds.y.min()), float(ds.y.max())]
        extent = [v / 1000 for v in extent]
        time = str(ds.time.values[0])[:19] if "time" in ds.coords else ""
        fig, axes = plt.subplots(2, 2, figsize=(9, 8), constrained_layout=True)
        for ax, (name, title, cmap) in zip(axes.ravel(), PANELS, strict=True):
            arr = ds[name].values
            arr = arr[0] if arr.ndim == 3 else arr
            if np.isfinite(arr).any():
                lo, hi = np.nanpercentile(arr, [2, 98])
            else:
                lo, hi = 0, 1
            im = ax.imshow(arr, cmap=cmap, vmin=lo, vmax=hi, extent=extent, interpolation="nearest")
            ax.set_title(title)
            ax.set_xlabel("x (km)")
            ax.set_ylabel("y (km)")
            fig.colorbar(im, ax=ax, shrink=0.8)
        valid = float(ds.attrs.get("valid_fraction", np.nan))
        fig.suptitle(f"{ds.attrs.get('acquisition', '')}  {time} UTC   clear: {100 * valid:.0f} %")
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return Path(out_png)


def summarise_cubes(
    cube_paths: list[str | Path], out_csv: str | Path, out_png: str | Path
) -> pd.DataFrame:
    """Table (CSV) and figure of clear fraction, LST and S2 age per acquisition."""
    rows = []
    for path in cube_paths:
        with xr.open_dataset(path) as ds:
            lst = ds["lst"].values
            rows.append(
                {
                    "acquisition": ds.attrs["acquisition"],
                    "time_utc": dt.datetime.fromisoformat(str(ds.time.values[0])[:19]).isoformat(),
                    "valid_fraction": float(ds.attrs["valid_fraction"]),
                    "lst_mean_k": float(np.nanmean(lst)) if np.isfinite(lst).any() else np.nan,
                    "t2m_mean_k": float(np.nanmean(ds["t2m"].values)),
                    "s2_abs_age_days_median": float(np.nanmedian(np.abs(ds["s2_age_days"].values)))
                    if np.isfinite(ds["s2_age_days"].values).any()
                    else np.nan,
                }
            )
    table = pd.DataFrame(rows).sort_values("acquisition")
    with atomic_output(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    times = pd.to_datetime(table["time_utc"])
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, constrained_layout=True)
    ax1.bar(times, 100 * table["valid_fraction"], width=0.6)
    ax1.set_ylabel("clear LST pixels (%)")
    ax2.plot(times, table["lst_mean_k"], "o", label="mean clear LST")
    ax2.plot(times, table["t2m_mean_k"], "s", label="mean INCA T2M")
    ax2.set_ylabel("K")
    ax2.legend()
    fig.suptitle(f"{len(table)} acquisitions")
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return table
