"""Date splits by calendar day, block splits, and the window-inside-block test."""

from __future__ import annotations

import numpy as np
import pytest

from lstfill.splits import (
    TEST,
    TRAIN,
    VAL,
    block_ids,
    split_blocks,
    split_dates,
    window_inside,
)


def _times_and_fractions() -> tuple[np.ndarray, np.ndarray]:
    """12 calendar days, several with day and night acquisitions (UTC), some too cloudy to test.

    Days 1 and 7 have every acquisition below 0.5 clear; day 4 has a cloudy night and a clear
    day acquisition (eligible by its best one).
    """
    acq = [
        ("2023-07-01T10:30", 0.95),
        ("2023-07-02T09:50", 0.30),
        ("2023-07-02T21:40", 0.10),
        ("2023-07-03T11:10", 0.80),
        ("2023-07-04T02:15", 0.70),
        ("2023-07-04T10:05", 0.90),
        ("2023-07-04T22:50", 0.55),
        ("2023-07-05T01:00", 0.05),
        ("2023-07-05T13:20", 0.99),
        ("2023-07-06T10:40", 0.65),
        ("2023-07-07T23:59", 0.60),
        ("2023-07-08T00:00", 0.20),
        ("2023-07-08T10:00", 0.45),
        ("2023-07-09T12:00", 1.00),
        ("2023-07-10T09:00", 0.75),
        ("2023-07-10T21:00", 0.85),
        ("2023-07-11T14:00", 0.50),
        ("2023-07-12T08:00", 0.62),
    ]
    times = np.array([np.datetime64(t, "s") for t, _ in acq])
    vf = np.array([v for _, v in acq])
    return times, vf


def _days(times: np.ndarray, index: np.ndarray) -> set:
    return set(times[index].astype("datetime64[D]").tolist())


@pytest.mark.parametrize("seed", range(8))
def test_split_dates_whole_days_and_counts(seed):
    times, vf = _times_and_fractions()
    s = split_dates(times, vf, n_test=3, n_val=2, min_valid_test=0.5, seed=seed)
    # every acquisition in exactly one split, each split sorted
    allidx = np.concatenate([s.train, s.val, s.test])
    assert sorted(allidx.tolist()) == list(range(len(times)))
    for part in (s.train, s.val, s.test):
        assert np.all(np.diff(part) > 0)
    # no calendar day in two splits
    d_train, d_val, d_test = _days(times, s.train), _days(times, s.val), _days(times, s.test)
    assert not d_train & d_val and not d_train & d_test and not d_val & d_test
    # every acquisition of a held-out day is held out with it
    days = times.astype("datetime64[D]")
    for part, dset in ((s.val, d_val), (s.test, d_test)):
        assert set(np.flatnonzero(np.isin(days, list(dset)))) == set(part.tolist())
    assert len(d_test) == 3 and len(d_val) == 2
    assert len(d_train) == len(np.unique(days)) - 5
    # test days only among days whose best acquisition is >= 0.5 clear
    for d in d_test:
        assert vf[days == d].max() >= 0.5
    # label() agrees with the index arrays
    lab = s.label(len(times))
    assert (lab[s.train] == TRAIN).all() and (lab[s.val] == VAL).all()
    assert (lab[s.test] == TEST).all()


def test_split_dates_test_days_are_the_eligible_ones():
    """With exactly n_test eligible days, the test split is those days (incl. day 4 whose
    night acquisition is cloudy but whose day acquisition is clear)."""
    times, vf = _times_and_fractions()
    days = times.astype("datetime64[D]")
    eligible = [np.datetime64("2023-07-04"), np.datetime64("2023-07-09")]
    vf = np.where(np.isin(days, eligible), vf, np.minimum(vf, 0.4))
    vf[5] = 0.91  # 2023-07-04 10:05, the day's best
    for seed in range(5):
        s = split_dates(times, vf, n_test=2, n_val=3, min_valid_test=0.9, seed=seed)
        assert _days(times, s.test) == set(np.array(eligible).tolist())
        assert s.test.tolist() == [4, 5, 6, 13]


def test_split_dates_deterministic_by_seed():
    times, vf = _times_and_fractions()
    a = split_dates(times, vf, n_test=3, n_val=2, min_valid_test=0.5, seed=11)
    b = split_dates(times, vf, n_test=3, n_val=2, min_valid_test=0.5, seed=11)
    for x, y in ((a.train, b.train), (a.val, b.val), (a.test, b.test)):
        np.testing.assert_array_equal(x, y)
    outcomes = {
        tuple(split_dates(times, vf, n_test=3, n_val=2, min_valid_test=0.5, seed=s).test)
        for s in range(10)
    }
    assert len(outcomes) > 1  # the seed matters


def test_split_dates_too_few_eligible_days():
    times, vf = _times_and_fractions()
    # only 2023-07-05 (0.99) and 2023-07-09 (1.00) reach 0.97
    with pytest.raises(ValueError, match="only 2 days"):
        split_dates(times, vf, n_test=3, n_val=1, min_valid_test=0.97)
    # 12 days cannot give 3 test + 9 val + 1 train
    with pytest.raises(ValueError, match="cannot give"):
        split_dates(times, vf, n_test=3, n_val=9, min_valid_test=0.5)


def test_block_ids_known_values():
    ids = block_ids((10, 7), 4)  # 3 block rows x 2 block columns, partial edge blocks
    assert ids.shape == (10, 7)
    assert ids[0, 0] == 0 and ids[3, 3] == 0
    assert ids[0, 4] == 1 and ids[3, 6] == 1
    assert ids[4, 0] == 2 and ids[7, 3] == 2
    assert ids[5, 6] == 3
    assert ids[8, 0] == 4 and ids[9, 6] == 5
    assert ids.max() == 5


def test_split_blocks_whole_blocks_and_fractions():
    shape, block = (40, 48), 4  # 10 x 12 = 120 blocks
    m = split_blocks(shape, block, val_fraction=0.2, test_fraction=0.1, seed=3)
    assert m.shape == shape and m.dtype == np.int8
    ids = block_ids(shape, block)
    codes = []
    for b in range(120):
        vals = np.unique(m[ids == b])
        assert vals.size == 1  # a block never straddles two splits
        codes.append(int(vals[0]))
    codes = np.array(codes)
    assert (codes == TEST).sum() == 12 and (codes == VAL).sum() == 24
    assert (codes == TRAIN).sum() == 84
    assert (m == VAL).mean() == pytest.approx(0.2)
    assert (m == TEST).mean() == pytest.approx(0.1)
    # partial edge blocks: fractions are about right
    m2 = split_blocks((50, 37), 8, val_fraction=0.25, test_fraction=0.25, seed=0)
    assert (m2 == VAL).mean() == pytest.approx(0.25, abs=0.12)
    assert (m2 == TEST).mean() == pytest.approx(0.25, abs=0.12)


def test_split_blocks_deterministic_by_seed():
    a = split_blocks((32, 32), 4, val_fraction=0.2, test_fraction=0.2, seed=7)
    b = split_blocks((32, 32), 4, val_fraction=0.2, test_fraction=0.2, seed=7)
    np.testing.assert_array_equal(a, b)
    c = split_blocks((32, 32), 4, val_fraction=0.2, test_fraction=0.2, seed=8)
    assert not np.array_equal(a, c)
    none = split_blocks((32, 32), 4, val_fraction=0.0, test_fraction=0.0, seed=1)
    assert (none == TRAIN).all()


def _brute_inside(split_map: np.ndarray, code: int, radius: int) -> np.ndarray:
    h, w = split_map.shape
    out = np.zeros((h, w), dtype=bool)
    for i in range(h):
        for j in range(w):
            r0, c0 = max(i - radius, 0), max(j - radius, 0)
            win = split_map[r0 : i + radius + 1, c0 : j + radius + 1]
            out[i, j] = bool((win == code).all())
    return out


def test_window_inside_known_positions():
    # 3 x 3 blocks of 4 px: a VAL block at the top right, a TEST block in the middle
    codes = np.array([[TRAIN, TRAIN, VAL], [TRAIN, TEST, TRAIN], [TRAIN, TRAIN, TRAIN]])
    m = np.kron(codes, np.ones((4, 4), dtype=int))
    inside = window_inside(m, TRAIN, 2)
    assert inside[0, 0]  # image edges count as inside
    assert inside[1, 1]
    assert not inside[1, 6]  # cols 4..8 reach the VAL block at col 8
    assert inside[1, 5]  # cols 3..7: all TRAIN
    assert not inside[2, 7]  # next to the VAL border
    assert not inside[5, 2]  # cols 0..4 reach the TEST block (rows 4-7, cols 4-7)
    assert inside[5, 1]
    assert not inside[9, 6]  # rows 7..11 reach the TEST block
    assert inside[10, 6]  # rows 8..12 clear of it
    assert not inside[5, 5]  # a TEST pixel is never inside TRAIN
    assert inside[11, 11]
    np.testing.assert_array_equal(inside, _brute_inside(m, TRAIN, 2))
    # the TEST block's 4 x 4 pixels: with radius 1 only its central 2 x 2 are inside
    t1 = window_inside(m, TEST, 1)
    assert np.flatnonzero(t1.ravel()).tolist() == [5 * 12 + 5, 5 * 12 + 6, 6 * 12 + 5, 6 * 12 + 6]
    np.testing.assert_array_equal(window_inside(m, VAL, 2), _brute_inside(m, VAL, 2))
    np.testing.assert_array_equal(window_inside(m, TRAIN, 0), m == TRAIN)
