"""Downscaling samples: features at known positions, joint scaling, disjoint splits, the cache."""

from __future__ import annotations

import numpy as np
import pytest

from lstfill.downscale.dataset import (
    DROPPED,
    FEATURES,
    GROUPS,
    RADIUS,
    Scaler,
    day_run_gap,
    day_runs,
    fit_scaler,
    read_samples,
    split_by_day,
    split_by_space,
    split_codes,
    window_samples,
    write_samples,
)
from lstfill.downscale.targets import samples_key
from lstfill.errors import ConfigError, LstfillError
from lstfill.splits import TEST, TRAIN, VAL, split_blocks

COL = {name: i for i, name in enumerate(FEATURES)}
HD = [COL[c] for c in GROUPS["height_diffs"]]
ALL_KEYS = {
    "day_sin": "raw",
    "day_cos": "raw",
    "long": "normalize",
    "lat": "normalize",
    "lst_avg": "standardize",
    "height_avg": "normalize",
}


def grid(h: int = 12, w: int = 12) -> tuple[np.ndarray, ...]:
    """Hand-made LST (K), DEM (m), lat and lon, all cells distinct."""
    r, c = np.mgrid[0:h, 0:w].astype(np.float64)
    dem = 100.0 + 7.0 * r + 3.0 * c + 0.5 * (r * c % 5)
    lst = 300.0 + 0.1 * r - 0.2 * c + 0.01 * r * r
    lat = 33.0 - 0.01 * np.arange(h)
    lon = 35.0 + 0.01 * np.arange(w)
    return lst, dem, lat, lon


def find(rc: np.ndarray, row: int, col: int) -> int:
    hit = np.flatnonzero((rc[:, 0] == row) & (rc[:, 1] == col))
    assert len(hit) == 1
    return int(hit[0])


def test_feature_layout() -> None:
    assert len(FEATURES) == 89 and RADIUS == 4
    assert FEATURES[:8] == [
        "day_sin",
        "day_cos",
        "tod_sin",
        "tod_cos",
        "lat",
        "lon",
        "lst_avg",
        "height_avg",
    ]
    assert GROUPS["height_diffs"][0] == "hd_00" and GROUPS["height_diffs"][-1] == "hd_80"
    assert sum(len(v) for v in GROUPS.values()) == 89


def test_features_at_known_position() -> None:
    lst, dem, lat, lon = grid()
    X, y, rc = window_samples(lst, dem, lat, lon, doy=0, hour=13.5)
    assert X.dtype == np.float32 and y.dtype == np.float32 and rc.dtype == np.int32
    assert X.shape == (16, 89) and y.shape == (16,)  # centres 4..7 x 4..7
    i = find(rc, 6, 5)
    lst_mean = lst[2:11, 1:10].mean()
    h_mean = dem[2:11, 1:10].mean()
    assert X[i, COL["lst_avg"]] == pytest.approx(lst_mean, abs=1e-3)
    assert y[i] == pytest.approx(lst[6, 5] - lst_mean, abs=1e-4)
    assert X[i, COL["height_avg"]] == pytest.approx(h_mean, abs=1e-3)
    assert X[i, COL["hd_40"]] == pytest.approx(dem[6, 5] - h_mean, abs=1e-4)
    assert X[i, COL["hd_00"]] == pytest.approx(dem[2, 1] - h_mean, abs=1e-4)
    assert X[i, COL["hd_80"]] == pytest.approx(dem[10, 9] - h_mean, abs=1e-4)
    assert X[i, COL["lat"]] == pytest.approx(lat[6]) and X[i, COL["lon"]] == pytest.approx(lon[5])
    assert X[i, COL["day_sin"]] == pytest.approx(0.0, abs=1e-7)
    assert X[i, COL["day_cos"]] == pytest.approx(1.0)
    tod = 2 * np.pi * 13.5 / 24
    assert X[i, COL["tod_sin"]] == pytest.approx(np.sin(tod), abs=1e-6)
    assert X[i, COL["tod_cos"]] == pytest.approx(np.cos(tod), abs=1e-6)


def test_border_and_nan_exclusion() -> None:
    lst, dem, lat, lon = grid(14, 15)
    _, _, rc_full = window_samples(lst, dem, lat, lon, doy=10, hour=1.5)
    assert rc_full[:, 0].min() >= 4 and rc_full[:, 0].max() <= 14 - 5
    assert rc_full[:, 1].min() >= 4 and rc_full[:, 1].max() <= 15 - 5
    assert len(rc_full) == (14 - 8) * (15 - 8)

    lst[0, 0] = np.nan  # only the centre (4, 4) has (0, 0) in its window
    _, _, rc = window_samples(lst, dem, lat, lon, doy=10, hour=1.5)
    lost = {tuple(p) for p in rc_full} - {tuple(p) for p in rc}
    assert lost == {(4, 4)} and len(rc) == len(rc_full) - 1

    dem[7, 8] = np.nan  # a DEM NaN inside: every centre within 4 px (Chebyshev) of it goes
    _, _, rc = window_samples(lst, dem, lat, lon, doy=10, hour=1.5)
    near = np.maximum(abs(rc_full[:, 0] - 7), abs(rc_full[:, 1] - 8)) <= 4
    expect = {tuple(p) for p in rc_full[~near]} - {(4, 4)}
    assert {tuple(p) for p in rc} == expect


def test_tiny_grid_gives_no_samples() -> None:
    lst, dem, lat, lon = grid(8, 20)
    X, y, rc = window_samples(lst, dem, lat, lon, doy=0, hour=1.5)
    assert X.shape == (0, 89) and y.shape == (0,) and rc.shape == (0, 2)


def samples(n_days: int = 3) -> np.ndarray:
    lst, dem, lat, lon = grid(16, 16)
    return np.concatenate(
        [window_samples(lst + d, dem, lat, lon, doy=d * 40, hour=13.5)[0] for d in range(n_days)]
    )


def test_height_diffs_share_one_normalize_scaler() -> None:
    X = samples()
    sc = fit_scaler(X, {**ALL_KEYS, "height_diffs": "normalize"})
    lo, hi = X[:, HD].astype(np.float64).min(), X[:, HD].astype(np.float64).max()
    assert np.allclose(sc.offset[HD], lo) and np.allclose(sc.scale[HD], hi - lo)
    Z = sc.transform(X)
    assert Z[:, HD].min() == pytest.approx(0.0, abs=1e-6)
    assert Z[:, HD].max() == pytest.approx(1.0, abs=1e-6)
    # one factor for every pair of cells: the window's geometry is preserved
    row = 5
    dx = X[row, HD][:, None].astype(np.float64) - X[row, HD][None, :]
    dz = Z[row, HD][:, None].astype(np.float64) - Z[row, HD][None, :]
    big = np.abs(dx) > 1.0
    assert np.allclose(dz[big] / dx[big], 1.0 / (hi - lo), rtol=1e-4)


def test_height_diffs_standardize_and_raw() -> None:
    X = samples()
    hd = X[:, HD].astype(np.float64)
    sc = fit_scaler(X, {**ALL_KEYS, "height_diffs": "standardize"})
    assert np.allclose(sc.offset[HD], hd.mean()) and np.allclose(sc.scale[HD], hd.std())
    sc_raw = fit_scaler(X, {**ALL_KEYS, "height_diffs": "raw"})
    assert np.array_equal(sc_raw.transform(X)[:, HD], X[:, HD])


def test_lst_standardize_and_defaults() -> None:
    X = samples()
    sc = fit_scaler(X, ALL_KEYS | {"height_diffs": "raw"})
    Z = sc.transform(X).astype(np.float64)
    assert Z[:, COL["lst_avg"]].mean() == pytest.approx(0.0, abs=1e-5)
    assert Z[:, COL["lst_avg"]].std() == pytest.approx(1.0, abs=1e-5)
    lon = Z[:, COL["lon"]]  # the seed's `long` key scales our lon column
    assert lon.min() == pytest.approx(0.0, abs=1e-6) and lon.max() == pytest.approx(1.0, abs=1e-6)
    # tod_* default to raw; day_sin is constant over a day here -> zero range never divides by 0
    assert sc.methods["tod_sin"] == "raw" and np.isfinite(Z).all()
    const = np.ones((4, 89), dtype=np.float32)
    zc = fit_scaler(const, {k: "normalize" for k in ALL_KEYS} | {"height_diffs": "standardize"})
    assert np.isfinite(zc.transform(const)).all()


def test_scaler_round_trip() -> None:
    X = samples()
    sc = fit_scaler(X, {**ALL_KEYS, "height_diffs": "normalize"})
    back = Scaler.from_dict(sc.to_dict())
    assert back.methods == sc.methods and back.columns == FEATURES
    assert np.array_equal(back.transform(X), sc.transform(X))
    assert np.allclose(sc.inverse_transform(sc.transform(X)), X, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize(
    ("methods", "key"),
    [
        ({**ALL_KEYS, "height_diffs": "minmax"}, "height_diffs"),
        ({**ALL_KEYS, "height_diffs": "raw", "elevation": "raw"}, "elevation"),
        ({**ALL_KEYS, "height_diffs": "raw", "lon": "raw"}, "lon"),
        (ALL_KEYS, "height_diffs"),  # missing
    ],
)
def test_scaling_config_errors_name_the_key(methods: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        fit_scaler(samples(1), methods)
    assert err.value.key == key and key in str(err.value)


def test_split_by_day_keeps_days_whole() -> None:
    rng = np.random.default_rng(1)
    days = rng.integers(0, 20, size=500)
    codes = split_by_day(days, (0.6, 0.2, 0.2), seed=3)
    assert codes.shape == days.shape
    for code in (TRAIN, VAL, TEST):
        assert (codes == code).any()
    for d in np.unique(days):
        assert len(np.unique(codes[days == d])) == 1
    assert np.array_equal(codes, split_by_day(days, (0.6, 0.2, 0.2), seed=3))
    # three days: one each even when ratios would round a split to nothing
    few = np.array([5, 5, 9, 12, 12])
    c3 = split_by_day(few, (0.98, 0.01, 0.01), seed=0)
    assert sorted({int(c3[few == d][0]) for d in (5, 9, 12)}) == [TRAIN, VAL, TEST]
    with pytest.raises(ValueError):
        split_by_day(np.array([1, 1, 2]))


def test_split_by_space_windows_stay_in_their_blocks() -> None:
    shape, block, r = (40, 44), 10, RADIUS
    lst, dem, lat, lon = grid(*shape)
    _, _, rc = window_samples(lst, dem, lat, lon, doy=0, hour=13.5)
    kw = {"val_fraction": 0.25, "test_fraction": 0.25, "seed": 2}
    codes = split_by_space(rc, shape, block, **kw, radius=r)
    split_map = split_blocks(shape, block, **kw)
    for code in (TRAIN, VAL, TEST, DROPPED):
        assert (codes == code).any()
    for (row, col), code in zip(rc, codes, strict=True):
        win = split_map[row - r : row + r + 1, col - r : col + r + 1]
        if code == DROPPED:
            assert len(np.unique(win)) > 1  # dropped samples straddle two splits
        else:
            assert (win == code).all()  # e.g. no TRAIN window touches a TEST block
    # blocks are disjoint by construction: each block carries exactly one split code
    ids = (np.arange(shape[0]) // block)[:, None] * 100 + (np.arange(shape[1]) // block)
    for b in np.unique(ids):
        assert len(np.unique(split_map[ids == b])) == 1
    straddle = [len(np.unique(split_map[a - r : a + r + 1, b - r : b + r + 1])) > 1 for a, b in rc]
    assert np.array_equal(codes == DROPPED, np.array(straddle))


def test_cache_round_trip(tmp_path) -> None:
    lst, dem, lat, lon = grid()
    X, y, rc = window_samples(lst, dem, lat, lon, doy=3, hour=1.5)
    n = len(y)
    meta = {
        "day": np.full(n, 3, dtype=np.int32),
        "row": rc[:, 0],
        "col": rc[:, 1],
        "hour": np.full(n, 1.5),
    }
    params = {"radius": 4, "hour": 1.5, "product": "MYD11A1", "days": [1, 2, 3]}
    path = tmp_path / f"samples_{samples_key(params)}.nc"
    write_samples(path, X, y, meta, params)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind
    X2, y2, meta2, params2 = read_samples(path)
    assert np.array_equal(X2, X) and np.array_equal(y2, y)
    assert set(meta2) == set(meta)
    for k, v in meta.items():
        assert np.array_equal(meta2[k], v)
    assert params2 == params


def test_samples_key_is_stable() -> None:
    a = {"radius": 4, "hour": 1.5, "days": [1, 2]}
    b = {"days": [1, 2], "hour": 1.5, "radius": 4}  # same params, other order
    assert samples_key(a) == samples_key(b)
    assert len(samples_key(a)) == 12 and int(samples_key(a), 16) >= 0
    assert samples_key(a) != samples_key({**a, "radius": 3})
    assert samples_key(a) != samples_key({**a, "hour": 13.5})


def test_day_runs_join_days_at_most_the_gap_apart() -> None:
    dates = np.array([20200104, 20200101, 20200102, 20200110, 20201231, 20210101, 20200102])
    np.testing.assert_array_equal(day_runs(dates, 2), [0, 0, 0, 1, 2, 2, 0])
    np.testing.assert_array_equal(day_runs(dates, 0), [2, 0, 1, 3, 4, 5, 1])
    np.testing.assert_array_equal(day_runs(dates, 6), [0, 0, 0, 0, 1, 1, 0])


def test_day_run_gap_falls_back_to_the_schema_default() -> None:
    assert day_run_gap({"day_run_gap": 5}) == 5
    assert day_run_gap({"ratios": [0.6, 0.1, 0.3]}) == 2  # a rule passing part of the split


def test_day_split_sends_whole_runs_of_days_to_one_split() -> None:
    # four weeks of seven consecutive days, one a year (as the Madrid cube)
    weeks = [y * 10000 + 900 + d for y in (2017, 2018, 2019, 2020) for d in range(1, 8)]
    dates = np.repeat(weeks, 5)
    meta = {"date": dates}
    split = {"ratios": [0.6, 0.1, 0.3], "seed": 0, "day_run_gap": 2}
    codes = split_codes(meta, {}, split, "day")
    years = dates // 10000
    for year in np.unique(years):
        assert len(np.unique(codes[years == year])) == 1  # a week never straddles splits
    assert sorted(np.unique(codes).tolist()) == [TRAIN, VAL, TEST]
    by_day = split_codes(meta, {}, {**split, "day_run_gap": 0}, "day")
    assert any(len(np.unique(by_day[years == y])) > 1 for y in np.unique(years))
    with pytest.raises(LstfillError, match="day_run_gap"):
        split_codes({"date": dates[years < 2019]}, {}, split, "day")
