"""ECOSTRESS L2T LSTE: names, QC bit decoding, the valid mask and bad-input errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from fakes.damaged import truncated

from lstfill.errors import InputError
from lstfill.sources import ecostress as eco

GID = "ECOv002_L2T_LSTE_28527_009_32TPT_20230718T081442_0713_01"
CRS = "EPSG:32632"
TRANSFORM = Affine(70.0, 0.0, 600000.0, 0.0, -70.0, 5200000.0)

# 3 x 4 hand-made scene; each pixel exercises one rule of the valid mask.
QC = np.array(
    [
        [0b00, 0b01, 0, 0],  # best, nominal, (cloud=1), (cloud=255)
        [0, 0b10, 0b11, 0b1100],  # (water=1), mandatory 2, mandatory 3, data quality 3
        [0, 0, 65535, 0b1111_0000_0000_0101],  # (NaN LST), (water=255), QC nodata, other bits
    ],
    dtype=np.uint16,
)
CLOUD = np.array([[0, 0, 1, 255], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=np.uint8)
WATER = np.array([[0, 0, 0, 0], [1, 0, 0, 0], [0, 255, 0, 0]], dtype=np.uint8)
LST = np.full((3, 4), 300.0, dtype=np.float32) + np.arange(12, dtype=np.float32).reshape(3, 4)
LST[2, 0] = np.nan
EXPECTED_VALID = np.array(
    [[True, True, False, False], [False, False, False, False], [False, False, False, True]]
)


def layers(shape=(3, 4)) -> dict[str, np.ndarray]:
    if shape == (3, 4):
        return {
            "LST": LST,
            "LST_err": np.full(shape, 0.5, np.float32),
            "QC": QC,
            "cloud": CLOUD,
            "water": WATER,
            "height": np.full(shape, 512.0, np.float32),
            "view_zenith": np.full(shape, 12.5, np.float32),
        }
    rng = np.random.default_rng(0)
    return {
        "LST": rng.uniform(280, 320, shape).astype(np.float32),
        "LST_err": np.full(shape, 0.5, np.float32),
        "QC": np.zeros(shape, np.uint16),
        "cloud": np.zeros(shape, np.uint8),
        "water": np.zeros(shape, np.uint8),
        "height": rng.uniform(0, 3000, shape).astype(np.float32),
        "view_zenith": np.full(shape, 12.5, np.float32),
    }


def test_granule_id_format_and_utc():
    t = datetime(2023, 7, 18, 10, 14, 42, tzinfo=timezone(timedelta(hours=2)))
    assert eco.granule_id(28527, 9, "32TPT", t) == GID
    assert eco.granule_id(28527, 9, "T32TPT", datetime(2023, 7, 18, 8, 14, 42)) == GID


def test_parse_granule_id_and_layer_file():
    g = eco.parse_granule_id(GID)
    assert (g.orbit, g.scene, g.tile, g.build, g.iteration, g.id) == (
        28527,
        9,
        "32TPT",
        "0713",
        "01",
        GID,
    )
    assert g.time == datetime(2023, 7, 18, 8, 14, 42, tzinfo=UTC)
    assert eco.parse_granule_id(f"{GID}_LST_err.tif") == g
    assert eco.parse_granule_id(f"some/dir/{GID}_view_zenith.tif").id == GID


@pytest.mark.parametrize(
    "name",
    [
        "",
        GID.replace("ECOv002", "ECOv001"),
        GID.replace("L2T_LSTE", "L2_LSTE"),
        GID[:-3],
        f"{GID}_LST",
        f"{GID}_EmisWB.tif",
        GID.replace("32TPT", "32tpt"),
        GID.replace("20230718T081442", "20230718081442"),
    ],
)
def test_parse_granule_id_rejects_bad_names(name):
    with pytest.raises(ValueError):
        eco.parse_granule_id(name)


def test_decode_qc_known_bits():
    f = eco.decode_qc(np.array([0b1100_0000_0000_0110, 0, 0xFFFF, 0b0110_1100_1001_1000]))
    assert f["mandatory"].tolist() == [2, 0, 3, 0]
    assert f["data_quality"].tolist() == [1, 0, 3, 2]
    assert f["cloud_ocean"].tolist() == [0, 0, 3, 1]
    assert f["iterations"].tolist() == [0, 0, 3, 2]
    assert f["atm_opacity"].tolist() == [0, 0, 3, 0]
    assert f["mmd"].tolist() == [0, 0, 3, 3]
    assert f["emis_accuracy"].tolist() == [0, 0, 3, 2]
    assert f["lst_accuracy"].tolist() == [3, 0, 3, 1]
    assert all(v.dtype == np.uint8 for v in f.values())


def test_write_granule_files_dtypes_and_nodata(tmp_path):
    paths = eco.write_granule(tmp_path, GID, layers(), TRANSFORM, CRS)
    assert [p.name for p in paths] == [f"{GID}_{name}.tif" for name in eco.LAYERS]
    expected = {
        "LST": ("float32", None),
        "QC": ("uint16", 65535),
        "cloud": ("uint8", 255),
        "water": ("uint8", 255),
        "height": ("float32", None),
    }
    for name, (dtype, nodata) in expected.items():
        with rasterio.open(tmp_path / f"{GID}_{name}.tif") as src:
            assert src.dtypes[0] == dtype
            assert src.profile["tiled"]
            assert src.compression.name == "deflate"
            assert src.crs.to_epsg() == 32632
            assert src.transform == TRANSFORM
            if nodata is None:
                assert np.isnan(src.nodata)
            else:
                assert src.nodata == nodata
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def test_read_granule_valid_mask(tmp_path):
    eco.write_granule(tmp_path, GID, layers(), TRANSFORM, CRS)
    s = eco.read_granule(tmp_path, GID, expected_crs=CRS)
    np.testing.assert_array_equal(s.valid, EXPECTED_VALID)
    np.testing.assert_array_equal(np.isfinite(s.lst.data), EXPECTED_VALID)
    assert s.lst.data[0, 0] == pytest.approx(300.0)
    assert s.lst.data[2, 3] == pytest.approx(311.0)
    assert s.lst.data.dtype == np.float32
    np.testing.assert_array_equal(s.cloud, CLOUD == 1)
    np.testing.assert_array_equal(s.water, WATER == 1)
    np.testing.assert_array_equal(s.qc, QC)
    assert s.time == datetime(2023, 7, 18, 8, 14, 42, tzinfo=UTC)
    assert s.gid.id == GID
    assert s.lst.transform == TRANSFORM and s.lst.crs == CRS
    assert np.all(s.height.data == 512.0) and np.all(s.view_zenith.data == 12.5)
    assert np.all(s.lst_err.data == 0.5)


def test_read_granule_mandatory_threshold(tmp_path):
    eco.write_granule(tmp_path, GID, layers(), TRANSFORM, CRS)
    strict = eco.read_granule(tmp_path, GID, max_mandatory_qa=0).valid
    assert not strict[0, 1] and strict[0, 0]
    loose = eco.read_granule(tmp_path, GID, max_mandatory_qa=2).valid
    assert loose[1, 1] and not loose[1, 2]  # mandatory 2 admitted, 3 never (QC 3)


def test_find_granules(tmp_path):
    other = GID.replace("28527", "28600")
    eco.write_granule(tmp_path, other, layers(), TRANSFORM, CRS)
    eco.write_granule(tmp_path, GID, {"LST": LST}, TRANSFORM, CRS)
    lonely = GID.replace("28527", "28700")
    eco.write_granule(tmp_path, lonely, {"QC": QC}, TRANSFORM, CRS)  # no LST: ignored
    (tmp_path / "notes_LST.tif").write_text("x")
    assert eco.find_granules(tmp_path) == [GID, other]
    with pytest.raises(InputError):
        eco.find_granules(tmp_path / "absent")


def test_truncated_layer_raises_input_error(tmp_path):
    eco.write_granule(tmp_path, GID, layers((64, 64)), TRANSFORM, CRS)
    path = tmp_path / f"{GID}_LST.tif"
    truncated(path)
    with pytest.raises(InputError, match=path.name):
        eco.read_granule(tmp_path, GID)


def test_wrong_crs_raises_input_error(tmp_path):
    eco.write_granule(tmp_path, GID, layers(), TRANSFORM, CRS)
    with pytest.raises(InputError, match=f"{GID}_LST.tif"):
        eco.read_granule(tmp_path, GID, expected_crs="EPSG:32633")


def test_layer_on_other_crs_than_lst(tmp_path):
    eco.write_granule(tmp_path, GID, layers(), TRANSFORM, CRS)
    eco.write_granule(tmp_path, GID, {"water": WATER}, TRANSFORM, "EPSG:32633")
    with pytest.raises(InputError, match=f"{GID}_water.tif"):
        eco.read_granule(tmp_path, GID)


def test_missing_layer_raises_input_error(tmp_path):
    eco.write_granule(tmp_path, GID, layers(), TRANSFORM, CRS)
    (tmp_path / f"{GID}_cloud.tif").unlink()
    with pytest.raises(InputError, match=f"{GID}_cloud.tif.*does not exist"):
        eco.read_granule(tmp_path, GID)


@pytest.mark.parametrize(
    "transform, shape",
    [(Affine(70.0, 0.0, 600070.0, 0.0, -70.0, 5200000.0), (3, 4)), (TRANSFORM, (4, 4))],
)
def test_mismatched_grids_raise_input_error(tmp_path, transform, shape):
    eco.write_granule(tmp_path, GID, layers(), TRANSFORM, CRS)
    eco.write_granule(tmp_path, GID, {"height": np.zeros(shape, np.float32)}, transform, CRS)
    with pytest.raises(InputError, match=f"{GID}_height.tif.*differs"):
        eco.read_granule(tmp_path, GID)


def test_write_granule_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError):
        eco.write_granule(tmp_path, "not_a_granule", layers(), TRANSFORM, CRS)
    with pytest.raises(ValueError):
        eco.write_granule(tmp_path, GID, {"EmisWB": LST}, TRANSFORM, CRS)
    with pytest.raises(ValueError):
        eco.write_granule(tmp_path, GID, {"LST": LST, "QC": QC[:2]}, TRANSFORM, CRS)
    assert list(Path(tmp_path).iterdir()) == []
