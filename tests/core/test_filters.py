"""lstfill.filters: normalised convolution is a local mean over known pixels only."""

import numpy as np
import pytest

from lstfill.filters import blend_toward, masked_gaussian, normalised_convolution


def test_a_constant_field_is_recovered_whatever_the_gaps():
    rng = np.random.default_rng(0)
    mask = rng.random((40, 40)) > 0.7
    values = np.where(mask, 5.0, 1e6)  # unknown pixels hold garbage that must not leak in
    local, support = normalised_convolution(values, mask, 3.0)
    assert np.allclose(local[np.isfinite(local)], 5.0)
    assert np.isfinite(local).all()  # every pixel sees some known pixel at sigma 3
    assert 0 < support.min() and support.max() < 1


def test_support_is_one_inside_a_known_area_and_local_nan_where_none_is_near():
    mask = np.zeros((50, 50), bool)
    mask[:, :20] = True
    local, support = normalised_convolution(np.ones((50, 50)), mask, 1.0, min_support=1e-6)
    assert support[25, 10] == pytest.approx(1.0)
    assert np.isnan(local[25, 45])  # 25 px from the nearest known pixel


def test_blend_toward_the_fallback_where_support_is_small():
    local = np.array([2.0, 2.0, np.nan])
    support = np.array([1.0, 0.05, 0.0])
    out = blend_toward(local, support, fallback=0.0, eps=0.05)
    assert out == pytest.approx([2.0 / 1.05, 1.0, 0.0])


def test_masked_gaussian_keeps_nan_and_smooths_the_last_two_axes_only():
    a = np.zeros((2, 9, 9), np.float32)
    a[0, 4, 4] = 1.0
    a[1, 0, 0] = np.nan
    out = masked_gaussian(a, 1.0)
    assert out.dtype == np.float32
    assert np.isnan(out[1, 0, 0]) and np.isfinite(out).sum() == a.size - 1
    assert np.nanmax(out[1]) == 0.0  # nothing leaks from the first image into the second
    assert out[0].sum() == pytest.approx(1.0, rel=1e-3) and out[0, 4, 4] < 0.2
    assert masked_gaussian(a, 0.0) is a
