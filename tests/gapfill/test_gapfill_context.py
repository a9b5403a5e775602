"""The context gap-fill model: shapes, learning, no leakage, persistence and intervals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from affine import Affine
from scipy import ndimage

from lstfill.gapfill.features import FeatureSet
from lstfill.gapfill.inputs import LstSeries
from lstfill.gapfill.method import METHODS
from lstfill.gapfill.method.context import TRAINING, ContextConfig, ContextFiller
from lstfill.gapfill.model import ContextUNet
from lstfill.grid import Grid
from lstfill.method import load_method
from lstfill.training.checkpoint import load_checkpoint, save_checkpoint
from lstfill.training.settings import TrainConfig

H, W, T = 28, 26, 14
TARGET = 3
TINY = {
    "base": 4,
    "depth": 2,
    "crop": 16,
    "sigmas": (2.0, 6.0),
    "samples_per_epoch": 32,
    "val_samples": 2,
    "training": {"epochs": 6, "batch_size": 8, "learning_rate": 5e-3, "device": "cpu"},
}


def _series(seed: int = 0) -> LstSeries:
    """LST = per-date offset + per-date gain x smooth pattern + noise; cloud blobs on odd dates;
    the first row is water (not land)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    pattern = 3.0 * np.sin(yy / 5.0) + 2.0 * np.cos(xx / 4.0) + 0.05 * yy
    lst = np.empty((T, H, W), dtype=np.float32)
    for t in range(T):
        gain = 1.0 + 0.1 * rng.standard_normal()
        lst[t] = 295.0 + 8.0 * rng.random() + gain * pattern + 0.2 * rng.standard_normal((H, W))
        if t % 2 == 1:
            noise = ndimage.gaussian_filter(rng.standard_normal((H, W)), 3.0)
            lst[t][noise > np.quantile(noise, 0.6)] = np.nan
    land = np.ones((H, W), dtype=bool)
    land[0] = False
    lst[:, 0] = np.nan
    times = np.datetime64("2020-07-01T12:00:00") + np.arange(T) * np.timedelta64(1, "D")
    grid = Grid("EPSG:32633", Affine(100.0, 0.0, 500000.0, 0.0, -100.0, 5200000.0), W, H)
    elevation = (1000.0 + 10.0 * yy).astype(np.float32)
    return LstSeries(times, lst, grid, static={"elevation": elevation}, land=land, source="syn")


FEATURES = FeatureSet(("elevation", "doy_sin", "lst_pattern"))


def _hidden(series: LstSeries, t: int) -> np.ndarray:
    """A 9x10 block of clear land pixels of acquisition t."""
    hidden = np.zeros((H, W), dtype=bool)
    hidden[8:17, 6:16] = True
    return hidden & series.valid[t]


def _fit(series: LstSeries, tmp_path, name: str) -> ContextFiller:
    torch.set_num_threads(1)
    train = [t for t in range(T) if t not in (TARGET, 12, 13)]
    allowed = np.ones(T, dtype=bool)
    allowed[TARGET] = False
    filler = ContextFiller(FEATURES, **TINY)
    filler.fit((series, train, [12, 13], allowed), tmp_path / name, progress=False)
    return filler


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[LstSeries, ContextFiller]:
    series = _series()
    return series, _fit(series, tmp_path_factory.mktemp("ctx"), "a")


@pytest.mark.parametrize(("h", "w"), [(37, 23), (9, 50), (1, 1)])
def test_unet_any_shape(h: int, w: int) -> None:
    torch.manual_seed(0)
    net = ContextUNet(5, base=4, depth=3)
    out = net(torch.randn(2, 5, h, w))
    assert out.shape == (2, 1, h, w)
    assert torch.isfinite(out).all()


def test_beats_scene_mean(trained) -> None:
    series, filler = trained
    hidden = _hidden(series, TARGET)
    result = filler.fill(series.with_hidden(TARGET, hidden), TARGET)
    truth = series.lst[TARGET][hidden]
    rmse = float(np.sqrt(np.mean((result.lst[hidden] - truth) ** 2)))
    visible = series.valid[TARGET] & ~hidden
    mean_rmse = float(np.sqrt(np.mean((series.lst[TARGET][visible].mean() - truth) ** 2)))
    assert rmse < 0.5 * mean_rmse
    assert np.isfinite(result.lst[series.land]).all()
    assert np.isnan(result.lst[~series.land]).all()
    # observations are kept where visible
    np.testing.assert_array_equal(result.lst[visible], series.lst[TARGET][visible])


def test_no_leakage_of_hidden_truth(trained, tmp_path) -> None:
    series, filler = trained
    hidden = _hidden(series, TARGET)
    outputs = []
    for value in (300.0, 1000.0):
        s = series.with_hidden(TARGET, np.zeros((H, W), dtype=bool))
        s.lst[TARGET][hidden] = value
        outputs.append(filler.fill(s.with_hidden(TARGET, hidden), TARGET).lst)
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_training_never_reads_excluded_target(tmp_path) -> None:
    """The target is outside train, val and history: its LST cannot change the weights."""
    states = []
    for value in (300.0, 1000.0):
        s = _series()
        s.lst[TARGET][s.land] = value
        f = _fit(s, tmp_path, f"v{int(value)}")
        states.append(f.state()["state_dict"])
    for k in states[0]:
        torch.testing.assert_close(states[0][k], states[1][k])


def test_state_round_trip(trained, tmp_path) -> None:
    series, filler = trained
    hidden = _hidden(series, TARGET)
    s = series.with_hidden(TARGET, hidden)
    path = tmp_path / "ctx.pt"
    save_checkpoint(path, **filler.state())
    again = ContextFiller.from_state(load_checkpoint(path))
    a, b = filler.fill(s, TARGET), again.fill(s, TARGET)
    np.testing.assert_array_equal(a.lst, b.lst)
    np.testing.assert_array_equal(a.halfwidth90, b.halfwidth90)
    assert again.cfg == filler.cfg
    assert again.features == filler.features
    assert isinstance(load_method(path, METHODS), ContextFiller)


def test_checkpoint_of_the_flat_config_layout_loads(trained) -> None:
    """Checkpoints written before the training options had a section list them at the top."""
    _, filler = trained
    state = filler.state()
    training = state["config"].pop("training")
    old = ("epochs", "batch_size", "learning_rate", "weight_decay", "patience", "lr_patience")
    state["config"].update({k: training[k] for k in (*old, "seed", "device")})
    assert ContextFiller.from_state(state).cfg == filler.cfg


def test_training_options_go_on_top_of_the_context_defaults() -> None:
    assert ContextConfig().training == TrainConfig(**TRAINING)
    assert ContextConfig(training={"epochs": 3}).training == TrainConfig(**TRAINING | {"epochs": 3})


def test_calibrated_halfwidth_positive_on_land(trained) -> None:
    series, filler = trained
    hidden = _hidden(series, TARGET)
    result = filler.fill(series.with_hidden(TARGET, hidden), TARGET)
    hw = result.halfwidth90
    assert hw is not None
    assert (hw[series.land] > 0).all()
    assert np.isnan(hw[~series.land]).all()
    # wider deep inside the gap than at its edge
    assert hw[12, 10] >= hw[8, 6]
    assert list(filler.calibration) == sorted(filler.calibration)
