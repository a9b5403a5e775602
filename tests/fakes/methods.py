"""The smallest trainable method (y = a·x + b) behind lstfill's method interface, for the tests
of the shared train step, loading by model name and the training folder's fingerprint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

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
    def from_state(cls, state: dict, device: str | torch.device = "cpu") -> LinearMethod:
        method = cls(TrainConfig(**state["config"]["training"]))
        method.net.load_state_dict(state["state_dict"])
        return method
