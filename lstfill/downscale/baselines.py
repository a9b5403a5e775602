"""The downscaling baselines, on the same samples and features as the MLP: predict-0 (the 9x9
mean itself, a zero deviation) is scored by `evaluate.split_scores`; the linear baseline is a
least-squares fit of the same features on the split's training samples."""

from __future__ import annotations

import numpy as np

from lstfill.downscale.evaluate import Predict


def linear_baseline(x_train: np.ndarray, y_train: np.ndarray) -> Predict:
    """Least-squares linear model (with intercept) on the MLP's own features: what the network
    adds beyond a linear response to the same inputs."""
    a = np.column_stack([np.asarray(x_train, np.float64), np.ones(len(x_train))])
    coef, *_ = np.linalg.lstsq(a, np.asarray(y_train, np.float64), rcond=None)
    return lambda x: (np.asarray(x, np.float64) @ coef[:-1] + coef[-1]).astype(np.float32)
