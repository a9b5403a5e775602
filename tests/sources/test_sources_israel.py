"""Israel LST yearly NetCDF: round trip, 0.02 K decoding, QA strict mode, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from affine import Affine

from lstfill.errors import InputError
from lstfill.sources import israel

STEP = 1.0 / 120
T, H, W = 5, 12, 10
LAT = 31.5 - STEP / 2 - STEP * np.arange(H)  # north to south
LON = 34.0 + STEP / 2 + STEP * np.arange(W)
DAYS = np.array([0, 1, 59, 60, 365])  # 2020 is a leap year: day 59 = Feb 29, 365 = Dec 31


def _fields(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    night = rng.uniform(270, 300, (T, H, W))
    day = night + rng.uniform(5, 30, (T, H, W))
    night[0, 0, :3] = np.nan
    day[1, 2, 4] = np.nan
    night[1, 2, 4] = np.nan  # both missing -> daily fill too
    qa = rng.integers(0, 4, (T, H, W)).astype(np.uint8)
    return night, day, qa


@pytest.fixture
def written(tmp_path) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    night, day, qa = _fields()
    path = israel.write_israel_lst(
        tmp_path / israel.file_name(2020), 2020, DAYS, night, day, qa, LAT, LON
    )
    return path, night, day, qa


def _raw_file(
    path: Path,
    data: np.ndarray,
    *,
    bands=(0, 1, 2, 3),
    y: np.ndarray = LAT,
    name: str = israel.VARIABLE,
    dims=israel.DIMS,
    attrs: dict | None = None,
    fill=None,
) -> Path:
    """A file written straight with xarray, to test decoding the reader must do itself."""
    da = xr.DataArray(
        data,
        dims=dims,
        coords=dict(zip(dims, [np.arange(data.shape[0]), list(bands), y, LON], strict=True)),
        attrs=attrs or {},
    )
    encoding = {name: {"_FillValue": fill}}
    da.to_dataset(name=name).to_netcdf(path, engine="netcdf4", encoding=encoding)
    return path


def _counts(value: int, dtype=np.int32) -> np.ndarray:
    data = np.full((2, 4, H, W), value, dtype=dtype)
    data[:, 3] = israel.QA_BOTH
    return data


def test_round_trip(written) -> None:
    path, night, day, qa = written
    lst = israel.read_israel_lst(path)
    assert lst.year == 2020
    np.testing.assert_array_equal(lst.days, DAYS)
    expected_dates = ["2020-01-01", "2020-01-02", "2020-02-29", "2020-03-01", "2020-12-31"]
    np.testing.assert_array_equal(lst.dates, np.array(expected_dates, dtype="datetime64[D]"))
    assert lst.night.dtype == np.float32 and lst.night.shape == (T, H, W)
    np.testing.assert_allclose(lst.night, night, atol=0.011, equal_nan=True)
    np.testing.assert_allclose(lst.day, day, atol=0.011, equal_nan=True)
    daily = np.where(np.isnan(night), day, np.where(np.isnan(day), night, (night + day) / 2))
    np.testing.assert_allclose(lst.lst("daily"), daily, atol=0.011, equal_nan=True)
    assert np.isnan(lst.lst("daily")[1, 2, 4])
    assert lst.lst("night") is lst.night and lst.lst("day") is lst.day
    np.testing.assert_array_equal(lst.qa, qa)
    assert lst.qa.dtype == np.uint8
    np.testing.assert_allclose(lst.lat, LAT)
    np.testing.assert_allclose(lst.lon, LON)
    assert lst.crs == "EPSG:4326"
    assert lst.transform.almost_equals(Affine(STEP, 0, 34.0, 0, -STEP, 31.5), precision=1e-9)
    with pytest.raises(ValueError):
        lst.lst("evening")


def test_file_layout(written) -> None:
    path = written[0]
    with xr.open_dataset(path, mask_and_scale=False) as ds:
        var = ds[israel.VARIABLE]
        assert var.dims == ("time", "band", "y", "x")
        assert var.dtype == np.int32
        assert var.attrs["_FillValue"] == 0
        assert list(ds["band"].values) == [0, 1, 2, 3]
        assert list(ds["time"].values) == list(DAYS)
        assert int(var.sel(band=0).values[0, 0, 0]) == 0  # NaN -> fill


def test_ascending_y_is_flipped_north_up(tmp_path) -> None:
    night, day, qa = _fields()
    path = israel.write_israel_lst(
        tmp_path / "LST_2021_NetCDF.nc",
        2021,
        DAYS[:4],
        night[:4, ::-1],
        day[:4, ::-1],
        qa[:4, ::-1],
        LAT[::-1],
        LON,
    )
    with xr.open_dataset(path) as ds:
        assert ds["y"].values[0] < ds["y"].values[-1]  # stored south to north
    lst = israel.read_israel_lst(path)
    np.testing.assert_allclose(lst.lat, LAT)
    np.testing.assert_allclose(lst.night, night[:4], atol=0.011, equal_nan=True)
    np.testing.assert_array_equal(lst.qa, qa[:4])
    assert lst.dates[2] == np.datetime64("2021-03-01")  # day 59 of a common year
    assert lst.transform.almost_equals(Affine(STEP, 0, 34.0, 0, -STEP, 31.5), precision=1e-9)


def test_scale_and_masks(tmp_path) -> None:
    data = _counts(15000)
    data[0, 0, 0, 1] = 100  # below 7500
    data[0, 1, 0, 2] = 70000  # above 65535
    data[0, 0, 0, 3] = -1  # missing_value
    data[1, 1, 0, 4] = 0  # zero is invalid too
    data[1, 3, 0, 0] = -1  # QA fill -> no data
    path = _raw_file(tmp_path / "LST_2019_NetCDF.nc", data, attrs={"missing_value": -1})
    lst = israel.read_israel_lst(path)
    assert lst.night[0, 0, 0] == pytest.approx(300.0)
    assert np.isnan(lst.night[0, 0, 1]) and np.isnan(lst.night[0, 0, 3])
    assert np.isnan(lst.day[0, 0, 2]) and np.isnan(lst.day[1, 0, 4])
    assert np.count_nonzero(np.isnan(lst.night)) == 2
    assert lst.qa[1, 0, 0] == israel.QA_NONE and lst.qa[0, 0, 0] == israel.QA_BOTH
    assert lst.daily[0, 5, 5] == pytest.approx(300.0)


def test_uint16_fill_value(tmp_path) -> None:
    data = _counts(15000, np.uint16)
    data[0, 0, 0, 0] = 65535
    data[0, 0, 0, 1] = 65534
    path = _raw_file(tmp_path / "LST_2019_NetCDF.nc", data, fill=np.uint16(65535))
    lst = israel.read_israel_lst(path)
    assert np.isnan(lst.night[0, 0, 0])
    # 65534 is no fill value: it decodes to 1310.68 K, which the physical range check (one
    # stray pixel, within the tolerance) then blanks
    decoded = israel.decode_lst(np.array([65534, 65535], np.uint16), [65535.0])
    assert decoded[0] == pytest.approx(65534 * 0.02, abs=1e-3) and np.isnan(decoded[1])
    assert np.isnan(lst.night[0, 0, 1])


def test_qa_strict(written) -> None:
    path, night, day, qa = written
    loose = israel.read_israel_lst(path)
    strict = israel.read_israel_lst(path, qa_strict=True)
    no_day = (qa == israel.QA_NONE) | (qa == israel.QA_NO_DAY)
    no_night = (qa == israel.QA_NONE) | (qa == israel.QA_NO_NIGHT)
    assert no_day.any() and no_night.any()
    assert np.isnan(strict.day[no_day]).all()
    assert np.isnan(strict.night[no_night]).all()
    assert np.isnan(strict.daily[qa != israel.QA_BOTH]).all()
    np.testing.assert_array_equal(strict.day[~no_day], loose.day[~no_day])
    np.testing.assert_array_equal(strict.night[~no_night], loose.night[~no_night])
    assert np.isfinite(loose.day[no_day]).sum() == np.isfinite(day[no_day]).sum()
    assert np.isfinite(loose.night[no_night]).sum() == np.isfinite(night[no_night]).sum()


def test_year_from_attribute(tmp_path) -> None:
    path = _raw_file(tmp_path / "israel.nc", _counts(15000))
    with pytest.raises(InputError, match="no year"):
        israel.read_israel_lst(path)
    path = _raw_file(tmp_path / "israel2.nc", _counts(15000), attrs={"year": 2018})
    assert israel.read_israel_lst(path).year == 2018


@pytest.mark.parametrize(
    "case, match",
    [
        ("missing_band", "band"),
        ("missing_variable", "no variable"),
        ("irregular_y", "coordinate y is not regular"),
        ("wrong_dims", "dims"),
        ("text", "cannot read NetCDF"),
    ],
)
def test_errors_name_the_file(tmp_path, case: str, match: str) -> None:
    path = tmp_path / "LST_2020_NetCDF.nc"
    data = _counts(15000)
    if case == "missing_band":
        _raw_file(path, data[:, :3], bands=(0, 1, 2))
    elif case == "missing_variable":
        _raw_file(path, data, name="lst")
    elif case == "irregular_y":
        y = LAT.copy()
        y[5:] -= STEP / 10
        _raw_file(path, data, y=y)
    elif case == "wrong_dims":
        _raw_file(path, data, dims=("time", "band", "lat", "lon"))
    else:
        path.write_text("not a NetCDF file\n")
    with pytest.raises(InputError, match=match) as info:
        israel.read_israel_lst(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


def test_day_beyond_common_year(tmp_path) -> None:
    night, day, qa = _fields()
    path = israel.write_israel_lst(
        tmp_path / "LST_2021_NetCDF.nc", 2021, DAYS, night, day, qa, LAT, LON
    )
    with pytest.raises(InputError, match="outside 0..364"):
        israel.read_israel_lst(path)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        israel.read_israel_lst(tmp_path / "LST_2020_NetCDF.nc")
