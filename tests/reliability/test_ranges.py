"""Units and physical ranges at every door: a file in the wrong unit is refused with an error
that says which file, which variable, which range, what was found and, for LST in degrees
Celsius, that it looks like degrees Celsius; a few stray pixels become NaN and are counted."""

from __future__ import annotations

import datetime as dt
import logging
from datetime import UTC, datetime
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
import yaml
from affine import Affine
from conftest import load_benchmark
from fakes.cubes import write_fake_cube
from pyproj import CRS

from lstfill import ranges
from lstfill.config import validate_config
from lstfill.errors import ConfigError, InputError
from lstfill.gapfill.inputs import load_cubes, load_series
from lstfill.grid import Grid
from lstfill.io import write_cog
from lstfill.ranges import DEFAULT_TOLERANCE, check_range, check_units, physical_range
from lstfill.sources import ecostress, inca, sentinel3, srtm
from lstfill.superres.inputs import DayScene, read_day_scene, write_day_scene

GID = "ECOv002_L2T_LSTE_28527_009_32TPT_20230718T081442_0713_01"
UTM = "EPSG:32632"
TRANSFORM = Affine(70.0, 0.0, 600000.0, 0.0, -70.0, 5200000.0)
GRID = Grid(UTM, TRANSFORM, 20, 20)
CELSIUS_HINT = "look like degrees Celsius"
ROOT = Path(__file__).resolve().parents[2]


def _granule(folder: Path, lst: np.ndarray) -> Path:
    """An ECOSTRESS granule of LST `lst`, every pixel clear; returns its LST file."""
    shape = lst.shape
    ecostress.write_granule(
        folder,
        GID,
        {
            "LST": lst,
            "LST_err": np.full(shape, 0.8, np.float32),
            "QC": np.zeros(shape, np.uint16),
            "cloud": np.zeros(shape, np.uint8),
            "water": np.zeros(shape, np.uint8),
            "height": np.full(shape, 600.0, np.float32),
            "view_zenith": np.full(shape, 10.0, np.float32),
        },
        TRANSFORM,
        UTM,
    )
    return ecostress.layer_path(folder, GID, "LST")


def _warm(shape: tuple[int, int] = (20, 20)) -> np.ndarray:
    return np.random.default_rng(0).uniform(285, 315, shape).astype(np.float32)


# ------------------------------------------------------------------------------ check_range


def test_values_in_range_pass_untouched() -> None:
    values = _warm()
    values[0, 0] = np.nan
    assert check_range(values, "lst", "a.nc", units="K") is values


def test_celsius_lst_is_refused_with_every_fact_in_the_message() -> None:
    values = np.full((10, 10), 21.5, np.float32)
    values[0, :3] = [-4.0, 35.25, np.nan]
    with pytest.raises(InputError) as err:
        check_range(values, "lst", "cubes/a.nc", units="K")
    message = str(err.value)
    assert message.startswith("cubes/a.nc: lst values")
    assert "150..360 K" in message
    assert "found -4..35.25" in message
    assert "99 of 99 valid values (100 %) out of range" in message
    assert f"tolerated {100 * DEFAULT_TOLERANCE:g} %" in message
    assert CELSIUS_HINT in message and "273.15" in message


def test_out_of_range_values_that_are_not_celsius_get_no_celsius_hint() -> None:
    values = np.full((10, 10), 500.0, np.float32)
    with pytest.raises(InputError, match=r"found 500\.\.500") as err:
        check_range(values, "lst", "a.nc")
    assert CELSIUS_HINT not in str(err.value)


def test_unscaled_counts_get_their_own_hint() -> None:
    with pytest.raises(InputError, match="MODIS counts of 0.02 K"):
        check_range(np.full((4, 4), 15000.0), "lst", "a.hdf")
    with pytest.raises(InputError, match="digital numbers"):
        check_range(np.full((4, 4), 2500.0), "b04", "a.tif")


def test_a_few_stray_pixels_become_nan_and_are_counted(caplog) -> None:
    values = _warm((20, 20))  # 400 pixels, 1 % tolerated = 4
    values[3, 4], values[5, 6], values[7, 8] = 402.0, 100.0, np.inf
    with caplog.at_level(logging.WARNING, logger="lstfill.ranges"):
        out = check_range(values, "lst", "raw/LST.tif", name="LST")
    assert out is not values and np.isfinite(values[3, 4])  # the input is left alone
    assert np.isnan(out[3, 4]) and np.isnan(out[5, 6]) and np.isnan(out[7, 8])
    assert np.count_nonzero(np.isnan(out)) == 3
    np.testing.assert_array_equal(out[np.isfinite(out)], values[np.isfinite(out)])
    (record,) = caplog.records
    assert "raw/LST.tif" in record.message and "3 LST (lst) value(s)" in record.message
    assert "150..360 K" in record.message and "set to NaN" in record.message


def test_blank_false_keeps_the_strays_but_still_logs_them(caplog) -> None:
    values = _warm()
    values[0, 0] = 402.0
    with caplog.at_level(logging.WARNING, logger="lstfill.ranges"):
        out = check_range(values, "lst", "lst_1km.tif", blank=False)
    assert out is values and out[0, 0] == np.float32(402.0)
    assert "kept" in caplog.text


def test_tolerance_is_a_share_of_the_valid_pixels() -> None:
    values = np.full(100, 300.0, np.float32)
    values[:10] = np.nan  # 90 valid
    values[10:12] = 10.0  # 2 of 90 = 2.2 %
    with pytest.raises(InputError, match=r"2 of 90 valid values \(2.22 %\)"):
        check_range(values, "lst", "a.nc", tolerance=0.02)
    assert np.count_nonzero(np.isnan(check_range(values, "lst", "a.nc", tolerance=0.03))) == 12
    with pytest.raises(InputError):
        check_range(np.array([300.0, 361.0]), "lst", "a.nc", tolerance=0)
    with pytest.raises(ValueError, match="0..1"):
        check_range(values, "lst", "a.nc", tolerance=1.5)


def test_integer_values_and_all_nan_arrays() -> None:
    out = check_range(np.array([[10, 20], [95, 120]], np.uint8), "tree_cover", "t.tif", tolerance=1)
    assert out.dtype == np.float32 and np.isnan(out[1, 1]) and out[0, 1] == 20
    empty = np.full((3, 3), np.nan, np.float32)
    assert check_range(empty, "lst", "a.nc") is empty


def test_ranges_of_every_variable_and_the_hourly_means() -> None:
    expect = {
        "lst": (150, 360),
        "b04": (-0.1, 1.5),
        "B8A": (-0.1, 1.5),
        "ndvi": (-1, 1),
        "ndmi": (-1, 1),
        "elevation": (-500, 9000),
        "t2m": (200, 340),
        "t2m_6h": (200, 340),
        "gl_6h": (-10, 1500),
        "rh2m": (0, 105),
        "uu": (-75, 75),
        "vv": (-75, 75),
        "slope": (0, 90),
        "aspect": (0, 360),
        "lst_err": (0, 20),
    }
    for name, (low, high) in expect.items():
        rng = physical_range(name)
        assert (rng.low, rng.high) == (low, high), name
    assert not ranges.has_range("s2_age_days") and not ranges.has_range("water")
    with pytest.raises(KeyError):
        physical_range("lst_6x")


# ------------------------------------------------------------------------------ units


@pytest.mark.parametrize("units", ["degC", "degree_Celsius", "°C", "celsius"])
def test_celsius_units_on_a_kelvin_variable_are_refused(units: str) -> None:
    with pytest.raises(InputError, match="convert it to kelvin") as err:
        check_range(_warm(), "lst", "a.nc", units=units)
    assert str(err.value).startswith("a.nc: lst has units")


@pytest.mark.parametrize(
    ("variable", "units"),
    [("lst", "K"), ("lst", "kelvin"), ("t2m_6h", "K"), ("lst_err", "degC"), ("gl", "W m-2")]
    + [("rh2m", "percent"), ("uu", "m/s"), ("b04", "1"), ("b04", "reflectance"), ("ndvi", "")]
    + [("elevation", "metres"), ("aspect", "degrees"), ("lst", None)],
)
def test_units_that_fit_pass(variable: str, units: str | None) -> None:
    check_units(variable, units, "a.nc")


def test_units_of_another_quantity_are_refused_and_unknown_ones_logged(caplog) -> None:
    with pytest.raises(InputError, match=r"elevation has units 'ft', but lstfill reads it in m"):
        check_units("elevation", "ft", "dem.tif")
    with pytest.raises(InputError, match="rh2m has units '1'"):
        check_units("rh2m", "1", "inca.nc")
    with caplog.at_level(logging.WARNING, logger="lstfill.ranges"):
        check_units("lst", "kelvins (scaled)", "a.nc")
    assert "does not recognise" in caplog.text and "a.nc" in caplog.text


def test_the_schema_holds_the_tolerance_key() -> None:
    demo = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    demo["prepare"].pop("out_of_range_tolerance", None)
    assert validate_config(demo)["prepare"]["out_of_range_tolerance"] == DEFAULT_TOLERANCE
    demo["prepare"]["out_of_range_tolerance"] = 0.2
    assert validate_config(demo)["prepare"]["out_of_range_tolerance"] == pytest.approx(0.2)
    demo["prepare"]["out_of_range_tolerance"] = 1.5
    with pytest.raises(ConfigError, match="prepare.out_of_range_tolerance"):
        validate_config(demo)


# ------------------------------------------------------------------------------ provider readers


def test_ecostress_granule_in_celsius_is_refused(tmp_path: Path) -> None:
    lst_file = _granule(tmp_path, _warm() - 273.15)
    with pytest.raises(InputError) as err:
        ecostress.read_granule(tmp_path, GID)
    message = str(err.value)
    assert str(lst_file) in message and "LST (lst)" in message
    assert "150..360 K" in message and "(100 %) out of range" in message
    assert CELSIUS_HINT in message


def test_ecostress_stray_pixels_become_invalid(tmp_path: Path, caplog) -> None:
    lst = _warm()
    lst[2, 3] = 1000.0
    lst_file = _granule(tmp_path, lst)
    with caplog.at_level(logging.WARNING, logger="lstfill.ranges"):
        scene = ecostress.read_granule(tmp_path, GID)
    assert np.isnan(scene.lst.data[2, 3]) and not scene.valid[2, 3]
    assert scene.valid.sum() == lst.size - 1
    assert str(lst_file) in caplog.text and "1 LST (lst) value(s)" in caplog.text
    with pytest.raises(InputError, match="1 of 400 valid values"):
        ecostress.read_granule(tmp_path, GID, tolerance=0)


def _inca_file(folder: Path, t2m_c: np.ndarray) -> Path:
    times = [datetime(2023, 7, 1, h, tzinfo=UTC) for h in range(t2m_c.shape[0])]
    x = 400_500.0 + 1000.0 * np.arange(t2m_c.shape[2])
    y = 480_500.0 - 1000.0 * np.arange(t2m_c.shape[1])
    rng = np.random.default_rng(1)
    data = {
        "T2M": t2m_c,
        "GL": rng.uniform(0, 900, t2m_c.shape),
        "RH2M": rng.uniform(30, 100, t2m_c.shape),
        "UU": rng.normal(0, 3, t2m_c.shape),
    }
    return inca.write_inca(folder / inca.filename(times[0], times[-1]), times, x, y, data)


def test_inca_in_degc_converts_and_passes(tmp_path: Path, caplog) -> None:
    t2m_c = np.random.default_rng(0).uniform(-5, 35, (3, 4, 5))
    path = _inca_file(tmp_path, t2m_c)
    with netCDF4.Dataset(path) as nc:
        assert nc["T2M"].units == "degree_Celsius"
    with caplog.at_level(logging.WARNING, logger="lstfill.ranges"):
        data = inca.read_inca(path, tolerance=0)
    np.testing.assert_allclose(data.fields["T2M"], t2m_c + 273.15, atol=0.01)
    assert caplog.text == ""


def test_inca_labelled_kelvin_but_in_celsius_is_refused(tmp_path: Path) -> None:
    path = _inca_file(tmp_path, np.random.default_rng(0).uniform(-5, 35, (3, 4, 5)))
    with netCDF4.Dataset(path, "a") as nc:
        nc["T2M"].units = "K"
    with pytest.raises(InputError, match=r"T2M \(t2m\) values lie outside .* 200..340 K") as err:
        inca.read_inca(path)
    assert str(path) in str(err.value) and CELSIUS_HINT in str(err.value)


def test_inca_relative_humidity_as_a_fraction_by_its_units(tmp_path: Path) -> None:
    path = _inca_file(tmp_path, np.full((2, 3, 3), 20.0))
    with netCDF4.Dataset(path, "a") as nc:
        nc["RH2M"].units = "1"
    with pytest.raises(InputError, match="RH2M \\(rh2m\\) has units '1'"):
        inca.read_inca(path)


def test_sentinel3_without_its_scale_is_refused_as_digital_numbers(tmp_path: Path) -> None:
    day = dt.date(2023, 7, 1)
    refl = np.random.default_rng(0).uniform(0.02, 0.4, (8, 8))
    path = tmp_path / sentinel3.filename(day)
    sentinel3.write_day(path, day, {"B04": refl}, np.ones((8, 8)), TRANSFORM, UTM)
    sentinel3.read_day(path, tolerance=0)  # as written: in range
    with rasterio.open(
        path, "r+", IGNORE_COG_LAYOUT_BREAK="YES"
    ) as dst:  # the scale left out: DNs read as reflectance
        dst.update_tags(SCALE=1)
    with pytest.raises(InputError, match="B04 \\(b04\\) values .* -0.1..1.5 1") as err:
        sentinel3.read_day(path)
    assert "digital numbers" in str(err.value)


def test_dem_with_an_undeclared_nodata_value_is_refused(tmp_path: Path) -> None:
    dem = np.full((20, 20), 800.0, np.float32)
    dem[:5] = -9999.0  # nodata not declared in the file
    path = write_cog(tmp_path / "dem.tif", dem, TRANSFORM, UTM, nodata=None)
    with pytest.raises(InputError, match=r"elevation values .* -500..9000 m: found -9999..800"):
        srtm.read_dem(path)
    declared = write_cog(tmp_path / "ok.tif", dem, TRANSFORM, UTM, nodata=-9999.0)
    assert np.isnan(srtm.read_dem(declared).data[:5]).all()


# ------------------------------------------------------------------------------ the jobs' cubes


def _cube(path: Path, lst: np.ndarray, units: str | None = None) -> Path:
    h, w = GRID.shape
    write_fake_cube(
        path,
        GRID,
        "2023-07-18T08:14:42",
        {
            "lst": lst,
            "lst_valid": np.isfinite(lst).astype(np.uint8),
            "t2m": np.full((h, w), 293.0, np.float32),
            "b04": np.full((h, w), 0.08, np.float32),
        },
        {"elevation": np.full((h, w), 600.0, np.float32)},
    )
    if units is not None:
        with netCDF4.Dataset(path, "a") as nc:
            nc["lst"].units = units
    return path


def test_gapfill_refuses_a_cube_in_celsius(tmp_path: Path) -> None:
    good = _cube(tmp_path / "20230718T081442.nc", _warm())
    bad = _cube(tmp_path / "20230719T081442.nc", _warm() - 273.15)
    with pytest.raises(InputError) as err:
        load_cubes([good, bad])
    message = str(err.value)
    assert message.startswith(f"{bad}: lst values") and "150..360 K" in message
    assert CELSIUS_HINT in message
    assert load_series(good).lst.shape == (1, *GRID.shape)


def test_gapfill_refuses_a_cube_whose_units_say_celsius(tmp_path: Path) -> None:
    path = _cube(tmp_path / "a.nc", _warm(), units="degC")
    with pytest.raises(InputError, match="lst has units 'degC'"):
        load_series(path)


def test_gapfill_cube_with_stray_pixels_loads_them_as_gaps(tmp_path: Path, caplog) -> None:
    lst = _warm()
    lst[4, 4] = 420.0
    path = _cube(tmp_path / "a.nc", lst, units="K")
    with caplog.at_level(logging.WARNING, logger="lstfill.ranges"):
        series = load_series(path)
    assert np.isnan(series.lst[0, 4, 4]) and not series.valid[0, 4, 4]
    assert np.count_nonzero(np.isnan(series.lst)) == 1
    assert str(path) in caplog.text and "1 lst value(s)" in caplog.text


def test_superres_refuses_a_day_scene_in_celsius(tmp_path: Path) -> None:
    transform = Affine(926.6, 0, 0, 0, -926.6, 0)
    ndvi = np.full((8, 8), 0.5, np.float32)
    scene = DayScene(dt.date(2023, 7, 1), _warm((2, 2)) - 273.15, ndvi, transform, UTM, 4)
    path = write_day_scene(scene, tmp_path / "scene.nc")
    with pytest.raises(InputError, match=CELSIUS_HINT) as err:
        read_day_scene(path)
    assert str(path) in str(err.value)
    scene.lst = _warm((2, 2))
    assert read_day_scene(write_day_scene(scene, tmp_path / "ok.nc")).lst.shape == (2, 2)


def test_downscale_benchmark_refuses_a_cube_in_celsius(tmp_path: Path) -> None:
    bench = load_benchmark("downscale_real")
    n = 5
    path = tmp_path / "cube.nc"
    xr.Dataset(
        {
            "lst": (
                ("time", "y", "x"),
                _warm((3 * n, n)).reshape(3, n, n) - 273.15,
                {"units": "K"},
            ),
            "elevation": (("y", "x"), np.full((n, n), 700.0, np.float32), {"units": "m"}),
            "spatial_ref": ((), 0, {"crs_wkt": CRS.from_epsg(32630).to_wkt()}),
        },
        coords={
            "time": pd.date_range("2019-08-30", periods=3),
            "y": 4400500.0 - 1000 * np.arange(n),
            "x": 400500.0 + 1000 * np.arange(n),
        },
    ).to_netcdf(path)
    with pytest.raises(InputError, match=CELSIUS_HINT) as err:
        bench.load_cube(path)
    assert str(path) in str(err.value)
