"""Climatology plus anomaly baseline: known answers on constructed series, tuning, no leakage."""

import math

import numpy as np
import pytest
from affine import Affine

from lstfill.gapfill.climatology import (
    ClimatologyAnomaly,
    day_of_year,
    doy_weights,
    interpolate_anomaly,
    weighted_climatology,
)
from lstfill.gapfill.inputs import LstSeries
from lstfill.grid import Grid

SIZE = 32
GRID = Grid("EPSG:32633", Affine(70.0, 0, 500000, 0, -70.0, 5200000), SIZE, SIZE)


def pattern() -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    return (3.0 * np.sin(xx / 4.0) + 0.1 * yy).astype(np.float32)


def series_with(offsets: np.ndarray, start: str = "2020-07-01T10:00", step_days: int = 1):
    """LST = 300 + pattern + offsets[t] (uniform per-day anomaly), daily at 10:00 UTC."""
    lst = 300.0 + pattern()[None] + np.asarray(offsets, dtype=np.float32)[:, None, None]
    times = np.datetime64(start) + np.arange(len(offsets)) * np.timedelta64(step_days, "D")
    return LstSeries(times=times, lst=lst.astype(np.float32), grid=GRID)


def test_day_of_year_and_circular_weights():
    doy = day_of_year(np.array(["2021-01-01T12:00", "2021-12-31T00:00"], dtype="datetime64[s]"))
    assert doy == pytest.approx([0.5, 364.0])
    w = doy_weights(np.array([0.5, 364.0, 182.0]), 0.0, 10.0)
    # 364 is 1.25 days from 0 across new year, 182 half a year away
    assert w[0] == pytest.approx(math.exp(-0.5 * 0.05**2))
    assert w[1] == pytest.approx(math.exp(-0.5 * 0.125**2))
    assert w[2] < 1e-50
    assert doy_weights(np.array([3.0, 200.0]), 0.0, math.inf).tolist() == [1.0, 1.0]


def test_weighted_climatology_ignores_gaps_and_weights():
    lst = np.array([[[1.0, 2.0]], [[3.0, np.nan]], [[5.0, 6.0]]])
    valid = np.isfinite(lst)
    clim = weighted_climatology(lst, valid, np.array([1.0, 1.0, 2.0]))
    # pixel 0: (1 + 3 + 2*5) / 4; pixel 1: (2 + 2*6) / 3 (the gap carries no weight)
    assert clim[0].tolist() == pytest.approx([3.5, 14.0 / 3.0])
    assert np.isnan(weighted_climatology(lst, np.zeros_like(valid), np.ones(3))).all()


def test_interpolate_anomaly_reproduces_a_uniform_anomaly_and_falls_back_far_away():
    visible = np.zeros((SIZE, SIZE), dtype=bool)
    visible[:, :8] = True
    anomaly = np.where(visible, 2.5, np.nan)
    out = interpolate_anomaly(anomaly, visible, 4.0)
    assert np.allclose(out, 2.5)
    assert np.array_equal(
        interpolate_anomaly(anomaly, np.zeros_like(visible), 4.0), np.zeros((SIZE, SIZE))
    )


def test_fill_is_exact_for_pattern_plus_uniform_anomaly():
    """Climatology = 300 + pattern + mean offset of the other days; the target's uniform
    anomaly is read off its visible pixels: the hidden pixels come back exactly."""
    offsets = np.array([0.0, 1.0, -2.0, 4.0, 0.5, 3.0])
    series = series_with(offsets)
    truth = series.lst[3].copy()
    hidden = np.zeros((SIZE, SIZE), dtype=bool)
    hidden[8:24, 10:26] = True
    blanked = series.with_hidden(3, hidden)
    clim = ClimatologyAnomaly(sigma_px=4.0)
    expected_clim = 300.0 + pattern() + np.delete(offsets, 3).mean()
    assert np.allclose(clim.climatology(blanked, 3), expected_clim, atol=1e-4)
    filled = clim.fill(blanked, 3).lst
    assert np.allclose(filled[hidden], truth[hidden], atol=1e-3)


def test_fill_reads_no_hidden_pixel():
    series = series_with(np.array([0.0, 1.0, 2.0, 3.0]))
    hidden = np.zeros((SIZE, SIZE), dtype=bool)
    hidden[5:15, 5:15] = True
    a = series.with_hidden(1, hidden)
    lst = series.lst.copy()
    lst[1][hidden] = 999.0  # a different truth under the gap changes nothing
    b = LstSeries(times=series.times, lst=lst, grid=GRID).with_hidden(1, hidden)
    clim = ClimatologyAnomaly()
    assert np.array_equal(clim.fill(a, 1).lst, clim.fill(b, 1).lst)


def test_seasonal_bandwidth_is_chosen_when_the_series_has_a_seasonal_cycle():
    """A year of 5-daily scenes whose level follows a 12 K annual cycle plus daily noise, half
    of each partly cloudy: tuning on the training days picks a finite day-of-year bandwidth,
    and the seasonal climatology beats the plain mean on a held-out date."""
    rng = np.random.default_rng(0)
    n = 73
    doy = np.arange(n) * 5.0
    offsets = 12.0 * np.sin(2 * np.pi * doy / 365.25) + rng.normal(0, 0.5, n)
    series = series_with(offsets, start="2021-01-01T10:00", step_days=5)
    lst = series.lst.copy()
    for t in range(0, n, 2):  # every other date loses a random block to "cloud"
        r, c = rng.integers(0, SIZE - 16, 2)
        lst[t, r : r + 16, c : c + 16] = np.nan
    series = LstSeries(times=series.times, lst=lst, grid=GRID)
    allowed = np.ones(n, dtype=bool)
    allowed[40] = False
    clim = ClimatologyAnomaly(seed=1).fit(series, allowed)
    assert math.isfinite(clim.bandwidth_days)
    assert clim.tuning["tuning_pairs"] > 0
    seasonal = clim.climatology(series, 40)
    plain = clim.climatology(series, 40, bandwidth=math.inf)
    target = series.lst[40]
    assert np.nanmean(np.abs(seasonal - target)) < 0.5 * np.nanmean(np.abs(plain - target))


def test_fit_keeps_the_plain_mean_for_short_series_and_checks_its_input():
    series = series_with(np.array([0.0, 1.0, 2.0]))
    clim = ClimatologyAnomaly(sigma_px=8.0).fit(series, np.ones(3, dtype=bool))
    assert math.isinf(clim.bandwidth_days)  # too few days for a seasonal cycle
    assert clim.sigma_px == 8.0 and clim.tuning == {}  # no partly cloudy donor: not tuned
    with pytest.raises(ValueError, match="one flag per acquisition"):
        clim.fit(series, np.ones(2, dtype=bool))
