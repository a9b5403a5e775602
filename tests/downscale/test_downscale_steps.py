"""Downscaling job steps (`lstfill.downscale.steps`): input files, days, the DEM on the LST grid,
the sample file, the splits, and training, evaluation and maps end to end on a tiny region."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from fakes.mlflow import install_fake_mlflow
from numpy.lib.stride_tricks import sliding_window_view

from lstfill import runs
from lstfill.config import validate_config
from lstfill.demo.israel import write_israel_region
from lstfill.downscale import steps, targets
from lstfill.downscale.baselines import least_squares
from lstfill.downscale.dataset import (
    DROPPED,
    GROUPS,
    feature_names,
    read_samples,
    split_codes,
    window_samples,
)
from lstfill.downscale.inputs import select_days
from lstfill.downscale.method import METHODS, MlpMethod
from lstfill.errors import ConfigError, InputError, LstfillError
from lstfill.io import read_raster, write_cog
from lstfill.method import load_method
from lstfill.sources import israel, israel_grid
from lstfill.splits import TEST, TRAIN, VAL, split_blocks
from lstfill.training.checkpoint import save_checkpoint

STEP = 1.0 / 120
H = W = 30
LAT = 31.5 - STEP / 2 - STEP * np.arange(H)  # north to south
LON = 34.0 + STEP / 2 + STEP * np.arange(W)
COL = {name: i for i, name in enumerate(feature_names(4))}
HM_DAYS = [10, 50, 100]  # 2020: Jan 11, Feb 20, Apr 10
HM_DATES = ["20200111", "20200220", "20200410"]
HOLE = (15, 15)  # NaN night LST on Feb 20


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _cfg(**downscale) -> dict:
    """A validated downscale section (defaults filled) with `downscale` keys overriding."""
    raw = {"regions": {"x": {"source": "demo"}}, **downscale}
    return validate_config({"downscale": raw})["downscale"]


def _write_year(
    path: Path,
    year: int,
    days,
    *,
    lat: np.ndarray = LAT[:4],
    lon: np.ndarray = LON[:5],
    night: np.ndarray | None = None,
    day: np.ndarray | None = None,
) -> Path:
    """A small yearly file; LST varies with day, row and column unless given."""
    days = np.asarray(days)
    shape = (len(days), len(lat), len(lon))
    t, r, c = np.meshgrid(days, np.arange(len(lat)), np.arange(len(lon)), indexing="ij")
    if night is None:
        night = 280.0 + 0.1 * t + 0.5 * r + 0.25 * c
    if day is None:
        day = 300.0 + 0.1 * t - 0.5 * r + 0.75 * c
    qa = np.full(shape, israel.QA_BOTH, np.uint8)
    return israel.write_israel_lst(path, year, days, night, day, qa, lat, lon)


def _window_mean(a: np.ndarray, rows: np.ndarray, cols: np.ndarray, radius: int = 4):
    k = 2 * radius + 1
    view = sliding_window_view(np.asarray(a, np.float64), (k, k))
    return view[rows - radius, cols - radius].mean(axis=(1, 2))


def _find(meta: dict, date: int, band: int, row: int, col: int) -> int:
    hit = np.flatnonzero(
        (meta["date"] == date)
        & (meta["band"] == band)
        & (meta["row"] == row)
        & (meta["col"] == col)
    )
    assert len(hit) == 1
    return int(hit[0])


# ------------------------------------------------------------------------------ inputs


def test_demo_file_has_the_published_name() -> None:
    assert targets.DEMO_LST_NAME == israel.file_name(targets.DEMO_YEAR)


def test_resolve_files_keeps_plain_paths_expands_globs_and_drops_repeats(tmp_path) -> None:
    for name in ("c.nc", "a.nc", "b.nc", "x.tif"):
        (tmp_path / name).touch()
    missing2, missing1 = str(tmp_path / "z2.nc"), str(tmp_path / "z1.nc")
    assert targets.resolve_files([missing2, missing1], "k") == [missing2, missing1]
    got = targets.resolve_files(
        [missing2, str(tmp_path / "*.nc"), str(tmp_path / "b.nc"), str(tmp_path / "[ab].nc")],
        "k",
    )
    assert got == [missing2] + [str(tmp_path / n) for n in ("a.nc", "b.nc", "c.nc")]
    key = "downscale.regions.x.lst_files"
    with pytest.raises(ConfigError, match=r"downscale\.regions\.x\.lst_files") as err:
        targets.resolve_files([str(tmp_path / "a.nc"), str(tmp_path / "*.hgt")], key)
    assert err.value.key == key and "*.hgt" in str(err.value)


def test_read_selected_days_and_file_days(tmp_path) -> None:
    path = _write_year(tmp_path / israel.file_name(2020), 2020, [59, 0, 365, 1])
    year, days = israel.file_days(path)
    assert year == 2020
    np.testing.assert_array_equal(days, [0, 1, 59, 365])
    full = israel.read_israel_lst(path)
    part = israel.read_israel_lst(path, days=[365, 1])
    np.testing.assert_array_equal(part.days, [1, 365])
    np.testing.assert_array_equal(part.dates, np.array(["2020-01-02", "2020-12-31"], "M8[D]"))
    for name in ("night", "day", "daily", "qa"):
        np.testing.assert_array_equal(getattr(part, name), getattr(full, name)[[1, 3]])
    np.testing.assert_array_equal(part.lat, full.lat)
    assert part.day[1, 2, 3] == pytest.approx(300 + 36.5 - 1.0 + 2.25, abs=0.011)
    with pytest.raises(InputError, match=r"\[7\]") as err:
        israel.read_israel_lst(path, days=[1, 7])
    assert err.value.path == str(path)


def test_select_days_spreads_days_evenly_over_yearly_files(tmp_path) -> None:
    f20 = _write_year(tmp_path / israel.file_name(2020), 2020, [300, 1, 7, 100, 200, 3])
    f19 = _write_year(tmp_path / israel.file_name(2019), 2019, [20, 0, 5, 10])
    everything = [(f19, 2019, [0, 5, 10, 20]), (f20, 2020, [1, 3, 7, 100, 200, 300])]
    assert select_days([f20, f19], None) == everything
    assert select_days([f20, f19], 10) == everything
    assert select_days([f20, f19], 50) == everything
    # 10 days, 4 wanted: positions round(linspace(0, 9, 4)) = 0, 3, 6, 9
    assert select_days([f20, f19], 4) == [(f19, 2019, [0, 20]), (f20, 2020, [7, 300])]
    assert select_days([f19, f20], 2) == [(f19, 2019, [0]), (f20, 2020, [300])]
    assert select_days([f20], 3) == [(f20, 2020, [1, 7, 300])]
    for k in range(2, 11):
        picked = select_days([f19, f20], k)
        flat = [(year, d) for _, year, days in picked for d in days]
        assert len(flat) == k and flat == sorted(flat)
        assert flat[0] == (2019, 0) and flat[-1] == (2020, 300)
        assert [p for p, _, _ in picked] == [f19, f20]


# ------------------------------------------------------------------------------ DEM


def test_align_dem_block_averages_a_3x_dem_onto_the_lst_grid(tmp_path) -> None:
    lat, lon = LAT[:8], LON[:7]
    lst = _write_year(tmp_path / israel.file_name(2020), 2020, [3, 4], lat=lat, lon=lon)
    # a DEM at 3x the resolution reaching one cell beyond the grid on every side
    fine = np.random.default_rng(1).uniform(0, 900, ((8 + 2) * 3, (7 + 2) * 3))
    fine = fine.astype(np.float32)
    fine[7, 8] = np.nan  # inside cell (1, 1)
    west, north = lon[0] - STEP / 2 - STEP, lat[0] + STEP / 2 + STEP
    dem = write_cog(
        tmp_path / "dem.tif",
        fine,
        Affine(STEP / 3, 0, west, 0, -STEP / 3, north),
        "EPSG:4326",
        nodata=float("nan"),
    )
    out = tmp_path / "dem_grid.tif"
    steps.dem([lst], [dem], out)
    data, transform, crs, _, _ = read_raster(out, expected_crs="EPSG:4326")
    assert data.shape == (8, 7) and data.dtype == np.float32
    assert transform.almost_equals(israel_grid.grid_transform(lat, lon), precision=1e-9)
    blocks = fine[3:-3, 3:-3].reshape(8, 3, 7, 3).transpose(0, 2, 1, 3).reshape(8, 7, 9)
    np.testing.assert_allclose(data, np.nanmean(blocks, axis=2), rtol=1e-6)
    assert data[5, 2] == pytest.approx(fine[18:21, 9:12].mean(), rel=1e-6)
    assert data[1, 1] == pytest.approx(np.nanmean(fine[6:9, 6:9]), rel=1e-6)
    assert data[1, 1] != pytest.approx(fine[6:9, 6:9][np.isfinite(fine[6:9, 6:9])].sum() / 9)

    shifted = _write_year(tmp_path / "LST_2021_NetCDF.nc", 2021, [3], lat=lat, lon=lon + STEP)
    with pytest.raises(InputError, match="another grid") as err:
        steps.dem([lst, shifted], [dem], tmp_path / "other.tif")
    assert err.value.path == str(shifted)
    assert not (tmp_path / "other.tif").exists()

    far = write_cog(
        tmp_path / "far.tif",
        fine,
        Affine(STEP / 3, 0, west + 5, 0, -STEP / 3, north),
        "EPSG:4326",
        nodata=float("nan"),
    )
    with pytest.raises(InputError, match="does not overlap") as err:
        steps.dem([lst], [far], tmp_path / "far_grid.tif")
    assert err.value.path == str(far)


# ------------------------------------------------------------------------------ samples


def _handmade_dem() -> np.ndarray:
    r, c = np.mgrid[0:H, 0:W].astype(np.float64)
    bump = 300.0 * np.exp(-((r - 15) ** 2 + (c - 12) ** 2) / 8.0)
    return (100.0 + 20.0 * r + 10.0 * c + bump).astype(np.float32)


@pytest.fixture(scope="module")
def handmade(tmp_path_factory) -> SimpleNamespace:
    """30x30 cells, 3 days, LST = offset - 0.0065 * DEM, one NaN night pixel on Feb 20."""
    folder = tmp_path_factory.mktemp("handmade")
    dem = _handmade_dem()
    offsets = np.array([0.0, 1.0, 2.5])[:, None, None]
    day = 300.0 + offsets - 0.0065 * dem.astype(np.float64)
    night = day - 15.0
    night[1][HOLE] = np.nan
    lst = _write_year(
        folder / israel.file_name(2020), 2020, HM_DAYS, lat=LAT, lon=LON, night=night, day=day
    )
    dem_path = write_cog(
        folder / "dem_grid.tif",
        dem,
        israel_grid.grid_transform(LAT, LON),
        "EPSG:4326",
        nodata=float("nan"),
    )
    cfg = _cfg(max_days=None)
    info = steps.samples([lst], dem_path, cfg, folder / "samples.nc", folder / "samples.json")
    return SimpleNamespace(
        folder=folder,
        lst=lst,
        dem=dem,
        dem_path=dem_path,
        cfg=cfg,
        info=info,
        samples=folder / "samples.nc",
        info_path=folder / "samples.json",
        read=israel.read_israel_lst(lst),
    )


def test_build_samples_counts_meta_and_summary(handmade) -> None:
    per_image = 22 * 22  # centres 4..25 in both directions
    hole = 9 * 9  # centres whose window holds the NaN night pixel
    n = 3 * 2 * per_image - hole
    expected_info = {
        "days": HM_DATES,
        "n_samples": n,
        "per_band": {"night": 3 * per_image - hole, "day": 3 * per_image},
        "grid_shape": [H, W],
        "samples": "samples.nc",
    }
    assert handmade.info == expected_info
    assert json.loads(handmade.info_path.read_text()) == expected_info
    assert targets.days_of(handmade.info_path) == HM_DATES
    X, y, meta, params = read_samples(handmade.samples)
    assert X.shape == (n, 89) and y.shape == (n,)
    assert params["band_names"] == ["night", "day"] and params["grid_shape"] == [H, W]
    assert params["files"] == [israel.file_name(2020)] and params["radius"] == 4
    keys, counts = np.unique(np.stack([meta["date"], meta["band"]]), axis=1, return_counts=True)
    dates = [int(d) for d in HM_DATES]
    assert keys.T.tolist() == [[d, b] for d in dates for b in (0, 1)]
    assert counts.tolist() == [per_image, per_image, per_image - hole, per_image] + [per_image] * 2
    assert meta["row"].min() == 4 and meta["row"].max() == 25
    assert meta["col"].min() == 4 and meta["col"].max() == 25
    night_feb = (meta["date"] == 20200220) & (meta["band"] == 0)
    cheb = np.maximum(np.abs(meta["row"] - HOLE[0]), np.abs(meta["col"] - HOLE[1]))
    assert (cheb[night_feb] > 4).all()


def test_build_samples_targets_and_features_at_a_known_sample(handmade) -> None:
    X, y, meta, _ = read_samples(handmade.samples)
    obs, dem = handmade.read, handmade.dem.astype(np.float64)
    i = _find(meta, 20200220, 1, 6, 20)
    win = obs.day[1, 2:11, 16:25].astype(np.float64)
    assert y[i] == pytest.approx(obs.day[1, 6, 20] - win.mean(), abs=1e-4)
    # the LST is exactly -6.5 K/km of the DEM, up to the file's 0.02 K counts
    assert y[i] == pytest.approx(-0.0065 * (dem[6, 20] - dem[2:11, 16:25].mean()), abs=0.011)
    assert X[i, COL["lst_avg"]] == pytest.approx(win.mean(), abs=1e-3)
    assert X[i, COL["height_avg"]] == pytest.approx(dem[2:11, 16:25].mean(), abs=1e-3)
    assert X[i, COL["hd_40"]] == pytest.approx(dem[6, 20] - dem[2:11, 16:25].mean(), abs=1e-3)
    assert X[i, COL["lat"]] == pytest.approx(LAT[6], abs=1e-5)
    assert X[i, COL["lon"]] == pytest.approx(LON[20], abs=1e-5)
    assert X[i, COL["day_sin"]] == pytest.approx(np.sin(2 * np.pi * 50 / 365.25), abs=1e-6)
    assert X[i, COL["tod_sin"]] == pytest.approx(np.sin(2 * np.pi * 13.5 / 24), abs=1e-6)
    j = _find(meta, 20200111, 0, 25, 4)
    assert X[j, COL["tod_cos"]] == pytest.approx(np.cos(2 * np.pi * 1.5 / 24), abs=1e-6)
    assert y[j] == pytest.approx(obs.night[0, 25, 4] - obs.night[0, 21:30, 0:9].mean(), abs=1e-4)
    # every target is its centre minus its window mean
    for k, date in enumerate(HM_DATES):
        for b, band in enumerate(("night", "day")):
            sel = (meta["date"] == int(date)) & (meta["band"] == b)
            lst = obs.lst(band)[k]
            rows, cols = meta["row"][sel], meta["col"][sel]
            expected = lst[rows, cols] - _window_mean(lst, rows, cols)
            np.testing.assert_allclose(y[sel], expected, atol=2e-4)


def test_build_samples_caps_each_image_reproducibly(handmade, tmp_path) -> None:
    cfg = {**handmade.cfg, "max_samples_per_image": 50}
    info = steps.samples(
        [handmade.lst], handmade.dem_path, cfg, tmp_path / "a.nc", tmp_path / "a.json"
    )
    assert info["n_samples"] == 300 and info["per_band"] == {"night": 150, "day": 150}
    _, y, meta, params = read_samples(tmp_path / "a.nc")
    assert params["max_samples_per_image"] == 50
    _, counts = np.unique(np.stack([meta["date"], meta["band"]]), axis=1, return_counts=True)
    assert counts.tolist() == [50] * 6
    _, y_all, meta_all, _ = read_samples(handmade.samples)
    for i in range(0, 300, 7):  # a capped sample is the same sample as in the full file
        j = _find(meta_all, meta["date"][i], meta["band"][i], meta["row"][i], meta["col"][i])
        assert y[i] == y_all[j]
    steps.samples([handmade.lst], handmade.dem_path, cfg, tmp_path / "b.nc", tmp_path / "b.json")
    _, y_b, meta_b, _ = read_samples(tmp_path / "b.nc")
    np.testing.assert_array_equal(y_b, y)
    for key in ("date", "band", "row", "col"):
        np.testing.assert_array_equal(meta_b[key], meta[key])


def test_build_samples_without_a_valid_window_writes_nothing(handmade, tmp_path) -> None:
    nan = np.full((2, H, W), np.nan)
    lst = _write_year(
        tmp_path / israel.file_name(2020), 2020, [5, 6], lat=LAT, lon=LON, night=nan, day=nan
    )
    out, info = tmp_path / "s.nc", tmp_path / "s.json"
    with pytest.raises(InputError, match="no 9² window") as err:
        steps.samples([lst], handmade.dem_path, handmade.cfg, out, info)
    assert err.value.path == str(lst)
    assert sorted(p.name for p in tmp_path.iterdir()) == [israel.file_name(2020)]


def test_build_samples_refuses_a_dem_of_another_place(handmade, tmp_path) -> None:
    shifted = israel_grid.grid_transform(LAT, LON) @ Affine.translation(3, 0)
    dem_path = write_cog(tmp_path / "dem.tif", handmade.dem, shifted, "EPSG:4326", nodata=None)
    with pytest.raises(InputError, match="not the LST grid") as err:
        steps.samples(
            [handmade.lst], dem_path, handmade.cfg, tmp_path / "s.nc", tmp_path / "s.json"
        )
    assert err.value.path == str(dem_path)
    assert not (tmp_path / "s.nc").exists()


def test_day_split_of_too_few_days_names_the_setting(handmade) -> None:
    _, _, meta, params = read_samples(handmade.samples)
    one_day = {k: v[meta["date"] == meta["date"][0]] for k, v in meta.items()}
    with pytest.raises(LstfillError, match="downscale.max_days"):
        split_codes(one_day, params, handmade.cfg["split"], "day")


# ------------------------------------------------------------------------------ splits


def test_day_split_keeps_each_date_in_one_split(handmade) -> None:
    _, _, meta, params = read_samples(handmade.samples)
    codes = split_codes(meta, params, handmade.cfg["split"], "day")
    assert set(np.unique(codes).tolist()) == {TRAIN, VAL, TEST}
    dates = [set(meta["date"][codes == c].tolist()) for c in (TRAIN, VAL, TEST)]
    assert all(len(d) == 1 for d in dates)  # 3 days: one each
    assert set.union(*dates) == {int(d) for d in HM_DATES}


def test_space_split_windows_never_reach_another_split(handmade) -> None:
    _, _, meta, params = read_samples(handmade.samples)
    split = {"ratios": [0.5, 0.2, 0.3], "block_size": 9, "seed": 4}
    codes = split_codes(meta, params, split, "space")
    counts = {c: int((codes == c).sum()) for c in (TRAIN, VAL, TEST, DROPPED)}
    assert all(v > 0 for v in counts.values()), counts
    block_map = split_blocks((H, W), 9, val_fraction=0.2, test_fraction=0.3, seed=4)
    wins = sliding_window_view(block_map, (9, 9))[meta["row"] - 4, meta["col"] - 4]
    wins = wins.reshape(len(codes), 81)
    for code in (TRAIN, VAL, TEST):
        assert (wins[codes == code] == code).all()  # the whole window in its own blocks
    assert not (wins[(codes == TRAIN) | (codes == VAL)] == TEST).any()
    mixed = (wins != wins[:, :1]).any(axis=1)
    np.testing.assert_array_equal(codes == DROPPED, mixed)
    # the space split depends on the position only
    per_pos = {}
    for r, c, code in zip(meta["row"], meta["col"], codes, strict=True):
        assert per_pos.setdefault((r, c), code) == code
    with pytest.raises(ConfigError, match="downscale.split.kinds"):
        split_codes(meta, params, split, "random")


# ------------------------------------------------------------------------------ end to end

E2E_SPLIT = {"block_size": 10, "ratios": [0.5, 0.2, 0.3]}  # seed 0 leaves [.6 .1 .3] no val


@pytest.fixture(scope="module")
def e2e(tmp_path_factory) -> SimpleNamespace:
    """A synthetic 40x36 region of 8 days: DEM, samples, both models, evaluation, one map."""
    d = tmp_path_factory.mktemp("e2e")
    lst = d / israel.file_name(targets.DEMO_YEAR)
    write_israel_region({"seed": 3, "rows": 40, "cols": 36, "n_days": 8}, lst, d / "dem_fine.tif")
    steps.dem([lst], [d / "dem_fine.tif"], d / "dem.tif")
    cfg = _cfg(
        model={"hidden": [16]},
        training={"epochs": 2, "batch_size": 256, "device": "cpu"},
        split=E2E_SPLIT,
        importance={"n_repeats": 2, "max_samples": 300},
    )
    info = steps.samples([lst], d / "dem.tif", cfg, d / "samples.nc", d / "samples.json")
    trained = {}
    for kind in ("space", "day"):
        trained[kind] = steps.train(
            d / "samples.nc",
            cfg,
            kind,
            d / f"{kind}.pt",
            d / f"{kind}_curve.png",
            d / f"work_{kind}",
            d / f"run_{kind}.json",
            f"run-{kind}",
            progress=False,
        )
    models = {kind: d / f"{kind}.pt" for kind in ("space", "day")}
    evaluated = steps.evaluate(d / "samples.nc", models, cfg, d / "metrics.json", d / "eval.png")
    day = info["days"][0]
    scores = steps.predict([lst], d / "dem.tif", models["space"], day, False, d / "map.tif")
    return SimpleNamespace(
        dir=d,
        lst=lst,
        dem=d / "dem.tif",
        cfg=cfg,
        info=info,
        samples=d / "samples.nc",
        trained=trained,
        models=models,
        evaluated=evaluated,
        day=day,
        scores=scores,
        map=d / "map.tif",
    )


def test_demo_region_needs_the_published_file_name(tmp_path) -> None:
    settings = {"seed": 3, "rows": 20, "cols": 20, "n_days": 3}
    with pytest.raises(ValueError, match="LST_2020_NetCDF.nc"):
        write_israel_region(settings, tmp_path / "lst.nc", tmp_path / "dem.tif")


def test_e2e_samples_cover_every_land_window(e2e) -> None:
    # sea in columns 0-2, so centres in rows 4..35 and columns 7..31 on all 8 days, 2 bands
    assert e2e.info["n_samples"] == 8 * 2 * 32 * 25 and len(e2e.info["days"]) == 8
    assert read_raster(e2e.dir / "dem_fine.tif")[0].shape == (40 * 3, 36 * 3)


def test_train_writes_a_checkpoint_that_load_method_restores(e2e) -> None:
    mlp = load_method(e2e.models["space"], METHODS)
    assert isinstance(mlp, MlpMethod) and not mlp.net.training
    assert mlp.scaler.columns == feature_names(4)
    assert mlp.extra["split"] == "space" and mlp.extra["best_epoch"] >= 1
    assert mlp.features["bands"] == {"night": 1.5, "day": 13.5}
    assert mlp.model_kwargs == {"n_in": 89, "hidden": [16], "dropout": 0.2, "base": "linear"}
    assert (e2e.dir / "space_curve.png").stat().st_size > 0
    m = e2e.trained["space"]
    assert m["epochs_run"] == 2 and m["n_val"] > 0 and m["n_test"] > 0 and m["n_dropped"] > 0
    assert m["n_train"] + m["n_val"] + m["n_test"] + m["n_dropped"] == e2e.info["n_samples"]
    assert m["mse_improvement"] == pytest.approx(m["trivial_mse"] - m["model_mse"])
    assert e2e.trained["day"]["n_dropped"] == 0


def test_runs_table_collects_one_row_per_train_call(e2e) -> None:
    row_files = [e2e.dir / f"run_{kind}.json" for kind in ("space", "day")]
    runs.collect_runs(row_files, e2e.dir / "runs.csv")
    rows = runs.read_runs(e2e.dir / "runs.csv")
    assert [r["run"] for r in rows] == ["run-space", "run-day"]
    assert [r["params.split_kind"] for r in rows] == ["space", "day"]
    for row, kind in zip(rows, ("space", "day"), strict=True):
        m = e2e.trained[kind]
        assert float(row["metrics.mse_improvement_pct"]) == m["mse_improvement_pct"]
        assert float(row["metrics.model_mse"]) == m["model_mse"]
        assert int(row["metrics.n_test"]) == m["n_test"]
        assert row["params.n_days"] == "8" and row["params.model.hidden"] == "16"


def test_evaluate_scores_model_and_predict_zero_on_the_test_samples(e2e) -> None:
    out = json.loads((e2e.dir / "metrics.json").read_text())
    assert (e2e.dir / "eval.png").stat().st_size > 0
    X, y, meta, params = read_samples(e2e.samples)
    for kind in ("space", "day"):
        s = out["splits"][kind]
        codes = split_codes(meta, params, e2e.cfg["split"], kind)
        test = codes == TEST
        y_test = y[test].astype(np.float64)
        mlp = load_method(e2e.models[kind], METHODS)
        pred = mlp.predict(X[test]).astype(np.float64)
        base, mse = s["methods"]["baseline_zero"]["mse"], s["methods"]["model_mlp"]["mse"]
        assert base == pytest.approx(np.mean(y_test**2), rel=1e-9)
        assert mse == pytest.approx(np.mean((pred - y_test) ** 2), rel=1e-6)
        assert mse == pytest.approx(e2e.trained[kind]["model_mse"], rel=1e-6)
        assert s["improvement_pct"] == pytest.approx(100 * (1 - mse / base), rel=1e-9)
        # the linear baseline: least squares on each band's training samples' raw features
        sq = []
        for band in (0, 1):
            train = (codes == TRAIN) & (meta["band"] == band)
            held = test & (meta["band"] == band)
            weight, bias = least_squares(X[train], y[train])
            lin = X[held].astype(np.float64) @ weight + bias
            sq.append((lin - y[held]) ** 2)
        assert s["methods"]["baseline_linear"]["mse"] == pytest.approx(
            np.mean(np.concatenate(sq)), rel=1e-4
        )
        assert s["n_samples"] == test.sum() == s["counts"]["test"]
        assert s["counts"]["train"] == (codes == TRAIN).sum()
        assert s["counts"]["val"] == (codes == VAL).sum()
        night = test & (meta["band"] == 0)
        assert s["by_band"]["night"]["methods"]["baseline_zero"]["mse"] == pytest.approx(
            np.mean(y[night].astype(np.float64) ** 2), rel=1e-9
        )
        assert s["by_band"]["night"]["n_samples"] + s["by_band"]["day"]["n_samples"] == test.sum()
        assert set(out["importance"][kind]) == set(GROUPS)
    test_days = split_codes(meta, params, e2e.cfg["split"], "day") == TEST
    assert out["splits"]["day"]["test_days"] == sorted(
        str(d) for d in np.unique(meta["date"][test_days])
    )
    assert "test_days" not in out["splits"]["space"]
    assert out["samples"]["grid_shape"] == [40, 36]


def test_evaluate_refuses_a_day_model_trained_with_another_day_run_gap(e2e, tmp_path) -> None:
    mlp = load_method(e2e.models["day"], METHODS)
    assert mlp.config["downscale"]["split"]["day_run_gap"] == 2  # the schema default
    cfg = {**e2e.cfg, "split": {**e2e.cfg["split"], "day_run_gap": 0}}
    with pytest.raises(LstfillError, match="day_run_gap 2, evaluated with 0"):
        steps.evaluate(
            e2e.samples, {"day": e2e.models["day"]}, cfg, tmp_path / "m.json", tmp_path / "e.png"
        )


def test_predict_map_is_window_mean_plus_predicted_deviation(e2e) -> None:
    with rasterio.open(e2e.map) as src:
        data = src.read()
        assert src.descriptions == ("night", "day")
        assert src.crs.to_epsg() == 4326
        tags = src.tags()
        band_tags = [src.tags(b) for b in (1, 2)]
        transform = src.transform
    assert data.shape == (2, 40, 36)
    assert tags["date"] == f"{e2e.day[:4]}-{e2e.day[4:6]}-{e2e.day[6:]}"
    assert [t["overpass_hour"] for t in band_tags] == ["1.5", "13.5"]
    assert [t["pixels"] for t in band_tags] == ["800", "800"]
    finite = np.isfinite(data)
    assert not finite[:, :, :7].any()  # sea strip (3 columns) and the windows touching it
    assert not finite[:, :4].any() and not finite[:, -4:].any() and not finite[:, :, -4:].any()
    assert finite[:, 4:36, 7:32].all()
    doy = int(israel.file_days(e2e.lst)[1][0])  # the map's day is the file's first
    assert str(israel.dates_of(2020, [doy])[0]) == tags["date"]
    obs = israel.read_israel_lst(e2e.lst, days=[doy])
    assert transform.almost_equals(obs.transform, precision=1e-9)
    assert transform.almost_equals(read_raster(e2e.dem)[1], precision=1e-9)
    dem = read_raster(e2e.dem)[0]
    mlp = load_method(e2e.models["space"], METHODS)
    for b, (band, hour) in enumerate((("night", 1.5), ("day", 13.5))):
        lst = obs.lst(band)[0]
        X, y, rc = window_samples(lst, dem, obs.lat, obs.lon, doy, hour)
        dev = mlp.predict(X)
        np.testing.assert_allclose(
            data[b, rc[:, 0], rc[:, 1]], X[:, COL["lst_avg"]] + dev, rtol=1e-6
        )
        rmse = float(np.sqrt(np.mean((dev.astype(np.float64) - y) ** 2)))
        zero = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
        assert e2e.scores[f"{band}_rmse_k"] == pytest.approx(rmse, rel=1e-5)
        assert e2e.scores[f"{band}_baseline_zero_rmse_k"] == pytest.approx(zero, rel=1e-9)
        assert tags[f"{band}_rmse_k"] == f"{e2e.scores[f'{band}_rmse_k']:.4f}"
    # one pixel by hand: its 9x9 mean plus the model's deviation
    lst = obs.lst("day")[0].astype(np.float64)
    X, _, rc = window_samples(obs.lst("day")[0], dem, obs.lat, obs.lon, doy, 13.5)
    i = int(np.flatnonzero((rc[:, 0] == 20) & (rc[:, 1] == 15))[0])
    dev = mlp.predict(X[i : i + 1])[0]
    assert data[1, 20, 15] == pytest.approx(lst[16:25, 11:20].mean() + dev, abs=1e-3)


def test_predict_map_needs_a_file_of_the_year(e2e, tmp_path) -> None:
    with pytest.raises(InputError, match="no LST file of 2019"):
        steps.predict(
            [e2e.lst], e2e.dem, e2e.models["space"], "20190105", False, tmp_path / "m.tif"
        )
    assert not (tmp_path / "m.tif").exists()


def test_load_method_refuses_another_model(tmp_path) -> None:
    path = tmp_path / "other.pt"
    save_checkpoint(
        path,
        model_name="gapfill_cnn",
        model_kwargs={},
        state_dict={},
        normalisation={},
        features={},
        config={},
    )
    with pytest.raises(InputError, match="gapfill_cnn"):
        load_method(path, METHODS)


def _train_space(e2e, cfg: dict, folder: Path, run_name: str) -> dict:
    """`steps.train` of the space split on the tiny region, every output under `folder`."""
    return steps.train(
        e2e.samples,
        cfg,
        "space",
        folder / "m.pt",
        folder / "c.png",
        folder / "work",
        folder / "run.json",
        run_name,
        progress=False,
    )


def test_train_logs_params_and_metrics_to_mlflow(e2e, tmp_path, monkeypatch) -> None:
    calls = install_fake_mlflow(monkeypatch)
    cfg = _cfg(
        model={"hidden": [16]},
        training={"epochs": 1, "batch_size": 256, "device": "cpu"},
        split=E2E_SPLIT,
        mlflow={"enabled": True, "tracking_uri": "file:///tmp/mlruns-x", "experiment": "ds"},
    )
    metrics = _train_space(e2e, cfg, tmp_path, "tracked")
    assert calls["uri"] == "file:///tmp/mlruns-x" and calls["experiment"] == "ds"
    assert calls["run_name"] == "tracked"
    assert calls["params"]["split_kind"] == "space"
    assert calls["params"]["model.hidden"] == "16" and calls["params"]["samples.radius"] == "4"
    assert calls["params"]["split.block_size"] == "10" and calls["params"]["n_days"] == "8"
    assert calls["metrics"] == {k: float(v) for k, v in metrics.items()}
    assert metrics["epochs_run"] == 1
    assert json.loads((tmp_path / "run.json").read_text())["run"] == "tracked"


def test_space_split_without_test_samples_is_an_error(e2e, tmp_path) -> None:
    cfg = _cfg(
        model={"hidden": [16]},
        training={"epochs": 1, "device": "cpu"},
        split={"block_size": 100},
    )
    with pytest.raises(LstfillError, match="block_size") as err:
        _train_space(e2e, cfg, tmp_path, "big")
    assert "no val, test samples" in str(err.value)
    assert not (tmp_path / "m.pt").exists() and not (tmp_path / "run.json").exists()
    with pytest.raises(LstfillError, match="block_size"):
        steps.evaluate(
            e2e.samples,
            {"space": e2e.models["space"]},
            cfg,
            tmp_path / "metrics.json",
            tmp_path / "e.png",
        )
    assert not (tmp_path / "metrics.json").exists()


def test_training_twice_gives_the_same_weights(e2e, tmp_path) -> None:
    """The initial weights come from training.seed: two fresh runs agree to the bit."""
    cfg = _cfg(
        model={"hidden": [16]},
        training={"epochs": 1, "batch_size": 256, "device": "cpu"},
        split=E2E_SPLIT,
    )
    weights = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        _train_space(e2e, cfg, tmp_path / name, name)
        weights.append(torch.load(tmp_path / name / "m.pt", weights_only=True)["state_dict"])
    for key, value in weights[0].items():
        assert torch.equal(value, weights[1][key]), key


def test_downscale_prediction_and_training_log_their_device(e2e, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    steps.predict(
        [e2e.lst], e2e.dem, e2e.models["space"], e2e.day, False, tmp_path / "map.tif", device="cpu"
    )
    assert _device_lines(caplog) == ["device: cpu (downscale.training.device is cpu)"]
    caplog.clear()
    steps.train(
        e2e.samples,
        e2e.cfg,
        "day",
        tmp_path / "m.pt",
        tmp_path / "c.png",
        tmp_path / "work",
        tmp_path / "run.json",
        "run",
        progress=False,
    )
    assert _device_lines(caplog) == ["device: cpu (downscale.training.device is cpu)"]


def _device_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("device: ")]
