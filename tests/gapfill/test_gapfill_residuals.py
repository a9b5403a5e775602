"""Residual correction: identity, exact constant offsets, smooth residual recovery."""

import numpy as np
import pytest

from lstfill.gapfill.residuals import correct_residuals


def _scene(size: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = 300 + rng.normal(0, 2, (size, size))
    visible = np.ones((size, size), dtype=bool)
    visible[15:45, 20:50] = False  # a large gap
    visible[:, :5] = False  # a gap at the edge
    observed = np.where(visible, truth, np.nan)
    return truth, observed, visible


def test_none_is_identity():
    truth, observed, visible = _scene()
    pred = truth + 3.0
    out = correct_residuals(pred, observed, visible, mode="none")
    np.testing.assert_array_equal(out, pred)
    assert out is not pred


@pytest.mark.parametrize("mode", ["offset", "smooth"])
def test_constant_offset_is_removed_exactly(mode):
    truth, observed, visible = _scene()
    out = correct_residuals(truth + 4.2, observed, visible, mode=mode, sigma_px=6.0)
    np.testing.assert_allclose(out, truth, atol=1e-9)


def test_no_visible_pixel_leaves_prediction_unchanged():
    truth, observed, _ = _scene()
    none = np.zeros(truth.shape, bool)
    np.testing.assert_array_equal(correct_residuals(truth + 1, observed, none), truth + 1)


def test_smooth_residual_is_recovered_better_than_offset():
    truth, observed, visible = _scene()
    yy, xx = np.mgrid[0:60, 0:60]
    bias = 3.0 * np.sin(xx / 15.0) + 0.05 * yy  # smooth model error of a few K
    pred = truth + bias
    hidden = ~visible
    err = {}
    for mode in ("none", "offset", "smooth"):
        out = correct_residuals(pred, observed, visible, mode=mode)
        err[mode] = np.sqrt(np.mean((out - truth)[hidden] ** 2))
    assert err["smooth"] < 0.75 * err["offset"] < err["none"]


def test_nan_prediction_stays_nan_and_bad_mode_raises():
    truth, observed, visible = _scene()
    pred = truth + 1.0
    pred[0, 0] = np.nan
    out = correct_residuals(pred, observed, visible)
    assert np.isnan(out[0, 0]) and np.isfinite(out[1:, 1:]).all()
    with pytest.raises(ValueError):
        correct_residuals(pred, observed, visible, mode="kriging")
