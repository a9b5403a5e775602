"""The gap-fill networks (torch.nn.Modules only): the two-branch patch CNN of Kustura et al. (2025)
and the context U-Net that sees a whole scene with its visible pixels."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lstfill.errors import ConfigError


def _kernel(patch: int, n_layers: int) -> int:
    """Kernel size for which `n_layers` valid convolutions shrink `patch` to 1."""
    k, rem = divmod(patch - 1, n_layers)
    if patch % 2 != 1 or rem or k < 1:
        raise ConfigError(
            "gapfill.model.filters",
            f"{n_layers} convolution layers cannot shrink a {patch}x{patch} patch to one pixel "
            "(need (patch - 1) divisible by the number of layers)",
        )
    return k + 1


def _branch(c_in: int, filters: Sequence[int], k: int, dropout: float, norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, c_out in enumerate(filters):
        layers.append(nn.Conv2d(c_in, c_out, k, bias=not norm))
        if norm:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.ReLU())
        if i % 2 == 1:
            layers.append(nn.Dropout(dropout))
        c_in = c_out
    return nn.Sequential(*layers)


class PatchCNN(nn.Module):
    """Two-branch patch CNN; `n_classes` lists the one-hot size of each categorical layer."""

    def __init__(
        self,
        n_numeric: int,
        n_classes: Sequence[int] = (),
        patch: int = 5,
        filters: Sequence[int] = (128, 128, 512, 512),
        dense: int = 128,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.patch = patch
        self.n_classes = list(n_classes)
        k = _kernel(patch, len(filters))
        self.numeric = _branch(n_numeric, filters, k, dropout, norm=True)
        n_onehot = sum(self.n_classes)
        self.categorical = _branch(n_onehot, filters, k, dropout, norm=False) if n_onehot else None
        width = filters[-1] * (2 if self.categorical is not None else 1)
        self.hidden = nn.Linear(width, dense)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(dense, 1)

    def _onehot(self, cat: torch.Tensor) -> torch.Tensor:
        """(N, K, h, w) class codes -> (N, sum(n_classes), h, w) float one-hot."""
        parts = [
            F.one_hot(cat[:, i].clamp(0, n - 1), n).permute(0, 3, 1, 2)
            for i, n in enumerate(self.n_classes)
        ]
        return torch.cat(parts, dim=1).float()

    def _maps(self, num: torch.Tensor, cat: torch.Tensor) -> torch.Tensor:
        """Output map (N, h - patch + 1, w - patch + 1) of a padded input."""
        feats = [self.numeric(num)]
        if self.categorical is not None:
            feats.append(self.categorical(self._onehot(cat)))
        z = torch.cat(feats, dim=1).permute(0, 2, 3, 1)  # channels last: the head acts per pixel
        z = self.out(self.drop(F.relu(self.hidden(z))))
        return z[..., 0]

    def forward(self, num: torch.Tensor, cat: torch.Tensor) -> torch.Tensor:
        """(N, C, p, p), (N, K, p, p) -> (N,) standardised LST of the patch centres."""
        if tuple(num.shape[-2:]) != (self.patch, self.patch):
            raise ValueError(f"expected {self.patch}x{self.patch} patches, got {tuple(num.shape)}")
        return self._maps(num, cat)[:, 0, 0]

    def forward_map(self, num: torch.Tensor, cat: torch.Tensor) -> torch.Tensor:
        """(1, C, H + p - 1, W + p - 1) padded scene -> (H, W) predictions for every pixel."""
        return self._maps(num, cat)[0]


def enable_mc_dropout(model: nn.Module) -> None:
    """Eval mode (frozen batch-norm statistics) with dropout layers sampling, for MC dropout."""
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.train()


def _group_norm(channels: int) -> nn.GroupNorm:
    groups = math.gcd(channels, 8)
    return nn.GroupNorm(groups, channels)


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, dropout: float) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, 3, padding=1),
            _group_norm(cout),
            nn.SiLU(),
            nn.Conv2d(cout, cout, 3, padding=1),
            _group_norm(cout),
            nn.SiLU(),
        ]
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


class ContextUNet(nn.Module):
    """A small U-Net from the context channels (B, C, H, W) to the anomaly (B, 1, H, W).

    Any H, W: the input is padded (replicate) to a multiple of 2**depth and the output cropped
    back. A linear 1x1 path from the inputs is added to the U-Net's output so that the
    interpolated anomalies pass straight through at initialisation and the network learns a
    correction to them.
    """

    def __init__(
        self, in_channels: int, base: int = 32, depth: int = 3, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if depth < 1 or base < 1:
            raise ValueError(f"depth and base must be >= 1, got {depth}, {base}")
        self.depth = depth
        widths = [base * 2**i for i in range(depth + 1)]
        self.enc = nn.ModuleList()
        cin = in_channels
        for w in widths[:-1]:
            self.enc.append(_DoubleConv(cin, w, 0.0))
            cin = w
        self.bottom = _DoubleConv(widths[-2], widths[-1], dropout)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in range(depth - 1, -1, -1):
            self.up.append(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2))
            self.dec.append(_DoubleConv(2 * widths[i], widths[i], 0.0))
        self.head = nn.Conv2d(widths[0], 1, 1)
        self.linear = nn.Conv2d(in_channels, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = 2**self.depth
        ph, pw = (-h) % m, (-w) % m
        xp = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
        skips = []
        y = xp
        for block in self.enc:
            y = block(y)
            skips.append(y)
            y = F.max_pool2d(y, 2)
        y = self.bottom(y)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips), strict=True):
            y = dec(torch.cat([up(y), skip], dim=1))
        out = self.head(y) + self.linear(xp)
        return out[..., :h, :w]
