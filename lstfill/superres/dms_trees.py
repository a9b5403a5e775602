"""The regression model of the Data Mining Sharpener (`lstfill.superres.dms`): scikit-learn's
`BaggingRegressor` over regression trees with a linear model in each leaf, fitted on coarse
samples and applied to fine pixels.

Gao, Kustas & Anderson (2012), "A data mining approach for sharpening thermal satellite imagery
over land", Remote Sens. 4:3287-3319, doi:10.3390/rs4113287, section 2.1, fit Cubist's
rule-based model: a piecewise multivariate linear regression. As in pyDMS (Guzinski,
github.com/radosuav/pyDMS, the authors' reference implementation of the method), a bag of CART
trees stands in for Cubist's committee: each tree splits the predictor space, and every leaf gets a
ridge line fitted on all training samples routed to it, clipped to the leaf's target range widened
by `extrapolation` on each side. The homogeneity weights enter through the bagging (scikit-learn
draws each bootstrap with probability proportional to the sample weight from version 1.7 on, and
multiplies the bootstrap counts by it before), so the tree splits follow the homogeneous samples
while the leaf lines see every sample of the leaf, which keeps them stable in small leaves.
Trees and NumPy release the GIL, so the members are fitted, and fine rows predicted, on threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from joblib import parallel_config
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import BaggingRegressor
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils.validation import check_is_fitted

if TYPE_CHECKING:
    from lstfill.superres.dms import DmsConfig

_T = TypeVar("_T")
_R = TypeVar("_R")


def _n_workers(n_jobs: int) -> int:
    """Number of worker threads for `n_jobs` (-1 = all CPUs available to this process)."""
    if n_jobs == -1 or n_jobs == 0:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - non-Linux
            return max(1, os.cpu_count() or 1)
    return max(1, n_jobs)


def thread_map(fn: Callable[[_T], _R], items: Iterable[_T], n_jobs: int) -> list[_R]:
    """Ordered map, on a thread pool when n_jobs > 1 (trees and numpy release the GIL)."""
    items = list(items)
    workers = min(_n_workers(n_jobs), len(items))
    if workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def leaf_ridge(
    x: np.ndarray, y: np.ndarray, leaf: np.ndarray, n_nodes: int, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge line y = b0 + x.b per leaf of the samples x (n, C), y (n,), indexed by node id.

    Per leaf, min |y - b0 - x.b|^2 + alpha |b|^2 with the intercept unpenalised (the leaf is
    centred first), i.e. scikit-learn's `Ridge(alpha)` on that leaf's samples; all leaves in one
    pass (sums by bincount, one batched solve). Returns coef (n_nodes, C) and intercept
    (n_nodes,), zero for nodes holding no sample.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n_feat = x.shape[1]
    count = np.bincount(leaf, minlength=n_nodes).astype(np.float64)
    used = count > 0
    n = np.where(used, count, 1.0)
    x_mean = np.stack([np.bincount(leaf, x[:, i], n_nodes) for i in range(n_feat)], 1) / n[:, None]
    y_mean = np.bincount(leaf, y, n_nodes) / n
    xc, yc = x - x_mean[leaf], y - y_mean[leaf]
    gram = np.empty((n_nodes, n_feat, n_feat))
    rhs = np.empty((n_nodes, n_feat))
    for p in range(n_feat):
        rhs[:, p] = np.bincount(leaf, xc[:, p] * yc, n_nodes)
        for q in range(p, n_feat):
            gram[:, p, q] = gram[:, q, p] = np.bincount(leaf, xc[:, p] * xc[:, q], n_nodes)
    gram += (alpha + 1e-12) * np.eye(n_feat)
    coef = np.zeros((n_nodes, n_feat))
    coef[used] = np.linalg.solve(gram[used], rhs[used][..., None])[..., 0]
    intercept = np.where(used, y_mean - np.einsum("nc,nc->n", coef, x_mean), 0.0)
    return coef, intercept


class LeafLinearTree(RegressorMixin, BaseEstimator):
    """A CART regression tree (at most `max_leaf_nodes` leaves of at least `min_samples_leaf`
    samples, split on the weighted samples) with a `leaf_ridge` line in each leaf, fitted on
    every sample routed to the leaf, and clipped to the leaf's target range widened by
    `extrapolation` times that range on each side (Gao et al. 2012, section 2.1)."""

    def __init__(
        self,
        max_leaf_nodes: int = 30,
        min_samples_leaf: int = 10,
        ridge_alpha: float = 1.0,
        extrapolation: float = 0.25,
        random_state: int | None = None,
    ) -> None:
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.ridge_alpha = ridge_alpha
        self.extrapolation = extrapolation
        self.random_state = random_state

    def fit(
        self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> LeafLinearTree:
        x = np.ascontiguousarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.float64)
        tree = DecisionTreeRegressor(
            max_leaf_nodes=max(2, self.max_leaf_nodes),
            min_samples_leaf=self.min_samples_leaf,
            random_state=self.random_state,
        )
        # x is float32 and C-contiguous, as the tree needs, so skip its input validation
        tree.fit(x, y, sample_weight=sample_weight, check_input=False)
        n_nodes = tree.tree_.node_count
        leaf = tree.apply(x, check_input=False)
        self.coef_, self.intercept_ = leaf_ridge(x, y, leaf, n_nodes, self.ridge_alpha)
        lo, hi = np.full(n_nodes, np.inf), np.full(n_nodes, -np.inf)
        np.minimum.at(lo, leaf, y)
        np.maximum.at(hi, leaf, y)
        margin = self.extrapolation * np.where(np.isfinite(lo), hi - lo, 0.0)
        self.lo_, self.hi_ = lo - margin, hi + margin
        self.tree_ = tree
        self.n_features_in_ = x.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "tree_")
        x = np.ascontiguousarray(X, dtype=np.float32)
        leaf = self.tree_.apply(x, check_input=False)
        pred = self.intercept_[leaf] + np.einsum("nc,nc->n", x.astype(np.float64), self.coef_[leaf])
        return np.clip(pred, self.lo_[leaf], self.hi_[leaf])


def fit_bag(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    max_leaves: int,
    cfg: DmsConfig,
    seed: int,
    n_jobs: int,
) -> BaggingRegressor:
    """Bag of `cfg.n_estimators` `LeafLinearTree`s (at most `max_leaves` leaves) on features
    x (n, C), targets y and homogeneity weights w, bootstrapped by scikit-learn's
    `BaggingRegressor`; deterministic given `seed`, whatever `n_jobs` (threads)."""
    tree = LeafLinearTree(max_leaves, cfg.min_samples_leaf, cfg.ridge_alpha, cfg.extrapolation)
    workers = _n_workers(n_jobs)
    bag = BaggingRegressor(tree, n_estimators=cfg.n_estimators, random_state=seed, n_jobs=workers)
    weights = np.asarray(w, dtype=np.float64)
    if not weights.sum() > 0:  # e.g. a single sample, whose min-max scaled weight is 0
        weights = np.ones_like(weights)
    with parallel_config(backend="threading"):
        bag.fit(np.ascontiguousarray(x, dtype=np.float32), y, sample_weight=weights)
    bag.n_jobs = 1  # predictions are parallelised over row chunks instead
    return bag


def predict_fine(
    bag: BaggingRegressor, bands: np.ndarray, chunk_rows: int, n_jobs: int
) -> np.ndarray:
    """Apply the bag to fine predictors (C, H, W) in row chunks; float32 (H, W), NaN if invalid."""
    out = np.full(bands.shape[1:], np.nan, dtype=np.float32)

    def run(r0: int) -> None:
        chunk = bands[:, r0 : r0 + chunk_rows]
        valid = np.isfinite(chunk).all(axis=0)
        if valid.any():
            out[r0 : r0 + chunk_rows][valid] = bag.predict(np.ascontiguousarray(chunk[:, valid].T))

    thread_map(run, range(0, bands.shape[1], chunk_rows), n_jobs)
    return out
