"""benchmarks/fusion_real.py and benchmarks/fusion_speed.py on tiny synthetic sets (seconds)."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from conftest import load_benchmark

from lstfill.io import write_cog

R = 4
SIZE = 24  # fine pixels per side; the coarse grid is 6 x 6
FINE_T = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4600000.0)
START = dt.date(2021, 5, 1)
TREND = 0.01  # NDVI per day, everywhere
NAMES = ["model_efast", "baseline_nearest", "baseline_linear", "baseline_offset", "baseline_coarse"]
METRICS = {"rmse", "mae", "bias", "r2", "nse", "ssim", "n"}


real = load_benchmark("fusion_real")
speed = load_benchmark("fusion_speed")


def _write(path: Path, data: np.ndarray, transform: Affine) -> None:
    write_cog(path, data.astype(np.float32), transform, "EPSG:32633", nodata=float("nan"))


def _base() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.uniform(0.2, 0.6, (SIZE, SIZE)).astype(np.float32)


def make_set(root: Path, coarse_days, fine_days=(0, 10, 20, 30), target=20, shift=0.0) -> Path:
    """Fine NDVI = base + TREND * day (a small cloud in the first scene); coarse NDVI = the
    block mean of the same field on each coarse day."""
    (root / "fine").mkdir(parents=True)
    (root / "coarse").mkdir()
    base = _base()
    for d in fine_days:
        field = base + TREND * d
        if d == fine_days[0]:
            field[2:5, 3:7] = np.nan
        _write(root / "fine" / f"{START + dt.timedelta(days=d)}.tif", field, FINE_T)
    coarse_t = FINE_T @ Affine.translation(shift, 0) @ Affine.scale(R)
    for d in coarse_days:
        field = (base + TREND * d).reshape(SIZE // R, R, SIZE // R, R).mean(axis=(1, 3))
        _write(root / "coarse" / f"{START + dt.timedelta(days=d)}.tif", field, coarse_t)
    meta = {
        "ratio": R,
        "targets": [str(START + dt.timedelta(days=target))],
        "coarse_kind": "daily",
    }
    (root / "meta.json").write_text(json.dumps(meta))
    return root


def _run(data: Path, out: Path, *extra: str) -> dict:
    assert real.main([str(data), "--json", str(out), *extra]) == 0
    return json.loads(out.read_text())


def test_fusion_real_daily_coarse(tmp_path, capsys):
    data = make_set(tmp_path / "set", range(0, 31))
    res = _run(data, tmp_path / "out.json")
    assert set(res) >= {"methods", "targets", "settings", "data"}
    assert list(res["methods"]) == NAMES
    target = str(START + dt.timedelta(days=20))
    assert list(res["targets"]) == [target]
    assert list(res["targets"][target]) == NAMES
    for name in NAMES:
        assert set(res["methods"][name]) == METRICS
        assert res["methods"][name] == res["targets"][target][name]  # one target: mean = it
    ns = {res["methods"][m]["n"] for m in NAMES}
    assert len(ns) == 1 and ns.pop() > 0.5 * SIZE * SIZE
    efast, nearest = res["methods"]["model_efast"], res["methods"]["baseline_nearest"]
    assert nearest["rmse"] == pytest.approx(TREND * 10, rel=1e-3)  # 10 days to the nearest
    assert efast["rmse"] < 0.3 * nearest["rmse"]
    assert abs(efast["bias"]) < 0.3 * abs(nearest["bias"])
    assert res["settings"]["ratio"] == R and res["settings"]["sigma"] == 20.0
    assert res["data"]["coarse_dates"][0] == str(START) and len(res["data"]["coarse_dates"]) == 31
    printed = capsys.readouterr().out
    assert "model_efast" in printed and "baseline_coarse" in printed


def test_fusion_real_two_coarse_dates_and_thinning(tmp_path):
    data = make_set(tmp_path / "set", [0, 30])
    res = _run(data, tmp_path / "two.json")
    assert len({res["methods"][m]["n"] for m in NAMES}) == 1
    efast, nearest = res["methods"]["model_efast"], res["methods"]["baseline_nearest"]
    assert math.isfinite(efast["rmse"]) and efast["rmse"] < nearest["rmse"]
    daily = make_set(tmp_path / "daily", range(0, 31))
    thin = _run(daily, tmp_path / "thin.json", "--thin-coarse", "16", "--sigma", "25")
    assert thin["data"]["coarse_dates"] == [str(START), str(START + dt.timedelta(days=16))]
    assert thin["settings"]["thin_coarse"] == 16 and thin["settings"]["sigma"] == 25.0
    assert all(math.isfinite(thin["methods"][m]["rmse"]) for m in NAMES)


def test_fusion_real_rejects_a_coarse_grid_that_does_not_nest(tmp_path, capsys):
    data = make_set(tmp_path / "set", range(0, 31, 5), shift=0.5)  # half a coarse pixel east
    assert real.main([str(data), "--json", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "does not nest" in err and f"{START}.tif" in err and "origin" in err
    assert not (tmp_path / "x.json").exists()
    with pytest.raises(real.LayoutError, match="meta.json"):
        real.load_set(tmp_path / "nothing")


def test_fusion_speed_timed_part_writes_the_cog(tmp_path):
    args = speed.parse_args(["--size", "60", "--ratio", "15", "--workdir", str(tmp_path)])
    manifest = speed.setup(tmp_path, args)
    res = speed.timed(manifest, tmp_path, args)
    out = speed.report(res, manifest, args)
    assert set(out) >= {"seconds", "peak_mb", "stages", "settings"}
    assert out["seconds"] > 0
    assert set(out["stages"]) >= {"read_coarse", "plan_coarse", "plan_weights", "cog"}
    assert out["stages"]["blocks_read"] > 0 and out["stages"]["blocks_write"] > 0
    assert out["settings"]["size"] == 60 and out["settings"]["coarse_shape"] == [4, 4]
    assert len(res["fused_days"]) + len(res["dropped_days"]) == 8
    with rasterio.open(res["cog"]) as cog:
        assert (cog.height, cog.width, cog.count) == (60, 60, 1 + 3)
        assert cog.driver == "GTiff" and cog.profile.get("tiled")
        fused = cog.read(1)
    assert np.isfinite(fused).mean() > 0.5
    assert np.nanmin(fused) > -0.5 and np.nanmax(fused) < 1.5
