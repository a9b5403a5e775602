"""Scores of the downscaling job: the MLP next to the predict-0 baseline on the same samples, and
permutation feature importance by feature group.

The baseline predicts a deviation of 0, i.e. the centre pixel equals its 9x9 mean; the seed
reports the MLP's gain as the relative reduction of the mean squared error against it. A linear
least-squares model on the same features is scored too, so the MLP's gain over a linear response
to topography is visible.
Permutation importance (Breiman 2001; Fisher, Rudin & Dominici 2019) shuffles the rows of one
feature *group* at a time, jointly (the 81 height differences move together, so the window's
geometry stays intact), and records how much the model's MSE rises: the answer to the seed's
question of how each kind of input affects the prediction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]


def mse(pred: np.ndarray, truth: np.ndarray) -> float:
    d = np.asarray(pred, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    return float(np.mean(d**2)) if d.size else float("nan")


def split_scores(
    truth: np.ndarray,
    model_pred: np.ndarray,
    baselines: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """`model_mlp`, `baseline_zero` and any further `baselines` (name -> prediction) on the same
    samples, and the MLP's MSE improvement over predict-0 (%)."""
    truth = np.asarray(truth)
    methods = {}
    preds = {"model_mlp": model_pred, "baseline_zero": np.zeros_like(truth), **(baselines or {})}
    for name, pred in preds.items():
        m = mse(pred, truth)
        methods[name] = {"mse": m, "rmse": float(np.sqrt(m)), "n": int(truth.size)}
    base = methods["baseline_zero"]["mse"]
    gain = 100.0 * (1.0 - methods["model_mlp"]["mse"] / base) if base > 0 else float("nan")
    return {"methods": methods, "improvement_pct": gain, "n_samples": int(truth.size)}


def permutation_importance(
    predict: Predict,
    x: np.ndarray,
    y: np.ndarray,
    groups: Mapping[str, Sequence[int]],
    n_repeats: int = 3,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Rise of the MSE when each group's columns are permuted jointly, as mean and std over
    `n_repeats` seeded permutations, and relative to the unpermuted MSE (%)."""
    rng = np.random.default_rng(seed)
    base = mse(predict(x), y)
    out = {}
    for name, cols in groups.items():
        rises = []
        for _ in range(n_repeats):
            xp = x.copy()
            order = rng.permutation(len(x))
            xp[:, list(cols)] = x[order][:, list(cols)]
            rises.append(mse(predict(xp), y) - base)
        out[name] = {
            "mse_increase": float(np.mean(rises)),
            "mse_increase_std": float(np.std(rises)),
            "mse_increase_pct": 100.0 * float(np.mean(rises)) / base if base > 0 else float("nan"),
        }
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["mse_increase"]))
