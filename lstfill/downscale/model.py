"""The downscaling MLP: a pixel's LST deviation from its 9x9 mean, from time, position, the
window's mean LST and height, and its 81 height differences.

Architecture of the seed project (Bar-Ilan MSc, "Deep learning land surface temperature in
Israel"): fully connected layers 1024-512-256-128-1 (configurable), each hidden layer a linear
map, batch normalisation *before* the ReLU, then dropout; He (Kaiming-normal) initialisation,
zero biases. Trained on the mean squared error with Adam, the learning rate halved every 10
epochs, early stopping on the validation loss (the shared loop, `lstfill.training.fit`).

With ``base="linear"`` the network corrects a fixed linear map of the same inputs (set by
`Mlp.set_base` to the least-squares fit on the training samples): the output is that fit plus the
MLP, whose last layer starts at zero, so training starts from the linear fit (and
`drop_correction` returns to it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

BASES = ("zero", "linear")


class Mlp(nn.Module):
    """(N, n_in) standardised features -> (N,) predicted deviation (K)."""

    def __init__(
        self,
        n_in: int,
        hidden: Sequence[int] = (1024, 512, 256, 128),
        dropout: float = 0.2,
        base: str = "zero",
    ) -> None:
        super().__init__()
        if base not in BASES:
            raise ValueError(f"base must be one of {BASES}, got {base!r}")
        layers: list[nn.Module] = []
        width = n_in
        for h in hidden:
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        self.base = base
        if base == "linear":  # fixed (not trained) linear map, saved in the state dict
            nn.init.zeros_(self.net[-1].weight)
            self.register_buffer("base_weight", torch.zeros(n_in))
            self.register_buffer("base_bias", torch.zeros(()))

    def set_base(self, weight: np.ndarray, bias: float) -> None:
        """Set the fixed linear map of ``base="linear"`` (weight (n_in,), bias)."""
        if self.base != "linear":
            raise ValueError("set_base needs an Mlp with base='linear'")
        w = torch.as_tensor(np.asarray(weight), dtype=self.base_weight.dtype)
        if w.shape != self.base_weight.shape:
            raise ValueError(
                f"weight has shape {tuple(w.shape)}, expected {tuple(self.base_weight.shape)}"
            )
        self.base_weight.copy_(w)
        self.base_bias.fill_(float(bias))

    def drop_correction(self) -> None:
        """Zero the last layer, so that the output is the linear base alone."""
        if self.base != "linear":
            raise ValueError("drop_correction needs an Mlp with base='linear'")
        with torch.no_grad():
            self.net[-1].weight.zero_()
            self.net[-1].bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x).squeeze(-1)
        if self.base == "linear":
            out = out + x @ self.base_weight + self.base_bias
        return out
