"""MOD11A1 / MOD09GQ granules and their HDF4-EOS format (lstfill.sources.hdfeos): real granule,
round trips, QC bits, errors."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from fakes.damaged import truncated
from pyproj import CRS, Transformer

from lstfill.errors import InputError
from lstfill.grid import Grid
from lstfill.sources import hdfeos, modis

REAL = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "data"
    / "modis_hdf"
    / "MOD11A1.A2019305.h14v09.006.2019306084028.hdf"
)
UL = (-4447802.079066, 0.0)  # tile h14v09 upper-left corner, metres
PIX = 926.625433


@pytest.fixture(scope="module")
def real() -> modis.ModisLST:
    if not REAL.is_file():
        pytest.skip("shared MODIS sample granule not available")
    return modis.read_mod11a1(REAL)


def test_real_granule_sds_and_georeferencing(real: modis.ModisLST) -> None:
    from pyhdf.SD import SD, SDC

    sd = SD(str(REAL), SDC.READ)
    names = set(sd.datasets())
    sd.end()
    assert {"LST_Day_1km", "QC_Day", "Day_view_time", "LST_Night_1km"} <= names
    assert real.date == date(2019, 11, 1)
    assert real.lst.data.shape == (1200, 1200) and real.lst.data.dtype == np.float32
    t = real.lst.transform
    assert t.c == pytest.approx(UL[0], abs=1e-6) and t.f == pytest.approx(UL[1], abs=1e-6)
    assert t.a == pytest.approx(PIX, abs=1e-6) and t.e == pytest.approx(-PIX, abs=1e-6)
    assert CRS(real.lst.crs).equals(CRS(hdfeos.SINUSOIDAL_PROJ4))
    # h14v09 lies on the north-east coast of Brazil, just south of the equator
    lon, lat = Grid(real.lst.crs, t, 1200, 1200).lonlat()
    assert -10.0 < lat.min() < lat.max() < 0.0
    assert -41.0 < lon.min() < lon.max() < -29.0
    assert lon[0, 0] == pytest.approx(-40.0, abs=0.1) and lat[0, 0] == pytest.approx(0.0, abs=0.01)


def test_real_granule_values_and_qc(real: modis.ModisLST) -> None:
    lst, valid = real.lst.data, real.valid
    assert 0.1 < valid.mean() < 0.5
    assert np.isfinite(lst).sum() == valid.sum()
    assert lst[valid].min() > 250 and lst[valid].max() < 340
    assert 285 < np.median(lst[valid]) < 320
    # quantised to 0.02 K
    q = lst[valid][:1000] / 0.02
    assert np.allclose(q, np.round(q), atol=1e-2)
    bits = modis.decode_lst_qc(real.qc)
    assert set(np.unique(bits["mandatory"][valid])) <= {0, 1}
    assert not valid[bits["mandatory"] >= 2].any()
    view = real.view_time_h[valid]
    assert np.isfinite(view).all() and 9.0 < view.min() and view.max() < 12.0


def test_parse_struct_metadata_real_text() -> None:
    if not REAL.is_file():
        pytest.skip("shared MODIS sample granule not available")
    from pyhdf.SD import SD, SDC

    sd = SD(str(REAL), SDC.READ)
    text = sd.attributes()["StructMetadata.0"]
    sd.end()
    grids = hdfeos.parse_struct_metadata(text)
    g = grids["MODIS_Grid_Daily_1km_LST"]
    assert (g.xdim, g.ydim) == (1200, 1200)
    assert g.upper_left == (-4447802.079066, 0.0)
    assert g.lower_right == (-3335851.5593, -1111950.519767)
    assert g.projection == "GCTP_SNSOID" and g.proj_params[0] == 6371007.181


def test_granule_names() -> None:
    name = modis.granule_name(
        "MOD11A1", date(2019, 11, 1), 14, 9, "006", datetime(2019, 11, 2, 8, 40, 28)
    )
    assert name == "MOD11A1.A2019305.h14v09.006.2019306084028.hdf"
    p = modis.parse_granule_name(name)
    assert p == {
        "product": "MOD11A1",
        "date": date(2019, 11, 1),
        "h": 14,
        "v": 9,
        "collection": "006",
        "prod_time": datetime(2019, 11, 2, 8, 40, 28, tzinfo=UTC),
    }
    assert modis.granule_name("MOD09GQ", date(2023, 7, 1), 18, 4).startswith(
        "MOD09GQ.A2023182.h18v04.061.2023183000000"
    )
    with pytest.raises(ValueError):
        modis.parse_granule_name("MOD11A1.2019305.h14v09.hdf")


def test_qc_bit_decoding() -> None:
    qc = np.array([0b01_00_00_01, 0b11_10_01_10, 0, 0b10_01_00_01, 0b00_00_01_01], np.uint8)
    b = modis.decode_lst_qc(qc)
    assert b["mandatory"].tolist() == [1, 2, 0, 1, 1]
    assert b["data_quality"].tolist() == [0, 1, 0, 0, 1]
    assert b["emis_error"].tolist() == [0, 2, 0, 1, 0]
    assert b["lst_error"].tolist() == [1, 3, 0, 2, 0]
    assert modis.lst_qc_valid(qc, 2).tolist() == [True, False, True, False, False]
    assert modis.lst_qc_valid(qc, 3).tolist() == [True, False, True, True, False]
    assert modis.lst_qc_valid(qc, 1).tolist() == [False, False, True, False, False]
    with pytest.raises(ValueError):
        modis.lst_qc_valid(qc, 5)


def _subset(rows: int = 16, cols: int = 20, res: float = PIX):
    ul = (UL[0] + 100 * res, UL[1] - 50 * res)
    lr = (ul[0] + cols * res, ul[1] - rows * res)
    return ul, lr


def _write_lst(path: Path, day: date, lst_k: np.ndarray, view_time_h: float = 10.0) -> Path:
    """A MOD11A1 granule of `lst_k` on a subset of the tile, QC all good, one view time."""
    shape = lst_k.shape
    ul, lr = _subset(*shape)
    qc = np.zeros(shape, np.uint8)
    return modis.write_mod11a1(path, day, lst_k, qc, np.full(shape, view_time_h), ul, lr)


def test_mod11a1_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lst = rng.uniform(260.0, 330.0, (16, 20))
    lst[3, 4] = np.nan
    qc = np.zeros((16, 20), np.uint8)
    qc[0, 0] = 0b01_00_00_01  # other quality, LST error <= 2 K: valid
    qc[0, 1] = 0b11_10_01_10  # cloud, LST error > 3 K: invalid
    qc[0, 2] = 0b11_00_00_01  # other quality but LST error > 3 K: invalid
    view = np.full((16, 20), 10.5)
    view[5, 5] = np.nan
    ul, lr = _subset()
    name = modis.granule_name("MOD11A1", date(2023, 7, 18), 18, 4)
    path = modis.write_mod11a1(tmp_path / name, date(2023, 7, 18), lst, qc, view, ul, lr)
    assert path.is_file() and [p.name for p in tmp_path.iterdir()] == [name]
    assert modis.find_modis(tmp_path, "MOD11A1") == [path]
    assert modis.find_modis(tmp_path, "MOD09GQ") == []

    r = modis.read_mod11a1(path)
    assert r.date == date(2023, 7, 18)
    t = r.lst.transform
    assert (t.c, t.f) == pytest.approx(ul) and (t.a, -t.e) == pytest.approx((PIX, PIX))
    assert r.qc.dtype == np.uint8 and np.array_equal(r.qc, qc)
    expect_valid = np.isfinite(lst)
    expect_valid[0, 1:3] = False
    assert np.array_equal(r.valid, expect_valid)
    assert np.isnan(r.lst.data[~expect_valid]).all()
    assert np.abs(r.lst.data[expect_valid] - lst[expect_valid]).max() <= 0.01 + 1e-4
    assert np.isnan(r.view_time_h[5, 5])
    assert r.view_time_h[0, 0] == pytest.approx(10.5, abs=1e-5)
    # error class 3 (> 3 K) fails even the most lenient threshold; class 1 fails the strictest
    assert not modis.read_mod11a1(path, max_lst_error_k=3).valid[0, 2]
    assert not modis.read_mod11a1(path, max_lst_error_k=1).valid[0, 0]


def test_mod11a1_written_attributes(tmp_path: Path) -> None:
    from pyhdf.SD import SD, SDC

    path = _write_lst(tmp_path / "x.hdf", date(2023, 1, 2), np.full((4, 5), 300.0), 11.0)
    sd = SD(str(path), SDC.READ)
    try:
        lst = sd.select("LST_Day_1km")
        a = lst.attributes()
        assert lst.info()[3] == SDC.UINT16
        assert a["scale_factor"] == 0.02 and a["_FillValue"] == 0
        assert list(a["valid_range"]) == [7500, 65535]
        assert int(lst.get()[0, 0]) == 15000
        assert sd.select("QC_Day").info()[3] == SDC.UINT8
        assert sd.select("Day_view_time").attributes()["_FillValue"] == 255
        grid = hdfeos.parse_struct_metadata(sd.attributes()["StructMetadata.0"])
        assert list(grid) == ["MODIS_Grid_Daily_1km_LST"]
        assert (grid["MODIS_Grid_Daily_1km_LST"].xdim, grid["MODIS_Grid_Daily_1km_LST"].ydim) == (
            5,
            4,
        )
    finally:
        sd.end()
    # the date comes from CoreMetadata.0 when the file name is not a granule name
    assert modis.read_mod11a1(path).date == date(2023, 1, 2)


def test_mod09gq_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    red = rng.uniform(0.0, 0.3, (8, 12))
    nir = rng.uniform(0.1, 0.6, (8, 12))
    red[1, 1] = np.nan
    nir[2, 3] = np.nan
    qc = np.full((8, 12), 4096, np.uint16)
    qc[0, 0] = 0b0111_0111_0000_00_11
    ul, lr = _subset(8, 12, PIX / 4)
    path = modis.write_mod09gq(tmp_path / "MOD09GQ.hdf", date(2023, 7, 18), red, nir, qc, ul, lr)
    from pyhdf.SD import SD, SDC

    sd = SD(str(path), SDC.READ)
    try:
        b1 = sd.select("sur_refl_b01_1")
        assert b1.info()[3] == SDC.INT16
        assert b1.attributes()["_FillValue"] == -28672 and b1.attributes()["scale_factor"] == 1e-4
        assert list(b1.attributes()["valid_range"]) == [-100, 16000]
        assert int(b1.get()[1, 1]) == -28672
        assert sd.select("QC_250m_1").info()[3] == SDC.UINT16
        assert "MODIS_Grid_2D" in hdfeos.parse_struct_metadata(sd.attributes()["StructMetadata.0"])
    finally:
        sd.end()
    r = modis.read_mod09gq(path)
    assert r.date == date(2023, 7, 18)
    assert r.red.transform.a == pytest.approx(PIX / 4) and r.red.transform.c == pytest.approx(ul[0])
    assert np.isnan(r.red.data[1, 1]) and np.isnan(r.nir.data[2, 3])
    ok = np.isfinite(red)
    assert np.abs(r.red.data[ok] - red[ok]).max() <= 5e-5 + 1e-7
    ok = np.isfinite(nir)
    assert np.abs(r.nir.data[ok] - nir[ok]).max() <= 5e-5 + 1e-7
    assert np.array_equal(r.qc, qc)


def test_writer_rejects_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="LST_Day_1km"):
        _write_lst(tmp_path / "bad.hdf", date(2023, 1, 1), np.full((2, 2), 100.0))
    assert list(tmp_path.iterdir()) == []


def test_truncated_and_missing_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    good = _write_lst(tmp_path / "good.hdf", date(2023, 1, 1), rng.uniform(260, 300, (64, 64)))
    bad = truncated(good, tmp_path / "MOD11A1.A2023001.h18v04.061.2023002000000.hdf")
    with pytest.raises(InputError, match=bad.name):
        modis.read_mod11a1(bad)
    junk = tmp_path / "junk.hdf"
    junk.write_bytes(b"not an hdf file" * 100)
    with pytest.raises(InputError, match="junk.hdf"):
        modis.read_mod09gq(junk)
    with pytest.raises(InputError, match="missing.hdf"):
        modis.read_mod11a1(tmp_path / "missing.hdf")
    # a MOD11A1 file is not a MOD09GQ file
    with pytest.raises(InputError, match="sur_refl_b01_1"):
        modis.read_mod09gq(good)


def test_sinusoidal_crs() -> None:
    crs = CRS(modis.sinusoidal_crs())
    assert crs.equals(CRS(modis.SINUSOIDAL_WKT))
    to_sin = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x, y = to_sin.transform(-40.0, 0.0)
    assert x == pytest.approx(UL[0], abs=1.0) and y == pytest.approx(0.0, abs=1e-6)


def test_truncated_real_granule(tmp_path: Path) -> None:
    if not REAL.is_file():
        pytest.skip("shared MODIS sample granule not available")
    bad = tmp_path / REAL.name
    bad.write_bytes(REAL.read_bytes()[:1_500_000])
    with pytest.raises(InputError, match=REAL.name):
        modis.read_mod11a1(bad)
