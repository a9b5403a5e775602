"""The regression model of the Data Mining Sharpener (`lstfill.superres.dms`): a bag of regression
trees with a linear model in each leaf, fitted on coarse samples and applied to fine pixels.

Gao, Kustas & Anderson (2012) fit Cubist's rule-based model; a bag of trees (bootstrap samples,
as in random forests) replaces it here. Leaf models are weighted ridge-stabilised least squares
whose output is clipped to the leaf's target range widened by `extrapolation` on each side.
Trees and NumPy release the GIL, so the members are fitted, and fine rows predicted, on a thread
pool (`thread_map`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from sklearn.tree import DecisionTreeRegressor

if TYPE_CHECKING:
    from lstfill.superres.dms import DmsConfig

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True)
class LeafLinearTree:
    """A fitted regression tree plus per-node linear models indexed by `tree.apply` leaf id."""

    tree: DecisionTreeRegressor
    coef: np.ndarray  # (n_nodes, C) float64
    intercept: np.ndarray  # (n_nodes,) float64
    lo: np.ndarray  # (n_nodes,) lower clip bound
    hi: np.ndarray  # (n_nodes,) upper clip bound


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


def _leaf_models(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    leaf: np.ndarray,
    n_nodes: int,
    alpha: float,
    extrapolation: float,
) -> tuple[np.ndarray, ...]:
    """Weighted ridge line per leaf (normal equations via bincount, one batched solve).

    Features are standardised for the solve (alpha is relative to the leaf weight in
    standardised units, the intercept is not penalised) and mapped back. Returns coef,
    intercept, lo, hi arrays indexed by node id.
    """
    n_feat = x.shape[1]
    mu, sd = x.mean(axis=0), x.std(axis=0)
    sd[sd == 0] = 1.0
    design = np.column_stack([np.ones(len(x)), (x - mu) / sd])
    gram = np.empty((n_nodes, n_feat + 1, n_feat + 1))
    rhs = np.empty((n_nodes, n_feat + 1))
    for p in range(n_feat + 1):
        wp = w * design[:, p]
        rhs[:, p] = np.bincount(leaf, weights=wp * y, minlength=n_nodes)
        for q in range(p, n_feat + 1):
            gram[:, p, q] = gram[:, q, p] = np.bincount(leaf, wp * design[:, q], n_nodes)
    total = gram[:, 0, 0]
    idx = np.arange(1, n_feat + 1)
    gram[:, idx, idx] += alpha * total[:, None] + 1e-12
    used = total > 0
    beta = np.zeros((n_nodes, n_feat + 1))
    beta[used] = np.linalg.solve(gram[used], rhs[used][..., None])[..., 0]
    coef = beta[:, 1:] / sd
    intercept = beta[:, 0] - coef @ mu
    lo, hi = np.full(n_nodes, np.inf), np.full(n_nodes, -np.inf)
    np.minimum.at(lo, leaf, y)
    np.maximum.at(hi, leaf, y)
    margin = extrapolation * np.where(used, hi - lo, 0.0)
    return coef, intercept, lo - margin, hi + margin


def fit_bag(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    max_leaves: int,
    cfg: DmsConfig,
    seed: np.random.SeedSequence,
    n_jobs: int,
) -> list[LeafLinearTree]:
    """Fit `cfg.n_estimators` bagged leaf-linear trees of at most `max_leaves` leaves on features
    x (n, C), targets y and weights w; deterministic given `seed`, whatever `n_jobs`.

    Each member's bootstrap is expressed as multiplicity weights on the distinct drawn samples
    (as in random forests): the same weighted fit as on duplicated rows, on ~63 % of the rows.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)

    def member(member_seed: np.random.SeedSequence) -> LeafLinearTree:
        rng = np.random.default_rng(member_seed)
        counts = np.bincount(rng.integers(0, len(y), len(y)), minlength=len(y))
        drawn = np.flatnonzero(counts)
        xb, yb, wb = x[drawn], y[drawn], w[drawn] * counts[drawn]
        tree = DecisionTreeRegressor(
            max_leaf_nodes=max(2, max_leaves),
            min_samples_leaf=cfg.min_samples_leaf,
            random_state=int(rng.integers(2**31 - 1)),
        )
        tree.fit(xb, yb, sample_weight=wb)
        leaf = tree.apply(xb)
        coef, intercept, lo, hi = _leaf_models(
            xb.astype(np.float64),
            yb,
            wb,
            leaf,
            tree.tree_.node_count,
            cfg.ridge_alpha,
            cfg.extrapolation,
        )
        return LeafLinearTree(tree, coef, intercept, lo, hi)

    return thread_map(member, seed.spawn(cfg.n_estimators), n_jobs)


def _predict_pixels(models: list[LeafLinearTree], x: np.ndarray) -> np.ndarray:
    """Mean prediction of the bag for finite float32 features x (n, C); float64 (n,)."""
    x64 = x.astype(np.float64)
    total = np.zeros(len(x))
    for m in models:
        leaf = m.tree.apply(x, check_input=False)
        pred = m.intercept[leaf] + np.einsum("nc,nc->n", x64, m.coef[leaf])
        total += np.clip(pred, m.lo[leaf], m.hi[leaf])
    return total / len(models)


def predict_fine(
    models: list[LeafLinearTree], bands: np.ndarray, chunk_rows: int, n_jobs: int
) -> np.ndarray:
    """Apply the bag to fine predictors (C, H, W) in row chunks; float32 (H, W), NaN if invalid."""
    out = np.full(bands.shape[1:], np.nan, dtype=np.float32)

    def run(r0: int) -> None:
        chunk = bands[:, r0 : r0 + chunk_rows]
        valid = np.isfinite(chunk).all(axis=0)
        if valid.any():
            x = np.ascontiguousarray(chunk[:, valid].T)
            out[r0 : r0 + chunk_rows][valid] = _predict_pixels(models, x)

    thread_map(run, range(0, bands.shape[1], chunk_rows), n_jobs)
    return out
