"""EFAST (lstfill.fusion.method, .coarse, .nesting) and the fusion baselines on small arrays,
by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstfill.filters import masked_gaussian
from lstfill.fusion import baselines
from lstfill.fusion.coarse import CoarseSeries, composite_series, interpolate_series
from lstfill.fusion.method import (
    FLAG_COARSE_NEAREST,
    FLAG_NO_COARSE,
    FLAG_NO_FINE,
    ArrayScene,
    EfastSettings,
    acquisition_weights,
    cloud_distance,
    fuse,
    masked_share,
)
from lstfill.fusion.nesting import Upsampler

R = 4  # fine pixels per coarse pixel
H = W = 32  # fine grid; the coarse grid is 8 x 8


def plain(**kw) -> EfastSettings:
    """The fusion formula alone: the coarse series interpolated linearly, not composited or
    smoothed (the pre-processing has tests of its own)."""
    return EfastSettings(ratio=R, composite_days=0, smooth_px=0, **kw)


def block_mean(fine: np.ndarray) -> np.ndarray:
    return fine.reshape(H // R, R, W // R, R).mean(axis=(1, 3))


@pytest.fixture
def fine() -> np.ndarray:
    return np.random.default_rng(0).uniform(0.2, 0.8, (H, W)).astype(np.float32)


def series(fine: np.ndarray, days, trend: float = 0.0) -> CoarseSeries:
    """A coarse series that sees `fine` plus `trend` per day."""
    days = np.asarray(days, dtype=float)
    return CoarseSeries(days, np.stack([block_mean(fine) + trend * d for d in days]))


# --------------------------------------------------------------------------- coarse series


def test_interpolation_is_linear_between_dates_and_nearest_on_one_side():
    days = np.array([0.0, 10.0, 20.0])
    values = np.array([[1.0, np.nan, 5.0], [2.0, 4.0, np.nan], [3.0, np.nan, np.nan]])
    # pixel 0: all dates; pixel 1: only day 10; pixel 2: only day 0
    out, nearest = interpolate_series(days, values, [5.0, 10.0, 25.0])
    assert out[:, 0] == pytest.approx([1.5, 2.0, 3.0])
    assert out[:, 1] == pytest.approx([4.0, 4.0, 4.0])
    assert out[:, 2] == pytest.approx([5.0, 5.0, 5.0])
    assert nearest[:, 0].tolist() == [False, False, True]  # day 25 is past the last date
    assert nearest[:, 1].tolist() == [True, False, True]  # day 10 is the observation itself
    assert nearest[:, 2].tolist() == [True, True, True]


def test_interpolation_skips_invalid_dates_and_gives_nan_without_any():
    days = np.array([0.0, 4.0, 8.0])
    values = np.array([[0.0, np.nan], [np.nan, np.nan], [8.0, np.nan]])
    out, nearest = interpolate_series(days, values, [2.0])
    assert out[0, 0] == pytest.approx(2.0)  # across the invalid day 4
    assert np.isnan(out[0, 1]) and not nearest[0, 1]


def test_composite_weights_dates_by_time_and_by_distance_to_invalid_pixels():
    days = np.array([0.0, 10.0])
    values = np.zeros((2, 1, 1, 9), dtype=np.float32)
    values[0] = 1.0
    values[1] = 3.0
    values[1, 0, 0, 0] = np.nan  # an invalid pixel at the left edge of day 10
    out = composite_series(days, values, [0.0], sigma_days=10.0, D=4.0)[0, 0, 0]
    w0 = 1.0
    for col, expected_d in ((1, 1.0), (3, 3.0), (8, 8.0)):
        w1 = math.exp(-0.5) * min(max((expected_d - 1) / 4.0, 0.0), 1.0)
        assert out[col] == pytest.approx((w0 * 1 + w1 * 3) / (w0 + w1), rel=1e-5)
    assert out[0] == pytest.approx(1.0)  # only day 0 is valid there


def test_smoothing_keeps_nan_and_leaves_it_out_of_the_neighbours():
    a = np.ones((1, 7, 7), dtype=np.float32)
    a[0, 3, 3] = np.nan
    a[0, 0, :] = 3.0
    out = masked_gaussian(a, 1.0, truncate=2.0)
    assert np.isnan(out[0, 3, 3]) and np.isfinite(out).sum() == 48
    assert out[0, 3, 4] == pytest.approx(1.0)  # its neighbourhood is all 1 but the NaN
    assert 1.0 < out[0, 1, 3] < 3.0


# --------------------------------------------------------------------------- weights


def test_one_cloudy_fine_pixel_changes_the_weights_as_the_formula_says(fine):
    valid = np.ones((H, W), dtype=bool)
    valid[9, 10] = False  # one fine pixel of coarse pixel (2, 2): 1/16 of it masked
    scene = ArrayScene(0.0, np.where(valid, fine, np.nan))
    share = masked_share(scene, (H, W), R, block_rows=8)
    assert share[2, 2] == pytest.approx(1 / 16)
    assert share.sum() == pytest.approx(1 / 16)
    settings = plain(D=2.0, sigma=10.0)
    distance = cloud_distance(share > settings.tolerance)
    raw, norm = acquisition_weights(distance[None], np.array([5.0]), settings)
    temporal = math.exp(-(5.0**2) / (2 * 10.0**2))
    expected = {(2, 2): 0.0, (2, 3): 0.0, (2, 4): 0.5, (2, 5): 1.0, (3, 3): (math.sqrt(2) - 1) / 2}
    for (r, c), ramp in expected.items():
        assert raw[0, r, c] == pytest.approx(ramp * temporal)
    # normalised per coarse pixel: 1 where the scene has any weight, 0 where it has none
    assert norm[0, 2, 2] == 0.0 and norm[0, 2, 5] == pytest.approx(1.0)
    # the tolerance decides whether 1/16 masked makes the coarse pixel cloudy
    assert not (share > 0.1).any()


def test_cloud_free_scene_reproduces_the_fine_input_when_the_coarse_signal_is_flat(fine):
    settings = plain()
    result = fuse([ArrayScene(-6.0, fine)], series(fine, range(-12, 13)), 0.0, (H, W), settings)
    assert np.abs(result.fused[0] - fine).max() < 1e-6
    assert (result.flag == 0).all()
    assert result.days_to_fine == pytest.approx(np.full((H, W), 6.0))
    assert result.weight == pytest.approx(np.full((H, W), math.exp(-36 / 800)), rel=1e-5)
    assert result.info.fine_days == [-6.0]


def test_two_scenes_are_averaged_with_the_temporal_gaussian(fine):
    other = np.full_like(fine, 0.5)
    settings = plain(sigma=20.0)
    flat = CoarseSeries(np.arange(-25.0, 26.0), np.full((51, H // R, W // R), 0.3))
    result = fuse([ArrayScene(-10.0, fine), ArrayScene(20.0, other)], flat, 0.0, (H, W), settings)
    w1, w2 = math.exp(-100 / 800), math.exp(-400 / 800)
    expected = (w1 * fine + w2 * other) / (w1 + w2)
    assert np.abs(result.fused[0] - expected).max() < 1e-5
    assert result.weight == pytest.approx(np.full((H, W), w1 + w2), rel=1e-5)


def test_a_coarse_trend_shifts_the_product_by_exactly_that_trend(fine):
    settings = plain()
    coarse = series(fine, range(-20, 21), trend=0.002)
    result = fuse([ArrayScene(-10.0, fine)], coarse, 5.0, (H, W), settings)
    assert np.abs(result.fused[0] - (fine + 0.002 * 15)).max() < 1e-5


def test_no_fine_weight_gives_nan_and_a_flag_never_the_coarse_value(fine):
    cloudy = ArrayScene(0.0, np.full_like(fine, np.nan))
    result = fuse([cloudy], series(fine, range(-5, 6)), 0.0, (H, W), plain())
    assert np.isnan(result.fused).all()
    assert (result.flag & FLAG_NO_FINE).all()
    # a scene beyond max_days is not used at all
    far = ArrayScene(-40.0, fine)
    result = fuse([far], series(fine, range(-45, 6)), 0.0, (H, W), plain())
    assert np.isnan(result.fused).all() and result.info.fine_days == []


def test_one_coarse_date_is_a_flagged_nearest_date_fallback(fine):
    coarse = series(fine, [3.0], trend=0.01)
    result = fuse([ArrayScene(-2.0, fine)], coarse, 0.0, (H, W), plain())
    # the same coarse value for the fine day and the prediction day: no change added
    assert np.abs(result.fused[0] - fine).max() < 1e-6
    assert (result.flag == FLAG_COARSE_NEAREST).all()
    none = CoarseSeries(np.array([90.0]), block_mean(fine)[None])
    result = fuse([ArrayScene(-2.0, fine)], none, 0.0, (H, W), plain())
    assert np.isnan(result.fused).all() and (result.flag & FLAG_NO_COARSE).all()


def test_unimportant_scenes_are_dropped(fine):
    settings = plain(sigma=5.0, min_importance=0.05)
    scenes = [ArrayScene(0.0, fine), ArrayScene(20.0, fine + 0.5)]  # exp(-8) share: ~3e-4
    result = fuse(scenes, series(fine, range(-5, 25)), 0.0, (H, W), settings)
    assert result.info.fine_days == [0.0] and result.info.dropped_days == [20.0]
    assert np.abs(result.fused[0] - fine).max() < 1e-6


def test_blocks_threads_and_grids_that_do_not_divide_give_the_same_product():
    rng = np.random.default_rng(3)
    h, w = 30, 27  # coarse grid 8 x 7, the last coarse row and column partial
    scenes = []
    for k, day in enumerate((-8.0, 3.0, 12.0)):
        data = rng.uniform(0, 1, (2, h, w)).astype(np.float32)
        data[:, 4 * k : 4 * k + 5, 6:11] = np.nan  # a small cloud
        scenes.append(ArrayScene(day, data))
    coarse = CoarseSeries(np.arange(-20.0, 21.0), rng.uniform(0, 1, (41, 2, 8, 7)))
    settings = EfastSettings(ratio=R, D=3.0)
    whole = fuse(scenes, coarse, 1.0, (h, w), settings, block_rows=64)
    blocks = fuse(scenes, coarse, 1.0, (h, w), settings, block_rows=8, threads=2)
    for name in ("fused", "weight", "days_to_fine", "flag"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(blocks, name))
    assert whole.fused.shape == (2, h, w)
    assert 0.5 < np.isfinite(whole.fused).mean() < 1


def test_bilinear_upsampling_is_centre_aligned_and_clamped():
    coarse = np.arange(4, dtype=np.float32)[None, :].repeat(2, axis=0)  # columns 0..3
    up = Upsampler.for_block(slice(0, 8), 16, (2, 4), R)
    out = up(coarse)
    # fine column i sits at coarse position (i + 0.5) / 4 - 0.5
    expected = np.clip((np.arange(16) + 0.5) / 4 - 0.5, 0, 3)
    assert out[3] == pytest.approx(expected)
    holey = coarse.copy()
    holey[:, 1] = np.nan
    masked = up.masked(holey)
    assert np.isfinite(masked).all()
    assert masked[0, 4] == pytest.approx(0.0)  # only coarse column 0 is valid around it
    assert masked[0, 6] == pytest.approx(2.0)  # columns 1 (NaN) and 2: the valid one


# --------------------------------------------------------------------------- baselines


def test_baselines_by_hand():
    shape = (8, 8)
    a, b = np.full(shape, 0.2), np.full(shape, 0.6)
    a[0, 0] = np.nan  # pixel (0, 0) is seen only on day 10
    scenes = [ArrayScene(0.0, a), ArrayScene(10.0, b)]
    coarse = CoarseSeries(
        np.array([0.0, 10.0]), np.stack([np.full((2, 2), 0.1), np.full((2, 2), 0.3)])
    )
    day, settings = 4.0, plain()
    near = baselines.nearest(scenes, coarse, day, settings)[0]
    assert near[1, 1] == pytest.approx(0.2) and near[0, 0] == pytest.approx(0.6)
    lin = baselines.linear(scenes, coarse, day, settings)[0]
    assert lin[1, 1] == pytest.approx(0.2 + 0.4 * 0.4) and lin[0, 0] == pytest.approx(0.6)
    off = baselines.offset(scenes, coarse, day, settings)[0]
    # nearest scene plus the coarse change since its day (0.1 -> 0.18 by day 4; 0.3 -> 0.18)
    assert off[1, 1] == pytest.approx(0.2 + 0.08) and off[0, 0] == pytest.approx(0.6 - 0.12)
    assert baselines.coarse(scenes, coarse, day, settings)[0] == pytest.approx(np.full(shape, 0.18))


def test_a_second_scene_of_the_withheld_day_is_withheld_too(fine):
    """Two tiles (or spacecraft) of one day: scoring one from the other would be a leak."""
    from lstfill.fusion.evaluate import withheld_protocol

    settings = plain()
    scenes = [ArrayScene(0.0, fine), ArrayScene(0.0, fine), ArrayScene(10.0, fine + 0.1)]
    coarse = series(fine, range(-5, 16))
    out = withheld_protocol(scenes, coarse, settings, ["ndvi"], [0])
    (record,) = out["targets"].values()
    assert record["inputs"] == 1
    # the other same-day scene would have given a perfect score; day 10 is 0.1 off
    assert out["bands"]["ndvi"]["baseline_nearest"]["rmse"] == pytest.approx(0.1, abs=1e-5)


def test_efast_behind_the_method_interface_round_trips_its_settings():
    from lstfill.fusion.method import METHODS, Efast
    from lstfill.method import Method

    efast = METHODS["efast"](EfastSettings(ratio=3, sigma=12.0))
    assert isinstance(efast, Method) and efast.fit(None, "unused") is None
    again = Efast.from_state(efast.state())
    assert again == efast and again.settings.sigma == 12.0
