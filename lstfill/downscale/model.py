"""The downscaling MLP: a pixel's LST deviation from its 9x9 mean, from time, position, the
window's mean LST and height, and its 81 height differences.

Architecture of the seed project (Bar-Ilan MSc, "Deep learning land surface temperature in
Israel"): fully connected layers 1024-512-256-128-1 (configurable), each hidden layer a linear
map, batch normalisation *before* the ReLU, then dropout; He (Kaiming-normal) initialisation,
zero biases. Trained on the mean squared error with Adam, the learning rate halved every 10
epochs, early stopping on the validation loss (the shared loop, `lstfill.training.fit`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Mlp(nn.Module):
    """(N, n_in) standardised features -> (N,) predicted deviation (K)."""

    def __init__(
        self, n_in: int, hidden: Sequence[int] = (1024, 512, 256, 128), dropout: float = 0.2
    ) -> None:
        super().__init__()
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)
