"""The downscaling MLP behind the jobs' method interface (`lstfill.method.Method`).

`MlpMethod` holds the network and the feature scaler fitted on the split's training samples:
`fit` trains on scaled samples with MSE and the shared loop (first fitting the fixed linear map
of an MLP with ``base="linear"`` to the training samples by least squares, and keeping that map
alone if it validates better than every epoch), `predict` maps raw feature rows to the predicted
deviation from the 9x9 mean (in batches, so memory stays bounded), and `state` / `from_state` are
the checkpoint.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from lstfill.device import resolve_device
from lstfill.downscale.baselines import least_squares
from lstfill.downscale.dataset import Scaler
from lstfill.downscale.model import Mlp
from lstfill.training.loop import TrainResult, fit
from lstfill.training.settings import TrainConfig

MODEL_NAME = "downscale_mlp"


@torch.no_grad()
def predict_rows(model: nn.Module, x: np.ndarray, batch_size: int = 65536) -> np.ndarray:
    """Predictions for the rows of `x` in eval mode, in batches (bounded memory)."""
    model.eval()
    device = next(model.parameters()).device
    out = [
        model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size])).float().to(device))
        .cpu()
        .numpy()
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(out).astype(np.float32) if out else np.empty(0, np.float32)


class MlpMethod:
    """The 9x9 topography MLP and its scaler, trained with the shared loop."""

    name: ClassVar[str] = MODEL_NAME

    def __init__(
        self,
        model_kwargs: dict[str, Any],
        scaler: Scaler,
        training: TrainConfig | None = None,
        features: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.model_kwargs = dict(model_kwargs)
        self.net = Mlp(**self.model_kwargs)
        self.scaler = scaler
        self.training = training or TrainConfig()
        self.features = features or {}
        self.config = config or {}
        self.extra: dict[str, Any] = {}

    def fit(
        self,
        data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        workdir: str | Path,
        *,
        progress: bool = True,
    ) -> TrainResult:
        """Train on (x_train, y_train, x_val, y_val), already scaled, with MSE.

        An MLP with a linear base gets the least-squares fit of (x_train, y_train) as that base
        first, and keeps that fit alone (best epoch 0, ``extra["linear_only"]``) when no epoch's
        validation loss beats it."""
        x_tr, y_tr, x_va, y_va = data
        based = self.net.base == "linear"
        if based:
            weight, bias = least_squares(x_tr, y_tr)
            self.net.set_base(weight, bias)
        result = fit(
            self.net,
            TensorDataset(torch.from_numpy(x_tr), torch.from_numpy(y_tr)),
            TensorDataset(torch.from_numpy(x_va), torch.from_numpy(y_va)),
            nn.MSELoss(),
            self.training,
            workdir,
            progress=progress,
        )
        if based:  # the starting point (epoch 0, the linear fit) is a candidate too
            start = np.asarray(x_va, np.float64) @ weight + bias - np.asarray(y_va, np.float64)
            start_loss = float(np.mean(start**2))
            self.extra["linear_only"] = start_loss <= result.best_val_loss
            if self.extra["linear_only"]:
                self.net.drop_correction()
                state = {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}
                result = dataclasses.replace(
                    result, best_epoch=0, best_val_loss=start_loss, best_state=state
                )
        return result

    def predict(self, x: np.ndarray, *, scaled: bool = False) -> np.ndarray:
        """The predicted deviation (K) of each feature row (scaled first unless `scaled`)."""
        return predict_rows(self.net, x if scaled else self.scaler.transform(x))

    def state(self) -> dict[str, Any]:
        return {
            "model_name": MODEL_NAME,
            "model_kwargs": self.model_kwargs,
            "state_dict": self.net.state_dict(),
            "normalisation": self.scaler.to_dict(),
            "features": self.features,
            "config": self.config,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], device: str | torch.device = "cpu") -> MlpMethod:
        """The trained MLP of a checkpoint, in eval mode on `device`."""
        method = cls(
            state["model_kwargs"],
            Scaler.from_dict(state["normalisation"]),
            features=state["features"],
            config=state["config"],
        )
        method.net.load_state_dict(state["state_dict"])
        method.net.to(resolve_device(device)).eval()
        method.extra = dict(state.get("extra", {}))
        return method


METHODS: dict[str, type[MlpMethod]] = {"mlp": MlpMethod}
