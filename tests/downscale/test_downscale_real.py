"""benchmarks/downscale_real.py on a tiny synthetic UTM cube: the workflow's samples, splits,
MLP and baselines on one LST band, and the JSON the benchmark writes."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pyproj import CRS

from lstfill.downscale.dataset import window_samples
from lstfill.downscale.real import pixel_latlon, series_samples
from lstfill.errors import ConfigError
from tests.conftest import load_benchmark

N, DAYS = 48, 6
TINY = {
    "model": {"hidden": [16], "dropout": 0.0},
    "training": {"epochs": 2, "batch_size": 64, "device": "cpu"},
    "split": {"block_size": 16, "day_run_gap": 0},  # six consecutive days: one run otherwise
    "importance": {"n_repeats": 1, "max_samples": 100},
    "bands": {"day": 10.5},
    "max_days": None,
}


def write_cube(path, noise: float = 0.0) -> None:
    """lst = a(day) - 0.0065 * elevation (+ noise), with NaN gaps, on a 1 km UTM 30N grid."""
    rng = np.random.default_rng(3)
    elevation = rng.uniform(300, 1500, (N, N)).astype(np.float32)
    a = 310.0 + rng.normal(0, 2, DAYS)
    lst = a[:, None, None] - 0.0065 * elevation[None] + noise * rng.normal(size=(DAYS, N, N))
    lst[rng.random(lst.shape) < 0.003] = np.nan
    lst[1, :5, :5] = np.nan
    x = 400500.0 + 1000 * np.arange(N)
    y = 4400500.0 - 1000 * np.arange(N)
    ds = xr.Dataset(
        {
            "lst": (("time", "y", "x"), lst.astype(np.float32), {"units": "K"}),
            "elevation": (("y", "x"), elevation, {"units": "m"}),
            "spatial_ref": ((), 0, {"crs_wkt": CRS.from_epsg(32630).to_wkt()}),
        },
        coords={"time": pd.date_range("2019-08-30", periods=DAYS), "y": y, "x": x},
    )
    ds.to_netcdf(path)


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("downscale_real")


def test_benchmark_json_scores_every_method_on_the_same_test_samples(bench, tmp_path) -> None:
    write_cube(tmp_path / "cube.nc")
    cfg = bench.downscale_config("demo", TINY)
    result = bench.run(bench.load_cube(tmp_path / "cube.nc"), cfg, tmp_path / "work")
    assert result["samples"]["band"] == "day" and result["samples"]["n_days"] == DAYS
    assert set(result["splits"]) == {"space", "day"}
    for kind, scores in result["splits"].items():
        methods = scores["methods"]
        expected = {"model_mlp", "baseline_zero", "baseline_linear"}
        # every test pixel has training days in the day split, none in the space split
        assert set(methods) == expected | ({"reference_pixel_mean"} if kind == "day" else set())
        ns = {m["n"] for m in methods.values()}
        assert len(ns) == 1 and ns.pop() > 0
        for m in methods.values():
            assert m["rmse"] == pytest.approx(np.sqrt(m["mse"]))
        assert methods["baseline_zero"]["improvement_pct"] == 0.0
        assert scores["improvement_pct"] == pytest.approx(methods["model_mlp"]["improvement_pct"])
        # the deviation is -0.0065 x the centre's height difference, one of the features
        zero = methods["baseline_zero"]["mse"]
        assert zero > 0.1
        assert methods["baseline_linear"]["mse"] < 1e-6 * zero
        # the MLP corrects that linear fit, and keeps it alone when no epoch validates better
        assert result["training"][kind]["linear_only"]
        assert methods["model_mlp"]["mse"] < 1e-6 * zero
    assert result["runtime_s"]["total"] > 0
    assert "space" in result["training"] and "day" in result["training"]
    assert "baseline_linear" in bench.table(result)


def test_main_writes_the_json_and_prints_the_table(bench, tmp_path, monkeypatch, capsys) -> None:
    write_cube(tmp_path / "cube.nc", noise=0.3)
    real = bench.downscale_config

    def tiny(settings, overrides):  # the command line's settings on top of the tiny model's
        training = {**TINY["training"], **overrides.get("training", {})}
        return real(settings, {**TINY, **overrides, "training": training})

    monkeypatch.setattr(bench, "downscale_config", tiny)
    bench.main([str(tmp_path / "cube.nc"), "--json", str(tmp_path / "out.json"), "--device", "cpu"])
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["splits"]["space"]["methods"]["baseline_zero"]["improvement_pct"] == 0.0
    assert out["runtime_s"]["wall"] >= out["runtime_s"]["total"] > 0
    assert out["settings"]["bands"] == {"day": 10.5}
    printed = capsys.readouterr().out
    assert "space split" in printed and "day split" in printed and "model_mlp" in printed


def test_pixel_mean_reference_on_a_hand_made_split(bench) -> None:
    # pixels (0, 0), (0, 1), (1, 0); codes TRAIN 0, VAL 1, TEST 2
    meta = {"row": np.array([0, 0, 0, 0, 1, 1]), "col": np.array([0, 0, 1, 1, 0, 0])}
    y = np.array([1.0, 3.0, 5.0, -1.0, 7.0, 2.0])
    codes = np.array([0, 2, 0, 2, 1, 2])
    ref = bench.pixel_mean_scores(y, meta, codes)
    # test: (0,0) 3 vs mean 1 -> 4; (0,1) -1 vs 5 -> 36; (1,0) no training day: 0 -> 4
    assert ref["mse"] == pytest.approx((4 + 36 + 4) / 3) and ref["n"] == 3
    assert ref["n_unseen"] == 1 and ref["rmse"] == pytest.approx(np.sqrt(ref["mse"]))
    assert bench.pixel_mean_scores(y, meta, np.array([0, 0, 0, 0, 2, 2])) is None


def test_series_samples_use_each_pixels_lat_lon(tmp_path) -> None:
    rng = np.random.default_rng(0)
    lst = 300 + rng.normal(size=(3, 12, 12))
    dem = rng.uniform(0, 500, (12, 12))
    lat, lon = pixel_latlon(400500 + 1000 * np.arange(12), 4400500 - 1000 * np.arange(12), 32630)
    assert lat.shape == lon.shape == (12, 12)
    assert 39 < lat.min() < lat.max() < 40 and -4.2 < lon.min() < lon.max() < -3.9
    assert lat[0, 0] > lat[-1, 0] and lon[0, -1] > lon[0, 0]
    dates = pd.date_range("2020-01-01", periods=3).values
    cfg = {"bands": {"day": 10.5}, "radius": 4, "max_days": 2, "max_samples_per_image": 5}
    cfg |= {"qa_strict": False}
    X, y, meta, params = series_samples(lst, dem, lat, lon, dates, cfg)
    assert set(np.unique(meta["date"])) == {20200101, 20200103}  # 2 days spread over 3
    assert len(y) == 10 and params["band_names"] == ["day"] and params["grid_shape"] == [12, 12]
    r, c = meta["row"][0], meta["col"][0]
    assert X[0, 4] == pytest.approx(lat[r, c]) and X[0, 5] == pytest.approx(lon[r, c])
    X1, y1, _ = window_samples(lst[0], dem, lat, lon, 0, 10.5)
    assert len(y1) == 16
    with pytest.raises(ConfigError, match="one band"):
        series_samples(lst, dem, lat, lon, dates, {**cfg, "bands": {"night": 1.5, "day": 13.5}})
