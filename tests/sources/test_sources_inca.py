"""INCA NetCDF writing and reading: packing, units, grid, time selection and bad files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import netCDF4
import numpy as np
import pytest
from fakes.damaged import truncated
from pyproj import CRS

from lstfill.errors import InputError
from lstfill.sources import inca

T0 = datetime(2023, 7, 1, 0, tzinfo=UTC)
X = 400_500.0 + 1000.0 * np.arange(6)  # EPSG:31287 cell centres
Y = 480_500.0 - 1000.0 * np.arange(4)  # north to south


def _fields(n_times: int = 24) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    shape = (n_times, Y.size, X.size)
    hours = np.arange(n_times)[:, None, None]
    t2m = 15.0 + 10.0 * np.sin((hours - 9) / 24 * 2 * np.pi) + rng.normal(0, 1, shape)
    gl = np.clip(800.0 * np.sin((hours - 5) / 14 * np.pi), 0, None) + rng.uniform(0, 5, shape)
    return {
        "T2M": t2m,
        "GL": gl,
        "RH2M": rng.uniform(30, 95, shape),
        "UU": rng.normal(0, 3, shape),
        "VV": rng.normal(0, 3, shape),
    }


@pytest.fixture
def written(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray], list[datetime]]:
    times = [T0 + timedelta(hours=h) for h in range(24)]
    data = _fields()
    data["T2M"][5, 1, 2] = np.nan
    name = inca.filename(times[0], times[-1])
    path = inca.write_inca(tmp_path / name, times, X, Y, data)
    return path, data, times


def test_filename_and_find(written, tmp_path: Path) -> None:
    path, _, _ = written
    assert path.name == "inca-v1-1h-1km_20230701T0000_20230701T2300.nc"
    cest = timezone(timedelta(hours=2))
    assert inca.filename(datetime(2023, 7, 1, 2, tzinfo=cest), datetime(2023, 7, 1, 3)) == (
        "inca-v1-1h-1km_20230701T0000_20230701T0300.nc"
    )
    (tmp_path / "notes.txt").write_text("x")
    assert inca.find_inca(tmp_path) == [path]


def test_file_layout(written) -> None:
    path, _, _ = written
    with netCDF4.Dataset(path) as nc:
        assert nc.variables["T2M"].dimensions == ("time", "y", "x")
        v = nc.variables["T2M"]
        assert v.dtype == np.int16 and v.grid_mapping == "crs" and v.units == "degree_Celsius"
        assert {"scale_factor", "add_offset", "_FillValue"} <= set(v.ncattrs())
        assert nc.variables["time"].units == "seconds since 1961-01-01 00:00:00"
        assert int(nc.variables["time"][0]) == int(
            (datetime(2023, 7, 1) - datetime(1961, 1, 1)).total_seconds()
        )
        assert CRS.from_wkt(nc.variables["crs"].crs_wkt).equals(CRS("EPSG:31287"))
        assert CRS.from_wkt(nc.variables["crs"].spatial_ref).equals(CRS("EPSG:31287"))
        assert nc.variables["x"].units == "m"


def test_round_trip_values(written) -> None:
    path, data, times = written
    d = inca.read_inca(path)
    assert d.crs == "EPSG:31287"
    assert d.times.dtype == np.dtype("datetime64[ns]")
    assert d.times[0] == np.datetime64("2023-07-01T00:00", "ns")
    assert d.times[-1] == np.datetime64("2023-07-01T23:00", "ns")
    assert set(d.fields) == set(inca.PARAMETERS)
    for param, src in data.items():
        got = d.fields[param]
        assert got.dtype == np.float32 and got.shape == (24, 4, 6)
        expected = src + 273.15 if param == "T2M" else src
        ok = np.isfinite(expected)
        span = np.nanmax(src) - np.nanmin(src)
        quantum = span / (2 * 32766)
        float32_eps = 1e-6 * np.nanmax(np.abs(expected))
        assert np.abs(got[ok] - expected[ok]).max() <= quantum / 2 + float32_eps
    # _FillValue -> NaN, nothing else missing
    assert np.isnan(d.fields["T2M"][5, 1, 2])
    assert np.isnan(d.fields["T2M"]).sum() == 1


def test_transform_from_cell_centres(written) -> None:
    path, _, _ = written
    d = inca.read_inca(path)
    t = d.transform
    assert (t.a, t.e) == (1000.0, -1000.0)
    assert (t.c, t.f) == (400_000.0, 481_000.0)
    # centre of pixel (row 0, col 0) is the first x and y
    assert t @ (0.5, 0.5) == (X[0], Y[0])


def test_ascending_y_is_flipped(tmp_path: Path) -> None:
    times = [T0, T0 + timedelta(hours=1)]
    t2m = np.arange(2 * 4 * 6, dtype=float).reshape(2, 4, 6) / 10
    # write the same field with y ascending (south to north), rows reversed
    path = inca.write_inca(tmp_path / "asc.nc", times, X, Y[::-1], {"T2M": t2m[:, ::-1, :]})
    d = inca.read_inca(path)
    assert d.transform.f == 481_000.0 and d.transform.e == -1000.0
    assert np.allclose(d.fields["T2M"], t2m + 273.15, atol=1e-3)


def test_kelvin_units_kept(tmp_path: Path) -> None:
    times = [T0]
    path = inca.write_inca(tmp_path / "k.nc", times, X, Y, {"T2M": np.full((1, 4, 6), 290.0)})
    with netCDF4.Dataset(path, "a") as nc:
        nc.variables["T2M"].units = "K"
    d = inca.read_inca(path)
    assert np.allclose(d.fields["T2M"], 290.0)
    with netCDF4.Dataset(path, "a") as nc:
        nc.variables["T2M"].units = "furlongs"
    with pytest.raises(InputError, match="units"):
        inca.read_inca(path)


def test_at_nearest_hour(written) -> None:
    path, data, _ = written
    d = inca.read_inca(path)
    r = d.at("T2M", datetime(2023, 7, 1, 10, 29, tzinfo=UTC))
    assert np.allclose(r.data, d.fields["T2M"][10])
    assert r.crs == "EPSG:31287" and r.transform == d.transform and r.data.dtype == np.float32
    # 12:31 CEST is 10:31 UTC -> 11 UTC
    cest = timezone(timedelta(hours=2))
    r = d.at("GL", datetime(2023, 7, 1, 12, 31, tzinfo=cest))
    assert np.allclose(r.data, data["GL"][11], atol=0.02)
    # naive times are UTC; up to 1 h past the last step is still answered
    assert np.allclose(d.at("RH2M", datetime(2023, 7, 1, 23, 50)).data, d.fields["RH2M"][23])
    with pytest.raises(InputError, match="within 1 h"):
        d.at("T2M", datetime(2023, 7, 2, 1, 30, tzinfo=UTC))
    with pytest.raises(InputError, match=path.name):
        d.at("T2M", datetime(2023, 6, 30, 22, 0, tzinfo=UTC))
    with pytest.raises(InputError, match="no variable"):
        d.at("SNOW", datetime(2023, 7, 1, 10, tzinfo=UTC))


def test_cumulative_mean(written) -> None:
    path, data, _ = written
    d = inca.read_inca(path)
    r = d.cumulative("GL", datetime(2023, 7, 1, 11, 20, tzinfo=UTC), hours=6)
    by_hand = (
        data["GL"][6]
        + data["GL"][7]
        + data["GL"][8]
        + data["GL"][9]
        + data["GL"][10]
        + data["GL"][11]
    ) / 6
    assert np.allclose(r.data, by_hand, atol=0.02)
    one = d.cumulative("GL", datetime(2023, 7, 1, 11, tzinfo=UTC), hours=1)
    assert np.allclose(one.data, d.fields["GL"][11])
    # a pixel missing in one hour averages the others
    t = d.cumulative("T2M", datetime(2023, 7, 1, 6, tzinfo=UTC), hours=3)
    assert t.data[1, 2] == pytest.approx((d.fields["T2M"][4, 1, 2] + d.fields["T2M"][6, 1, 2]) / 2)
    with pytest.raises(InputError, match="not all in the file"):
        d.cumulative("GL", datetime(2023, 7, 1, 3, tzinfo=UTC), hours=6)


def test_missing_crs_assumed_and_wrong_crs_rejected(tmp_path: Path) -> None:
    path = inca.write_inca(tmp_path / "a.nc", [T0], X, Y, {"GL": np.zeros((1, 4, 6))})
    with netCDF4.Dataset(path, "a") as nc:
        nc.renameVariable("crs", "unused")
        nc.variables["GL"].delncattr("grid_mapping")
        nc.variables["unused"].crs_wkt = CRS("EPSG:32633").to_wkt()
    assert inca.read_inca(path).crs == "EPSG:31287"

    wrong = inca.write_inca(tmp_path / "b.nc", [T0], X, Y, {"GL": np.zeros((1, 4, 6))})
    with netCDF4.Dataset(wrong, "a") as nc:
        wkt = CRS("EPSG:32633").to_wkt()
        nc.variables["crs"].crs_wkt = wkt
        nc.variables["crs"].spatial_ref = wkt
    with pytest.raises(InputError, match="b.nc.*EPSG:32633"):
        inca.read_inca(wrong)
    assert inca.read_inca(wrong, expected_crs="EPSG:32633").crs == "EPSG:32633"


def test_truncated_and_missing_files(written, tmp_path: Path) -> None:
    path, _, _ = written
    for frac in (0.3, 0.7):
        bad = truncated(path, tmp_path / f"trunc{int(frac * 10)}.nc", keep=frac)
        with pytest.raises(InputError, match=bad.name):
            inca.read_inca(bad)
    with pytest.raises(InputError, match="nope.nc"):
        inca.read_inca(tmp_path / "nope.nc")


def test_writer_rejects_bad_shapes_atomically(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="T2M"):
        inca.write_inca(tmp_path / "x.nc", [T0], X, Y, {"T2M": np.zeros((2, 4, 6))})
    with pytest.raises(ValueError, match="unknown"):
        inca.write_inca(tmp_path / "x.nc", [T0], X, Y, {"T": np.zeros((1, 4, 6))})
    assert list(tmp_path.iterdir()) == []
