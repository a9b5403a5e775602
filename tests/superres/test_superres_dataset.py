"""MODIS day scenes, patch pairs, day split and the super-resolution job end to end."""

import datetime as dt
import json
import logging

import numpy as np
import pytest
import rasterio
import torch
from scipy import ndimage

from lstfill import splits
from lstfill.errors import InputError
from lstfill.sources import modis
from lstfill.superres import dataset, inputs, steps

PIX = 1_111_950.5197665 / 1200.0
UL = (-20_015_109.354 + 1000 * PIX, 10_007_554.677 - 300 * PIX)


def _granules(folder, day: dt.date, n: int, seed: int, cloud: bool = False):
    """A MOD11A1 + MOD09GQ pair of an n x n km subset whose LST follows the NDVI; the fine
    truth is returned too."""
    rng = np.random.default_rng(seed)
    ndvi = ndimage.gaussian_filter(rng.uniform(0, 1, (4 * n, 4 * n)), 2.5)
    ndvi = (ndvi - ndvi.min()) / (ndvi.max() - ndvi.min()) * 0.8 + 0.1
    red = 0.1 * (1 - ndvi) / (1 + ndvi) / 0.1 * 0.05 + 0.03
    nir = red * (1 + ndvi) / (1 - ndvi)
    truth = (315 - 18 * ndvi + rng.normal(0, 0.2, ndvi.shape)).astype(np.float32)
    lst = truth.reshape(n, 4, n, 4).mean(axis=(1, 3))
    qc = np.zeros((n, n), np.uint8)
    qc250 = np.zeros((4 * n, 4 * n), np.uint16)
    if cloud:
        lst[: n // 2, : n // 2] = np.nan
        qc[: n // 2, : n // 2] = 2
        qc250[: 2 * n, : 2 * n] = 2
    lr = (UL[0] + n * PIX, UL[1] - n * PIX)
    l_path = modis.write_mod11a1(
        folder / modis.granule_name("MOD11A1", day, 18, 4),
        day,
        lst.astype(np.float32),
        qc,
        np.full((n, n), 10.5, np.float32),
        UL,
        lr,
    )
    r_path = modis.write_mod09gq(
        folder / modis.granule_name("MOD09GQ", day, 18, 4),
        day,
        red.astype(np.float32),
        nir.astype(np.float32),
        qc250,
        UL,
        lr,
    )
    return l_path, r_path, truth


def test_day_scene_round_trip_and_qc(tmp_path):
    l_path, r_path, _ = _granules(tmp_path, dt.date(2023, 7, 1), 16, 0, cloud=True)
    scene = inputs.build_day_scene(l_path, r_path)
    assert scene.factor == 4 and scene.lst.shape == (16, 16) and scene.ndvi.shape == (64, 64)
    assert np.isnan(scene.lst[:8, :8]).all() and np.isfinite(scene.lst[8:, 8:]).all()
    assert np.isnan(scene.ndvi[:32, :32]).all()  # MODLAND QA 2 (not produced) masked
    assert scene.fine_transform.a == pytest.approx(PIX / 4)
    path = inputs.write_day_scene(scene, tmp_path / "scene.nc")
    back = inputs.read_day_scene(path)
    np.testing.assert_array_equal(back.lst, scene.lst)
    np.testing.assert_array_equal(back.ndvi, scene.ndvi)
    assert back.date == scene.date and back.transform.almost_equals(scene.transform)
    assert inputs.modland_valid(np.array([0, 1, 2, 3, 4 | 1])).tolist() == [1, 1, 0, 0, 1]
    other_day = _granules(tmp_path / "b", dt.date(2023, 7, 2), 16, 1)[1]
    with pytest.raises(InputError, match="2023-07-02"):
        inputs.build_day_scene(l_path, other_day)
    (tmp_path / "bad.nc").write_text("not netcdf")
    with pytest.raises(InputError, match="bad.nc"):
        inputs.read_day_scene(tmp_path / "bad.nc")


def test_cut_patches_positions_and_clean_criterion():
    lst = np.arange(64, dtype=np.float32).reshape(8, 8)
    ndvi = np.zeros((32, 32), np.float32)
    scene = inputs.DayScene(dt.date(2023, 1, 1), lst.copy(), ndvi, None, "", 4)  # type: ignore[arg-type]
    scene.lst[0, 5] = np.nan
    pl, pn, origins = dataset.cut_patches(scene, 4, 2, 0.0, 0.0)
    assert (0, 4) not in origins and (0, 2) not in origins and (0, 0) in origins
    assert len(origins) == 9 - 2
    k = origins.index((2, 4))
    np.testing.assert_array_equal(pl[k], lst[2:6, 4:8])  # values at known positions
    assert pn[k].shape == (16, 16)
    pl2, _, origins2 = dataset.cut_patches(scene, 4, 2, 0.1, 0.0)
    k = origins2.index((0, 4))
    assert np.isfinite(pl2[k]).all() and pl2[k][0, 1] in (lst[0, 4], lst[0, 6], lst[1, 5])


def test_split_days_is_disjoint_and_respects_eligibility():
    dates = [dt.date(2023, 6, 1) + dt.timedelta(days=i) for i in range(10)]
    valid = [1.0, 0.2, 0.9, 0.3, 1.0, 0.1, 0.8, 1.0, 0.4, 0.95]
    patches = [5, 0, 3, 0, 6, 0, 2, 4, 0, 5]
    sp = splits.split_days_by_share(dates, valid, patches, n_val=2, n_test=3, seed=3)
    sets = [set(sp[k]) for k in ("train", "val", "test")]
    assert sum(len(s) for s in sets) == 10 and len(set.union(*sets)) == 10
    for d in sp["test"]:
        assert valid[dates.index(dt.date.fromisoformat(d))] >= 0.5
    for d in sp["val"]:
        assert patches[dates.index(dt.date.fromisoformat(d))] > 0
    assert sp == splits.split_days_by_share(dates, valid, patches, n_val=2, n_test=3, seed=3)
    with pytest.raises(InputError, match="superres.split"):
        splits.split_days_by_share(dates, valid, patches, n_val=2, n_test=8, seed=0)


@pytest.fixture(scope="module")
def sr_region(tmp_path_factory):
    root = tmp_path_factory.mktemp("sr")
    cfg = {
        "max_lst_error_k": 2,
        "max_modland_qa": 1,
        "patch_size": 8,
        "stride": 8,
        "max_invalid_lst": 0.0,
        "max_invalid_ndvi": 0.0,
        "split": {"val_days": 1, "test_days": 1, "min_valid_test": 0.5, "seed": 0},
        "crop": None,
        "model": {"channels": [8, 16, 32], "residual": True},
        "psf_mtf": 0.1,
        "variants": {"sifnn1": {"alpha": 0.99, "gamma": -0.5}},
        "training": {"epochs": 2, "batch_size": 4, "seed": 0, "device": "cpu"},
        "tiles": {"tile": 16, "overlap": 4},
        "baselines": {
            "tsharp_basis": "ndvi",
            "min_t": 270,
            "dms_estimators": 3,
            "dms_moving_window": 0,
        },
    }
    scenes, truths = [], []
    for i in range(5):
        day = dt.date(2023, 7, 1) + dt.timedelta(days=i)
        lp, rp, truth = _granules(root / "raw", day, 24, i, cloud=i == 1)
        scenes.append(steps.scene(lp, rp, cfg, root / f"scene_{i}.nc"))
        tp = root / f"truth_{i}.tif"
        with rasterio.open(
            tp,
            "w",
            driver="GTiff",
            height=96,
            width=96,
            count=1,
            dtype="float32",
            crs=modis.sinusoidal_crs(),
            transform=inputs.read_day_scene(scenes[-1]).fine_transform,
        ) as dst:
            dst.write(truth[None])
        truths.append(tp)
    info = steps.dataset(scenes, cfg, root / "patches.nc", root / "split.json")
    model = steps.train(
        root / "patches.nc",
        cfg,
        "sifnn1",
        root / "m.pt",
        root / "curve.png",
        root / "work",
        progress=False,
    )
    return {
        "root": root,
        "cfg": cfg,
        "scenes": scenes,
        "truths": truths,
        "info": info,
        "model": model,
    }


def test_dataset_normalises_on_training_patches_only(sr_region):
    pairs, norm = dataset.read_patch_pairs(sr_region["root"] / "patches.nc")
    info = sr_region["info"]
    assert info["patches"]["val"] > 0 and info["patches"]["train"] > 0
    train = pairs.subset(splits.TRAIN)
    assert norm["lst_mean"] == pytest.approx(float(train.lst.mean()), rel=1e-6)
    assert norm["ndvi_std"] == pytest.approx(float(train.ndvi.std()), rel=1e-5)
    days = {k: {str(d) for d in pairs.subset(v).date} for k, v in splits.SPLIT_CODES.items()}
    assert not (days["train"] & days["val"]) and not (days["train"] & days["test"])
    assert days["test"] <= set(info["test"])


def test_product_has_tags_and_energy_residual(sr_region, tmp_path):
    out = tmp_path / "p.tif"
    resid = steps.predict(sr_region["scenes"][1], sr_region["root"] / "m.pt", "auto", out)
    assert 0 <= resid < 2.0
    with rasterio.open(out) as src:
        arr = src.read(1)
        tags = src.tags()
        assert src.res[0] == pytest.approx(PIX / 4)
    assert float(tags["energy_residual_rms_k"]) == pytest.approx(resid, abs=1e-4)
    assert np.isnan(arr[:48, :48]).all() and np.isfinite(arr[48:, 48:]).all()


def test_evaluate_scores_every_method_on_the_same_pixels(sr_region, tmp_path):
    r = sr_region
    res = steps.evaluate(
        r["scenes"],
        r["truths"],
        r["root"] / "split.json",
        {"sifnn1": r["root"] / "m.pt"},
        r["cfg"],
        tmp_path / "metrics.json",
        tmp_path / "fig.png",
    )
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert set(m["methods"]) == {
        "model_sifnn1",
        "baseline_bicubic",
        "baseline_tsharp",
        "baseline_dms",
    }
    n = {v["n_pixels"] for v in m["methods"].values()}
    assert len(n) == 1 and n.pop() > 0
    for name, v in m["methods"].items():
        for key in ("rmse", "bias", "psnr", "ssim", "gssim", "energy_residual_rms_k"):
            assert v[key] is not None, (name, key)
    # LST is linear in NDVI here: TsHARP recovers the detail far better than bicubic
    assert m["methods"]["baseline_tsharp"]["rmse"] < 0.6 * m["methods"]["baseline_bicubic"]["rmse"]
    assert m["methods"]["baseline_bicubic"]["frr"] == pytest.approx(0.0, abs=1e-9)
    assert res["n_days"] == 1 and (tmp_path / "fig.png").stat().st_size > 1000


def test_all_cloud_day_gets_an_empty_product_and_bad_inputs_name_the_file(sr_region, tmp_path):
    scene = inputs.read_day_scene(sr_region["scenes"][0])
    scene.lst[:] = np.nan
    cloudy = inputs.write_day_scene(scene, tmp_path / "cloudy.nc")
    out = tmp_path / "cloudy.tif"
    assert np.isnan(steps.predict(cloudy, sr_region["root"] / "m.pt", "auto", out))
    with rasterio.open(out) as src:
        assert np.isnan(src.read(1)).all()
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="corrupt.pt"):
        steps.predict(sr_region["scenes"][0], tmp_path / "corrupt.pt", "auto", tmp_path / "x.tif")
    assert not (tmp_path / "x.tif").exists()
    broken = tmp_path / "MOD11A1.A2023182.h18v04.061.2023183000000.hdf"
    broken.write_bytes(b"\x0e\x03\x13\x01" + b"\0" * 100)
    with pytest.raises(InputError, match=broken.name):
        steps.scene(broken, broken, sr_region["cfg"], tmp_path / "s.nc")
    assert not (tmp_path / "s.nc").exists()


def test_training_twice_gives_the_same_weights(sr_region, tmp_path):
    """The initial weights come from training.seed: a second fresh run agrees to the bit."""
    root = sr_region["root"]
    steps.train(
        root / "patches.nc",
        sr_region["cfg"],
        "sifnn1",
        tmp_path / "m.pt",
        tmp_path / "curve.png",
        tmp_path / "work",
        progress=False,
    )
    first = torch.load(root / "m.pt", weights_only=True)
    again = torch.load(tmp_path / "m.pt", weights_only=True)
    key = next(k for k in first if "state" in k)
    for name, value in first[key].items():
        assert torch.equal(value, again[key][name]), name


def test_superres_prediction_logs_its_device(sr_region, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    steps.predict(sr_region["scenes"][0], sr_region["root"] / "m.pt", "cpu", tmp_path / "p.tif")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("device:")]
    assert lines == ["device: cpu (superres.training.device is cpu)"]
