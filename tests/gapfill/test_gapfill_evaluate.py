"""Artificial-gap protocol: hidden masks, distance and gap size, pair selection, evaluation."""

import numpy as np
import pytest
from affine import Affine

from lstfill.errors import LstfillError
from lstfill.gapfill.evaluate import (
    Pair,
    combine_folds,
    distance_to_visible,
    evaluate_pairs,
    gap_size,
    hidden_mask,
    score_pair,
    select_pairs,
    summarise,
)
from lstfill.gapfill.inputs import FillResult, LstSeries
from lstfill.grid import Grid

DIST_EDGES = [0, 140, 350, np.inf]
SIZE_EDGES = [0, 10, 100, np.inf]


def make_series(n_t: int = 4, size: int = 20, seed: int = 0) -> LstSeries:
    """Clear targets (0, 1) and cloudy donors (2, 3) with a square and a strip of cloud."""
    rng = np.random.default_rng(seed)
    grid = Grid("EPSG:32633", Affine(70.0, 0, 500000, 0, -70.0, 5200000), size, size)
    z = np.linspace(500, 1500, size * size).reshape(size, size).astype(np.float32)
    lst = 300 - 0.0065 * z[None] + rng.normal(0, 0.5, (n_t, size, size)).astype(np.float32)
    lst[2, 5:12, 5:12] = np.nan
    lst[3, :, 15:] = np.nan
    times = np.datetime64("2020-07-01T10:00") + np.arange(n_t) * np.timedelta64(1, "D")
    land = np.ones((size, size), dtype=bool)
    land[0, 0] = False
    return LstSeries(times=times, lst=lst, grid=grid, static={"elevation": z}, land=land)


def test_hidden_mask():
    target = np.array([[1, 1, 0], [1, 1, 1]], dtype=bool)
    donor = np.array([[0, 1, 0], [0, 0, 1]], dtype=bool)
    land = np.array([[1, 1, 1], [0, 1, 1]], dtype=bool)
    expected = np.array([[1, 0, 0], [0, 1, 0]], dtype=bool)
    np.testing.assert_array_equal(hidden_mask(target, donor, land), expected)


def test_distance_to_visible():
    visible = np.zeros((6, 8), dtype=bool)
    visible[2, 2] = True
    d = distance_to_visible(visible, 70.0)
    assert d.dtype == np.float32
    assert d[2, 2] == 0
    assert d[2, 4] == pytest.approx(140.0)
    assert d[5, 6] == pytest.approx(350.0)  # 3-4-5 triangle
    assert d[3, 3] == pytest.approx(70 * np.sqrt(2))
    assert np.isinf(distance_to_visible(np.zeros((3, 3), bool), 70.0)).all()
    assert (distance_to_visible(np.ones((3, 3), bool), 70.0) == 0).all()


def test_gap_size_two_blobs_eight_connected():
    gaps = np.zeros((6, 6), dtype=bool)
    gaps[0, 0] = gaps[1, 1] = gaps[2, 2] = True  # diagonal: one 8-connected blob of 3
    gaps[4:6, 3:6] = True  # blob of 6
    s = gap_size(gaps)
    assert s[0, 0] == s[1, 1] == s[2, 2] == 3
    assert (s[4:6, 3:6] == 6).all()
    assert s[0, 5] == 0 and s.sum() == 3 * 3 + 6 * 6
    assert (gap_size(np.zeros((2, 2), bool)) == 0).all()


def test_select_pairs_thresholds():
    vf = np.array([1.0, 0.5, 0.995, 0.1, 0.9, 0.95, 0.2, 0.99])
    pairs = select_pairs(vf)
    targets, donors = {p.target for p in pairs}, {p.donor for p in pairs}
    assert targets == {0, 2, 7}
    assert donors == {1, 4, 6}
    assert len(pairs) == 9
    assert pairs == sorted(pairs, key=lambda p: (p.target, p.donor))
    only = select_pairs(vf, candidates=np.array([1, 0, 0, 0, 0, 0, 0, 0], bool))
    assert only == [Pair(0, 1), Pair(0, 4), Pair(0, 6)]
    # a date that is both target and donor (wide thresholds) is never paired with itself
    assert all(p.target != p.donor for p in select_pairs(vf, target_min=0.5, donor_max=1.0))


def test_select_pairs_sampling_is_seeded():
    vf = np.r_[np.ones(30), np.full(30, 0.5)]  # 900 candidate pairs
    a = select_pairs(vf, max_pairs=50, seed=3)
    assert len(a) == 50 and len(set(a)) == 50
    assert a == select_pairs(vf, max_pairs=50, seed=3)
    assert a != select_pairs(vf, max_pairs=50, seed=4)
    assert [(p.target, p.donor) for p in a] == sorted((p.target, p.donor) for p in a)


def test_score_pair_and_summarise_with_intervals():
    truth = np.zeros((4, 4))
    hidden = np.zeros((4, 4), bool)
    hidden[1:3, 1:3] = True
    pred = np.where(hidden, 1.0, 0.0)
    hw = np.full((4, 4), 0.5)
    hw[1, 1] = 2.0
    s = score_pair(truth, FillResult(pred, hw), hidden, ~hidden, 100.0)
    assert s["rmse"] == pytest.approx(1.0) and s["n"] == 4
    assert s["coverage_90"] == pytest.approx(0.25)
    np.testing.assert_allclose(s.distance_m, 100.0)
    np.testing.assert_array_equal(s.gap_size_px, 4)
    out = summarise([s, s], DIST_EDGES, SIZE_EDGES)
    assert out["overall"]["n"] == 8 and out["rmse_median"] == pytest.approx(1.0)
    assert out["coverage_90"] == pytest.approx(0.25)
    assert list(out["by_distance"]) == ["0-140"] and list(out["by_gap_size"]) == ["0-10"]


def test_evaluate_scores_only_hidden_pixels_and_hides_them():
    series = make_series()
    original = series.lst.copy()
    seen_hidden = []

    def exact(s: LstSeries, t: int) -> FillResult:
        return FillResult(original[t].copy())  # an oracle: the unblanked observation

    def cheat(s: LstSeries, t: int) -> FillResult:
        seen_hidden.append(int((~np.isfinite(s.lst[t]) & s.land).sum()))
        return FillResult(np.nan_to_num(s.lst[t], nan=0.0))  # what it can see, NaN -> 0

    pairs = select_pairs(series.valid_fraction())
    assert pairs == [Pair(0, 2), Pair(0, 3), Pair(1, 2), Pair(1, 3)]
    out = evaluate_pairs(
        series,
        pairs,
        {"exact": exact, "cheat": cheat},
        dist_edges_m=DIST_EDGES,
        size_edges_px=SIZE_EDGES,
        progress=False,
    )
    n_hidden = 2 * (49 + 5 * 20)
    assert out["n_pairs"] == 4 and out["n_hidden_pixels"] == n_hidden
    assert isinstance(out["protocol"], str)
    ex, ch = out["methods"]["exact"], out["methods"]["cheat"]
    assert ex["overall"]["rmse"] == 0 and ex["rmse_median"] == 0
    assert ex["overall"]["n"] == n_hidden
    assert ch["overall"]["rmse"] > 200  # the hidden truth never reached it
    assert seen_hidden == [49, 100, 49, 100]
    assert set(ex["by_gap_size"]) <= {"0-10", "10-100", "100+"}
    assert "0-140" in ex["by_distance"] and "140-350" in ex["by_distance"]
    np.testing.assert_array_equal(series.lst, original)  # the input series is untouched


def test_evaluate_rejects_non_finite_hidden_predictions():
    series = make_series()

    def holes(s: LstSeries, t: int) -> FillResult:
        return FillResult(s.lst[t].copy())

    with pytest.raises(LstfillError, match="holey"):
        evaluate_pairs(
            series,
            [Pair(0, 2)],
            {"holey": holes},
            dist_edges_m=DIST_EDGES,
            size_edges_px=SIZE_EDGES,
            progress=False,
        )


def test_evaluate_scores_subsets_on_their_hidden_pixels_only():
    series = make_series()
    original = series.lst.copy()

    def left_wrong(s: LstSeries, t: int) -> FillResult:
        out = original[t].copy()
        out[:, :10] += 2.0  # 2 K off in the left half, exact in the right half
        return FillResult(out)

    right = np.zeros(series.grid.shape, dtype=bool)
    right[:, 10:] = True
    out = evaluate_pairs(
        series,
        [Pair(0, 2), Pair(0, 3)],
        {"m": left_wrong},
        dist_edges_m=DIST_EDGES,
        size_edges_px=SIZE_EDGES,
        subsets={"right": right, "left": ~right},
        progress=False,
    )
    sub = out["methods"]["m"]["subsets"]
    # donor 2 hides rows/cols 5..11 (cols 10, 11 on the right: 14 px); donor 3 cols 15.. (100 px)
    assert sub["right"]["n_pixels"] == 14 + 100 and sub["right"]["rmse"] == 0
    assert sub["left"]["n_pixels"] == 35 and sub["left"]["bias"] == pytest.approx(2.0)
    assert out["methods"]["m"]["overall"]["n"] == 149


def test_combine_folds_pools_pairs_and_weights_means_by_pairs():
    def fold(rmse, mae, bias, seconds, coverage=None):
        part = {
            "n_pairs": len(rmse),
            "per_pair_rmse": rmse,
            "mae_mean": mae,
            "bias_mean": bias,
            "seconds": seconds,
        }
        if coverage is not None:
            part["coverage_90"] = coverage
        return part

    folds = [
        {"methods": {"a": fold([1.0, 2.0, 3.0], 1.0, 0.5, 2.0, 0.9), "b": fold([], 0, 0, 0)}},
        {"methods": {"a": fold([5.0], 3.0, -1.5, 1.0)}},
    ]
    out = combine_folds(folds, ["a", "b", "c"])
    assert list(out) == ["a"]  # b scored no pair, c is in no fold
    a = out["a"]
    assert a["per_pair_rmse"] == [1.0, 2.0, 3.0, 5.0] and a["n_pairs"] == 4
    assert a["rmse_mean"] == pytest.approx(2.75) and a["rmse_median"] == pytest.approx(2.5)
    assert a["mae_mean"] == pytest.approx(1.5) and a["bias_mean"] == pytest.approx(0.0)
    assert a["seconds_fill"] == pytest.approx(3.0)
    assert "coverage_90" not in a  # the second fold has none
