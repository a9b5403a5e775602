"""Gap-fill inputs: the LST series loaders, per-pixel features, normalisation and patch samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine
from fakes.cubes import write_fake_cube

from lstfill.errors import InputError
from lstfill.gapfill.dataset import (
    PatchSamples,
    fit_normaliser,
    read_patches,
    sample_patches,
    write_patches,
)
from lstfill.gapfill.features import (
    FeatureSet,
    History,
    Normaliser,
    categorical_stack,
    check_features,
    extract_patches,
    is_daytime,
    numeric_stack,
    select_available,
    time_features,
)
from lstfill.gapfill.inputs import LstSeries, load_cubes, load_series
from lstfill.grid import Grid

# UTM 32N grid centred on the zone's central meridian (9 deg E): solar time = UTC + 0.6 h
X0, Y0 = 675000.0, 5242200.0


def _utm_centre_grid(h: int, w: int) -> Grid:
    return Grid("EPSG:32632", Affine(70.0, 0, 500000 - 35.0 * w, 0, -70.0, 5200000), w, h)


# -- patches --------------------------------------------------------------------------------


def _coded_stack(c: int, h: int, w: int) -> np.ndarray:
    cc, rr, kk = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    return (1000 * cc + 10 * rr + kk).astype(np.float32)


def test_extract_patches_centre_and_reflect_padding():
    stack = _coded_stack(2, 6, 7)
    p = extract_patches(stack, np.array([3, 0, 5]), np.array([3, 0, 6]), 5)
    assert p.shape == (3, 2, 5, 5) and p.dtype == np.float32
    # centre patch: rows 1..5, cols 1..5
    ii, jj = np.meshgrid(np.arange(1, 6), np.arange(1, 6), indexing="ij")
    for c in range(2):
        np.testing.assert_array_equal(p[0, c], 1000 * c + 10 * ii + jj)
    # top-left corner: reflection without repeating the edge (-2 -> 2, -1 -> 1)
    refl = np.array([2, 1, 0, 1, 2])
    np.testing.assert_array_equal(p[1, 1], 1000 + 10 * refl[:, None] + refl[None, :])
    # bottom-right corner: rows 3,4,5,4,3 and cols 4,5,6,5,4
    rows, cols = np.array([3, 4, 5, 4, 3]), np.array([4, 5, 6, 5, 4])
    np.testing.assert_array_equal(p[2, 0], 10 * rows[:, None] + cols[None, :])
    assert p[0, 1, 2, 2] == 1033  # the centre pixel of a patch is the pixel itself


def test_extract_patches_tiny_scene_and_even_size():
    stack = _coded_stack(1, 2, 3)  # smaller than the half-window: edge padding
    p = extract_patches(stack, np.array([0]), np.array([2]), 5)
    np.testing.assert_array_equal(p[0, 0, :, 2], [2, 2, 2, 12, 12])  # rows 0,0,0,1,1
    np.testing.assert_array_equal(p[0, 0, 2], [0, 1, 2, 2, 2])  # cols 0,1,2,2,2
    with pytest.raises(ValueError, match="odd"):
        extract_patches(stack, np.array([0]), np.array([0]), 4)


# -- a small in-memory series ---------------------------------------------------------------


def _series(t: int = 4, h: int = 6, w: int = 5, seed: int = 0) -> LstSeries:
    rng = np.random.default_rng(seed)
    grid = _utm_centre_grid(h, w)
    times = np.datetime64("2021-06-01T10:00", "s") + np.arange(t) * np.timedelta64(1, "D")
    lst = (300 + rng.normal(0, 2, (t, h, w))).astype(np.float32)
    lst[1, :2] = np.nan
    return LstSeries(
        times=times,
        lst=lst,
        grid=grid,
        dynamic={
            "b04": rng.uniform(0, 0.3, (t, h, w)).astype(np.float32),
            "t2m": (290 + rng.normal(0, 1, (t, h, w))).astype(np.float32),
        },
        static={
            "elevation": rng.uniform(500, 900, (h, w)).astype(np.float32),
            "water": (rng.uniform(size=(h, w)) > 0.8).astype(np.float32),
        },
        source="memory.nc",
    )


def test_numeric_stack_order_and_values():
    s = _series()
    hist = History(s, np.array([True, True, False, True]))
    names = ["t2m", "elevation", "doy_sin", "b04", "lst_pattern", "tod_cos"]
    out = numeric_stack(s, 2, names, hist)
    assert out.shape == (6, 6, 5) and out.dtype == np.float32
    tf = time_features(s)
    np.testing.assert_array_equal(out[0], s.dynamic["t2m"][2])
    np.testing.assert_array_equal(out[1], s.static["elevation"])
    np.testing.assert_allclose(out[2], tf["doy_sin"][2], rtol=1e-6)
    np.testing.assert_array_equal(out[3], s.dynamic["b04"][2])
    np.testing.assert_array_equal(out[4], hist.pattern(2))
    np.testing.assert_allclose(out[5], tf["tod_cos"][2], rtol=1e-6)
    with pytest.raises(ValueError, match="History"):
        numeric_stack(s, 0, ["lst_pattern"])
    with pytest.raises(InputError, match="ndvi"):
        numeric_stack(s, 0, ["ndvi"])


def test_time_features_known_time_and_longitude():
    grid = _utm_centre_grid(4, 4)
    times = np.array(
        ["2021-03-01T11:24:00", "2020-12-31T23:00:00", "2021-07-01T05:00:00"], dtype="datetime64[s]"
    )
    s = LstSeries(times=times, lst=np.zeros((3, 4, 4)), grid=grid)
    assert s.centre_lonlat()[0] == pytest.approx(9.0, abs=1e-6)
    tf = time_features(s)
    # 2021-03-01: day of year 60; 11:24 UTC + 36 min (9 deg E) = 12:00 local solar time
    assert tf["doy_sin"][0] == pytest.approx(np.sin(2 * np.pi * 59 / 365.25))
    assert tf["doy_cos"][0] == pytest.approx(np.cos(2 * np.pi * 59 / 365.25))
    assert tf["tod_sin"][0] == pytest.approx(0.0, abs=1e-5)
    assert tf["tod_cos"][0] == pytest.approx(-1.0, abs=1e-8)
    # 2020-12-31 (leap year): day 366; 23:00 UTC -> 23.6 h
    assert tf["doy_sin"][1] == pytest.approx(np.sin(2 * np.pi * 365 / 365.25))
    assert tf["tod_sin"][1] == pytest.approx(np.sin(2 * np.pi * 23.6 / 24), abs=1e-5)
    assert tf["tod_cos"][1] == pytest.approx(np.cos(2 * np.pi * 23.6 / 24), abs=1e-5)
    # 05:00 UTC -> 05:36 solar: night; 11:24 day; 23:00 night
    assert is_daytime(s).tolist() == [True, False, False]


def _pattern_series() -> LstSeries:
    """2x2 scenes: three day acquisitions (10 UTC) and two night ones (22 UTC)."""
    nan = np.nan
    lst = np.array(
        [
            [[300, 302], [304, 306]],  # day, median 303 -> anomaly [[-3, -1], [1, 3]]
            [[310, 310], [nan, 314]],  # day, median 310 -> [[0, 0], [-, 4]]
            [[290, 296], [292, 298]],  # day, median 294 -> [[-4, 2], [-2, 4]]
            [[280, 281], [282, 283]],  # night, median 281.5 -> [[-1.5, -.5], [.5, 1.5]]
            [[270, 275], [271, 276]],  # night, median 273 -> [[-3, 2], [-2, 3]]
        ],
        dtype=np.float32,
    )
    times = np.array(
        [
            "2021-06-01T10:00",
            "2021-06-02T10:00",
            "2021-06-03T10:00",
            "2021-06-03T22:00",
            "2021-06-04T22:00",
        ],
        dtype="datetime64[s]",
    )
    return LstSeries(times=times, lst=lst, grid=_utm_centre_grid(2, 2))


def test_history_pattern_leaves_target_out():
    s = _pattern_series()
    hist = History(s, np.ones(5, dtype=bool))
    np.testing.assert_allclose(hist.pattern(0), [[-2, 1], [-2, 4]])  # mean of t1, t2
    np.testing.assert_allclose(hist.pattern(1), [[-3.5, 0.5], [-0.5, 3.5]])  # t0, t2
    # night targets only see the other night acquisition
    np.testing.assert_allclose(hist.pattern(3), [[-3, 2], [-2, 3]])
    np.testing.assert_allclose(hist.pattern(4), [[-1.5, -0.5], [0.5, 1.5]])
    np.testing.assert_allclose(hist.class_pattern(True), [[-7 / 3, 1 / 3], [-0.5, 11 / 3]])
    # the target's own LST does not change its pattern
    s2 = s.with_hidden(0, np.zeros((2, 2), bool))
    s2.lst[0] += np.array([[50, -20], [7, 0]], dtype=np.float32)
    np.testing.assert_allclose(History(s2, np.ones(5, bool)).pattern(0), hist.pattern(0))


def test_history_allowed_and_fallback():
    s = _pattern_series()
    allowed = np.array([True, True, False, True, False])
    hist = History(s, allowed)
    np.testing.assert_allclose(hist.pattern(0), [[0, 0], [0, 4]])  # t1 only; (1,0) has none
    np.testing.assert_allclose(hist.pattern(2), [[-1.5, -0.5], [1, 3.5]])  # t0, t1
    # t3 is the only allowed night: left out, the night class is empty -> the day pattern
    np.testing.assert_allclose(hist.pattern(3), [[-1.5, -0.5], [1, 3.5]])
    np.testing.assert_allclose(hist.pattern(4), [[-1.5, -0.5], [0.5, 1.5]])  # t3 itself
    with pytest.raises(ValueError):
        History(s, np.ones(3, bool))


# -- normalisation and features -------------------------------------------------------------


def test_normaliser_fit_apply_roundtrip():
    norm = Normaliser.fit(
        {"a": np.array([1.0, 2.0, 3.0, np.nan]), "b": np.array([5.0, 5.0, 5.0])},
        np.array([280.0, 290.0, np.nan]),
        {"water": np.array([0, 1, 1, -1]), "biome": np.array([7, 3, 7])},
    )
    assert norm.mean == {"a": pytest.approx(2.0), "b": pytest.approx(5.0)}
    assert norm.std["a"] == pytest.approx(np.sqrt(2 / 3))
    assert norm.std["b"] == 1.0  # constant feature: no division by zero
    assert norm.target_mean == pytest.approx(285.0) and norm.target_std == pytest.approx(5.0)
    assert norm.vocab == {"water": [0, 1], "biome": [3, 7]}
    assert norm.n_classes(["biome", "water"]) == [3, 3]

    stack = np.array([[[2.0, 3.0], [np.nan, 1.0]], [[5.0, 6.0], [4.0, np.inf]]], np.float32)
    z = norm.numeric(stack, ["a", "b"])
    s = np.sqrt(1.5)
    np.testing.assert_allclose(z, [[[0, s], [0, -s]], [[0, 1], [-1, 0]]], rtol=1e-6)
    assert z.dtype == np.float32
    # channel order follows the names given
    np.testing.assert_allclose(norm.numeric(stack[::-1], ["b", "a"]), z[::-1], rtol=1e-6)

    y = np.array([270.0, 285.0, 301.5], np.float32)
    np.testing.assert_allclose(norm.target(y), [-3, 0, 3.3], rtol=1e-6)
    np.testing.assert_allclose(norm.untarget(norm.target(y)), y, rtol=1e-6)

    cat = np.array([[[0, 1, 2, -1]], [[3, 7, 5, 9]]])
    np.testing.assert_array_equal(
        norm.categorical(cat, ["water", "biome"]), [[[1, 2, 0, 0]], [[1, 2, 0, 0]]]
    )
    back = Normaliser.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert back == norm
    with pytest.raises(ValueError, match="target"):
        Normaliser.fit({"a": np.ones(3)}, np.array([np.nan]), {})


def test_categorical_stack_codes():
    s = _series()
    s.static["biome"] = np.full(s.grid.shape, 4.0, np.float32)
    s.static["biome"][0, 0] = np.nan
    out = categorical_stack(s, ["water", "biome"])
    assert out.dtype == np.int64 and out.shape == (2, 6, 5)
    np.testing.assert_array_equal(out[0], s.static["water"].astype(int))
    assert out[1, 0, 0] == -1 and (out[1].ravel()[1:] == 4).all()


def test_check_features_names_missing():
    s = _series()
    ok = FeatureSet(("b04", "elevation", "doy_cos", "tod_sin", "lst_pattern"), ("water",))
    check_features(s, ok)
    with pytest.raises(InputError) as e:
        check_features(s, FeatureSet(("b04", "gl_6h", "elevation"), ("water",)))
    assert "gl_6h" in str(e.value) and "memory.nc" in str(e.value)
    with pytest.raises(InputError, match="landcover"):
        check_features(s, FeatureSet(("b04",), ("landcover",)))
    with pytest.raises(InputError, match="b04"):  # categorical layers must be static
        check_features(s, FeatureSet(("t2m",), ("b04",)))
    sel = select_available(s, FeatureSet(("b04", "ndvi", "doy_sin"), ("water", "biome")))
    assert sel == FeatureSet(("b04", "doy_sin"), ("water",))


# -- loaders --------------------------------------------------------------------------------


def test_load_series_single_netcdf(tmp_path):
    h, w = 4, 5
    x = 400500.0 + 1000 * np.arange(w)
    y = 4400500.0 - 1000 * np.arange(h)
    times = np.array(["2019-09-02", "2017-08-31", "2018-09-01"], dtype="datetime64[ns]")
    lst = np.stack([np.full((h, w), 300.0 + i, np.float32) for i in range(3)])
    lst[0, 1, 1] = np.nan
    lst[:, 0, 4] = np.nan
    gap = np.zeros((3, h, w), np.uint8)
    gap[0, 1, 1] = 1
    gap[:, 0, 4] = 2  # water at every date: not land
    gap[:, 3, 0] = 3  # outside the swath at every date: not land
    gap[1, 2, 2] = 3  # outside at one date only: still land
    elev = np.arange(h * w, dtype=np.float32).reshape(h, w)
    biome = np.full((h, w), 12, np.int16)
    ds = xr.Dataset(
        {
            "lst": (("time", "y", "x"), lst, {"units": "K"}),
            "gap_code": (("time", "y", "x"), gap),
            "elevation": (("y", "x"), elev),
            "biome": (("y", "x"), biome),
        },
        coords={"time": times, "y": y, "x": x},
    ).rio.write_crs("EPSG:32630")
    path = tmp_path / "series.nc"
    ds.to_netcdf(path)

    s = load_series(path)
    assert s.grid.crs == "EPSG:32630"
    assert s.grid.transform == Affine(1000.0, 0, 400000.0, 0, -1000.0, 4401000.0)
    assert s.grid.shape == (h, w)
    # sorted by time
    assert s.times.tolist() == [
        np.datetime64("2017-08-31T00:00:00", "s"),
        np.datetime64("2018-09-01T00:00:00", "s"),
        np.datetime64("2019-09-02T00:00:00", "s"),
    ]
    assert s.lst[0, 0, 0] == 301 and s.lst[1, 0, 0] == 302 and s.lst[2, 0, 0] == 300
    assert np.isnan(s.lst[2, 1, 1]) and np.isfinite(s.lst[0, 1, 1])
    expected_land = np.ones((h, w), bool)
    expected_land[0, 4] = expected_land[3, 0] = False
    np.testing.assert_array_equal(s.land, expected_land)
    assert not s.valid[:, 0, 4].any()
    assert set(s.static) == {"elevation", "biome"} and not s.dynamic  # gap_code is no feature
    np.testing.assert_array_equal(s.static["elevation"], elev)
    assert (s.static["biome"] == 12).all()
    assert s.source == str(path)
    np.testing.assert_allclose(s.valid_fraction(), [1.0, 1.0, 17 / 18])


def test_load_series_bad_files(tmp_path):
    x, y = 70.0 * np.arange(3), 700.0 - 70.0 * np.arange(3)
    base = {"time": np.array(["2020-01-01"], dtype="datetime64[ns]"), "y": y, "x": x}
    lst = (("time", "y", "x"), np.zeros((1, 3, 3), np.float32))
    no_crs = tmp_path / "nocrs.nc"
    xr.Dataset({"lst": lst}, coords=base).to_netcdf(no_crs)
    with pytest.raises(InputError, match="CRS") as e:
        load_series(no_crs)
    assert "nocrs.nc" in str(e.value)
    no_lst = tmp_path / "nolst.nc"
    xr.Dataset({"t": lst}, coords=base).rio.write_crs("EPSG:32630").to_netcdf(no_lst)
    with pytest.raises(InputError, match="lst"):
        load_series(no_lst)
    corrupt = tmp_path / "corrupt.nc"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(InputError, match="corrupt.nc"):
        load_series(corrupt)
    with pytest.raises(InputError, match="missing.nc"):
        load_series(tmp_path / "missing.nc")


def _cube_grid(h: int = 6, w: int = 5, x0: float = X0) -> Grid:
    return Grid("EPSG:32632", Affine(70.0, 0, x0, 0, -70.0, Y0), w, h)


def write_cube(
    path: Path, when: str, grid: Grid, value: float, *, drop: tuple[str, ...] = ()
) -> Path:
    """A per-acquisition cube at `when` on `grid` whose variables hold `value`, so that the
    stacking order can be read back."""
    h, w = grid.shape
    lst = np.full((h, w), 280.0 + value, np.float32)
    valid = np.ones((h, w), np.uint8)
    valid[0, 0] = 0  # a value but flagged not clear: must load as NaN
    lst[1, 1] = np.nan
    valid[1, 1] = 0
    water = np.zeros((h, w), np.uint8)
    water[-1, -1] = 1
    lst[-1, -1] = np.nan
    valid[-1, -1] = 0
    layers = {
        "lst": lst,
        "lst_valid": valid,
        "lst_err": np.full((h, w), 1.5, np.float32),
        "b04": np.full((h, w), value / 100, np.float32),
        "t2m": np.full((h, w), 270.0 + value, np.float32),
    }
    elevation = np.arange(h * w, dtype=np.float32).reshape(h, w)
    static = {"elevation": elevation, "water": water}
    return write_fake_cube(path, grid, when, layers, static, drop=drop)


def test_load_cubes_stacks_by_time(tmp_path):
    grid = _cube_grid()
    specs = [("20230710T101500", 3.0), ("20230702T213000", 1.0), ("20230705T094000", 2.0)]
    paths = []
    for acq, v in specs:
        when = f"{acq[:4]}-{acq[4:6]}-{acq[6:11]}:{acq[11:13]}"
        paths.append(write_cube(tmp_path / f"{acq}.nc", when, grid, v))
    s = load_cubes(paths)  # given out of time order
    assert s.ids == ["20230702T213000", "20230705T094000", "20230710T101500"]
    assert s.times.tolist()[0] == np.datetime64("2023-07-02T21:30:00", "s")
    assert s.grid == grid
    assert s.grid.crs == "EPSG:32632"
    assert s.shape == (3, 6, 5)
    np.testing.assert_array_equal(s.lst[:, 2, 2], [281.0, 282.0, 283.0])
    np.testing.assert_array_equal(s.dynamic["t2m"][:, 3, 3], [271.0, 272.0, 273.0])
    np.testing.assert_allclose(s.dynamic["b04"][:, 0, 0], [0.01, 0.02, 0.03], rtol=1e-6)
    assert set(s.dynamic) == {"b04", "t2m"}  # lst_err and lst_valid are no covariates
    assert set(s.static) == {"elevation", "water"}
    assert s.static["elevation"][1, 2] == 7
    assert np.isnan(s.lst[:, 0, 0]).all()  # lst_valid 0 masks a finite value
    land = np.ones((6, 5), bool)
    land[-1, -1] = False  # water
    np.testing.assert_array_equal(s.land, land)
    np.testing.assert_allclose(s.valid_fraction(), 27 / 29)


def test_load_cubes_grid_and_variable_mismatch(tmp_path):
    a = write_cube(tmp_path / "20230701T100000.nc", "2023-07-01T10:00", _cube_grid(), 1.0)
    b = write_cube(tmp_path / "20230702T100000.nc", "2023-07-02T10:00", _cube_grid(x0=X0 + 70), 2.0)
    with pytest.raises(InputError) as e:
        load_cubes([a, b])
    assert "20230702T100000.nc" in str(e.value) and "grid" in str(e.value)
    c = write_cube(
        tmp_path / "20230703T100000.nc", "2023-07-03T10:00", _cube_grid(), 3.0, drop=("t2m",)
    )
    with pytest.raises(InputError, match="t2m") as e:
        load_cubes([a, c])
    assert "20230703T100000.nc" in str(e.value)
    with pytest.raises(InputError):
        load_cubes([])


# -- patch samples --------------------------------------------------------------------------


FEATURES = FeatureSet(("b04", "t2m", "elevation", "doy_sin", "lst_pattern"), ("water",))


def test_sample_patches_values(tmp_path):
    s = _series(t=4, h=8, w=7)
    allowed_px = np.zeros((8, 7), bool)
    allowed_px[2:6, 2:5] = True  # windows stay inside the scene: no padding to reason about
    hist = History(s, np.array([True, True, False, False]))
    rng = np.random.default_rng(0)
    smp = sample_patches(s, np.array([0, 1]), allowed_px, FEATURES, 5, hist, 9, rng)
    # acquisition 1 has rows 0-1 clouded, but those lie outside the allowed pixels anyway
    assert len(smp) == 18
    assert set(smp.acquisition.tolist()) == {0, 1}
    assert (np.bincount(smp.acquisition) == [9, 9]).all()
    assert smp.numeric.shape == (18, 5, 5, 5) and smp.categorical.shape == (18, 1, 5, 5)
    assert allowed_px[smp.row, smp.col].all() and s.valid[smp.acquisition, smp.row, smp.col].all()
    np.testing.assert_array_equal(smp.target, s.lst[smp.acquisition, smp.row, smp.col])
    for i in range(len(smp)):
        t, r, c = int(smp.acquisition[i]), int(smp.row[i]), int(smp.col[i])
        full = numeric_stack(s, t, FEATURES.numeric, hist)
        np.testing.assert_array_equal(smp.numeric[i], full[:, r - 2 : r + 3, c - 2 : c + 3])
        np.testing.assert_array_equal(
            smp.categorical[i, 0], s.static["water"][r - 2 : r + 3, c - 2 : c + 3]
        )
    # all clear pixels taken when fewer than the cap, and same rng seed -> same samples
    few = sample_patches(s, np.array([2]), allowed_px, FEATURES, 5, hist, 1000, rng)
    assert len(few) == allowed_px.sum() == 12
    again = sample_patches(
        s, np.array([0, 1]), allowed_px, FEATURES, 5, hist, 9, np.random.default_rng(0)
    )
    np.testing.assert_array_equal(again.row, smp.row)
    np.testing.assert_array_equal(again.col, smp.col)
    with pytest.raises(InputError, match="no clear pixel"):
        sample_patches(s, np.array([1]), np.zeros((8, 7), bool), FEATURES, 5, hist, 9, rng)

    norm = fit_normaliser(smp, FEATURES)
    assert norm.mean["t2m"] == pytest.approx(float(smp.numeric[:, 1, 2, 2].mean()), rel=1e-6)
    assert norm.target_mean == pytest.approx(float(smp.target.mean()), rel=1e-6)
    assert norm.vocab["water"] == sorted(set(smp.categorical[:, 0, 2, 2].tolist()))


def test_write_read_patches_roundtrip(tmp_path):
    s = _series(t=4, h=8, w=7)
    hist = History(s, np.array([True, True, False, False]))
    rng = np.random.default_rng(1)
    px = s.land.copy()
    train = sample_patches(s, np.array([0, 1]), px, FEATURES, 5, hist, 6, rng)
    val = sample_patches(s, np.array([3]), px, FEATURES, 5, hist, 4, rng)
    norm = fit_normaliser(train, FEATURES)
    maps = {"pattern_day": hist.class_pattern(True), "block_split": np.eye(8, 7, dtype=np.int8)}
    attrs = {
        "patch_size": 5,
        "acquisitions": s.ids,
        "split": {"train": ["a"], "val": ["b"]},
        "note": "plain string",
    }
    path = write_patches(
        tmp_path / "patches.nc", {"train": train, "val": val}, FEATURES, norm, attrs, maps
    )
    assert path == tmp_path / "patches.nc"
    assert [p.name for p in tmp_path.iterdir()] == ["patches.nc"]  # nothing else left behind

    splits, feats, norm2, maps2, attrs2 = read_patches(path)
    assert list(splits) == ["train", "val"]
    assert feats == FEATURES
    assert norm2 == norm
    for name, ref in (("train", train), ("val", val)):
        got: PatchSamples = splits[name]
        assert len(got) == len(ref)
        for f in ("numeric", "categorical", "target", "acquisition", "row", "col"):
            np.testing.assert_array_equal(getattr(got, f), getattr(ref, f), err_msg=f)
        assert got.numeric.dtype == np.float32 and got.categorical.dtype == np.int64
    assert set(maps2) == {"pattern_day", "block_split"}
    np.testing.assert_array_equal(maps2["pattern_day"], maps["pattern_day"])
    np.testing.assert_array_equal(maps2["block_split"], maps["block_split"])
    assert json.loads(attrs2["patch_size"]) == 5
    assert json.loads(attrs2["acquisitions"]) == s.ids
    assert json.loads(attrs2["split"]) == {"train": ["a"], "val": ["b"]}
    assert attrs2["note"] == "plain string"

    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"not a netcdf at all")
    with pytest.raises(InputError, match="bad.nc"):
        read_patches(bad)
    other = tmp_path / "other.nc"
    xr.Dataset({"v": ("n", np.arange(3))}).to_netcdf(other)
    with pytest.raises(InputError, match="patch dataset"):
        read_patches(other)
