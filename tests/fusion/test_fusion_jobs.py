"""The fusion job's steps on small files: the coarse series from Sentinel-3 and MOD09GQ files, one
fused day as a COG, the evaluation, the cube's fused S2 layers and the errors on bad input."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from lstfill.cube import _dataset, fused_s2, write_cube
from lstfill.errors import ConfigError, InputError
from lstfill.fusion import steps
from lstfill.fusion.inputs import coarse_from_modis, read_coarse
from lstfill.grid import Grid
from lstfill.sources import modis, sentinel3

X0, Y0 = 678000.0, 5236240.0
GRID = Grid("EPSG:32632", Affine(70.0, 0, X0, 0, -70.0, Y0), 16, 16)
RATIO = 4
BANDS = ["B04", "B08"]
FUSION = {
    "method": "efast",
    "coarse": "sentinel3",
    "ratio": RATIO,
    "sigma": 20.0,
    "D": 15.0,
    "max_days": 30.0,
    "tolerance": 0.05,
    "min_importance": 0.02,
    "composite_days": 0.0,
    "composite_D": 20.0,
    "smooth_px": 0.0,
    "evaluation": {"min_clear": 0.6, "gap_days": 10},
}
DAY0 = dt.date(2023, 7, 1)


def field(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Red and NIR reflectance with structure inside every coarse pixel."""
    rng = np.random.default_rng(seed)
    red = rng.uniform(0.03, 0.12, GRID.shape).astype(np.float32)
    nir = rng.uniform(0.25, 0.45, GRID.shape).astype(np.float32)
    return red, nir


def block(a: np.ndarray) -> np.ndarray:
    h, w = a.shape
    return a.reshape(h // RATIO, RATIO, w // RATIO, RATIO).mean(axis=(1, 3))


def write_s2_grid(folder: Path, day: dt.date, red, nir, clear=None) -> Path:
    """An S2 grid file as build_s2_grid writes it (bands and clear share on the region grid)."""
    clear = np.ones(GRID.shape, np.float32) if clear is None else clear.astype(np.float32)
    time = dt.datetime(day.year, day.month, day.day, 10, 15, tzinfo=dt.UTC)
    layers = {
        "clear_share": clear,
        "b04": np.where(clear > 0.5, red, np.nan),
        "b08": np.where(clear > 0.5, nir, np.nan),
    }
    name = f"S2A_MSIL2A_{day:%Y%m%d}T101500_N0509_R065_T32TPT_{day:%Y%m%d}T130000"
    return write_cube(_dataset(GRID, layers, time, {"title": name}), folder / f"{name}.nc")


def write_s3_series(folder: Path, days, red, nir, trend: float = 0.0, grid: Grid | None = None):
    """Sentinel-3 day files on the coarse grid: block means plus `trend` per day in NIR."""
    grid = grid or GRID.coarsen(RATIO)
    paths = []
    for day in days:
        k = (day - DAY0).days
        refl = {"B04": block(red), "B08": block(nir) + trend * k}
        clear = np.ones(grid.shape, bool)
        paths.append(
            sentinel3.write_day(
                folder / sentinel3.filename(day), day, refl, clear, grid.transform, grid.crs
            )
        )
    return paths


@pytest.fixture
def region(tmp_path):
    red, nir = field()
    s2 = [
        write_s2_grid(tmp_path, DAY0 + dt.timedelta(days=k), red, nir + 0.004 * k)
        for k in (0, 10, 20)
    ]
    days = [DAY0 + dt.timedelta(days=k) for k in range(-5, 26)]
    s3 = write_s3_series(tmp_path, days, red, nir, trend=0.004)
    coarse = steps.coarse("sentinel3", s3, GRID, RATIO, BANDS, tmp_path / "coarse.nc")
    return {"root": tmp_path, "s2": s2, "coarse": coarse, "red": red, "nir": nir}


def test_coarse_series_from_sentinel3_on_the_nested_grid(region):
    grid, days, layers, source = read_coarse(region["coarse"])
    assert source == "sentinel3" and len(days) == 31 and days[0] == DAY0 - dt.timedelta(days=5)
    assert (grid.width, grid.height) == (4, 4) and grid.transform == GRID.coarsen(4).transform
    assert set(layers) == {"ndvi", "b04", "b08"}
    np.testing.assert_allclose(layers["b04"][3], block(region["red"]), atol=6e-5)
    ndvi = (layers["b08"] - layers["b04"]) / (layers["b08"] + layers["b04"])
    np.testing.assert_allclose(layers["ndvi"], ndvi, atol=1e-6)


def test_a_fused_day_is_a_cog_with_its_bands_and_tags(region):
    out = region["root"] / "daily" / "20230705.tif"
    steps.predict("20230705", region["s2"], region["coarse"], GRID, FUSION, BANDS, 0.5, out)
    with rasterio.open(out) as src:
        assert src.descriptions == ("ndvi", "b04", "b08", "weight", "days_to_fine", "flag")
        assert (src.width, src.height) == GRID.shape[::-1] and src.transform == GRID.transform
        tags = src.tags()
        data = src.read()
    assert tags["sigma_days"] == "20.0" and tags["ratio"] == "4" and tags["D_coarse_px"] == "15.0"
    assert tags["fine_dates"] == "2023-07-01,2023-07-11,2023-07-21"
    # every scene's NIR residual against the coarse series is the same: the day's NIR is the
    # fine field plus the coarse trend to day 4 (to DN rounding)
    np.testing.assert_allclose(data[2], region["nir"] + 0.016, atol=3e-4)
    np.testing.assert_allclose(data[1], region["red"], atol=1e-4)
    assert (data[4] == 4).all() and (data[5] == 0).all() and (data[3] > 0.9).all()


def test_a_band_the_coarse_sensor_lacks_is_the_fine_mosaic(region, tmp_path):
    red, nir = region["red"], region["nir"]
    clear = np.ones(GRID.shape, np.float32)
    time = dt.datetime(2023, 7, 1, 10, 15, tzinfo=dt.UTC)
    layers = {"clear_share": clear, "b04": red, "b08": nir, "b05": np.full(GRID.shape, 0.2)}
    path = write_cube(_dataset(GRID, layers, time, {}), tmp_path / "s2.nc")
    out = tmp_path / "20230703.tif"
    bands = ["B04", "B05", "B08"]
    steps.predict("20230703", [path], region["coarse"], GRID, FUSION, bands, 0.5, out)
    with rasterio.open(out) as src:
        assert src.tags()["no_coarse_change_bands"] == "b05"
        np.testing.assert_allclose(src.read(3), 0.2, atol=1e-6)
    with pytest.raises(ConfigError, match="B04 and B08"):
        steps.predict("20230703", [path], region["coarse"], GRID, FUSION, ["B04"], 0.5, out)


def test_a_coarse_series_on_another_grid_is_refused(region, tmp_path):
    other = dict(FUSION, ratio=2)
    with pytest.raises(InputError, match="coarse grid of fusion.ratio 2"):
        steps.predict(
            "20230705", region["s2"], region["coarse"], GRID, other, BANDS, 0.5, tmp_path / "x.tif"
        )
    assert not (tmp_path / "x.tif").exists()


def test_no_coarse_files_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no sentinel3 files"):
        steps.coarse("sentinel3", [], GRID, RATIO, BANDS, tmp_path / "c.nc")


def test_evaluation_scores_every_method_on_the_same_pixels(region, tmp_path):
    metrics_path, figure = tmp_path / "metrics.json", tmp_path / "evaluation.png"
    steps.evaluate(
        region["s2"],
        region["coarse"],
        GRID,
        FUSION,
        BANDS,
        0.5,
        ("2023-07-01", "2023-07-21"),
        [],
        metrics_path,
        figure,
    )
    m = json.loads(metrics_path.read_text())
    names = {"model_efast", "baseline_nearest", "baseline_linear", "baseline_offset"}
    assert set(m["methods"]) == names | {"baseline_coarse"}
    assert m["test_dates"] == ["2023-07-01", "2023-07-11", "2023-07-21"]
    assert len({row["n"] for row in m["methods"].values()}) == 1
    # the NIR trend is seen by the coarse sensor: EFAST recovers the withheld NIR exactly (NDVI,
    # a ratio, up to the change of the sub-pixel contrast)
    nir = m["protocols"]["withheld"]["bands"]["b08"]
    assert nir["model_efast"]["rmse"] < 3e-4 < 0.01 < nir["baseline_nearest"]["rmse"]
    assert m["methods"]["model_efast"]["rmse"] < 0.5 * m["methods"]["baseline_nearest"]["rmse"]
    assert "gap_10d" in m["protocols"] and figure.stat().st_size > 10_000


def test_cube_layers_from_a_fused_product(region, tmp_path):
    out = tmp_path / "20230705.tif"
    steps.predict("20230705", region["s2"], region["coarse"], GRID, FUSION, BANDS, 0.5, out)
    layers = fused_s2(out, BANDS, GRID)
    assert (layers["s2_age_days"] == 0).all() and (layers["s2_weight"] > 0.9).all()
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(layers["ndvi"], src.read(1))
    with pytest.raises(InputError, match="lacks bands"):
        fused_s2(out, ["B04", "B11"], GRID)


def test_coarse_series_from_mod09gq(tmp_path):
    """MOD09GQ red/NIR averaged onto a coarse grid; 'not produced' QA pixels are left out."""
    n = 8
    p = 1_111_950.5197665 / 4800  # the MODIS sinusoidal 250 m pixel (m)
    ul = (1_000_000.0, 5_000_000.0)
    lr = (ul[0] + n * p, ul[1] - n * p)
    red = np.full((n, n), 0.05, np.float32)
    nir = np.full((n, n), 0.30, np.float32)
    nir[:2, :2] = 0.40
    qc = np.zeros((n, n), np.uint16)
    qc[0, 0] = 2  # not produced: cloud
    path = modis.write_mod09gq(
        tmp_path / modis.granule_name("MOD09GQ", DAY0, 18, 4), DAY0, red, nir, qc, ul, lr
    )
    grid = Grid(modis.sinusoidal_crs(), Affine(2 * p, 0, ul[0], 0, -2 * p, ul[1]), 4, 4)
    days, layers = coarse_from_modis([path], grid)
    assert days == [DAY0]
    assert layers["b08"][0, 0, 0] == pytest.approx(0.40, abs=1e-3)  # the 3 valid pixels
    assert layers["b08"][0, 1, 1] == pytest.approx(0.30, abs=1e-3)
    assert layers["b04"][0] == pytest.approx(np.full((4, 4), 0.05), abs=1e-3)
