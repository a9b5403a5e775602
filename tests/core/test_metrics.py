"""Shared regression metrics: hand-computed values, NaN handling, bins, interval coverage."""

import math

import numpy as np
import pytest

from lstfill.metrics import binned_metrics, interval_coverage, regression_metrics


def test_regression_metrics_hand_computed():
    m = regression_metrics(np.array([1.0, 2, 3, 4]), np.array([1.0, 1, 1, 1]))
    assert m["n"] == 4
    assert m["rmse"] == pytest.approx(math.sqrt((0 + 1 + 4 + 9) / 4))
    assert m["mae"] == pytest.approx(1.5)
    assert m["bias"] == pytest.approx(1.5)
    assert math.isnan(m["r2"])  # constant truth: r2 undefined
    assert (m["within_1k"], m["within_2k"], m["within_3k"]) == (0.5, 0.75, 1.0)
    assert all(type(v) in (float, int) for v in m.values())


def test_r2_hand_computed():
    # truth mean 2.75: SStot = 3.0625 + 0.5625 + 0.0625 + 5.0625 = 8.75; SSres = 1
    m = regression_metrics(np.array([1.0, 2, 3, 4]), np.array([1.0, 2, 3, 5]))
    assert m["r2"] == pytest.approx(1 - 1 / 8.75)
    assert m["bias"] == pytest.approx(-0.25)


def test_nan_pixels_are_ignored():
    pred = np.array([[1.0, np.nan], [3.0, 9.0]])
    truth = np.array([[1.0, 5.0], [1.0, np.nan]])
    m = regression_metrics(pred, truth)
    assert m["n"] == 2
    assert m["rmse"] == pytest.approx(math.sqrt(2.0))
    assert m["bias"] == pytest.approx(1.0)


def test_single_sample_has_no_r2_and_empty_gives_nan():
    assert math.isnan(regression_metrics(np.array([2.0]), np.array([1.0]))["r2"])
    empty = regression_metrics(np.array([np.nan]), np.array([1.0]))
    assert empty["n"] == 0 and math.isnan(empty["rmse"])


def test_interval_coverage():
    pred = np.zeros(4)
    truth = np.array([0.5, 1.5, -1.0, np.nan])
    assert interval_coverage(pred, truth, np.ones(4)) == pytest.approx(2 / 3)
    assert interval_coverage(pred, truth, 2.0) == 1.0


def test_binned_metrics_default_labels_and_empty_bins():
    pred = np.array([1.0, 2.0, 4.0, 5.0, 7.0])
    truth = np.zeros(5)
    values = np.array([10, 100, 200, 800, 5000])
    out = binned_metrics(pred, truth, values, [0, 140, 350, 700, np.inf])
    assert list(out) == ["0-140", "140-350", "700+"]  # 350-700 is empty
    assert out["0-140"]["n"] == 2
    assert out["0-140"]["mae"] == pytest.approx(1.5)
    assert out["700+"]["rmse"] == pytest.approx(math.sqrt((25 + 49) / 2))


def test_binned_metrics_custom_labels():
    out = binned_metrics(np.ones(2), np.zeros(2), np.array([1, 3]), [0, 2, 4], ["near", "far"])
    assert set(out) == {"near", "far"}
    with pytest.raises(ValueError):
        binned_metrics(np.ones(2), np.zeros(2), np.array([1, 3]), [0, 2, 4], ["one"])
