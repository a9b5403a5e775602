"""The gap-fill job end to end on small synthetic cubes: dataset, training (and resuming),
filling a cube into a product COG, artificial-gap evaluation, and bad inputs."""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import xarray as xr
from affine import Affine
from fakes.cubes import demo_region_config, write_fake_cube
from scipy import ndimage

from lstfill.config import validate_config
from lstfill.errors import InputError
from lstfill.gapfill import steps
from lstfill.gapfill.dataset import read_patches
from lstfill.gapfill.features import FeatureSet
from lstfill.grid import Grid
from lstfill.splits import TRAIN, VAL, window_inside
from lstfill.training.checkpoint import load_checkpoint, save_checkpoint
from lstfill.training.rng import seed_everything

torch.set_num_threads(1)

SIZE = 32
GRID = Grid("EPSG:32632", Affine(70.0, 0, 675000.0, 0, -70.0, 5242200.0), SIZE, SIZE)
NUMERIC = ["b04", "t2m", "elevation", "doy_sin", "doy_cos", "tod_sin", "tod_cos", "lst_pattern"]
# clear share and UTC hour of each acquisition (one a day)
ACQ = [
    (1.00, 10),
    (0.45, 11),
    (0.95, 9),
    (0.60, 21),
    (0.85, 10),
    (0.40, 12),
    (0.98, 10),
    (0.70, 11),
    (0.50, 22),
    (0.90, 10),
]


def _config(**training) -> dict:
    raw = {
        "regions": demo_region_config(GRID),
        "gapfill": {
            "features": {"numeric": NUMERIC, "categorical": ["water"]},
            "model": {"filters": [8, 8, 8, 8], "dense": 8},
            "training": {
                "epochs": 2,
                "batch_size": 128,
                "learning_rate": 0.003,
                "device": "cpu",
                **training,
            },
            "max_patches_per_acquisition": 200,
            "mc_passes": 2,
            "context": {
                "base": 4,
                "depth": 2,
                "crop": 16,
                "sigmas": [2, 4],
                "samples_per_epoch": 32,
                "val_samples": 2,
                "tile": 32,
                "overlap": 4,
                "training": {"epochs": 2, "batch_size": 8},
            },
            "split": {"test_days": 2, "val_days": 2, "min_valid_test": 0.5, "block_size": 8},
            "evaluation": {"max_pairs": 6, "hgb_max_iter": 20},
        },
    }
    return validate_config(raw)["gapfill"]


def _static() -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    elev = (700 + 800 * yy + 150 * np.sin(5 * xx)).astype(np.float32)
    water = np.zeros((SIZE, SIZE), np.uint8)
    water[3:6, 24:29] = 1
    return elev, water


def write_cube(
    folder: Path, k: int, clear: float, hour: int, *, drop: tuple[str, ...] = ()
) -> Path:
    """Acquisition k's cube on the 70 m grid, named by its acquisition id."""
    rng = np.random.default_rng(100 + k)
    elev, water = _static()
    when = dt.datetime(2023, 7, 1 + k, hour, 17, 5)
    night = hour >= 18
    veg = ndimage.gaussian_filter(np.random.default_rng(7).uniform(size=(SIZE, SIZE)), 2)
    t_air = 289 + 3 * np.sin(k) - 0.0065 * (elev - 700) - (7 if night else 0)
    t2m = (t_air + rng.normal(0, 0.2, elev.shape)).astype(np.float32)
    b04 = (0.03 + 0.2 * veg + rng.normal(0, 0.005, elev.shape)).astype(np.float32)
    truth = t_air + (2 if night else 12 - 30 * (b04 - 0.1)) + rng.normal(0, 0.3, elev.shape)
    if clear >= 1:
        ok = np.ones(elev.shape, bool)
    elif clear <= 0:
        ok = np.zeros(elev.shape, bool)
    else:
        field = ndimage.gaussian_filter(rng.normal(size=elev.shape), 3.0)
        ok = field <= np.quantile(field, clear)
    ok &= water == 0
    lst = np.where(ok, truth, np.nan).astype(np.float32)
    layers = {
        "lst": lst,
        "lst_valid": ok.astype(np.uint8),
        "lst_err": np.where(ok, 0.8 + 0.01 * k, np.nan).astype(np.float32),
        "b04": b04,
        "t2m": t2m,
    }
    acquisition = f"{when:%Y%m%dT%H%M%S}"
    return write_fake_cube(
        folder / f"{acquisition}.nc",
        GRID,
        when,
        layers,
        {"elevation": elev, "water": water},
        drop=drop,
        attrs={"acquisition": acquisition},
    )


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    """Cubes, dataset, split and a trained checkpoint, shared by the tests of this file."""
    root = tmp_path_factory.mktemp("gapfill")
    cubes_dir = root / "cubes"
    cubes_dir.mkdir()
    cubes = [write_cube(cubes_dir, k, c, h) for k, (c, h) in enumerate(ACQ)]
    cfg = _config()
    ds_path, split_path = root / "patches.nc", root / "split.json"
    steps.dataset(cubes, cfg, ds_path, split_path)
    ckpt, curve = root / "model.pt", root / "curve.png"
    seed_everything(0)
    steps.train(ds_path, cubes, split_path, cfg, ckpt, curve, root / "work")
    return {
        "root": root,
        "cubes": cubes,
        "cfg": cfg,
        "dataset": ds_path,
        "split": split_path,
        "checkpoint": ckpt,
        "curve": curve,
    }


def test_build_dataset_split_and_patches(region):
    split = json.loads(region["split"].read_text())
    ids = [p.stem for p in region["cubes"]]
    days = {name: {a[:8] for a in split[name]} for name in ("train", "val", "test")}
    assert len(days["test"]) == 2 and len(days["val"]) == 2 and len(days["train"]) == 6
    assert sorted(split["train"] + split["val"] + split["test"]) == ids
    clear = dict(zip(ids, [c for c, _ in ACQ], strict=True))
    assert all(clear[a] >= 0.5 for a in split["test"])
    assert split["block_size"] == 8

    splits, feats, norm, maps, attrs = read_patches(region["dataset"])
    assert feats == FeatureSet(tuple(NUMERIC), ("water",))
    assert set(splits) == {"train", "val"}
    blocks = maps["block_split"]
    assert blocks.shape == (SIZE, SIZE)
    for name, code, allowed_ids in (("train", TRAIN, split["train"]), ("val", VAL, split["val"])):
        smp = splits[name]
        assert len(smp) > 0
        # samples only from their split's acquisitions, with windows wholly in their blocks
        assert {ids[i] for i in np.unique(smp.acquisition)} <= set(allowed_ids)
        assert window_inside(blocks, code, 2)[smp.row, smp.col].all()
        assert np.bincount(smp.acquisition).max() <= 200
        assert np.isfinite(smp.target).all()
    assert json.loads(attrs["acquisitions"]) == ids
    assert json.loads(attrs["patch_size"]) == 5
    # normalisation from the training patches' centres
    t2m = splits["train"].numeric[:, NUMERIC.index("t2m"), 2, 2]
    assert norm.mean["t2m"] == pytest.approx(float(t2m.mean()), rel=1e-5)
    assert norm.target_mean == pytest.approx(float(splits["train"].target.mean()), rel=1e-5)
    assert maps["pattern_day"].shape == maps["pattern_night"].shape == (SIZE, SIZE)


def test_train_writes_checkpoint_and_curve(region):
    state = load_checkpoint(region["checkpoint"])
    assert state["model_name"] == "gapfill_patch_cnn"
    assert state["features"] == {"numeric": NUMERIC, "categorical": ["water"]}
    assert len(state["extra"]["history"]) == 2
    assert state["extra"]["calibration"]["k"] > 0
    assert state["extra"]["split"] == json.loads(region["split"].read_text())
    assert region["curve"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (region["root"] / "work" / "last.pt").is_file()


def _read_product(path: Path) -> tuple[np.ndarray, tuple, dict, rasterio.Affine, str]:
    with rasterio.open(path) as src:
        return src.read(), src.descriptions, src.tags(), src.transform, src.crs.to_string()


def test_fill_cube_product(region, tmp_path):
    cube = region["cubes"][5]  # 40 % clear
    out = tmp_path / "product.tif"
    info = steps.predict(cube, region["checkpoint"], out)
    bands, names, tags, transform, crs = _read_product(out)
    assert names == ("lst", "filled", "uncertainty_90")
    assert bands.shape == (3, SIZE, SIZE) and bands.dtype == np.float32
    assert transform == GRID.transform and crs == "EPSG:32632"
    with xr.open_dataset(cube) as ds:
        lst = ds["lst"].values[0]
        valid = ds["lst_valid"].values[0] == 1
        err = ds["lst_err"].values[0]
    _, water = _static()
    land = water == 0
    lst_b, filled, unc = bands
    np.testing.assert_array_equal(lst_b[valid], lst[valid])  # observations kept exactly
    assert np.isfinite(lst_b[land]).all()
    assert np.isnan(bands[:, ~land]).all()  # water is nodata in every band
    np.testing.assert_array_equal(filled[land], (~valid[land]).astype(np.float32))
    np.testing.assert_allclose(unc[valid], 1.645 * err[valid], rtol=1e-6)
    gaps = land & ~valid
    assert (unc[gaps] > 0).all() and np.isfinite(unc[gaps]).all()
    assert info == {"filled": int(gaps.sum()), "land": int(land.sum())}
    assert int(tags["filled_pixels"]) == int(gaps.sum())
    assert tags["acquisition"] == cube.stem
    # filled values are plausible LST, close to the scene's observed range
    assert np.nanmin(lst) - 15 < lst_b[gaps].min() and lst_b[gaps].max() < np.nanmax(lst) + 15


def test_fill_cube_chunked_prediction_is_the_same(region, tmp_path):
    """Row chunks change memory use, never values (deterministic model: mc_passes 0)."""
    state = load_checkpoint(region["checkpoint"])
    state["config"]["hyper"]["mc_passes"] = 0
    keys = (
        "model_name",
        "model_kwargs",
        "state_dict",
        "normalisation",
        "features",
        "config",
        "extra",
    )
    save_checkpoint(tmp_path / "det.pt", **{k: state[k] for k in keys})
    cube = region["cubes"][1]
    steps.predict(cube, tmp_path / "det.pt", tmp_path / "a.tif", chunk_rows=5)
    steps.predict(cube, tmp_path / "det.pt", tmp_path / "b.tif")
    a, b = _read_product(tmp_path / "a.tif")[0], _read_product(tmp_path / "b.tif")[0]
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, atol=1e-4, equal_nan=True)
    assert (a[1] == 1).sum() > 100  # there were gaps to fill


def test_fill_all_cloud_cube_warns_and_fills(region, tmp_path, caplog):
    cube = write_cube(tmp_path, 20, 0.0, 10)
    out = tmp_path / "cloudy.tif"
    with caplog.at_level(logging.WARNING, logger="lstfill.gapfill.steps"):
        steps.predict(cube, region["checkpoint"], out)
    assert any(
        "no clear pixel" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records
    )
    bands = _read_product(out)[0]
    land = _static()[1] == 0
    assert np.isfinite(bands[0][land]).all()
    assert (bands[1][land] == 1).all()
    assert np.isfinite(bands[2][land]).all() and (bands[2][land] > 0).all()
    assert np.isnan(bands[:, ~land]).all()


def test_fill_cube_lacking_a_feature(region, tmp_path):
    cube = write_cube(tmp_path, 21, 0.7, 10, drop=("b04",))
    out = tmp_path / "out" / "product.tif"
    out.parent.mkdir()
    with pytest.raises(InputError) as e:
        steps.predict(cube, region["checkpoint"], out)
    assert "b04" in str(e.value) and cube.name in str(e.value)
    assert list(out.parent.iterdir()) == []  # no product, no temporary file


def test_fill_cube_corrupt_or_missing_inputs(region, tmp_path):
    good = region["cubes"][0].read_bytes()
    corrupt = tmp_path / "20230801T100000.nc"
    corrupt.write_bytes(good[: len(good) // 3])
    out = tmp_path / "product.tif"
    with pytest.raises(InputError) as e:
        steps.predict(corrupt, region["checkpoint"], out)
    assert corrupt.name in str(e.value)
    assert not out.exists()
    with pytest.raises(InputError, match="missing.pt"):
        steps.predict(region["cubes"][0], tmp_path / "missing.pt", out)
    with pytest.raises(InputError, match="gone.nc"):
        steps.predict(tmp_path / "gone.nc", region["checkpoint"], out)
    assert not out.exists()


def test_evaluate_region_metrics(region, tmp_path):
    metrics_out, fig = tmp_path / "metrics.json", tmp_path / "evaluation.png"
    returned = steps.evaluate(
        region["cubes"], region["checkpoint"], region["split"], region["cfg"], metrics_out, fig
    )
    m = json.loads(metrics_out.read_text())
    assert set(m["methods"]) == {
        "model_patch_cnn",
        "baseline_climatology_anomaly",
        "baseline_mean_lapse",
        "baseline_temporal",
        "baseline_hgb",
    }
    assert m["selected_method"] == "patch_cnn"
    split = json.loads(region["split"].read_text())
    assert 0 < m["n_pairs"] <= 6 and m["n_hidden_pixels"] > 0
    assert {p["target"] for p in m["pairs"]} <= set(split["test"])
    assert sum(p["n_hidden"] for p in m["pairs"]) == m["n_hidden_pixels"]
    for name, res in m["methods"].items():
        overall = res["overall"]
        assert overall["n"] == m["n_hidden_pixels"], name
        for key in ("rmse", "mae", "bias", "r2"):
            assert np.isfinite(overall[key]), (name, key)
        assert 0 <= overall["rmse"] < 15, name
        assert overall["mae"] <= overall["rmse"] + 1e-9
        test_blocks = res["subsets"]["test_blocks"]
        assert 0 < test_blocks["n_pixels"] < overall["n"], name
        assert test_blocks["n"] == test_blocks["n_pixels"]
    assert 0.0 <= m["coverage_90"] <= 1.0
    assert m["coverage_90"] == m["methods"]["model_patch_cnn"]["coverage_90"]
    assert m["split"] == {k: split[k] for k in ("train", "val", "test")}
    assert returned["n_hidden_pixels"] == m["n_hidden_pixels"]
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_resumes_after_interruption(region, tmp_path, caplog):
    work = tmp_path / "work"
    first, second = tmp_path / "m1.pt", tmp_path / "m2.pt"
    args = (region["dataset"], region["cubes"], region["split"])
    seed_everything(0)
    steps.train(*args, _config(epochs=1), first, tmp_path / "c1.png", work)
    h1 = load_checkpoint(first)["extra"]["history"]
    assert len(h1) == 1
    assert torch.load(work / "last.pt", weights_only=True)["epoch"] == 1
    with caplog.at_level(logging.INFO, logger="lstfill.training"):
        steps.train(*args, _config(epochs=2), second, tmp_path / "c2.png", work)
    assert any("resuming from epoch 1" in r.getMessage() for r in caplog.records)
    h2 = load_checkpoint(second)["extra"]["history"]
    assert [h["epoch"] for h in h2] == [1, 2]
    assert h2[0] == h1[0]
    assert torch.load(work / "last.pt", weights_only=True)["epoch"] == 2
    # an interrupted-and-resumed run ends where an uninterrupted one does
    full = load_checkpoint(region["checkpoint"])["extra"]["history"]
    for a, b in zip(h2, full, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)


def _other_features(cfg: dict) -> None:
    cfg["features"]["numeric"] = ["t2m", "elevation"]


def _other_patch_size(cfg: dict) -> None:
    cfg["patch_size"] = 3
    cfg["model"]["filters"] = [8, 8]


@pytest.mark.parametrize(
    ("change", "named"),
    [(_other_features, "features"), (_other_patch_size, "patch")],
    ids=["features", "patch_size"],
)
def test_train_refuses_a_dataset_built_otherwise(region, tmp_path, change, named):
    """A config whose features or patch size differ from the dataset's trains nothing."""
    cfg = copy.deepcopy(region["cfg"])
    change(cfg)
    with pytest.raises(InputError, match=named):
        steps.train(
            region["dataset"],
            region["cubes"],
            region["split"],
            cfg,
            tmp_path / "m.pt",
            tmp_path / "c.png",
            tmp_path / "w",
        )
    assert not (tmp_path / "m.pt").exists()


def test_build_dataset_lacking_feature_names_it(tmp_path):
    cubes = [write_cube(tmp_path, k, c, h, drop=("t2m",)) for k, (c, h) in enumerate(ACQ[:4])]
    with pytest.raises(InputError, match="t2m"):
        steps.dataset(cubes, _config(), tmp_path / "p.nc", tmp_path / "s.json")
    assert not (tmp_path / "p.nc").exists() and not (tmp_path / "s.json").exists()


def test_gapfill_prediction_logs_its_device(region, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    caplog.set_level(logging.INFO)
    steps.predict(region["cubes"][1], region["checkpoint"], tmp_path / "p.tif", device="auto")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("device: ")]
    assert lines == [
        "device: cpu (CUDA not available; gapfill.training.device is auto, so falling back "
        "to the CPU)"
    ]
    assert (tmp_path / "p.tif").exists()


@pytest.fixture(scope="module")
def context_model(region):
    """The context U-Net trained on the region's cubes and split."""
    root = region["root"]
    ckpt = root / "context.pt"
    seed_everything(0)
    steps.train(
        None,
        region["cubes"],
        region["split"],
        region["cfg"],
        ckpt,
        root / "context_curve.png",
        root / "context_work",
        progress=False,
        method="context",
    )
    return ckpt


def test_context_method_trains_and_is_calibrated(region, context_model):
    state = load_checkpoint(context_model)
    assert state["model_name"] == "context_unet"
    halfwidths = state["extra"]["halfwidth90"]
    assert len(halfwidths) > 1 and all(h > 0 for h in halfwidths)
    assert halfwidths == sorted(halfwidths)  # wider far from clear pixels
    assert state["extra"]["split"] == json.loads(region["split"].read_text())
    assert (region["root"] / "context_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_train_refuses_an_unknown_method_or_a_cnn_without_dataset(region, tmp_path):
    args = (region["cubes"], region["split"], region["cfg"], tmp_path / "m.pt", tmp_path / "c.png")
    with pytest.raises(InputError, match="unknown gap-fill method 'kriging'"):
        steps.train(region["dataset"], *args, tmp_path / "w", method="kriging")
    with pytest.raises(InputError, match="patch dataset"):
        steps.train(None, *args, tmp_path / "w")
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("configured", ["auto", "patch_cnn", "context"])
def test_select_names_the_validation_winner_or_the_configured_method(
    region, context_model, tmp_path, configured
):
    cfg = copy.deepcopy(region["cfg"])
    cfg["method"] = configured
    out = tmp_path / "selection.json"
    models = [region["checkpoint"], context_model]
    returned = steps.select(region["cubes"], models, region["split"], cfg, out)
    sel = json.loads(out.read_text())
    assert sel == json.loads(json.dumps(returned))
    assert set(sel["validation"]) == {"patch_cnn", "context"}
    split = json.loads(region["split"].read_text())
    assert sel["validation_pairs"] > 0
    scores = {k: v["rmse"] for k, v in sel["validation"].items()}
    assert all(np.isfinite(v) and v > 0 for v in scores.values())
    expected = min(scores, key=scores.get) if configured == "auto" else configured
    assert sel["method"] == expected
    assert sel["checkpoint"] == {"patch_cnn": "model.pt", "context": "context.pt"}[expected]
    assert len(split["val"]) == 2


def test_context_product_reads_the_region_and_keeps_observations(region, context_model, tmp_path):
    selection = tmp_path / "selection.json"
    selection.write_text(json.dumps({"method": "context", "checkpoint": "context.pt"}))
    cube = region["cubes"][1]  # 45 % clear
    out = tmp_path / "p.tif"
    models = [region["checkpoint"], context_model]
    steps.predict_selected(cube, models, selection, out, region["cubes"])
    with rasterio.open(out) as src:
        lst, filled, half = src.read()
        assert src.tags()["method"] == "context"
        assert src.tags()["checkpoint"] == "context.pt"
    with xr.open_dataset(cube) as ds:
        observed = ds["lst"].values[0]
    visible = np.isfinite(observed)
    assert np.array_equal(lst[visible], observed[visible])
    land = np.isfinite(lst)
    assert (filled[land & ~visible] == 1).all() and (filled[visible] == 0).all()
    assert 250 < np.nanmin(lst) and np.nanmax(lst) < 340
    assert (half[land & ~visible] > 0).all()
    with pytest.raises(InputError, match="other cubes"):
        steps.predict_selected(cube, models, selection, tmp_path / "q.tif")
    assert not (tmp_path / "q.tif").exists()
    selection.write_text(json.dumps({"method": "context", "checkpoint": "other.pt"}))
    with pytest.raises(InputError, match="other.pt"):
        steps.predict_selected(cube, models, selection, tmp_path / "q.tif", region["cubes"])


def test_evaluate_scores_both_methods_on_the_same_pixels(region, context_model, tmp_path):
    selection = tmp_path / "selection.json"
    selection.write_text(json.dumps({"method": "context", "checkpoint": "context.pt", "rule": "x"}))
    metrics_out = tmp_path / "metrics.json"
    steps.evaluate(
        region["cubes"],
        [region["checkpoint"], context_model],
        region["split"],
        region["cfg"],
        metrics_out,
        tmp_path / "fig.png",
        selection=selection,
    )
    m = json.loads(metrics_out.read_text())
    assert {"model_patch_cnn", "model_context", "baseline_climatology_anomaly"} <= set(m["methods"])
    assert {v["overall"]["n"] for v in m["methods"].values()} == {m["n_hidden_pixels"]}
    assert m["selected_method"] == "context" and m["selection"]["rule"] == "x"
    assert m["coverage_90"] == m["methods"]["model_context"]["coverage_90"]
    assert set(m["calibration"]) == {"patch_cnn", "context"}
