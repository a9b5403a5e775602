"""lstfill.method: the method interface, the shared train step and loading by model name."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from lstfill.errors import InputError
from lstfill.method import Method, load_method, train_method
from lstfill.training.loop import TrainResult, fit
from lstfill.training.settings import TrainConfig


class LinearMethod:
    """y = a·x + b, the smallest trainable method."""

    name = "test-linear"

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        torch.manual_seed(cfg.seed)
        self.net = nn.Linear(1, 1)

    def fit(self, data: Any, workdir: str | Path, *, progress: bool = True) -> TrainResult:
        train, val = data
        return fit(self.net, train, val, nn.MSELoss(), self.cfg, workdir, progress=progress)

    def predict(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.net(torch.from_numpy(x[:, None])).numpy()[:, 0]

    def state(self) -> dict[str, Any]:
        return {
            "model_name": self.name,
            "model_kwargs": {},
            "state_dict": self.net.state_dict(),
            "normalisation": {},
            "features": {},
            "config": {"training": vars(self.cfg)},
        }

    @classmethod
    def from_state(cls, state: dict, device: str | torch.device = "cpu") -> "LinearMethod":
        method = cls(TrainConfig(**state["config"]["training"]))
        method.net.load_state_dict(state["state_dict"])
        return method


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
