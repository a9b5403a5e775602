"""Train / validation / test splits by acquisition date and by spatial block.

Random pixel splits are not offered: neighbouring pixels share clouds, weather and terrain, so a
pixel-level split scores a model on near-copies of its training data. Dates are split by calendar
day (several acquisitions of one day always fall together) and space by square blocks; a sample
whose input window reaches into another split's block is dropped (`window_inside`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from lstfill.errors import InputError, LstfillError

TRAIN, VAL, TEST = 0, 1, 2
SPLIT_NAMES = {TRAIN: "train", VAL: "val", TEST: "test"}
SPLIT_CODES = {name: code for code, name in SPLIT_NAMES.items()}
DROPPED = -1  # split code of a sample whose window straddles two splits


class SplitError(LstfillError, ValueError):
    """The data cannot give the split the config asks for (too few days, or too few clear ones):
    a user error, reported in one line with the keys to change."""


@dataclass(frozen=True)
class DateSplit:
    """Acquisition indices of each split (sorted)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def label(self, n: int) -> np.ndarray:
        """Split code (TRAIN/VAL/TEST) per acquisition."""
        out = np.full(n, TRAIN, dtype=np.int8)
        out[self.val] = VAL
        out[self.test] = TEST
        return out


def split_dates(
    times: np.ndarray,
    valid_fraction: np.ndarray,
    *,
    n_test: int,
    n_val: int,
    min_valid_test: float = 0.6,
    seed: int = 0,
) -> DateSplit:
    """Hold out `n_test` calendar days (among days with an acquisition at least `min_valid_test`
    clear, so the artificial-gap evaluation has pixels to hide) and `n_val` further days for
    early stopping; every other day trains."""
    days = np.asarray(times).astype("datetime64[D]")
    uniq = np.unique(days)
    best = np.array([valid_fraction[days == d].max() for d in uniq])
    rng = np.random.default_rng(seed)
    eligible = np.flatnonzero(best >= min_valid_test)
    if len(eligible) < n_test:
        raise SplitError(
            f"only {len(eligible)} days have an acquisition >= {min_valid_test:.0%} clear; "
            f"cannot hold out {n_test} test days (lower gapfill.split.test_days or "
            "min_valid_test, or lengthen the period)"
        )
    test_days = rng.choice(eligible, size=n_test, replace=False)
    rest = np.setdiff1d(np.arange(len(uniq)), test_days)
    if len(rest) < n_val + 1:
        raise SplitError(
            f"{len(uniq)} days cannot give {n_test} test, {n_val} val and 1 train day "
            "(lower gapfill.split.test_days or val_days, or lengthen the period)"
        )
    # validation days favour clear ones too: early stopping needs pixels to score
    weights = best[rest] + 0.05
    val_days = rng.choice(rest, size=n_val, replace=False, p=weights / weights.sum())
    lab = np.full(len(uniq), TRAIN)
    lab[val_days] = VAL
    lab[test_days] = TEST
    per_acq = lab[np.searchsorted(uniq, days)]
    return DateSplit(
        train=np.flatnonzero(per_acq == TRAIN),
        val=np.flatnonzero(per_acq == VAL),
        test=np.flatnonzero(per_acq == TEST),
    )


def block_ids(shape: tuple[int, int], block_px: int) -> np.ndarray:
    """Id of the `block_px`-square block each pixel lies in, (H, W) int."""
    h, w = shape
    nbx = -(-w // block_px)
    rows = np.arange(h) // block_px
    cols = np.arange(w) // block_px
    return rows[:, None] * nbx + cols[None, :]


def split_blocks(
    shape: tuple[int, int],
    block_px: int,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int = 0,
) -> np.ndarray:
    """Split code (TRAIN/VAL/TEST) per pixel, assigning whole blocks at random (seeded)."""
    ids = block_ids(shape, block_px)
    n = int(ids.max()) + 1
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_test = int(round(test_fraction * n))
    n_val = int(round(val_fraction * n))
    lab = np.full(n, TRAIN, dtype=np.int8)
    lab[order[:n_test]] = TEST
    lab[order[n_test : n_test + n_val]] = VAL
    return lab[ids]


def window_inside(split_map: np.ndarray, code: int, radius: int) -> np.ndarray:
    """Pixels whose (2·radius+1)² window lies entirely in blocks of `code` (edges count as in)."""
    inside = split_map == code
    if radius <= 0:
        return inside
    size = 2 * radius + 1
    return ndimage.minimum_filter(inside.astype(np.uint8), size=size, mode="nearest") == 1


def split_days_by_share(
    dates: list[dt.date],
    valid_share: list[float],
    n_patches: list[int],
    *,
    n_val: int,
    n_test: int,
    min_valid_test: float = 0.5,
    seed: int = 0,
) -> dict[str, list[str]]:
    """Seeded split of days into train / val / test (ISO dates).

    Test days are drawn among days whose LST is at least `min_valid_test` valid (so there is
    something to score), validation days among the remaining days that yield patches (so early
    stopping has data); every other day trains.
    """
    rng = np.random.default_rng(seed)
    days = [d.isoformat() for d in dates]
    if len(set(days)) != len(days):
        raise InputError("superres", "two scenes of the same day")
    order = rng.permutation(len(days))
    test = [days[i] for i in order if valid_share[i] >= min_valid_test][:n_test]
    val = [days[i] for i in order if n_patches[i] > 0 and days[i] not in test][:n_val]
    train = [d for d, n in zip(days, n_patches, strict=True) if d not in test and d not in val]
    if len(test) < n_test or len(val) < n_val or not any(n_patches[days.index(d)] for d in train):
        raise InputError(
            "superres.split",
            f"{len(days)} MODIS days ({sum(v >= min_valid_test for v in valid_share)} at least "
            f"{min_valid_test:.0%} clear, {sum(n > 0 for n in n_patches)} with clean patches) "
            f"cannot give {n_test} test days, {n_val} validation days and training patches",
        )
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


def codes_by_day(dates: np.ndarray, split: dict[str, list[str]]) -> np.ndarray:
    """TRAIN / VAL / TEST code of each patch from the split of its day."""
    code = {d: SPLIT_CODES[name] for name, days in split.items() for d in days}
    return np.array([code[str(d)] for d in dates.astype("datetime64[D]")], dtype=np.int8)


def split_by_day(
    days: np.ndarray, ratios: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0
) -> np.ndarray:
    """Split code (TRAIN/VAL/TEST) per sample, whole days to one split: a seeded permutation of
    the unique days cut by `ratios` (train, val, test), each split at least one day."""
    uniq, inverse = np.unique(np.asarray(days), return_inverse=True)
    n = len(uniq)
    r = np.asarray(ratios, dtype=np.float64)
    if r.shape != (3,) or (r < 0).any() or r.sum() <= 0:
        raise ValueError(f"ratios must be three non-negative numbers, got {ratios}")
    if n < 3:
        raise SplitError(f"{n} distinct days cannot give a train, val and test day each")
    n_val = max(1, round(r[1] / r.sum() * n))
    n_test = max(1, round(r[2] / r.sum() * n))
    while n_val + n_test > n - 1:  # keep a training day: shrink the larger held-out split
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    order = np.random.default_rng(seed).permutation(n)
    lab = np.full(n, TRAIN, dtype=np.int8)
    lab[order[:n_test]] = TEST
    lab[order[n_test : n_test + n_val]] = VAL
    return lab[inverse.reshape(-1)]


def split_by_space(
    rc: np.ndarray,
    grid_shape: tuple[int, int],
    block_size: int,
    val_fraction: float,
    test_fraction: float,
    seed: int = 0,
    *,
    radius: int,
) -> np.ndarray:
    """Split code per sample by spatial blocks (`split_blocks`): a sample joins a split only if
    its whole window lies in that split's blocks; straddling samples get DROPPED (-1)."""
    split_map = split_blocks(
        tuple(grid_shape),
        block_size,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
    )
    rc = np.asarray(rc)
    codes = np.full(len(rc), DROPPED, dtype=np.int8)
    for code in (TRAIN, VAL, TEST):
        inside = window_inside(split_map, code, radius)[rc[:, 0], rc[:, 1]]
        codes[inside] = code
    return codes
