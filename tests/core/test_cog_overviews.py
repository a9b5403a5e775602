"""Per-band overview resampling of write_cog: flag bands keep their own values in the overviews,
continuous bands are block means, and the file stays a COG with its tags."""

import math

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from affine import Affine

from lstfill.io import FLAG_OVERVIEWS, SMOOTH_OVERVIEWS, write_cog

UTM = "EPSG:32632"
TRANSFORM = Affine(70.0, 0.0, 600000.0, 0.0, -70.0, 5200000.0)
NAMES = ["lst", "filled", "uncertainty_90"]
TAGS = {"acquisition": "2023-07-01", "filled_pixels": 1234, "note": "a <b> & 'c'"}
BAND_TAGS = [
    {"units": "K", "long_name": "gap-filled land surface temperature"},
    {"units": "1", "long_name": "1 where the model filled the pixel, 0 where observed"},
    {"units": "K", "long_name": "half-width of the 90 % prediction interval"},
]
PER_BAND = [SMOOTH_OVERVIEWS, FLAG_OVERVIEWS, SMOOTH_OVERVIEWS]


def _product(height: int = 1024, width: int = 768) -> np.ndarray:
    """(lst, filled, uncertainty): two smooth fields around a random 0/1 flag, NaN (nodata) on a
    block-aligned corner and on scattered pixels of the smooth bands."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    lst = 300 + 8 * np.sin(x / 23) + 5 * np.cos(y / 31) + rng.normal(0, 0.5, (height, width))
    half = 1 + 0.5 * np.sin((x + y) / 17) ** 2 + rng.uniform(0, 0.3, (height, width))
    filled = rng.integers(0, 2, (height, width)).astype(np.float32)
    data = np.stack([lst, filled, half]).astype(np.float32)
    data[:, :64, :96] = np.nan  # sea, every band
    speckle = rng.random((height, width)) < 0.02
    data[0][speckle] = np.nan
    data[2][speckle] = np.nan
    return data


def _write(path, data, **kwargs):
    return write_cog(
        path,
        data,
        TRANSFORM,
        UTM,
        nodata=float("nan"),
        tags=TAGS,
        band_names=NAMES,
        band_tags=BAND_TAGS,
        **kwargs,
    )


def _blocks(band: np.ndarray, f: int) -> np.ndarray:
    """(rows, cols, f*f) pixels of each f x f block."""
    h, w = band.shape
    return band.reshape(h // f, f, w // f, f).transpose(0, 2, 1, 3).reshape(h // f, w // f, f * f)


def _overview(path, level: int) -> np.ndarray:
    with rasterio.open(path, overview_level=level) as ovr:
        return ovr.read()


@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:All-NaN slice")
def test_flag_band_overviews_keep_its_values_and_smooth_bands_are_block_means(tmp_path):
    data = _product()
    out = _write(tmp_path / "product.tif", data, band_resampling=PER_BAND)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["product.tif"]  # no staging left

    with rasterio.open(out) as src:
        assert [src.overviews(b) for b in (1, 2, 3)] == [[2, 4]] * 3
        np.testing.assert_array_equal(src.read(), data)  # full resolution untouched

    level0, level1 = _overview(out, 0), _overview(out, 1)
    assert level0.shape == (3, 512, 384) and level1.shape == (3, 256, 192)
    sea = np.isnan(_blocks(data[1], 2)).all(axis=2)
    for flag in (level0[1], level1[1]):
        assert set(np.unique(flag[~np.isnan(flag)])) == {0.0, 1.0}
    # nearest: each overview pixel is one of its block's pixels, NaN exactly on the sea
    np.testing.assert_array_equal(np.isnan(level0[1]), sea)
    assert (_blocks(data[1], 2) == level0[1][..., None]).any(axis=2)[~sea].all()

    for band in (0, 2):
        block_mean = np.nanmean(_blocks(data[band], 2), axis=2)  # NaN pixels left out
        np.testing.assert_array_equal(np.isnan(level0[band]), np.isnan(block_mean))
        np.testing.assert_allclose(level0[band], block_mean, rtol=0, atol=1e-4, equal_nan=True)
        for dy in (0, 1):  # and not a nearest sample of the block
            for dx in (0, 1):
                picked = data[band, dy::2, dx::2]
                assert np.nanmax(np.abs(level0[band] - picked)) > 0.1
        # the average never leaves the range of the pixels it covers (cubic overshoots)
        blocks = _blocks(data[band], 4)
        valid = ~np.isnan(level1[band])
        assert (level1[band][valid] >= np.nanmin(blocks, axis=2)[valid] - 1e-4).all()
        assert (level1[band][valid] <= np.nanmax(blocks, axis=2)[valid] + 1e-4).all()


def test_per_band_cog_keeps_layout_georeferencing_and_tags(tmp_path):
    data = _product()
    per_band = _write(tmp_path / "per_band.tif", data, band_resampling=PER_BAND)
    one = _write(tmp_path / "one.tif", data)  # one resampling: the COG driver's own overviews
    with rasterio.open(per_band) as src, rasterio.open(one) as ref:
        profile = src.profile
        assert profile["tiled"] and (profile["blockxsize"], profile["blockysize"]) == (256, 256)
        assert profile["compress"] == "deflate" and profile["dtype"] == "float32"
        assert math.isnan(src.nodata)
        structure = src.tags(ns="IMAGE_STRUCTURE")
        assert structure["LAYOUT"] == "COG" and structure["PREDICTOR"] == "3"
        assert structure == ref.tags(ns="IMAGE_STRUCTURE")
        assert src.crs == ref.crs and src.crs.to_epsg() == 32632
        assert src.transform == TRANSFORM == ref.transform
        assert src.tags() == ref.tags()
        assert {k: src.tags()[k] for k in TAGS} == {k: str(v) for k, v in TAGS.items()}
        assert list(src.descriptions) == NAMES
        assert [src.tags(b) for b in (1, 2, 3)] == BAND_TAGS == [ref.tags(b) for b in (1, 2, 3)]
        assert src.overviews(1) == ref.overviews(1)
    # the COG driver's default (cubic) invents fractions in the 0/1 band: the reason for all this
    default_flag = _overview(one, 0)[1]
    assert not np.isin(default_flag[~np.isnan(default_flag)], [0.0, 1.0]).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.tif", "per_band.tif"]


@pytest.mark.parametrize("shape", [(300, 130), (513, 700), (1000, 257), (200, 200)])
def test_overview_levels_are_those_the_cog_driver_would_build(tmp_path, shape):
    data = np.stack([np.ones(shape, np.float32), np.zeros(shape, np.float32)])
    per_band = write_cog(
        tmp_path / "a.tif", data, TRANSFORM, UTM, band_resampling=["average", "nearest"]
    )
    own = write_cog(tmp_path / "b.tif", data, TRANSFORM, UTM)
    with rasterio.open(per_band) as src, rasterio.open(own) as ref:
        assert len(src.overviews(1)) == len(ref.overviews(1)) == len(src.overviews(2))
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.block_shapes == ref.block_shapes


def test_integer_bands_on_geographic_crs(tmp_path):
    """Byte data with an integer nodata on EPSG:4326: type, nodata and CRS hold."""
    rng = np.random.default_rng(3)
    data = rng.integers(0, 8, (2, 600, 600)).astype(np.uint8)
    data[:, :40, :40] = 255
    t = Affine(0.001, 0.0, 11.0, 0.0, -0.001, 47.5)
    out = write_cog(
        tmp_path / "classes.tif", data, t, "EPSG:4326", nodata=255, band_resampling=["mode", None]
    )
    ref = write_cog(tmp_path / "ref.tif", data, t, "EPSG:4326", nodata=255)
    with rasterio.open(out) as src, rasterio.open(ref) as other:
        assert src.dtypes == ("uint8", "uint8") and src.nodata == 255
        assert src.crs == other.crs and src.crs.to_epsg() == 4326
        assert src.transform == t
        assert src.tags(ns="IMAGE_STRUCTURE") == other.tags(ns="IMAGE_STRUCTURE")
        np.testing.assert_array_equal(src.read(), data)
    mode_band = _overview(out, 0)[0]
    assert set(np.unique(mode_band)) <= set(range(8)) | {255}
    # band 2 (None): GDAL's cubic default, as when no band_resampling is given
    np.testing.assert_array_equal(_overview(out, 0)[1], _overview(ref, 0)[1])


@pytest.mark.parametrize("band_resampling", [None, PER_BAND], ids=["one", "per_band"])
def test_a_failed_copy_leaves_neither_output_nor_staging_files(
    tmp_path, monkeypatch, band_resampling
):
    def broken(*args, **kwargs):
        raise RuntimeError("COG driver failed")

    monkeypatch.setattr(rasterio.shutil, "copy", broken)
    with pytest.raises(RuntimeError, match="COG driver failed"):
        _write(tmp_path / "product.tif", _product(512, 512), band_resampling=band_resampling)
    assert list(tmp_path.iterdir()) == []


def test_bad_band_resampling_is_refused_before_anything_is_written(tmp_path):
    data = _product(512, 512)
    with pytest.raises(ValueError, match="2 entries for 3 bands"):
        _write(tmp_path / "a.tif", data, band_resampling=["average", "nearest"])
    with pytest.raises(ValueError, match="unknown overview resampling 'smooth'"):
        _write(tmp_path / "a.tif", data, band_resampling=["smooth", "nearest", "average"])
    assert list(tmp_path.iterdir()) == []
