"""Baseline fillers: lapse-rate fit, temporal interpolation, gradient boosting, no leakage."""

import numpy as np
import pytest
from affine import Affine
from threadpoolctl import threadpool_limits

from lstfill.gapfill.baselines import (
    HGBBaseline,
    MeanLapse,
    fill_mean_lapse,
    fill_temporal,
    fill_with_correction,
    fit_mean_lapse,
)
from lstfill.gapfill.features import FeatureSet, is_daytime
from lstfill.gapfill.inputs import LstSeries
from lstfill.grid import Grid


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny HGB fits: OpenMP threads only add contention (and stall on a busy machine)."""
    with threadpool_limits(1):
        yield


SIZE = 40
LAPSE = -0.0065
HIDDEN = (slice(10, 25), slice(8, 30))
# At 15 E local solar time is UTC + 1 h: 10:00 UTC is day, 21:00 UTC is night.
GRID = Grid("EPSG:32633", Affine(70.0, 0, 500000, 0, -70.0, 5200000), SIZE, SIZE)


def elevation() -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    return (300 + 40 * xx + 20 * yy + 200 * np.sin(yy / 5.0)).astype(np.float32)


def lapse_series(n_t: int = 10, noise: float = 0.3, seed: int = 0) -> LstSeries:
    """LST = base(t) + LAPSE * z + noise, daily at 10:00 UTC, some dates cloudy."""
    rng = np.random.default_rng(seed)
    z = elevation()
    base = 300 + rng.normal(0, 3, n_t)
    lst = base[:, None, None] + LAPSE * z[None] + rng.normal(0, noise, (n_t, SIZE, SIZE))
    lst = lst.astype(np.float32)
    lst[3, :20, :20] = np.nan
    lst[6, 15:, 10:] = np.nan
    times = np.datetime64("2020-07-01T10:00") + np.arange(n_t) * np.timedelta64(1, "D")
    land = np.ones((SIZE, SIZE), dtype=bool)
    land[-2:, -2:] = False
    return LstSeries(times=times, lst=lst, grid=GRID, static={"elevation": z}, land=land)


def hide(series: LstSeries, t: int, value: float | None = None) -> LstSeries:
    """`series` with the HIDDEN block of t blanked, after (optionally) setting its truth."""
    hidden = np.zeros((SIZE, SIZE), dtype=bool)
    hidden[HIDDEN] = True
    if value is not None:
        lst = series.lst.copy()
        lst[t][hidden] = value
        series = LstSeries(
            times=series.times, lst=lst, grid=series.grid, dynamic=series.dynamic,
            static=series.static, land=series.land,
        )  # fmt: skip
    return series.with_hidden(t, hidden)


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


# --- mean lapse ----------------------------------------------------------------------------------


def test_mean_lapse_recovers_slope_and_hidden_pixels():
    series = lapse_series()
    t = 2
    blanked = hide(series, t)
    fit = fit_mean_lapse(blanked, t)
    assert set(fit.coef) == {"elevation"}  # no t2m in the series: dropped
    assert fit.coef["elevation"] == pytest.approx(LAPSE, abs=2e-4)
    pred = MeanLapse()(blanked, t).lst
    assert MeanLapse().name == "scene mean plus elevation lapse rate and INCA anomaly"
    assert rmse(pred[HIDDEN], series.lst[t][HIDDEN]) < 0.4
    assert np.isnan(pred[~series.land]).all() and np.isfinite(pred[series.land]).all()


def test_mean_lapse_uses_t2m_anomaly_and_is_robust_to_outliers():
    rng = np.random.default_rng(1)
    series = lapse_series()
    t2m = rng.normal(0, 2, series.shape).astype(np.float32)
    t2m[0] = 5.0  # no spatial variance on date 0: dropped there
    lst = series.lst + 0.8 * t2m
    lst[4, ::7, ::5] += 40.0  # outliers (hot spots, residual cloud edges)
    s = LstSeries(series.times, lst, GRID, {"t2m": t2m}, series.static, series.land)
    fit = fit_mean_lapse(s, 4)
    assert fit.coef["elevation"] == pytest.approx(LAPSE, abs=3e-4)
    assert fit.coef["t2m"] == pytest.approx(0.8, abs=0.03)
    assert set(fit_mean_lapse(s, 0).coef) == {"elevation"}
    assert set(fit_mean_lapse(s, 4, covariates=("elevation",)).coef) == {"elevation"}


def test_mean_lapse_falls_back_to_climatology_without_visible_pixels():
    series = lapse_series()
    blank = series.with_hidden(5, np.ones((SIZE, SIZE), dtype=bool))
    assert fit_mean_lapse(blank, 5) is None
    pred = fill_mean_lapse(blank, 5).lst
    others = np.delete(series.lst, 5, axis=0)
    expected = np.nanmean(others, axis=0)
    np.testing.assert_allclose(pred[series.land], expected[series.land], rtol=1e-6)


# --- temporal interpolation ----------------------------------------------------------------------


def temporal_series() -> LstSeries:
    times = np.array(
        ["2020-07-01T10:00", "2020-07-02T10:00", "2020-07-03T21:00", "2020-07-04T10:00",
         "2020-07-06T10:00"],
        dtype="datetime64[s]",
    )  # fmt: skip
    z = elevation()[:6, :6]
    lst = np.stack([300 + LAPSE * z] * 5).astype(np.float32)
    lst[2] = 250.0  # a night acquisition: must never be used for a day target
    lst[0, 0, 0], lst[3, 0, 0] = 290.0, 296.0  # both sides
    lst[0, 0, 1], lst[3, 0, 1], lst[4, 0, 1] = 290.0, np.nan, 300.0  # later side 5 days on
    lst[0, 0, 2], lst[3:, 0, 2] = np.nan, 297.0  # later side only
    lst[0, 0, 3], lst[3:, 0, 3] = 293.0, np.nan  # earlier side only
    lst[[0, 3, 4], 0, 4] = np.nan  # none: mean-lapse fallback
    grid = Grid("EPSG:32633", Affine(70.0, 0, 500000, 0, -70.0, 5200000), 6, 6)
    return LstSeries(times=times, lst=lst, grid=grid, static={"elevation": z})


def test_temporal_interpolation_hand_computed():
    series = temporal_series()
    assert list(is_daytime(series)) == [True, True, False, True, True]
    target = series.with_hidden(1, np.ones((6, 6), dtype=bool))
    pred = fill_temporal(target, 1).lst
    assert pred[0, 0] == pytest.approx(290 + (296 - 290) / 3)
    assert pred[0, 1] == pytest.approx(290 + (300 - 290) / 5)
    assert pred[0, 2] == pytest.approx(297.0)
    assert pred[0, 3] == pytest.approx(293.0)
    assert np.isfinite(pred).all() and 280 < pred[0, 4] < 310  # fallback, not the night 250
    assert (pred > 260).all()


def test_temporal_night_target_uses_night_dates_only():
    series = temporal_series()
    pred = fill_temporal(series.with_hidden(2, np.ones((6, 6), dtype=bool)), 2).lst
    assert np.isfinite(pred).all() and (pred > 280).all()  # only day dates: fallback to them
    lst = series.lst.copy()
    lst = np.concatenate([lst, np.full((1, 6, 6), 255.0, np.float32)])
    times = np.r_[series.times, np.array(["2020-07-07T21:00"], dtype="datetime64[s]")]
    s2 = LstSeries(times=times, lst=lst, grid=series.grid, static=series.static)
    pred = fill_temporal(s2.with_hidden(2, np.ones((6, 6), dtype=bool)), 2).lst
    np.testing.assert_allclose(pred, 255.0)


# --- gradient boosting ---------------------------------------------------------------------------


def hgb_series(seed: int = 0) -> LstSeries:
    """LST a non-linear function of elevation and biome, plus a fixed per-pixel pattern."""
    rng = np.random.default_rng(seed)
    z = elevation()
    biome = np.zeros((SIZE, SIZE), np.float32)
    biome[:, 20:] = 2.0
    biome[30:, :] = 7.0
    pattern = rng.normal(0, 1.5, (SIZE, SIZE))
    signal = 6 * np.sin(z / 250.0) + 4 * (biome == 2) - 3 * (biome == 7) + pattern
    n_t = 10
    lst = 300 + signal[None] + rng.normal(0, 0.3, (n_t, SIZE, SIZE))
    lst = lst.astype(np.float32)
    lst[4, 5:20, 5:20] = np.nan
    times = np.datetime64("2020-07-01T10:00") + np.arange(n_t) * np.timedelta64(1, "D")
    return LstSeries(times=times, lst=lst, grid=GRID, static={"elevation": z, "biome": biome})


FEATURES = FeatureSet(("elevation", "doy_sin", "doy_cos", "lst_pattern"), ("biome",))


def fitted_hgb(series: LstSeries, t: int) -> HGBBaseline:
    allowed = np.ones(len(series.times), dtype=bool)
    allowed[t] = False
    train = np.flatnonzero(allowed)
    return HGBBaseline(FEATURES, max_iter=100, max_samples=8000).fit(series, train, allowed)


def test_hgb_beats_scene_mean():
    series = hgb_series()
    t = 8
    blanked = hide(series, t)
    model = fitted_hgb(blanked, t)
    assert list(model.vocab["biome"]) == [0, 2, 7]
    pred = model.fill(blanked, t).lst
    truth = series.lst[t][HIDDEN]
    scene_mean = np.nanmean(blanked.lst[t])
    assert rmse(pred[HIDDEN], truth) < 0.5 * rmse(np.full_like(truth, scene_mean), truth)
    assert rmse(pred[HIDDEN], truth) < 1.0


def test_hgb_never_reads_the_target_lst():
    series = hgb_series()
    t = 8
    model = fitted_hgb(series, t)
    a = model.fill(series, t).lst
    lst = series.lst.copy()
    lst[t] = np.random.default_rng(5).normal(250, 30, lst[t].shape)
    b = model.fill(LstSeries(series.times, lst, GRID, static=series.static), t).lst
    np.testing.assert_array_equal(a, b)


def test_hgb_unseen_class_is_missing():
    series = hgb_series()
    model = fitted_hgb(series, 8)
    series.static["biome"] = series.static["biome"].copy()
    series.static["biome"][:5, :5] = 99.0
    codes = model._codes(series)
    assert np.isnan(codes[0, :5, :5]).all() and np.isfinite(codes[0, 10:, 10:]).all()
    assert np.isfinite(model.fill(series, 8).lst).all()


# --- correction wrapper and leakage --------------------------------------------------------------


def test_fill_with_correction_offset_centres_visible_residuals():
    series = lapse_series()
    blanked = hide(series, 2)
    corrected = fill_with_correction(fill_temporal, "offset")(blanked, 2).lst
    vis = blanked.valid[2]
    assert np.mean(corrected[vis] - blanked.lst[2][vis]) == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize(
    "method",
    ["mean_lapse", "temporal", "temporal_smooth", "hgb_smooth"],
)
def test_outputs_do_not_depend_on_hidden_truth(method):
    t = 8
    outs = []
    for value in (300.0, 1000.0):
        series = hgb_series() if method.startswith("hgb") else lapse_series()
        blanked = hide(series, t, value)
        if method == "mean_lapse":
            filler = MeanLapse()
        elif method == "temporal":
            filler = fill_temporal
        elif method == "temporal_smooth":
            filler = fill_with_correction(fill_temporal, "smooth", 4.0)
        else:
            filler = fill_with_correction(fitted_hgb(blanked, t).fill, "smooth", 4.0)
        outs.append(filler(blanked, t).lst)
    np.testing.assert_array_equal(outs[0], outs[1])
