"""benchmarks/gapfill_real.py on a small series cube in the shared MODIS layout: the fold
protocol, the climatology baseline's known answer and the JSON it writes."""

import json

import numpy as np
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr
from conftest import load_benchmark

bench = load_benchmark("gapfill_real")

SIZE = 24
N = 12


def write_series(path):
    """LST = 290 + pattern + a uniform offset per date, clouds in blocks on every third date: a
    climatology plus the target's anomaly is close (not exact: which dates a pixel's
    climatology averages depends on its clouds), temporal interpolation is not."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    pattern = 4.0 * np.sin(xx / 3.0) + 0.2 * yy
    offsets = rng.normal(0, 3, N)
    lst = (290.0 + pattern[None] + offsets[:, None, None]).astype(np.float32)
    for t in range(N):
        if t % 3 == 1:  # partly cloudy donors, 30-70 % covered
            k = int(rng.integers(9, 17))
            r, c = rng.integers(0, SIZE - k, 2)
            lst[t, r : r + k, c : c + k] = np.nan
            lst[t, : SIZE // 3] = np.nan
    times = np.datetime64("2020-06-01") + np.arange(N) * np.timedelta64(1, "D")
    ds = xr.Dataset(
        {
            "lst": (("time", "y", "x"), lst),
            "elevation": (("y", "x"), (600 + 10 * yy).astype(np.float32)),
            "biome": (("y", "x"), np.ones((SIZE, SIZE), np.int16)),
        },
        coords={
            "time": times,
            "y": 4.4e6 - 1000.0 * np.arange(SIZE) - 500.0,
            "x": 4.0e5 + 1000.0 * np.arange(SIZE) + 500.0,
        },
    )
    ds.rio.write_crs("EPSG:32630", inplace=True)
    ds.to_netcdf(path)
    return path


def test_gapfill_real_scores_every_method_on_the_same_pairs(tmp_path):
    cube = write_series(tmp_path / "series.nc")
    out = tmp_path / "out.json"
    methods = ["baseline_climatology_anomaly", "baseline_temporal", "baseline_mean_lapse"]
    assert bench.main([str(cube), "--json", str(out), "--folds", "2", "--methods", *methods]) == 0
    result = json.loads(out.read_text())
    scores = result["methods"]
    assert set(scores) == set(methods)
    assert len({m["n_pairs"] for m in scores.values()}) == 1 and result["n_pairs"] > 0
    clim = scores["baseline_climatology_anomaly"]
    assert clim["rmse_mean"] < 1.5
    assert clim["rmse_mean"] < 0.5 * scores["baseline_temporal"]["rmse_mean"]
    assert clim["rmse_mean"] < 0.5 * scores["baseline_mean_lapse"]["rmse_mean"]
    folds = result["protocol"]["fold_info"]
    assert len(folds) == 2
    for fold in folds:  # tuned on the fold's own training days
        assert fold["climatology"]["tuning_pairs"] > 0
        assert not set(fold["targets"]) & set(fold["train"] + fold["val"])
