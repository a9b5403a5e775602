"""The artificial-gap evaluation protocol: real cloud masks laid over clear scenes.

For a nearly clear target acquisition t and a partly cloudy donor d, the target's pixels that are
clear in t but gaps in d are hidden (`series.with_hidden`), every method fills t from what is
left, and only the hidden pixels are scored against t's original observation. Because the
hidden pixels are blanked once, here, before any method runs, no method can see them.
Errors are also stratified by how far a hidden pixel lies from the nearest visible one and by the
size of the gap it belongs to, since both govern how hard a gap is.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage
from tqdm.auto import tqdm

from lstfill.errors import LstfillError
from lstfill.gapfill.inputs import FillResult, LstSeries
from lstfill.metrics import binned_metrics, interval_coverage, regression_metrics

Filler = Callable[[LstSeries, int], FillResult]

PROTOCOL = (
    "Artificial gaps from real clouds: for each (target, donor) pair the target's clear land "
    "pixels that are gaps in the donor are hidden, each method fills the target from the rest "
    "of the series, and only the hidden pixels are scored against the target's observation."
)


def hidden_mask(target_valid: np.ndarray, donor_valid: np.ndarray, land: np.ndarray) -> np.ndarray:
    """Pixels to hide and score: clear in the target, gap in the donor, on land."""
    return np.asarray(target_valid, bool) & ~np.asarray(donor_valid, bool) & np.asarray(land, bool)


def distance_to_visible(visible: np.ndarray, res_m: float) -> np.ndarray:
    """Euclidean distance (m) from each pixel to the nearest visible pixel (0 on visible ones).

    +inf everywhere when nothing is visible.
    """
    visible = np.asarray(visible, dtype=bool)
    if not visible.any():
        return np.full(visible.shape, np.inf, dtype=np.float32)
    if visible.all():
        return np.zeros(visible.shape, dtype=np.float32)
    dist = ndimage.distance_transform_edt(~visible, sampling=(res_m, res_m))
    return np.asarray(dist, dtype=np.float32)


def gap_size(gaps: np.ndarray) -> np.ndarray:
    """Area (pixels) of the 8-connected gap component each pixel belongs to; 0 outside gaps."""
    gaps = np.asarray(gaps, dtype=bool)
    labels, n = ndimage.label(gaps, structure=np.ones((3, 3), dtype=int))
    if n == 0:
        return np.zeros(gaps.shape, dtype=np.int64)
    areas = np.bincount(labels.ravel())
    areas[0] = 0
    return areas[labels].astype(np.int64)


@dataclass(frozen=True)
class Pair:
    """One evaluation case: the target acquisition and the donor of its cloud mask (indices)."""

    target: int
    donor: int


def select_pairs(
    valid_fraction: np.ndarray,
    *,
    target_min: float = 0.99,
    donor_min: float = 0.2,
    donor_max: float = 0.9,
    candidates: np.ndarray | None = None,
    max_pairs: int = 200,
    seed: int = 0,
) -> list[Pair]:
    """Every (target, donor) with target clear >= target_min and donor clear in
    [donor_min, donor_max], target != donor; `candidates` (bool per acquisition) restricts the
    targets. A target needs a clear pixel whatever `target_min` says: an acquisition with none
    (all cloud, no valid LST) has nothing to hide and score (`no_clear_targets` names them).
    Above `max_pairs`, a seeded random sample of that many. Sorted by (target, donor).
    """
    vf = np.asarray(valid_fraction, dtype=float)
    is_target = (vf >= target_min) & (vf > 0)
    if candidates is not None:
        candidates = np.asarray(candidates, dtype=bool)
        if candidates.shape != vf.shape:
            raise ValueError("candidates must be one flag per acquisition")
        is_target &= candidates
    is_donor = (vf >= donor_min) & (vf <= donor_max)
    pairs = [
        Pair(int(t), int(d))
        for t in np.flatnonzero(is_target)
        for d in np.flatnonzero(is_donor)
        if t != d
    ]
    if len(pairs) > max_pairs:
        rng = np.random.default_rng(seed)
        keep = rng.choice(len(pairs), size=max_pairs, replace=False)
        pairs = [pairs[i] for i in np.sort(keep)]
    return pairs


def no_clear_targets(valid_fraction: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Indices of the candidate targets (bool per acquisition) with no clear pixel: never a
    target of `select_pairs`, and counted apart so that metrics.json can say how many."""
    vf = np.asarray(valid_fraction, dtype=float)
    return np.flatnonzero(np.asarray(candidates, dtype=bool) & ~(vf > 0))


@dataclass
class PairScore:
    """One method's score on one pair, plus per-hidden-pixel arrays for pooled statistics.

    Indexing (`score["rmse"]`) reads the metrics dict.
    """

    metrics: dict[str, float]
    pred: np.ndarray  # prediction at the hidden pixels (1-D)
    truth: np.ndarray  # observation at the hidden pixels (1-D)
    distance_m: np.ndarray  # distance of each hidden pixel to the nearest visible pixel
    gap_size_px: np.ndarray  # area of the gap component each hidden pixel belongs to
    halfwidth90: np.ndarray | None = None  # 90 % interval half-width at the hidden pixels
    subsets: dict[str, np.ndarray] | None = None  # membership of each hidden pixel per subset

    @property
    def errors(self) -> np.ndarray:
        return self.pred - self.truth

    def __getitem__(self, key: str) -> float:
        return self.metrics[key]


def score_pair(
    truth_lst: np.ndarray,
    result: FillResult,
    hidden: np.ndarray,
    visible: np.ndarray,
    res_m: float,
) -> PairScore:
    """Score `result` on the `hidden` pixels of `truth_lst`; `visible` are the target's pixels
    the method could see (distance is measured to them, gap size is that of the hidden mask)."""
    hidden = np.asarray(hidden, dtype=bool)
    pred = np.asarray(result.lst, dtype=np.float64)[hidden]
    truth = np.asarray(truth_lst, dtype=np.float64)[hidden]
    metrics = regression_metrics(pred, truth)
    hw = None
    if result.halfwidth90 is not None:
        hw = np.asarray(result.halfwidth90, dtype=np.float64)[hidden]
        metrics["coverage_90"] = interval_coverage(pred, truth, hw)
        metrics["halfwidth90_mean"] = float(np.nanmean(hw)) if hw.size else math.nan
    return PairScore(
        metrics=metrics,
        pred=pred,
        truth=truth,
        distance_m=distance_to_visible(visible, res_m)[hidden].astype(np.float64),
        gap_size_px=gap_size(hidden)[hidden],
        halfwidth90=hw,
    )


def _stat(values: Sequence[float], fn: Callable[[np.ndarray], Any]) -> float:
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    return float(fn(v)) if v.size else math.nan


def summarise(
    scores: Sequence[PairScore], dist_edges_m: Sequence[float], size_edges_px: Sequence[float]
) -> dict[str, Any]:
    """Pooled metrics over all hidden pixels of all pairs, stratified by distance to the nearest
    visible pixel and by gap size, and the mean/median over pairs of the per-pair metrics; plus
    pooled metrics on each named pixel subset the scores carry (`PairScore.subsets`)."""
    if not scores:
        return {"overall": regression_metrics(np.empty(0), np.empty(0)), "n_pairs": 0}
    pred = np.concatenate([s.pred for s in scores])
    truth = np.concatenate([s.truth for s in scores])
    dist = np.concatenate([s.distance_m for s in scores])
    size = np.concatenate([s.gap_size_px for s in scores])
    rmse = [s.metrics["rmse"] for s in scores]
    out: dict[str, Any] = {
        "overall": regression_metrics(pred, truth),
        "n_pairs": len(scores),
        "rmse_mean": _stat(rmse, np.mean),
        "rmse_median": _stat(rmse, np.median),
        "mae_mean": _stat([s.metrics["mae"] for s in scores], np.mean),
        "bias_mean": _stat([s.metrics["bias"] for s in scores], np.mean),
        "per_pair_rmse": [float(x) for x in rmse],
    }
    if all(s.halfwidth90 is not None for s in scores):
        hw = np.concatenate([s.halfwidth90 for s in scores])  # type: ignore[misc]
        out["coverage_90"] = interval_coverage(pred, truth, hw)
        out["halfwidth90_mean"] = _stat(hw.tolist(), np.mean)
    out["by_distance"] = binned_metrics(pred, truth, dist, dist_edges_m)
    out["by_gap_size"] = binned_metrics(pred, truth, size, size_edges_px)
    names = scores[0].subsets or {}
    if names:
        out["subsets"] = {}
        for key in names:
            sel = np.concatenate([s.subsets[key] for s in scores])  # type: ignore[index]
            out["subsets"][key] = {
                **regression_metrics(pred[sel], truth[sel]),
                "n_pixels": int(sel.sum()),
            }
    return out


def evaluate_pairs(
    series: LstSeries,
    pairs: Sequence[Pair],
    methods: dict[str, Filler],
    *,
    dist_edges_m: Sequence[float],
    size_edges_px: Sequence[float],
    subsets: Mapping[str, np.ndarray] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every method on every pair and summarise each method's scores.

    `subsets` names boolean pixel maps (for example the test blocks of a spatial split); each
    method is also scored on the hidden pixels inside each of them.

    Pairs with no hidden pixel are skipped. Raises LstfillError naming the method when it leaves
    a hidden land pixel non-finite (a filled product must cover every land pixel).
    """
    res_m = float(min(series.grid.res))
    valid = series.valid
    scores: dict[str, list[PairScore]] = {name: [] for name in methods}
    seconds = dict.fromkeys(methods, 0.0)
    used: list[dict[str, Any]] = []
    n_hidden_total = 0
    for pair in tqdm(pairs, desc="pairs", unit="pair", disable=not progress):
        t, d = pair.target, pair.donor
        hidden = hidden_mask(valid[t], valid[d], series.land)
        n_hidden = int(hidden.sum())
        if n_hidden == 0:
            continue
        hidden_series = series.with_hidden(t, hidden)
        visible = hidden_series.valid[t]
        for name, method in methods.items():
            start = time.perf_counter()
            result = method(hidden_series, t)
            seconds[name] += time.perf_counter() - start
            pred = np.asarray(result.lst)
            if pred.shape != hidden.shape:
                raise LstfillError(
                    f"method {name!r} returned shape {pred.shape}, not {hidden.shape}"
                )
            bad = int((~np.isfinite(pred[hidden])).sum())
            if bad:
                raise LstfillError(
                    f"method {name!r} left {bad} hidden land pixels non-finite on target "
                    f"{series.ids[t]} (donor {series.ids[d]})"
                )
            score = score_pair(series.lst[t], result, hidden, visible, res_m)
            if subsets:
                score.subsets = {k: np.asarray(m, dtype=bool)[hidden] for k, m in subsets.items()}
            scores[name].append(score)
        used.append({"target": series.ids[t], "donor": series.ids[d], "n_hidden": n_hidden})
        n_hidden_total += n_hidden
    summaries = {}
    for name in methods:
        summaries[name] = summarise(scores[name], dist_edges_m, size_edges_px)
        summaries[name]["seconds"] = seconds[name]
    return {
        "protocol": PROTOCOL,
        "n_pairs": len(used),
        "n_hidden_pixels": n_hidden_total,
        "pairs": used,
        "methods": summaries,
    }


def combine_folds(fold_results: Sequence[dict[str, Any]], methods: Sequence[str]) -> dict[str, Any]:
    """Per-method metrics over the pairs of several `evaluate_pairs` results (the folds of a
    cross-validation): RMSE mean and median over every pair; MAE, bias and (where every fold
    has it) coverage_90 as means weighted by each fold's pairs; fill seconds summed. Methods no
    fold scored are left out."""
    out: dict[str, Any] = {}
    for name in methods:
        parts = [r["methods"][name] for r in fold_results if name in r["methods"]]
        parts = [p for p in parts if p.get("n_pairs", 0)]
        if not parts:
            continue
        n = np.array([p["n_pairs"] for p in parts], dtype=float)
        rmse = np.concatenate([p["per_pair_rmse"] for p in parts])
        entry = {
            "rmse_mean": float(np.mean(rmse)),
            "rmse_median": float(np.median(rmse)),
            "mae_mean": float(np.sum(n * [p["mae_mean"] for p in parts]) / n.sum()),
            "bias_mean": float(np.sum(n * [p["bias_mean"] for p in parts]) / n.sum()),
            "n_pairs": int(n.sum()),
            "seconds_fill": float(sum(p["seconds"] for p in parts)),
            "per_pair_rmse": [float(x) for x in rmse],
        }
        if all("coverage_90" in p for p in parts):
            entry["coverage_90"] = float(np.sum(n * [p["coverage_90"] for p in parts]) / n.sum())
        out[name] = entry
    return out
