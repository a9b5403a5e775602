"""The fusion job's evaluation: withheld Sentinel-2 scenes, scored for every method on the same
pixels (seed 002's gap validation, done by date).

- ``withheld``: each test scene (at least ``min_clear`` observed) is removed from the inputs,
  with any other scene of its day, and its day is fused from every other scene and the whole
  coarse series;
- ``gap``: every scene within ``gap_days / 2`` of the test day is removed as well (seed 002's
  green-up gap experiment);
- ``truth`` (demo only): the operational product of every day (all scenes in) against the
  demo's gap-free daily truth, on every pixel.

No test scene contributes to anything that scores it: the method has no trained state, and its
parameters are the paper's. Every method is scored on the pixels where the test scene is
observed and every method has a value; each method's coverage of the test scene is reported
beside. Method-level figures are the mean over the test dates.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np

from lstfill.fusion.baselines import BASELINES
from lstfill.fusion.coarse import CoarseSeries
from lstfill.fusion.method import ArrayScene, EfastSettings, fuse
from lstfill.metrics import ssim

log = logging.getLogger(__name__)

MODEL = "model_efast"
METRICS = ("rmse", "mae", "bias", "r2", "nse", "ssim", "n")


def scores(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """rmse, mae, bias (pred - truth), r2 (squared Pearson correlation), nse (1 - SSE/SST),
    ssim (Wang et al. 2004, over the mask) and n, on the pixels of `mask`."""
    p, t = pred[mask].astype(np.float64), truth[mask].astype(np.float64)
    n = p.size
    if n < 2:
        return {**dict.fromkeys(METRICS[:-1], math.nan), "n": float(n)}
    err = p - t
    sst = float(np.sum((t - t.mean()) ** 2))
    r = np.corrcoef(p, t)[0, 1] if p.std() > 0 and t.std() > 0 else math.nan
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "bias": float(np.mean(err)),
        "r2": float(r**2),
        "nse": 1.0 - float(np.sum(err**2)) / sst if sst > 0 else math.nan,
        "ssim": ssim(pred, truth, mask),
        "n": float(n),
    }


def predict_all(
    inputs: Sequence[ArrayScene],
    coarse: CoarseSeries,
    day: float,
    settings: EfastSettings,
    lacking: Sequence[int] = (),
    fused: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every method's (bands, rows, cols) prediction of `day` from the same inputs; the coarse
    baseline is NaN for the variables the coarse sensor lacks. `fused`: EFAST's prediction from
    these inputs when it is already at hand."""
    if fused is None:
        fused = fuse(inputs, coarse, day, inputs[0].data.shape[1:], settings).fused
    preds = {MODEL: fused}
    for name, method in BASELINES.items():
        preds[name] = method(inputs, coarse, day, settings)
    preds["baseline_coarse"][list(lacking)] = np.nan
    return preds


def _score_target(
    target: ArrayScene, preds: Mapping[str, np.ndarray], names: Sequence[str]
) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, float]]:
    """{band: {method: scores}} on the common pixels, and each method's NDVI coverage."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for b, band in enumerate(names):
        truth = target.data[b]
        common = target.mask & np.isfinite(truth)
        for pred in preds.values():
            common &= np.isfinite(pred[b])
        out[band] = {m: scores(p[b], truth, common) for m, p in preds.items()}
    observed = max(int(target.mask.sum()), 1)
    coverage = {
        m: float((np.isfinite(p[0]) & target.mask).sum() / observed) for m, p in preds.items()
    }
    return out, coverage


def _mean(records: Sequence[Mapping[str, float]]) -> dict[str, float]:
    out = {}
    for key in METRICS:
        vals = [r[key] for r in records if math.isfinite(r.get(key, math.nan))]
        out[key] = float(np.sum(vals) if key == "n" else np.mean(vals)) if vals else math.nan
    return out


def withheld_targets(
    scenes: Sequence[ArrayScene], min_clear: float, period: tuple[float, float] | None = None
) -> list[int]:
    """Indices of the scenes clear enough to withhold (inside `period` when given)."""
    out = []
    for i, s in enumerate(scenes):
        inside = period is None or period[0] <= s.day <= period[1]
        if inside and float(s.mask.mean()) >= min_clear:
            out.append(i)
    return out


def withheld_protocol(
    scenes: Sequence[ArrayScene],
    coarse: CoarseSeries,
    settings: EfastSettings,
    names: Sequence[str],
    targets: Sequence[int],
    gap_days: float | None = None,
    lacking: Sequence[int] = (),
) -> dict:
    """Scores of every method per test date and their means (see the module docstring)."""
    per_target: dict[str, dict] = {}
    for i in targets:
        target = scenes[i]
        half = gap_days / 2 if gap_days else 0.0
        # every scene of the test day goes (a second tile or spacecraft of the same day is
        # nearly the same observation), and with gap_days every scene within half of it
        inputs = [
            s
            for j, s in enumerate(scenes)
            if j != i and s.day != target.day and abs(s.day - target.day) > half
        ]
        if not inputs:
            log.warning("no fine scene left to predict day %s; skipped", target.day)
            continue
        preds = predict_all(inputs, coarse, target.day, settings, lacking)
        bands, coverage = _score_target(target, preds, names)
        per_target[str(getattr(target, "date", target.day))] = {
            "bands": bands,
            "coverage": coverage,
            "inputs": len(inputs),
        }
    methods = [MODEL, *BASELINES]
    summary = {
        band: {m: _mean([t["bands"][band][m] for t in per_target.values()]) for m in methods}
        for band in names
    }
    coverage = {
        m: float(np.mean([t["coverage"][m] for t in per_target.values()])) if per_target else 0.0
        for m in methods
    }
    return {"bands": summary, "coverage": coverage, "targets": per_target}


def first_variable(
    scenes: Sequence[ArrayScene], coarse: CoarseSeries
) -> tuple[list[ArrayScene], CoarseSeries]:
    """The scenes and the coarse series reduced to their first variable (NDVI), for protocols
    and figures that score only it."""
    one = [ArrayScene(s.day, s.data[:1], s.mask) for s in scenes]
    for src, dst in zip(scenes, one, strict=True):
        dst.date = getattr(src, "date", None)  # type: ignore[attr-defined]
    return one, CoarseSeries(coarse.days, coarse.values[:, :1])


def daily_fused(
    scenes: Sequence[ArrayScene], coarse: CoarseSeries, settings: EfastSettings, days
) -> dict[float, np.ndarray]:
    """EFAST's first variable (NDVI, as (1, rows, cols)) on each day with every scene in: the
    operational product, which the truth protocol scores and the figure draws."""
    scenes, coarse = first_variable(scenes, coarse)
    shape = scenes[0].data.shape[1:]
    return {float(d): fuse(scenes, coarse, float(d), shape, settings).fused for d in days}


def truth_protocol(
    scenes: Sequence[ArrayScene],
    coarse: CoarseSeries,
    settings: EfastSettings,
    truth: Mapping[float, np.ndarray],
    lacking: Sequence[int] = (),
    daily: Mapping[float, np.ndarray] | None = None,
) -> dict:
    """NDVI of every method on each truth day (all scenes as inputs) against the truth, mean
    over days, on the pixels where every method has a value; EFAST's from `daily` where it
    holds the day (:func:`daily_fused`)."""
    records: dict[str, list[dict[str, float]]] = {}
    scenes, coarse = first_variable(scenes, coarse)
    lacking = [i for i in lacking if i == 0]
    daily = daily or {}
    for day, ref in sorted(truth.items()):
        preds = predict_all(scenes, coarse, day, settings, lacking, daily.get(day))
        common = np.isfinite(ref)
        for p in preds.values():
            common &= np.isfinite(p[0])
        for m, p in preds.items():
            records.setdefault(m, []).append(scores(p[0], ref, common))
    return {"days": len(truth), "methods": {m: _mean(r) for m, r in records.items()}}


def evaluate_protocols(
    scenes: Sequence[ArrayScene],
    coarse: CoarseSeries,
    settings: EfastSettings,
    names: Sequence[str],
    *,
    min_clear: float,
    gap_days: float,
    period: tuple[float, float] | None = None,
    lacking: Sequence[int] = (),
    truth: Mapping[float, np.ndarray] | None = None,
    daily: Mapping[float, np.ndarray] | None = None,
) -> dict:
    """The fusion job's metrics: ``methods`` (NDVI, withheld protocol) plus every protocol
    (`daily`: the operational NDVI of the truth days, if already fused)."""
    targets = withheld_targets(scenes, min_clear, period)
    if not targets:
        raise ValueError(
            f"no Sentinel-2 scene is at least {min_clear:.0%} clear: nothing to withhold "
            "(lower fusion.evaluation.min_clear)"
        )
    withheld = withheld_protocol(scenes, coarse, settings, names, targets, None, lacking)
    gap = withheld_protocol(scenes, coarse, settings, names, targets, gap_days, lacking)
    out = {
        "methods": withheld["bands"][names[0]],
        "protocols": {"withheld": withheld, f"gap_{gap_days:g}d": gap},
        "test_dates": list(withheld["targets"]),
        "settings": {**settings.__dict__, "min_clear": min_clear, "gap_days": gap_days},
        "variable": names[0],
    }
    if truth:
        out["protocols"]["truth"] = truth_protocol(scenes, coarse, settings, truth, lacking, daily)
    return out
