"""What the viewer and the report quicklooks show of each job: its maps (the input beside the
product, and the uncertainty where there is one) per date, and which of them make the time series
at a clicked pixel.

Each job's maps are read with the job's own readers (the same range checks as the job), so a map
in the viewer is exactly the file the job wrote or read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio

from lstfill.downscale.inputs import file_for_year
from lstfill.errors import InputError
from lstfill.fusion.inputs import read_fine_scene
from lstfill.gapfill.inputs import load_cubes
from lstfill.io import load_netcdf
from lstfill.sources import israel
from lstfill.superres.inputs import read_day_scene

TITLES = {
    "gapfill": "Gap-fill (70 m ECOSTRESS LST)",
    "superres": "Super-resolution (1 km MODIS LST to 250 m)",
    "fusion": "Fusion (daily fine NDVI from Sentinel-2 and a coarse series, EFAST)",
    "downscale": "Downscaling (9x9 topography MLP)",
}


@dataclass
class Panel:
    """One map per date of one quantity: `frames[i]` (NaN = no data) belongs to `times[i]`."""

    key: str
    title: str
    kind: str  # "lst" | "ndvi" | "uncertainty": sets the colour map and the shared stretch
    units: str
    times: list[dt.datetime]
    frames: list[np.ndarray]

    def frame_at(self, when: dt.datetime) -> np.ndarray | None:
        """The frame of `when`, or None where this panel has none that day."""
        return self.frames[self.times.index(when)] if when in self.times else None


@dataclass(frozen=True)
class Series:
    """A line (or points) of the clicked pixel's time series: the values of `panel` there,
    with a 90 % interval of ± `interval` (a panel of half-widths) where given."""

    panel: str
    label: str
    style: str = "line"  # "line" | "points"
    interval: str | None = None


@dataclass
class JobView:
    """A job's panels (the first one the input, then the product(s)) and series."""

    job: str
    title: str
    panels: list[Panel]
    series: list[Series]
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def times(self) -> list[dt.datetime]:
        """Every date any panel has, sorted: the positions of the date slider."""
        return sorted({t for p in self.panels for t in p.times})

    def panel(self, key: str) -> Panel:
        return next(p for p in self.panels if p.key == key)


def _read_bands(path: str | Path, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Bands of a product by description, as float32 with nodata as NaN."""
    try:
        with rasterio.open(path) as src:
            desc = list(src.descriptions)
            missing = [n for n in names if n not in desc]
            if missing:
                raise InputError(path, f"product lacks bands {missing} (has {desc})")
            out = {}
            for name in names:
                arr = src.read(desc.index(name) + 1, masked=True).astype(np.float32)
                out[name] = arr.filled(np.nan)
            return out
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(path, f"cannot read product: {exc}") from exc


def _day(stem: str) -> dt.datetime:
    """A YYYYMMDD file stem as midnight UTC."""
    return dt.datetime.strptime(stem[:8], "%Y%m%d").replace(tzinfo=dt.UTC)


def gapfill_view(cubes: Sequence[str | Path], products: Sequence[str | Path]) -> JobView:
    """ECOSTRESS LST with its cloud gaps (the cubes), the filled LST and its 90 % half-width."""
    series = load_cubes(cubes)
    times = [dt.datetime.fromisoformat(str(t)).replace(tzinfo=dt.UTC) for t in series.times]
    by_id = dict(zip(series.ids, times, strict=True))
    filled_times, filled, halfwidth = [], [], []
    for path in sorted(products):
        acquisition = Path(path).stem
        if acquisition not in by_id:
            raise InputError(path, f"no cube of acquisition {acquisition} among the inputs")
        bands = _read_bands(path, ["lst", "uncertainty_90"])
        filled_times.append(by_id[acquisition])
        filled.append(bands["lst"])
        halfwidth.append(bands["uncertainty_90"])
    panels = [
        Panel("observed", "ECOSTRESS LST (clear sky)", "lst", "K", times, list(series.lst)),
        Panel("filled", "Gap-filled LST", "lst", "K", filled_times, filled),
        Panel("halfwidth", "90 % interval half-width", "uncertainty", "K", filled_times,
              halfwidth),
    ]  # fmt: skip
    return JobView(
        "gapfill",
        TITLES["gapfill"],
        panels,
        [
            Series("observed", "observed LST", "points"),
            Series("filled", "gap-filled LST (90 % interval)", "line", interval="halfwidth"),
        ],
    )


def superres_view(
    scenes: Sequence[str | Path], products: Mapping[str, Sequence[str | Path]]
) -> JobView:
    """MODIS 1 km LST (with its gaps) beside each variant's 250 m product."""
    coarse = [read_day_scene(p) for p in sorted(scenes)]
    panels = [
        Panel(
            "coarse", "MODIS LST 1 km", "lst", "K",
            [dt.datetime.combine(s.date, dt.time(), dt.UTC) for s in coarse],
            [s.lst.astype(np.float32) for s in coarse],
        )
    ]  # fmt: skip
    series = [Series("coarse", "1 km LST", "points")]
    for variant, paths in products.items():
        paths = sorted(paths)
        panels.append(
            Panel(
                variant, f"{variant} 250 m LST", "lst", "K",
                [_day(Path(p).stem) for p in paths],
                [_read_bands(p, ["lst"])["lst"] for p in paths],
            )
        )  # fmt: skip
        series.append(Series(variant, f"{variant} 250 m"))
    return JobView("superres", TITLES["superres"], panels, series)


def fusion_view(
    coarse: str | Path,
    s2_grids: Sequence[str | Path],
    products: Sequence[str | Path],
    min_clear: float,
) -> JobView:
    """The coarse daily NDVI, the Sentinel-2 NDVI of the scene days (clear pixels only) and the
    fused daily NDVI."""
    with load_netcdf(coarse, "fusion coarse series") as ds:
        if "ndvi" not in ds:
            raise InputError(coarse, "lacks ndvi; rebuild it (rule fusion_coarse)")
        coarse_times = [
            dt.datetime.fromisoformat(str(t)[:19]).replace(tzinfo=dt.UTC)
            for t in ds["time"].values.astype("datetime64[s]")
        ]
        coarse_ndvi = list(ds["ndvi"].values.astype(np.float32))
    scenes = [read_fine_scene(p, ["b04", "b08"], min_clear) for p in s2_grids]
    scenes = sorted(scenes, key=lambda s: s.date)
    paths = sorted(products)
    panels = [
        Panel("coarse", "Coarse NDVI", "ndvi", "1", coarse_times, coarse_ndvi),
        Panel(
            "s2", "Sentinel-2 NDVI (clear pixels)", "ndvi", "1",
            [dt.datetime.combine(s.date, dt.time(), dt.UTC) for s in scenes],
            [s.data[0] for s in scenes],
        ),
        Panel(
            "fused", "Fused NDVI", "ndvi", "1",
            [_day(Path(p).stem) for p in paths],
            [_read_bands(p, ["ndvi"])["ndvi"] for p in paths],
        ),
    ]  # fmt: skip
    series = [
        Series("coarse", "coarse NDVI", "points"),
        Series("s2", "Sentinel-2 NDVI", "points"),
        Series("fused", "fused NDVI"),
    ]
    return JobView("fusion", TITLES["fusion"], panels, series)


def downscale_view(
    lst_files: Sequence[str | Path], products: Sequence[str | Path], qa_strict: bool
) -> JobView:
    """Each band's observed 1 km LST of the product days beside its downscaled map (the 9x9
    mean plus the MLP's deviation)."""
    paths = sorted(products)
    times = [_day(Path(p).stem) for p in paths]
    with rasterio.open(paths[0]) as src:
        bands = [d for d in src.descriptions if d]
    observed: dict[str, list[np.ndarray]] = {b: [] for b in bands}
    mapped: dict[str, list[np.ndarray]] = {b: [] for b in bands}
    for path, when in zip(paths, times, strict=True):
        doy = when.timetuple().tm_yday - 1
        year_file = file_for_year(lst_files, when.year)
        data = israel.read_israel_lst(year_file, qa_strict=qa_strict, days=[doy])
        product = _read_bands(path, bands)
        for band in bands:
            observed[band].append(data.lst(band)[0].astype(np.float32))
            mapped[band].append(product[band])
    panels, series = [], []
    for band in bands:
        panels.append(
            Panel(f"observed_{band}", f"Observed LST ({band})", "lst", "K", times, observed[band])
        )
        panels.append(
            Panel(f"mapped_{band}", f"Downscaled LST ({band})", "lst", "K", times, mapped[band])
        )
        series += [
            Series(f"observed_{band}", f"observed {band}", "points"),
            Series(f"mapped_{band}", f"downscaled {band}"),
        ]
    return JobView("downscale", TITLES["downscale"], panels, series)  # fmt: skip
