"""The synthetic demo region: deterministic, readable by every format module, physically sane."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from lstfill.demo.physics import solar_time_h
from lstfill.demo.region import generate_demo
from lstfill.grid import Grid
from lstfill.io import read_raster
from lstfill.sources import ecostress, inca, landcover, modis, sentinel2, srtm

# 24 x 24 pixels of 200 m across the Inn valley: valley floor and the lower slopes on both sides
GRID = Grid.from_bbox("EPSG:32632", [678200, 5234200, 683000, 5239000], 200.0)
START, END = date(2023, 6, 1), date(2023, 6, 10)
# 1 clear overpass, the other 4 stratified over 0.03-0.9: the cloudiest one is >= 0.68
SETTINGS = {
    "seed": 7,
    "n_overpasses": 5,
    "night_fraction": 0.2,
    "clear_fraction": 0.2,
    "max_cloud_fraction": 0.9,
    "s2_revisit_days": 5,
    "modis_size_km": 8,
    "modis_every_days": 5,
}


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo_a")
    generate_demo(root, GRID, START, END, SETTINGS)
    return root


def _granules(root: Path) -> list[ecostress.EcostressScene]:
    folder = root / "raw" / "ecostress"
    return [ecostress.read_granule(folder, gid) for gid in ecostress.find_granules(folder)]


def _truth(root: Path, scene: ecostress.EcostressScene) -> np.ndarray:
    return read_raster(root / "truth" / "ecostress" / f"{scene.gid.id}_LST_truth.tif")[0]


def test_same_seed_gives_identical_arrays(region: Path, tmp_path: Path) -> None:
    generate_demo(tmp_path, GRID, START, END, SETTINGS)
    gids = ecostress.find_granules(region / "raw" / "ecostress")
    assert gids == ecostress.find_granules(tmp_path / "raw" / "ecostress")
    for gid in gids:
        for root_layer in ("LST", "QC", "cloud"):
            a = read_raster(ecostress.layer_path(region / "raw" / "ecostress", gid, root_layer))[0]
            b = read_raster(ecostress.layer_path(tmp_path / "raw" / "ecostress", gid, root_layer))[
                0
            ]
            np.testing.assert_array_equal(a, b)
    scenes = sentinel2.find_scenes(region / "raw" / "sentinel2")
    assert scenes == sentinel2.find_scenes(tmp_path / "raw" / "sentinel2")
    for name in scenes:
        a = sentinel2.read_scene(region / "raw" / "sentinel2" / name)
        b = sentinel2.read_scene(tmp_path / "raw" / "sentinel2" / name)
        for band in a.reflectance:
            np.testing.assert_array_equal(a.reflectance[band].data, b.reflectance[band].data)
        np.testing.assert_array_equal(a.scl.data, b.scl.data)


def test_every_raw_file_opens_with_its_reader(region: Path) -> None:
    raw = region / "raw"
    scenes = _granules(region)
    assert len(scenes) == SETTINGS["n_overpasses"]
    assert len(list((raw / "ecostress").glob("*.tif"))) == 7 * len(scenes)
    for s in scenes:
        assert s.lst.data.shape == GRID.shape
        assert s.lst.transform.almost_equals(GRID.transform)
        assert 400 < np.nanmin(s.height.data) and np.nanmax(s.height.data) < 3500
        err = s.lst_err.data[s.valid]
        assert err.min() >= 0.5 and err.max() <= 2.0

    s2_names = sentinel2.find_scenes(raw / "sentinel2")
    assert len(s2_names) == 2  # June 1 and June 6
    s2s = [sentinel2.read_scene(raw / "sentinel2" / name) for name in s2_names]
    s2 = max(s2s, key=lambda s: s.clear.data.mean())  # one scene is always clear
    assert s2.reflectance["B04"].data.shape == (480, 480)
    assert s2.scl.data.shape == (240, 240)
    veg = s2.scl.data == 4
    red = s2.reflectance["B04"].data[::2, ::2][veg]
    nir = s2.reflectance["B08"].data[::2, ::2][veg]
    assert 0.01 < np.median(red) < 0.07 and 0.25 < np.median(nir) < 0.5
    water = s2.scl.data == 6
    assert water.any() and np.median(s2.reflectance["B08"].data[::2, ::2][water]) < 0.05

    inca_files = inca.find_inca(raw / "inca")
    assert len(inca_files) == len({s.time.date() for s in scenes})
    met = inca.read_inca(inca_files[0])
    # each file covers its overpass day and the 24 h before (for the cumulative fields)
    assert met.fields["T2M"].shape[0] == 48
    first_day = min(s.time.date() for s in scenes)
    assert str(met.times[0])[:13] == f"{first_day - timedelta(days=1)}T00"
    assert 265 < np.nanmin(met.fields["T2M"]) and np.nanmax(met.fields["T2M"]) < 310
    assert np.nanmax(met.fields["GL"]) > 500 and np.nanmin(met.fields["GL"]) == 0

    (hgt,) = srtm.find_dem(raw / "srtm")
    assert hgt.name == "N47E011.SRTMGL1.hgt.zip"
    dem = srtm.read_srtm(hgt)
    assert dem.data.shape == (3601, 3601) and not np.isnan(dem.data).any()

    layers = landcover.find_layers(raw / "landcover")
    assert set(layers) == {"tree_cover", "imperviousness", "water"}
    for layer, path in layers.items():
        r = landcover.read_layer(path, layer)
        assert "3035" in str(r.crs) and np.nanmax(r.data) <= 100
    assert np.nanmax(landcover.read_layer(layers["water"], "water").data) == 1.0

    lst_files = modis.find_modis(raw / "modis", "MOD11A1")
    refl_files = modis.find_modis(raw / "modis", "MOD09GQ")
    assert len(lst_files) == len(refl_files) == 2
    m = modis.read_mod11a1(lst_files[0])
    assert m.lst.data.shape == (8, 8)
    assert np.all((m.lst.data[m.valid] > 270) & (m.lst.data[m.valid] < 330))
    assert np.nanmean(m.view_time_h) == pytest.approx(10.5, abs=1.5)
    r = modis.read_mod09gq(refl_files[0])
    assert r.red.data.shape == (32, 32) and np.nanmedian(r.nir.data) > np.nanmedian(r.red.data)


def test_valid_mask_matches_cloud_layer(region: Path) -> None:
    for s in _granules(region):
        assert not (s.valid & s.cloud).any()
        clear_land = ~s.cloud & ~s.water
        assert s.valid[clear_land].mean() > 0.95  # only a few nominal/bad QC pixels drop out


def test_clouds_span_clear_to_overcast_and_are_coherent(region: Path) -> None:
    scenes = _granules(region)
    fracs = [float(s.cloud.mean()) for s in scenes]
    assert min(fracs) == 0.0 and max(fracs) >= 0.6
    for s in scenes:
        c = s.cloud.astype(float)
        if 0.1 < c.mean() < 0.9:
            a, b = c[:, :-1].ravel(), c[:, 1:].ravel()
            assert np.corrcoef(a, b)[0, 1] > 0.5


def test_truth_is_plausible_and_cooler_higher_up_by_day(region: Path) -> None:
    day_r = []
    for s in _granules(region):
        t = _truth(region, s)
        assert np.isfinite(t).all() and 260 < t.min() and t.max() < 335
        hour = float(solar_time_h(s.time.replace(tzinfo=None), 11.4)) % 24
        land = ~s.water
        if 9 <= hour <= 17:
            day_r.append(np.corrcoef(t[land], s.height.data[land])[0, 1])
        # observations sample the truth with errors of the size of LST_err
        diff = s.lst.data[s.valid] - t[s.valid]
        assert abs(diff.mean()) < 0.3 and diff.std() < 1.5
    assert day_r and max(day_r) < 0
    modis_truth = sorted((region / "truth" / "modis").glob("*_LST_250m_truth.tif"))
    assert [p.name[:8] for p in modis_truth] == ["20230601", "20230606"]
    t250 = read_raster(modis_truth[0])[0]
    m = modis.read_mod11a1(modis.find_modis(region / "raw" / "modis", "MOD11A1")[0])
    agg = t250.reshape(8, 4, 8, 4).mean(axis=(1, 3))
    assert np.abs(m.lst.data[m.valid] - agg[m.valid]).mean() < 1.0


def test_truth_only_under_truth(region: Path) -> None:
    raw_files = [p for p in (region / "raw").rglob("*") if p.is_file()]
    assert raw_files and not any("truth" in str(p.relative_to(region)) for p in raw_files)
    assert len(list((region / "truth" / "ecostress").glob("*_LST_truth.tif"))) == 5
