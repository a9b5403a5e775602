"""One function per fusion rule: build the coarse series, fuse one day, evaluate."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lstfill.errors import InputError
from lstfill.fusion.coarse import CoarseSeries
from lstfill.fusion.inputs import (
    coarse_dataset,
    coarse_from_modis,
    coarse_from_sentinel3,
    coarse_grid,
    coarse_series,
    day_number,
    fusion_bands,
    number_day,
    parse_day,
    read_coarse,
    read_fine_scenes,
)
from lstfill.fusion.method import FLAGS, METHODS, Efast, EfastSettings, FusionResult
from lstfill.grid import Grid
from lstfill.io import FLAG_OVERVIEWS, SMOOTH_OVERVIEWS, write_cog, write_json, write_netcdf

log = logging.getLogger(__name__)

PRODUCT_EXTRA = ("weight", "days_to_fine", "flag")


def efast_settings(fusion: dict[str, Any]) -> EfastSettings:
    """The method's settings from the validated ``fusion`` config block."""
    return EfastSettings(
        ratio=int(fusion["ratio"]),
        sigma=float(fusion["sigma"]),
        D=float(fusion["D"]),
        max_days=float(fusion["max_days"]),
        tolerance=float(fusion["tolerance"]),
        min_importance=float(fusion["min_importance"]),
        composite_days=float(fusion["composite_days"]),
        composite_D=float(fusion["composite_D"]),
        smooth_px=float(fusion["smooth_px"]),
    )


def coarse(
    source: str,
    files: Sequence[str | Path],
    grid: Grid,
    ratio: int,
    bands: Sequence[str],
    out_path: str | Path,
) -> Path:
    """The coarse series of a region (``fusion.coarse``: sentinel3 or modis) on the coarse grid
    that nests in the region grid, as NetCDF."""
    if not files:
        raise InputError(
            out_path, f"no {source} files for the fusion's coarse series: acquire them first"
        )
    cgrid = coarse_grid(grid, ratio)
    if source == "sentinel3":
        days, layers = coarse_from_sentinel3(files, cgrid, bands)
    elif source == "modis":
        days, layers = coarse_from_modis(files, cgrid)
    else:
        raise ValueError(f"unknown coarse source {source!r}")
    for name, values in layers.items():
        share = float(np.isfinite(values).mean())
        log.info("coarse %s %s: %d dates, %.0f %% valid", source, name, len(days), 100 * share)
    return write_netcdf(out_path, coarse_dataset(cgrid, days, layers, source))


@dataclass
class _Inputs:
    """Everything a fusion step reads: settings, fine scenes, the coarse series."""

    settings: EfastSettings
    method: Efast
    names: list[str]
    scenes: list
    series: CoarseSeries
    lacking: list[str]
    source: str


def _load_inputs(s2_paths, coarse_path, fusion, bands, min_clear, grid: Grid) -> _Inputs:
    """The step's settings and inputs, the coarse series checked to nest in the region grid."""
    settings = efast_settings(fusion)
    ratio = settings.ratio
    names = fusion_bands(bands)
    scenes = read_fine_scenes(s2_paths, bands, min_clear)
    cgrid, days, layers, source = read_coarse(coarse_path)
    expected = coarse_grid(grid, ratio)
    if (cgrid.width, cgrid.height) != (expected.width, expected.height) or not (
        cgrid.transform.almost_equals(expected.transform)
    ):
        raise InputError(
            coarse_path, f"is not on the coarse grid of fusion.ratio {ratio}: rebuild it"
        )
    series, lacking = coarse_series(days, layers, names)
    method = METHODS[fusion["method"]](settings)
    return _Inputs(settings, method, names, scenes, series, lacking, source)


def product_tags(result: FusionResult, lacking: list[str], source: str) -> dict[str, Any]:
    """The fused day's provenance: method, settings, the fine dates it rests on, flags."""
    info = result.info
    return {
        "day": number_day(info.day).isoformat(),
        "method": "EFAST (Senty et al. 2024, Remote Sens. 16:1833)",
        "coarse_source": source,
        "sigma_days": info.settings["sigma"],
        "D_coarse_px": info.settings["D"],
        "ratio": info.settings["ratio"],
        "max_days": info.settings["max_days"],
        "tolerance": info.settings["tolerance"],
        "min_importance": info.settings["min_importance"],
        "composite_days": info.settings["composite_days"],
        "composite_D_coarse_px": info.settings["composite_D"],
        "smooth_coarse_px": info.settings["smooth_px"],
        "fine_dates": ",".join(number_day(d).isoformat() for d in info.fine_days),
        "dropped_fine_dates": ",".join(number_day(d).isoformat() for d in info.dropped_days),
        "coarse_dates_in_window": info.coarse_dates,
        "coarse_nearest_date_share": round(info.coarse_nearest_share, 4),
        "coarse_nearest_date": "a coarse value with observations on one side only is taken "
        "from the nearest date (flag 4), not extrapolated",
        "no_coarse_change_bands": ",".join(lacking),
        "flag_bits": "; ".join(f"{bit}: {text}" for bit, text in FLAGS.items()),
        "weight": "sum of the fine acquisitions' weights behind the pixel (1: one clear scene "
        "of the same day far from clouds)",
        "units": "1 (reflectance, NDVI); day (days_to_fine)",
    }


def predict(
    day: str,
    s2_paths: Sequence[str | Path],
    coarse_path: str | Path,
    grid: Grid,
    fusion: dict[str, Any],
    bands: Sequence[str],
    min_clear: float,
    out_path: str | Path,
) -> Path:
    """Fuse the {day} wildcard (YYYYMMDD) and write its COG: NDVI, the reflectance bands,
    weight, days_to_fine and flag."""
    inp = _load_inputs(s2_paths, coarse_path, fusion, bands, min_clear, grid)
    target = day_number(parse_day(day))
    result = inp.method.predict(inp.scenes, inp.series, target, grid.shape)
    assert isinstance(result, FusionResult)
    no_fine = float(np.mean(result.flag & 1 > 0))
    log.info(
        "fused %s from %d fine scene(s) (%s), %d coarse date(s); %.1f %% without fine weight",
        day,
        len(result.info.fine_days),
        ", ".join(number_day(d).isoformat() for d in result.info.fine_days) or "none",
        result.info.coarse_dates,
        100 * no_fine,
    )
    data = np.concatenate(
        [
            result.fused,
            result.weight[None],
            result.days_to_fine[None],
            result.flag[None].astype(np.float32),
        ]
    )
    return write_cog(
        out_path,
        data.astype(np.float32),
        grid.transform,
        grid.crs,
        nodata=float("nan"),
        tags=product_tags(result, inp.lacking, inp.source),
        band_names=[*inp.names, *PRODUCT_EXTRA],
        # overviews: block means of NDVI and the reflectances; weight, days_to_fine and the bit
        # flags keep values of their own (nearest), never a mean or a mixture of bits
        band_resampling=[SMOOTH_OVERVIEWS] * len(inp.names) + [FLAG_OVERVIEWS] * len(PRODUCT_EXTRA),
    )


def read_truth(paths: Sequence[str | Path]) -> dict[float, np.ndarray]:
    """The demo's daily NDVI truth files ({YYYYMMDD}_NDVI_truth.tif) by day number."""
    from lstfill.io import read_raster

    out = {}
    for path in paths:
        data, *_ = read_raster(path)
        out[day_number(parse_day(Path(path).name[:8]))] = np.asarray(data, np.float32)
    return out


def evaluate(
    s2_paths: Sequence[str | Path],
    coarse_path: str | Path,
    grid: Grid,
    fusion: dict[str, Any],
    bands: Sequence[str],
    min_clear: float,
    period: tuple[str, str],
    truth_paths: Sequence[str | Path],
    metrics_path: str | Path,
    figure_path: str | Path,
) -> Path:
    """The withheld-scene and gap protocols (and the demo truth), metrics.json and the figure."""
    from lstfill.fusion import evaluate as protocol
    from lstfill.fusion.figures import evaluation_figure

    inp = _load_inputs(s2_paths, coarse_path, fusion, bands, min_clear, grid)
    span = tuple(day_number(dt.date.fromisoformat(d)) for d in period)
    lacking_idx = [inp.names.index(n) for n in inp.lacking]
    truth = read_truth(truth_paths) if truth_paths else None
    daily = protocol.daily_fused(
        inp.scenes, inp.series, inp.settings, np.arange(span[0], span[1] + 1)
    )
    ev = fusion["evaluation"]
    metrics = protocol.evaluate_protocols(
        inp.scenes,
        inp.series,
        inp.settings,
        inp.names,
        min_clear=float(ev["min_clear"]),
        gap_days=float(ev["gap_days"]),
        period=span,  # type: ignore[arg-type]
        lacking=lacking_idx,
        truth=truth,
        daily=daily,
    )
    metrics["coarse_source"] = inp.source
    for name, row in metrics["methods"].items():
        log.info(
            "%-18s NDVI rmse %.4f  r2 %.3f  ssim %.3f", name, row["rmse"], row["r2"], row["ssim"]
        )
    write_json(metrics_path, metrics)
    evaluation_figure(
        inp.scenes,
        inp.series,
        inp.settings,
        metrics,
        daily,
        figure_path,
        truth,
    )
    return Path(metrics_path)
