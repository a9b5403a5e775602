"""Downscaling MLP, its predict-0 baseline scores and permutation importance."""

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from lstfill.downscale.baselines import least_squares, linear_baseline
from lstfill.downscale.dataset import SCALING_KEYS, Scaler
from lstfill.downscale.evaluate import mse, permutation_importance, split_scores
from lstfill.downscale.method import MlpMethod, predict_rows
from lstfill.downscale.model import Mlp
from lstfill.training.loop import fit
from lstfill.training.settings import TrainConfig


def test_mlp_layout_batch_norm_before_relu_and_he_init():
    torch.manual_seed(0)
    m = Mlp(87, (1024, 512, 256, 128), dropout=0.2)
    kinds = [type(x).__name__ for x in m.net]
    assert kinds[:4] == ["Linear", "BatchNorm1d", "ReLU", "Dropout"]
    assert kinds.count("Linear") == 5 and kinds[-1] == "Linear"
    widths = [x.out_features for x in m.net if isinstance(x, torch.nn.Linear)]
    assert widths == [1024, 512, 256, 128, 1]
    first = m.net[0]
    # He normal: std sqrt(2 / fan_in)
    assert float(first.weight.detach().std()) == pytest.approx(np.sqrt(2 / 87), rel=0.05)
    assert float(first.bias.detach().abs().max()) == 0.0
    m.eval()
    assert m(torch.zeros(3, 87)).shape == (3,)


def test_baseline_zero_scores_on_a_hand_made_example():
    truth = np.array([1.0, -1.0, 2.0, 0.0])
    pred = np.array([0.5, -0.5, 1.0, 0.0])
    s = split_scores(truth, pred)
    # baseline: mean(1 + 1 + 4 + 0) = 1.5; model: mean(0.25 + 0.25 + 1 + 0) = 0.375
    assert s["methods"]["baseline_zero"]["mse"] == pytest.approx(1.5)
    assert s["methods"]["baseline_zero"]["rmse"] == pytest.approx(np.sqrt(1.5))
    assert s["methods"]["model_mlp"]["mse"] == pytest.approx(0.375)
    assert s["improvement_pct"] == pytest.approx(75.0)
    assert s["n_samples"] == 4 and np.isnan(mse(np.zeros(0), np.zeros(0)))


def test_linear_baseline_recovers_a_linear_response_and_is_scored_beside():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 3))
    y = 0.5 - 2.0 * x[:, 0] + 0.25 * x[:, 2]
    fit = linear_baseline(x, y)
    np.testing.assert_allclose(fit(np.array([[1.0, 7.0, 4.0]])), [0.5 - 2.0 + 1.0], atol=1e-5)
    truth = np.array([1.0, -1.0])
    s = split_scores(truth, np.zeros(2), {"baseline_linear": np.array([1.0, 0.0])})
    assert set(s["methods"]) == {"model_mlp", "baseline_zero", "baseline_linear"}
    assert s["methods"]["baseline_linear"]["mse"] == pytest.approx(0.5)
    assert s["improvement_pct"] == pytest.approx(0.0)  # the MLP against predict-0 only


def test_permutation_importance_finds_the_group_that_matters():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 4)).astype(np.float32)
    y = 2 * x[:, 0] - x[:, 1]  # only group "a" (columns 0, 1) matters

    def oracle(z: np.ndarray) -> np.ndarray:
        return 2 * z[:, 0] - z[:, 1]

    imp = permutation_importance(oracle, x, y, {"a": [0, 1], "b": [2, 3]}, n_repeats=2)
    assert list(imp) == ["a", "b"]  # ranked
    assert imp["a"]["mse_increase"] == pytest.approx(2 * 5.0, rel=0.1)  # 2 var(2x0 - x1)
    assert imp["b"]["mse_increase"] == 0.0


def test_mlp_learns_a_topographic_deviation_better_than_zero(tmp_path):
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 6)).astype(np.float32)
    y = (0.8 * x[:, 0] - 0.5 * x[:, 1] * x[:, 2]).astype(np.float32)
    tr, va = slice(0, 2400), slice(2400, None)
    model = Mlp(6, (32, 16), dropout=0.0)
    cfg = TrainConfig(
        epochs=15,
        batch_size=128,
        learning_rate=3e-3,
        lr_schedule="step",
        lr_step_epochs=10,
        lr_gamma=0.5,
        patience=5,
        seed=0,
        device="cpu",
    )
    fit(
        model,
        TensorDataset(torch.from_numpy(x[tr]), torch.from_numpy(y[tr])),
        TensorDataset(torch.from_numpy(x[va]), torch.from_numpy(y[va])),
        torch.nn.functional.mse_loss,
        cfg,
        tmp_path,
        progress=False,
    )
    s = split_scores(y[va], predict_rows(model, x[va], batch_size=100))
    assert s["improvement_pct"] > 60


def test_least_squares_recovers_weights_and_intercept():
    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 5.0]])
    y = 1.5 + 2.0 * x[:, 0] - 0.5 * x[:, 1]
    weight, bias = least_squares(x, y)
    np.testing.assert_allclose(weight, [2.0, -0.5], atol=1e-12)
    assert bias == pytest.approx(1.5)


def test_mlp_with_a_linear_base_starts_as_the_least_squares_fit():
    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = (1.0 + x[:, 0] - 3.0 * x[:, 3] + 0.1 * rng.normal(size=200)).astype(np.float32)
    net = Mlp(4, (8,), dropout=0.0, base="linear")
    assert float(net.net[-1].weight.abs().max()) == 0.0  # the correction starts at zero
    net.set_base(*least_squares(x, y))
    expected = linear_baseline(x, y)(x)
    np.testing.assert_allclose(predict_rows(net, x), expected, atol=1e-4)
    # the base is a buffer: saved in the state dict, never trained
    assert {"base_weight", "base_bias"} <= set(net.state_dict())
    assert all("base" not in name for name, _ in net.named_parameters())
    with pytest.raises(ValueError, match="base"):
        Mlp(4, (8,), base="quadratic")
    with pytest.raises(ValueError, match="base='linear'"):
        Mlp(4, (8,)).set_base(np.zeros(4), 0.0)


def test_mlp_method_fits_its_linear_base_and_learns_the_rest(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 3)).astype(np.float32)
    y = (0.5 + 2.0 * x[:, 0] + np.abs(x[:, 1])).astype(np.float32)  # linear + a kink
    tr, va = slice(0, 2400), slice(2400, None)
    raw = {k: "raw" for k in SCALING_KEYS}
    scaler = Scaler(["lat", "lon", "lst_avg"], raw, np.zeros(3), np.ones(3))  # identity
    cfg = TrainConfig(epochs=10, batch_size=128, learning_rate=3e-3, seed=0, device="cpu")
    torch.manual_seed(0)
    method = MlpMethod({"n_in": 3, "hidden": [32], "dropout": 0.0, "base": "linear"}, scaler, cfg)
    method.fit((x[tr], y[tr], x[va], y[va]), tmp_path, progress=False)
    weight, bias = least_squares(x[tr], y[tr])
    np.testing.assert_allclose(method.net.base_weight.numpy(), weight, rtol=1e-5, atol=1e-6)
    linear = mse(linear_baseline(x[tr], y[tr])(x[va]), y[va])
    assert mse(method.predict(x[va]), y[va]) < 0.5 * linear  # the MLP learns |x1|
    assert not method.extra["linear_only"]
    again = MlpMethod.from_state(method.state())
    np.testing.assert_allclose(again.predict(x[va]), method.predict(x[va]), atol=1e-6)


def test_mlp_method_keeps_the_linear_fit_when_no_epoch_validates_better(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(600, 3)).astype(np.float32)
    y = (1.0 - x[:, 2]).astype(np.float32)  # exactly linear: the fit is perfect
    y_noisy = y + rng.normal(0, 1, 600).astype(np.float32)  # the MLP can only chase noise
    raw = {k: "raw" for k in SCALING_KEYS}
    scaler = Scaler(["lat", "lon", "lst_avg"], raw, np.zeros(3), np.ones(3))
    cfg = TrainConfig(epochs=3, batch_size=32, learning_rate=1e-2, seed=0, device="cpu")
    method = MlpMethod({"n_in": 3, "hidden": [64], "dropout": 0.0, "base": "linear"}, scaler, cfg)
    result = method.fit((x[:400], y_noisy[:400], x[400:], y[400:]), tmp_path, progress=False)
    assert method.extra["linear_only"] and result.best_epoch == 0
    expected = linear_baseline(x[:400], y_noisy[:400])(x[400:])
    np.testing.assert_allclose(method.predict(x[400:]), expected, atol=1e-4)
    assert result.best_val_loss == pytest.approx(mse(expected, y[400:]), rel=1e-4)
    assert len(result.history) >= 1


def test_least_squares_ignores_units_and_rounding_only_directions():
    rng = np.random.default_rng(5)
    d = rng.normal(0, 50, size=(400, 5))
    hd = (d - d.mean(axis=1, keepdims=True)).astype(np.float32)  # rows sum to 0 up to rounding
    x = np.column_stack([hd, np.full(400, 7.0, np.float32)])  # and a constant column
    y = 0.3 - 0.01 * hd[:, 0] + 0.02 * hd[:, 2]
    weight, bias = least_squares(x, y)
    assert weight[-1] == 0.0 and np.abs(weight).max() < 1.0  # no weight on rounding noise
    np.testing.assert_allclose(x @ weight + bias, y, atol=1e-5)
    scaled = (x - 3.0) / 40.0  # other units and offsets: the same predictions
    w2, b2 = least_squares(scaled, y)
    np.testing.assert_allclose(scaled @ w2 + b2, x @ weight + bias, atol=1e-6)
