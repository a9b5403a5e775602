"""Copernicus HRL-like land-cover layers: names, decoding of % and water classes, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from fakes.damaged import truncated

from lstfill.errors import InputError
from lstfill.sources import landcover as lc

CRS = "EPSG:3035"
TRANSFORM = Affine(10.0, 0.0, 4400000.0, 0.0, -10.0, 2700000.0)


def test_layer_filename():
    assert lc.layer_filename("tree_cover") == "TCD_2018_010m_E44N26_03035_v020.tif"
    assert lc.layer_filename("water", 2015, 20, "E45N27") == "WAW_2015_020m_E45N27_03035_v020.tif"
    with pytest.raises(ValueError):
        lc.layer_filename("forest")


@pytest.mark.parametrize("layer", ["tree_cover", "imperviousness"])
def test_percent_layers(tmp_path, layer):
    data = np.array([[0, 55, 100], [255, 254, 7]], dtype=np.uint8)
    path = lc.write_layer(tmp_path / lc.layer_filename(layer), data, TRANSFORM, CRS)
    with rasterio.open(path) as src:
        assert src.dtypes[0] == "uint8" and src.nodata == 255
        assert src.crs.to_epsg() == 3035 and src.transform == TRANSFORM
    r = lc.read_layer(path, layer, expected_crs=CRS)
    assert r.data.dtype == np.float32
    np.testing.assert_array_equal(r.data, [[0, 55, 100], [np.nan, np.nan, 7]])
    assert r.transform == TRANSFORM and r.crs == CRS


def test_water_classes(tmp_path):
    data = np.array([[0, 1, 2], [3, 4, 255]], dtype=np.uint8)
    path = lc.write_layer(tmp_path / lc.layer_filename("water"), data, TRANSFORM, CRS)
    r = lc.read_layer(path, "water")
    np.testing.assert_array_equal(r.data, [[0.0, 1.0, 1.0], [0.0, 0.0, np.nan]])


def test_find_layers(tmp_path):
    data = np.zeros((2, 2), np.uint8)
    for layer in ("tree_cover", "water"):
        lc.write_layer(tmp_path / lc.layer_filename(layer), data, TRANSFORM, CRS)
    (tmp_path / "README.txt").write_text("x")
    assert lc.find_layers(tmp_path) == {
        "tree_cover": tmp_path / "TCD_2018_010m_E44N26_03035_v020.tif",
        "water": tmp_path / "WAW_2018_010m_E44N26_03035_v020.tif",
    }
    lc.write_layer(tmp_path / lc.layer_filename("water", tile="E45N26"), data, TRANSFORM, CRS)
    with pytest.raises(InputError, match="several WAW"):
        lc.find_layers(tmp_path)
    with pytest.raises(InputError):
        lc.find_layers(tmp_path / "absent")


def test_truncated_layer_raises_input_error(tmp_path):
    rng = np.random.default_rng(2)
    data = rng.integers(0, 101, (256, 256), dtype=np.uint8)
    path = lc.write_layer(tmp_path / lc.layer_filename("tree_cover"), data, TRANSFORM, CRS)
    truncated(path)
    with pytest.raises(InputError, match=path.name):
        lc.read_layer(path, "tree_cover")


def test_wrong_crs_raises_input_error(tmp_path):
    path = lc.write_layer(tmp_path / "TCD.tif", np.zeros((2, 2), np.uint8), TRANSFORM, "EPSG:32632")
    with pytest.raises(InputError, match="TCD.tif.*EPSG:3035"):
        lc.read_layer(path, "tree_cover", expected_crs=CRS)


def test_missing_file_raises_input_error(tmp_path):
    with pytest.raises(InputError, match="IMD_missing.tif.*does not exist"):
        lc.read_layer(tmp_path / "IMD_missing.tif", "imperviousness")


def test_bad_values_rejected(tmp_path):
    with pytest.raises(ValueError):
        lc.write_layer(tmp_path / "x.tif", np.array([[0.5]]), TRANSFORM, CRS)
    with pytest.raises(ValueError):
        lc.write_layer(tmp_path / "x.tif", np.array([[300]]), TRANSFORM, CRS)
    assert list(tmp_path.iterdir()) == []
    path = lc.write_layer(tmp_path / "x.tif", np.zeros((2, 2), np.uint8), TRANSFORM, CRS)
    with pytest.raises(ValueError):
        lc.read_layer(path, "forest")
