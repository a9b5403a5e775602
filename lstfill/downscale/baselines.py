"""The downscaling baselines, on the same samples and features as the MLP: predict-0 (the 9x9
mean itself, a zero deviation) is scored by `evaluate.split_scores`; the linear baseline is a
least-squares fit of the same features on the split's training samples."""

from __future__ import annotations

import numpy as np

from lstfill.downscale.evaluate import Predict

# singular values below this share of the largest are dropped: the features are float32 (about
# seven digits), and e.g. the 81 height differences sum to zero up to their rounding
RCOND = 1e-6


def least_squares(x: np.ndarray, y: np.ndarray, rcond: float = RCOND) -> tuple[np.ndarray, float]:
    """(weights (n_features,), intercept) of the least-squares fit of `y` on the rows of `x`.

    Solved on centred, standardised columns (float64) with singular values below `rcond` of the
    largest dropped, so the fit does not depend on the features' units or offsets (fitting
    scaled features gives the same predictions) and directions that only float32 rounding
    separates get no weight; constant columns get weight 0.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0)
    used = std > 0
    z = (x[:, used] - mean[used]) / std[used]
    coef, *_ = np.linalg.lstsq(z, y - y.mean(), rcond=rcond)
    weight = np.zeros(x.shape[1])
    weight[used] = coef / std[used]
    return weight, float(y.mean() - weight @ mean)


def linear_baseline(x_train: np.ndarray, y_train: np.ndarray) -> Predict:
    """Least-squares linear model (with intercept) on the MLP's own features: what the network
    adds beyond a linear response to the same inputs."""
    weight, bias = least_squares(x_train, y_train)
    return lambda x: (np.asarray(x, np.float64) @ weight + bias).astype(np.float32)
