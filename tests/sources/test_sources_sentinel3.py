"""Sentinel-3 SYN day files: names, writer/reader round trip and the errors that name the file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from fakes.damaged import truncated

from lstfill.errors import InputError
from lstfill.io import write_cog
from lstfill.sources import sentinel3 as s3

DAY = dt.date(2023, 7, 1)
TRANSFORM = Affine(300.0, 0.0, 600000.0, 0.0, -300.0, 5393700.0)
CRS_TEXT = "EPSG:32633"


def sample() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """3 x 4 px of B04 and B08 with a NaN, edge values and a cloudy column."""
    b04 = np.array(
        [
            [0.1234, 0.05, np.nan, 0.2],
            [0.00001, -0.01, 0.3, 0.4],
            [1.2, 7.0, 0.06, 0.00004],
        ]
    )
    b08 = np.linspace(0.2, 0.5, 12).reshape(3, 4)
    clear = np.ones((3, 4), dtype=np.uint8)
    clear[:, 1] = 0
    return {"B08": b08, "B04": b04}, clear


def write_sample(folder: Path, **kwargs) -> Path:
    reflectance, clear = sample()
    return s3.write_day(
        folder / s3.filename(DAY), DAY, reflectance, clear, TRANSFORM, CRS_TEXT, **kwargs
    )


# --- names ------------------------------------------------------------------------------------


def test_filename_round_trip():
    assert s3.filename(DAY) == "S3_SY_2_SYN_20230701.tif"
    assert s3.parse_filename("S3_SY_2_SYN_20230701.tif") == DAY
    assert s3.parse_filename("/some/where/S3_SY_2_SYN_20240229.tif") == dt.date(2024, 2, 29)


@pytest.mark.parametrize(
    "name",
    [
        "S3_SY_2_SYN_2023070.tif",
        "S3_SY_2_SYN_20230701.tiff",
        "S3_OL_2_LFR_20230701.tif",
        "S3_SY_2_SYN_20231301.tif",  # no month 13
        "T33UXP_20230701T101559_B04_10m.tif",
    ],
)
def test_parse_filename_rejects_foreign_names(name):
    with pytest.raises(ValueError, match="not a Sentinel-3 day file name"):
        s3.parse_filename(name)


def test_find_days_lists_only_day_files_sorted(tmp_path):
    for day in ("20230703", "20230701", "20230702"):
        (tmp_path / f"S3_SY_2_SYN_{day}.tif").write_bytes(b"x")
    (tmp_path / "S3_SY_2_SYN_20230704.tif.txt").write_bytes(b"x")
    (tmp_path / ".S3_SY_2_SYN_20230705.tif.abc.tmp.tif").write_bytes(b"x")  # a writer's temp
    (tmp_path / "S3_SY_2_SYN_20230706.tif").mkdir()  # a folder is no file
    (tmp_path / "notes.md").write_text("hi")
    days = s3.find_days(tmp_path)
    assert list(days) == ["20230701", "20230702", "20230703"]
    assert days["20230702"] == tmp_path / "S3_SY_2_SYN_20230702.tif"
    with pytest.raises(InputError, match="Sentinel-3 folder does not exist") as info:
        s3.find_days(tmp_path / "missing")
    assert str(tmp_path / "missing") in str(info.value)


# --- round trip -------------------------------------------------------------------------------


def test_write_read_round_trip(tmp_path):
    path = write_sample(tmp_path, tags={"COLLECTION": "sentinel-3-synergy-l2"})
    assert path == tmp_path / "S3_SY_2_SYN_20230701.tif"
    assert s3.find_days(tmp_path) == {"20230701": path}
    day = s3.read_day(path)

    assert day.day == DAY
    assert list(day.reflectance) == ["B04", "B08"]  # BANDS order, not the dict's
    reflectance, clear = sample()
    for band, want in reflectance.items():
        got = day.reflectance[band]
        assert got.data.dtype == np.float32 and got.data.shape == (3, 4)
        assert got.transform == TRANSFORM and got.crs == CRS_TEXT
        usable = (clear == 1) & np.isfinite(want) & (want >= 1e-4) & (want <= 6.5535)
        np.testing.assert_allclose(got.data[usable], want[usable], atol=0.5e-4 + 1e-7)
        assert np.isnan(got.data[clear == 0]).all()  # not clear: NaN whatever the DN
    b04 = day.reflectance["B04"].data
    assert np.isnan(b04[0, 2])  # NaN in, NaN out
    assert b04[0, 0] == pytest.approx(0.1234, abs=1e-7)
    assert b04[2, 3] == pytest.approx(0.0001)  # 0.00004 rounds to DN 0 but stays valid: DN 1
    assert b04[2, 0] == pytest.approx(1.2)
    np.testing.assert_array_equal(day.clear.data, clear)
    assert day.clear.data.dtype == np.uint8 and day.clear.transform == TRANSFORM

    with rasterio.open(path) as src:
        assert src.descriptions == ("B04", "B08", "CLEAR")
        assert src.dtypes == ("uint16",) * 3 and src.nodata == 0
        tags = src.tags()
        assert tags["PRODUCT"] == "SY_2_SYN" and tags["DATE"] == "2023-07-01"
        assert float(tags["SCALE"]) == 1e-4 and tags["COLLECTION"] == "sentinel-3-synergy-l2"
        assert src.tags(1)["SOURCE_BAND"] == "SDR_Oa08"
        assert src.tags(2)["SOURCE_BAND"] == "SDR_Oa17"
        dn = src.read()
        assert src.driver == "GTiff" and src.profile["tiled"]
    np.testing.assert_array_equal(
        dn[0],
        [[1234, 500, 0, 2000], [1, 1, 3000, 4000], [12000, 65535, 600, 1]],
    )  # NaN -> 0; tiny and negative values -> 1; 7.0 clipped to 65535
    np.testing.assert_array_equal(dn[2], clear)


def test_read_band_subset_and_case(tmp_path):
    path = write_sample(tmp_path)
    day = s3.read_day(path, bands=["b08"])
    assert list(day.reflectance) == ["B08"]
    assert day.reflectance["B08"].data[0, 0] == pytest.approx(0.2)


def test_write_day_rejects_bad_input(tmp_path):
    reflectance, clear = sample()
    target = tmp_path / s3.filename(DAY)
    with pytest.raises(ValueError, match="unknown Sentinel-3 band"):
        s3.write_day(target, DAY, {"B05": reflectance["B04"]}, clear, TRANSFORM, CRS_TEXT)
    with pytest.raises(ValueError, match="shape"):
        s3.write_day(target, DAY, {"B04": reflectance["B04"][:2]}, clear, TRANSFORM, CRS_TEXT)
    with pytest.raises(ValueError, match="at least one"):
        s3.write_day(target, DAY, {}, clear, TRANSFORM, CRS_TEXT)
    other = tmp_path / s3.filename(DAY + dt.timedelta(days=1))
    with pytest.raises(ValueError, match="names 2023-07-02"):
        s3.write_day(other, DAY, reflectance, clear, TRANSFORM, CRS_TEXT)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_foreign_name_uses_the_date_tag(tmp_path):
    reflectance, clear = sample()
    path = s3.write_day(tmp_path / "any.tif", DAY, reflectance, clear, TRANSFORM, CRS_TEXT)
    assert s3.read_day(path).day == DAY
    assert s3.find_days(tmp_path) == {}


# --- errors that name the file ----------------------------------------------------------------


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_file_is_input_error(tmp_path, keep):
    path = write_sample(tmp_path)
    truncated(path, keep=keep)
    with pytest.raises(InputError, match="truncated") as info:
        s3.read_day(path)
    assert str(path) in str(info.value)


def test_garbage_and_missing_files_are_input_errors(tmp_path):
    path = tmp_path / s3.filename(DAY)
    path.write_bytes(b"II*\x00 definitely not a tiff")
    with pytest.raises(InputError, match="corrupt or truncated") as info:
        s3.read_day(path)
    assert str(path) in str(info.value)
    with pytest.raises(InputError, match="does not exist"):
        s3.read_day(tmp_path / s3.filename(dt.date(2023, 7, 9)))


def test_missing_band_names_the_bands_it_has(tmp_path):
    path = write_sample(tmp_path)
    with pytest.raises(InputError, match=r"has no band B11, B12") as info:
        s3.read_day(path, bands=["B04", "B11", "B12"])
    message = str(info.value)
    assert str(path) in message and "['B04', 'B08']" in message


def test_file_without_clear_band(tmp_path):
    path = tmp_path / s3.filename(DAY)
    data = np.full((1, 3, 4), 1000, dtype=np.uint16)
    write_cog(path, data, TRANSFORM, CRS_TEXT, 0, {"DATE": "2023-07-01"}, band_names=["B04"])
    with pytest.raises(InputError, match="has no CLEAR band") as info:
        s3.read_day(path)
    assert str(path) in str(info.value) and "B04" in str(info.value)


def test_date_tag_disagreeing_with_the_name(tmp_path):
    written = write_sample(tmp_path)
    renamed = written.rename(tmp_path / s3.filename(dt.date(2023, 7, 2)))
    with pytest.raises(InputError, match=r"DATE=2023-07-01 disagrees with the name") as info:
        s3.read_day(renamed)
    assert str(renamed) in str(info.value)


def test_bad_tags(tmp_path):
    path = tmp_path / s3.filename(DAY)
    data = np.ones((2, 3, 4), dtype=np.uint16)
    names = ["B04", "CLEAR"]
    write_cog(path, data, TRANSFORM, CRS_TEXT, 0, {"SCALE": "-1"}, band_names=names)
    with pytest.raises(InputError, match="SCALE must be positive"):
        s3.read_day(path)
    write_cog(path, data, TRANSFORM, CRS_TEXT, 0, {"DATE": "July"}, band_names=names)
    with pytest.raises(InputError, match="not a date"):
        s3.read_day(path)
    no_name = tmp_path / "any.tif"
    write_cog(no_name, data, TRANSFORM, CRS_TEXT, 0, {}, band_names=names)
    with pytest.raises(InputError, match="which day"):
        s3.read_day(no_name)
