"""lstfill.method: the method interface, the shared train step and loading by model name."""

import numpy as np
import pytest
import torch
from fakes.methods import LinearMethod
from torch.utils.data import TensorDataset

from lstfill.errors import InputError
from lstfill.method import Method, load_method, train_method
from lstfill.training.settings import TrainConfig


def _data(n: int, seed: int) -> TensorDataset:
    x = torch.from_numpy(np.random.default_rng(seed).uniform(-1, 1, (n, 1)).astype(np.float32))
    return TensorDataset(x, 3.0 * x - 1.0)


def test_train_method_writes_checkpoint_and_curve_and_load_method_rebuilds_it(tmp_path):
    cfg = TrainConfig(
        epochs=40, batch_size=16, learning_rate=0.05, lr_schedule="none", device="cpu"
    )
    method = LinearMethod(cfg)
    assert isinstance(method, Method)
    result = train_method(
        method,
        (_data(256, 0), _data(64, 1)),
        {"data": "linear"},
        tmp_path / "work",
        tmp_path / "model.pt",
        tmp_path / "curve.png",
        title="linear",
        extra={"note": "test"},
        progress=False,
    )
    assert (tmp_path / "curve.png").stat().st_size > 0
    loaded = load_method(tmp_path / "model.pt", {"linear": LinearMethod})
    x = np.array([-0.5, 0.0, 0.5], np.float32)
    np.testing.assert_allclose(loaded.predict(x), 3.0 * x - 1.0, atol=0.05)
    np.testing.assert_array_equal(loaded.predict(x), method.predict(x))
    ckpt = torch.load(tmp_path / "model.pt", weights_only=True)
    assert ckpt["extra"]["best_epoch"] == result.best_epoch
    assert ckpt["extra"]["note"] == "test" and len(ckpt["extra"]["history"]) == len(result.history)


def test_load_method_names_the_checkpoint_when_no_method_matches(tmp_path):
    method = LinearMethod(TrainConfig(device="cpu"))
    from lstfill.training.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "m.pt", **method.state())
    with pytest.raises(InputError, match=r"m\.pt.*test-linear"):
        load_method(tmp_path / "m.pt", {"other": type("Other", (), {"name": "other"})})
