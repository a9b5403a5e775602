"""Datacube assembly on hand-made provider files whose right answers are known.

A 12 x 10 region at 70 m (UTM 32N) with: one ECOSTRESS granule (LST = 290 K + column, cloud in
the left three columns), two Sentinel-2 scenes (the nearer one cloudy on its right half), INCA
with a linear T2M field in EPSG:31287, a planar DEM and EPSG:3035 land cover.
"""

import datetime as dt
import logging

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine
from pyproj import Transformer

from lstfill.acquire import build_inventory
from lstfill.cube import build_cube, build_s2_grid, build_static
from lstfill.errors import InputError
from lstfill.grid import Grid
from lstfill.inventory import inca_files_for, s2_scenes_near
from lstfill.io import write_cog
from lstfill.sources import ecostress, inca, landcover, sentinel2

GRID = Grid.from_bbox("EPSG:32632", [680000, 5236000, 680840, 5236700], 70)  # 10 rows, 12 cols
TIME = dt.datetime(2023, 7, 10, 10, 30, tzinfo=dt.UTC)
ACQ = "20230710T103000"
PREPARE = {
    "ecostress": {"max_mandatory_qa": 1},
    "sentinel2": {
        "bands": ["B02", "B03", "B04", "B08", "B11", "B12"],
        "window_days": 20,
        "min_clear_subpixels": 0.5,
        "scl_invalid": [0, 1, 3, 8, 9, 10, 11],
    },
    "inca": {
        "parameters": ["T2M", "GL", "RH2M", "UU", "VV"],
        "cumulative": ["GL", "T2M"],
        "cumulative_hours": 6,
    },
}
SLOPE_X = 0.1  # DEM rises 0.1 m per metre eastwards


def t2m_celsius(x, y, hour):
    """The linear test field (x, y in EPSG:31287 metres), about 15 °C over the region (x near
    252 km) and so in the physical range the reader checks."""
    return 15.0 + 0.001 * (x - 252000) + 0.5 * hour


def _ecostress(raw, cloud_all=False, crs="EPSG:32632", time=TIME):
    rows, cols = GRID.shape
    lst = np.tile(290.0 + np.arange(cols, dtype=np.float32), (rows, 1))
    cloud = np.zeros(GRID.shape, np.uint8)
    cloud[:, :3] = 1
    if cloud_all:
        cloud[:] = 1
    qc = np.where(cloud == 1, 0b10, 0b00).astype(np.uint16)
    gid = ecostress.granule_id(28000, 1, "32TPT", time)
    ecostress.write_granule(
        raw / "ecostress",
        gid,
        {
            "LST": lst,
            "LST_err": np.full(GRID.shape, 1.0, np.float32),
            "QC": qc,
            "cloud": cloud,
            "water": np.zeros(GRID.shape, np.uint8),
            "height": np.zeros(GRID.shape, np.float32),
            "view_zenith": np.full(GRID.shape, 12.0, np.float32),
        },
        GRID.transform,
        crs,
    )


def _s2_scene(raw, when, b04, b08, cloudy_right=False):
    xmin, _, _, ymax = GRID.bounds
    t10, t20 = Affine(10, 0, xmin, 0, -10, ymax), Affine(20, 0, xmin, 0, -20, ymax)
    shape10 = (GRID.height * 7, GRID.width * 7)
    shape20 = (shape10[0] // 2 + 1, shape10[1] // 2 + 1)
    dn = {
        b: np.full(
            shape10 if b in sentinel2.BANDS_10M else shape20, 1000 + int(v * 10000), np.uint16
        )
        for b, v in {
            "B02": 0.04,
            "B03": 0.06,
            "B04": b04,
            "B08": b08,
            "B11": 0.2,
            "B12": 0.1,
        }.items()
    }
    scl = np.full(shape20, 4, np.uint8)
    if cloudy_right:
        scl[:, shape20[1] // 2 :] = 9
    name = sentinel2.scene_name("S2B", when, "05.09", 65, "32TPT", when + dt.timedelta(hours=3))
    sentinel2.write_scene(raw / "sentinel2", name, dn, scl, t10, t20, "EPSG:32632")


def _inca(raw, day=10):
    to_inca = Transformer.from_crs(GRID.crs, "EPSG:31287", always_xy=True)
    cx, cy = to_inca.transform(np.mean(GRID.x), np.mean(GRID.y))
    x = np.round(cx, -3) + 1000.0 * np.arange(-5, 6)
    y = np.round(cy, -3) + 1000.0 * np.arange(5, -6, -1)
    xx, yy = np.meshgrid(x, y)
    times = [dt.datetime(2023, 7, day, h, tzinfo=dt.UTC) for h in range(24)]
    hours = [24 * (day - 10) + h for h in range(24)]  # hours since 2023-07-10 00:00
    data = {
        "T2M": np.stack([t2m_celsius(xx, yy, h) for h in hours]),
        "GL": np.stack([np.full(xx.shape, 50.0 * h) for h in range(24)]),
        "RH2M": np.full((24, *xx.shape), 55.0),
        "UU": np.full((24, *xx.shape), 1.5),
        "VV": np.full((24, *xx.shape), -0.5),
    }
    inca.write_inca(raw / "inca" / inca.filename(times[0], times[-1]), times, x, y, data)


def _static_inputs(raw):
    xmin, ymin, xmax, ymax = GRID.bounds
    t = Affine(10, 0, xmin - 100, 0, -10, ymax + 100)
    cols = np.arange((xmax - xmin + 200) // 10)
    dem = np.tile(
        500.0 + SLOPE_X * (xmin - 100 + 10 * cols + 5 - xmin), (int((ymax - ymin + 200) // 10), 1)
    )
    (raw / "srtm").mkdir(parents=True)
    write_cog(raw / "srtm" / "dem.tif", dem.astype(np.float32), t, "EPSG:32632", nodata=np.nan)
    # land cover in EPSG:3035 covering the region generously
    to_laea = Transformer.from_crs(GRID.crs, "EPSG:3035", always_xy=True)
    lx, ly = to_laea.transform([xmin, xmax], [ymin, ymax])
    t3035 = Affine(10, 0, min(lx) - 500, 0, -10, max(ly) + 500)
    shape = (int((max(ly) - min(ly) + 1000) // 10), int((max(lx) - min(lx) + 1000) // 10))
    lc = raw / "landcover"
    landcover.write_layer(
        lc / landcover.layer_filename("tree_cover"),
        np.full(shape, 40, np.uint8),
        t3035,
        "EPSG:3035",
    )
    landcover.write_layer(
        lc / landcover.layer_filename("imperviousness"),
        np.full(shape, 10, np.uint8),
        t3035,
        "EPSG:3035",
    )
    landcover.write_layer(
        lc / landcover.layer_filename("water"), np.zeros(shape, np.uint8), t3035, "EPSG:3035"
    )


@pytest.fixture
def region(tmp_path):
    raw = tmp_path / "raw"
    _ecostress(raw)
    _s2_scene(raw, TIME - dt.timedelta(days=3), b04=0.05, b08=0.35)
    _s2_scene(raw, TIME + dt.timedelta(days=1), b04=0.10, b08=0.30, cloudy_right=True)
    _inca(raw)
    _static_inputs(raw)
    return tmp_path


def _build(region_dir, out_name="cube.nc", time=TIME):
    inv = build_inventory(region_dir / "raw", "t", GRID, dt.date(2023, 7, 1), dt.date(2023, 7, 31))
    static = build_static(inv, GRID, region_dir / "static.nc")
    s2 = [
        build_s2_grid(
            inv["sentinel2"][n]["folder"],
            GRID,
            PREPARE["sentinel2"]["bands"],
            PREPARE["sentinel2"]["scl_invalid"],
            region_dir / f"{n}.nc",
        )
        for n in s2_scenes_near(inv, time, 20)
    ]
    incas = inca_files_for(inv, time, 6)
    return build_cube(
        f"{time:%Y%m%dT%H%M%S}", inv, static, s2, incas, PREPARE, region_dir / out_name
    ), inv


def test_cube_values_and_alignment(region):
    path, inv = _build(region)
    assert list(inv["acquisitions"]) == [ACQ]
    with xr.open_dataset(path, decode_coords="all") as ds:
        # every variable on the region grid: identical pixel centres and CRS
        np.testing.assert_allclose(ds.x, GRID.x)
        np.testing.assert_allclose(ds.y, GRID.y)
        assert ds.rio.crs.to_epsg() == 32632
        assert ds.rio.transform().almost_equals(GRID.transform)
        for name, var in ds.data_vars.items():
            assert var.dims[-2:] == ("y", "x"), name
            assert "units" in var.attrs, name
        assert str(ds.time.values[0]).startswith("2023-07-10T10:30:00")
        # ECOSTRESS: cloud columns masked, others keep their value
        lst = ds.lst.values[0]
        assert np.isnan(lst[:, :3]).all() and (ds.lst_valid.values[0][:, :3] == 0).all()
        np.testing.assert_allclose(
            lst[:, 3:], 290.0 + np.arange(3, 12)[None].repeat(10, 0), atol=1e-4
        )
        assert ds.attrs["valid_fraction"] == pytest.approx(0.75)
        # S2: left half from the nearer scene (+1 day), right half from the clear one (-3 days)
        b04, age = ds.b04.values[0], ds.s2_age_days.values[0]
        np.testing.assert_allclose(b04[:, :5], 0.10, atol=1e-4)
        np.testing.assert_allclose(age[:, :5], -1.0, atol=1e-6)
        np.testing.assert_allclose(b04[:, 7:], 0.05, atol=1e-4)
        np.testing.assert_allclose(age[:, 7:], 3.0, atol=1e-6)
        np.testing.assert_allclose(ds.ndvi.values[0][:, 7:], (0.35 - 0.05) / 0.40, atol=1e-3)
        # INCA: bilinear of a linear field reproduces it at pixel centres (K), cumulative = mean
        xx, yy = np.meshgrid(GRID.x, GRID.y)
        ix, iy = Transformer.from_crs(GRID.crs, "EPSG:31287", always_xy=True).transform(xx, yy)
        np.testing.assert_allclose(ds.t2m.values[0], t2m_celsius(ix, iy, 10) + 273.15, atol=0.02)
        expected_6h = np.mean([t2m_celsius(ix, iy, h) for h in range(5, 11)], axis=0) + 273.15
        np.testing.assert_allclose(ds.t2m_6h.values[0], expected_6h, atol=0.02)
        np.testing.assert_allclose(ds.gl_6h.values[0], 50.0 * np.mean(range(5, 11)), atol=0.5)
        # static: planar DEM, its slope, land cover averaged from EPSG:3035
        np.testing.assert_allclose(
            ds.elevation.values, 500 + SLOPE_X * (xx - GRID.bounds[0]), atol=0.01
        )
        np.testing.assert_allclose(
            ds.slope.values[1:-1, 1:-1], np.degrees(np.arctan(SLOPE_X)), atol=0.01
        )
        np.testing.assert_allclose(ds.aspect.values[1:-1, 1:-1], 270.0, atol=0.01)  # faces west
        np.testing.assert_allclose(ds.tree_cover.values, 40.0)
        assert (ds.water.values == 0).all()


def test_all_cloud_scene_gives_empty_mask_and_warning(tmp_path, caplog):
    raw = tmp_path / "raw"
    _ecostress(raw, cloud_all=True)
    _s2_scene(raw, TIME - dt.timedelta(days=3), b04=0.05, b08=0.35)
    _inca(raw)
    _static_inputs(raw)
    with caplog.at_level(logging.WARNING):
        path, _ = _build(tmp_path)
    assert "all cloud" in caplog.text
    with xr.open_dataset(path) as ds:
        assert int(ds.lst_valid.sum()) == 0 and ds.attrs["valid_fraction"] == 0


def test_wrong_crs_granule_is_rejected_by_name(tmp_path):
    raw = tmp_path / "raw"
    _ecostress(raw, crs="EPSG:32633")  # tile 32TPT must be on UTM 32N
    _s2_scene(raw, TIME, b04=0.05, b08=0.35)
    _inca(raw)
    _static_inputs(raw)
    with pytest.raises(InputError, match=r"ECOv002_L2T_LSTE_.*_LST\.tif.*32633|EPSG"):
        _build(tmp_path)
    assert not (tmp_path / "cube.nc").exists()


def test_nan_in_meteorology_fails_without_partial_output(region):
    path = next((region / "raw" / "inca").iterdir())
    with rasterio.Env():
        import netCDF4

        with netCDF4.Dataset(path, "a") as nc:
            var = nc["T2M"]
            var.set_auto_maskandscale(False)
            block = var[10]
            block[:] = var._FillValue
            var[10] = block
    with pytest.raises(InputError, match="inca-v1-1h-1km.*T2M"):
        _build(region)
    assert not (region / "cube.nc").exists()
    assert not [p for p in region.iterdir() if p.name.startswith(".cube.nc")]


def test_cumulative_window_spans_two_inca_files(tmp_path):
    """An overpass at 02:00 UTC takes its 6 h means from the previous day's file too."""
    night = dt.datetime(2023, 7, 11, 2, 0, tzinfo=dt.UTC)
    raw = tmp_path / "raw"
    _ecostress(raw, time=night)
    _s2_scene(raw, night, b04=0.05, b08=0.35)
    _inca(raw, day=10)
    _inca(raw, day=11)
    _static_inputs(raw)
    path, _ = _build(tmp_path, time=night)
    with xr.open_dataset(path) as ds:
        xx, yy = np.meshgrid(GRID.x, GRID.y)
        ix, iy = Transformer.from_crs(GRID.crs, "EPSG:31287", always_xy=True).transform(xx, yy)
        hours = range(24 + 2 - 5, 24 + 2 + 1)  # 21:00 .. 02:00, in hours since July 10
        expected = np.mean([t2m_celsius(ix, iy, h) for h in hours], axis=0) + 273.15
        np.testing.assert_allclose(ds.t2m_6h.values[0], expected, atol=0.03)
