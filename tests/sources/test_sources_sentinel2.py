"""Sentinel-2 L2A band GeoTIFFs: names, the baseline offset, SCL masking and bad-input errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
import rasterio
from affine import Affine
from fakes.damaged import truncated

from lstfill.errors import InputError
from lstfill.io import write_cog
from lstfill.sources import sentinel2 as s2

NEW = "S2B_MSIL2A_20230701T101559_N0509_R065_T32TPT_20230701T130012"
OLD = "S2A_MSIL2A_20210815T101031_N0301_R022_T32TPT_20210815T132725"
CRS = "EPSG:32632"
T10 = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5200000.0)
T20 = Affine(20.0, 0.0, 600000.0, 0.0, -20.0, 5200000.0)
DN = np.array([[0, 1000, 3000, 11000]] * 4, dtype=np.uint16)  # 4 x 4 at 10 m


def write(root, name=NEW, scl=None):
    bands = {b: DN + i for i, b in enumerate(s2.BANDS_10M)}
    bands["B11"] = DN[:2, :2]
    bands["B12"] = DN[:2, 2:]
    scl = np.full((2, 2), 4, np.uint8) if scl is None else scl
    return s2.write_scene(root, name, bands, scl, T10, T20, CRS)


def test_scene_name_and_parse():
    t = datetime(2023, 7, 1, 12, 15, 59, tzinfo=timezone(timedelta(hours=2)))
    proc = datetime(2023, 7, 1, 13, 0, 12)
    assert s2.scene_name("S2B", t, "05.09", 65, "32TPT", proc) == NEW
    assert s2.scene_name("S2B", t, "N0509", 65, "T32TPT", proc) == NEW
    sid = s2.parse_scene_name(NEW)
    assert (sid.spacecraft, sid.baseline, sid.rel_orbit, sid.tile, sid.name) == (
        "S2B",
        "05.09",
        65,
        "32TPT",
        NEW,
    )
    assert sid.time == datetime(2023, 7, 1, 10, 15, 59, tzinfo=UTC)
    assert sid.proc_time == datetime(2023, 7, 1, 13, 0, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "name",
    [
        "",
        NEW.replace("MSIL2A", "MSIL1C"),
        NEW.replace("S2B", "S3B"),
        NEW.replace("N0509", "N509"),
        NEW.replace("R065", "R65"),
        NEW.replace("T32TPT", "32TPT"),
        NEW + "_extra",
    ],
)
def test_parse_scene_name_rejects_bad_names(name):
    with pytest.raises(ValueError):
        s2.parse_scene_name(name)


def test_band_filename():
    t = datetime(2023, 7, 1, 10, 15, 59, tzinfo=UTC)
    assert s2.band_filename("32TPT", t, "B02", 10) == "T32TPT_20230701T101559_B02_10m.tif"
    assert s2.band_filename("T32TPT", t, "SCL", 20) == "T32TPT_20230701T101559_SCL_20m.tif"


@pytest.mark.parametrize(
    "baseline, offset", [("02.14", 0), ("03.01", 0), ("04.00", -1000), ("05.09", -1000)]
)
def test_default_offset(baseline, offset):
    assert s2.default_offset(baseline) == offset


def test_written_files_format(tmp_path):
    folder = write(tmp_path)
    assert folder == tmp_path / NEW
    names = sorted(p.name for p in folder.iterdir())
    stem = "T32TPT_20230701T101559"
    assert names == sorted(
        [f"{stem}_{b}_10m.tif" for b in s2.BANDS_10M]
        + [f"{stem}_{b}_20m.tif" for b in ("B11", "B12", "SCL")]
    )
    with rasterio.open(folder / f"{stem}_B02_10m.tif") as src:
        assert src.dtypes[0] == "uint16" and src.nodata == 0
        assert src.profile["tiled"] and src.compression.name == "deflate"
        assert src.transform == T10 and src.crs.to_epsg() == 32632
        tags = src.tags()
        assert tags["BOA_ADD_OFFSET"] == "-1000"
        assert tags["BOA_QUANTIFICATION_VALUE"] == "10000"
        assert tags["PROCESSING_BASELINE"] == "05.09"
    with rasterio.open(folder / f"{stem}_SCL_20m.tif") as src:
        assert src.dtypes[0] == "uint8" and src.transform == T20
    assert not list(tmp_path.glob(".*"))


def test_new_baseline_reflectance(tmp_path):
    scene = s2.read_scene(write(tmp_path), expected_crs=CRS)
    b02 = scene.reflectance["B02"].data
    assert b02.dtype == np.float32
    assert np.isnan(b02[:, 0]).all()
    np.testing.assert_allclose(b02[0, 1:], [0.0, 0.2, 1.0], atol=1e-6)
    np.testing.assert_allclose(scene.reflectance["B03"].data[0, 1:], [0.0001, 0.2001, 1.0001])
    np.testing.assert_allclose(scene.reflectance["B12"].data[0], [0.2, 1.0], atol=1e-6)
    assert scene.reflectance["B11"].transform == T20
    assert scene.reflectance["B04"].transform == T10
    assert scene.time == datetime(2023, 7, 1, 10, 15, 59, tzinfo=UTC)
    assert scene.scene.baseline == "05.09"


def test_old_baseline_has_no_offset(tmp_path):
    folder = write(tmp_path, OLD)
    with rasterio.open(next(folder.glob("*_B02_10m.tif"))) as src:
        assert src.tags()["BOA_ADD_OFFSET"] == "0"
    b02 = s2.read_scene(folder).reflectance["B02"].data
    assert np.isnan(b02[:, 0]).all()
    np.testing.assert_allclose(b02[0, 1:], [0.1, 0.3, 1.1], atol=1e-6)


@pytest.mark.parametrize("name, expected", [(NEW, [0.0, 0.2, 1.0]), (OLD, [0.1, 0.3, 1.1])])
def test_offset_falls_back_to_scene_baseline(tmp_path, name, expected):
    folder = write(tmp_path, name)
    path = next(folder.glob("*_B08_10m.tif"))
    write_cog(path, DN, T10, CRS, nodata=0)  # no tags at all
    b08 = s2.read_scene(folder).reflectance["B08"].data
    assert np.isnan(b08[:, 0]).all()
    np.testing.assert_allclose(b08[0, 1:], expected, atol=1e-6)


def test_offset_tag_wins_over_scene_name(tmp_path):
    folder = write(tmp_path, NEW)
    path = next(folder.glob("*_B08_10m.tif"))
    write_cog(path, DN, T10, CRS, nodata=0, tags={"BOA_ADD_OFFSET": 0})
    b08 = s2.read_scene(folder).reflectance["B08"].data
    np.testing.assert_allclose(b08[0, 1:], [0.1, 0.3, 1.1], atol=1e-6)


def test_scl_masking_per_class(tmp_path):
    scl = np.arange(12, dtype=np.uint8).reshape(2, 6)
    bands = {"B02": np.full((4, 12), 1500, np.uint16)}
    folder = s2.write_scene(tmp_path, NEW, bands, scl, T10, T20, CRS)
    scene = s2.read_scene(folder, bands=("B02",))
    clear_classes = scl[scene.clear.data].tolist()
    assert clear_classes == [2, 4, 5, 6, 7]
    assert scene.clear.data.dtype == bool and scene.clear.transform == T20
    np.testing.assert_array_equal(scene.scl.data, scl)
    custom = s2.read_scene(folder, bands=("B02",), scl_invalid=(0, 8, 9))
    assert sorted(scl[~custom.clear.data].tolist()) == [0, 8, 9]
    assert list(scene.reflectance) == ["B02"]


def test_find_scenes(tmp_path):
    write(tmp_path, NEW)
    write(tmp_path, OLD)
    (tmp_path / "not_a_scene").mkdir()
    (tmp_path / (NEW.replace("R065", "R066"))).write_text("a file, not a folder")
    assert s2.find_scenes(tmp_path) == [OLD, NEW]
    with pytest.raises(InputError):
        s2.find_scenes(tmp_path / "absent")


def test_truncated_band_raises_input_error(tmp_path):
    rng = np.random.default_rng(1)
    bands = {b: rng.integers(1, 10000, (128, 128), dtype=np.uint16) for b in s2.BANDS_10M}
    folder = s2.write_scene(tmp_path, NEW, bands, np.full((64, 64), 4, np.uint8), T10, T20, CRS)
    path = next(folder.glob("*_B04_10m.tif"))
    truncated(path)
    with pytest.raises(InputError, match=path.name):
        s2.read_scene(folder, bands=s2.BANDS_10M)


def test_wrong_crs_raises_input_error(tmp_path):
    folder = write(tmp_path)
    with pytest.raises(InputError, match="SCL_20m.tif.*EPSG:32632"):
        s2.read_scene(folder, expected_crs="EPSG:3035")


def test_missing_band_raises_input_error(tmp_path):
    folder = write(tmp_path)
    path = next(folder.glob("*_B11_20m.tif"))
    path.unlink()
    with pytest.raises(InputError, match=f"{path.name}.*does not exist"):
        s2.read_scene(folder)


def test_mismatched_grids_raise_input_error(tmp_path):
    folder = write(tmp_path)
    path = next(folder.glob("*_B04_10m.tif"))
    write_cog(path, DN, Affine(10.0, 0.0, 600010.0, 0.0, -10.0, 5200000.0), CRS, nodata=0)
    with pytest.raises(InputError, match=f"{path.name}.*differs"):
        s2.read_scene(folder)
    path = next(folder.glob("*_B12_20m.tif"))
    write(tmp_path)
    write_cog(path, DN[:2, :3], T20, CRS, nodata=0)
    with pytest.raises(InputError, match=f"{path.name}.*differs"):
        s2.read_scene(folder)


def test_10m_and_20m_extents_must_match(tmp_path):
    bands = {"B02": DN, "B11": DN[:2, :2]}
    shifted = Affine(20.0, 0.0, 601000.0, 0.0, -20.0, 5200000.0)
    folder = s2.write_scene(tmp_path, NEW, bands, np.full((2, 2), 4, np.uint8), T10, shifted, CRS)
    with pytest.raises(InputError, match="extent"):
        s2.read_scene(folder, bands=("B02", "B11"))


def test_bad_folder_name_raises_input_error(tmp_path):
    folder = write(tmp_path).rename(tmp_path / "renamed")
    with pytest.raises(InputError, match="renamed"):
        s2.read_scene(folder)


def test_write_scene_rejects_bad_input(tmp_path):
    scl = np.zeros((2, 2), np.uint8)
    with pytest.raises(ValueError):
        s2.write_scene(tmp_path, "S2B_bad", {"B02": DN}, scl, T10, T20, CRS)
    with pytest.raises(ValueError):
        s2.write_scene(tmp_path, NEW, {"B02": DN.astype(np.float32)}, scl, T10, T20, CRS)
    with pytest.raises(ValueError):
        s2.write_scene(tmp_path, NEW, {"B02": DN, "B03": DN[:2]}, scl, T10, T20, CRS)
    with pytest.raises(ValueError):
        s2.write_scene(tmp_path, NEW, {"B05": DN}, scl, T10, T20, CRS)
    assert list(tmp_path.iterdir()) == []
