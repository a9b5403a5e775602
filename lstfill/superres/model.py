"""SIF-NN-SR: a small U-Net that sharpens coarse LST with fine NDVI, and its self-supervised loss.

Architecture (Ait-Bachir et al. 2025, arXiv:2502.01204, "ModelB"): the coarse LST is upsampled
bicubically to the fine grid and stacked with the fine NDVI; an encoder of double 3x3 convolutions
(batch norm, ReLU, replicate padding) with average-pooling down blocks (each a residual double
convolution then a 3x3 convolution changing the width) and a decoder of bilinear up blocks with
skip connections map them to the fine LST. Channels 16-32-64-128 by default; the deepest stage
has half its nominal width because the decoder upsamples bilinearly, as in the paper.

One deliberate addition: with `residual=True` (the default) the network predicts a correction
to the bicubic LST rather than the LST itself. At initialisation the model is then bicubic, and
the loss only has to learn the detail, which makes training converge in far fewer epochs: this
matters on a CPU. `residual=False` gives the paper's plain output.

The loss is "scale-invariance-free": no fine LST is ever needed. With SR the prediction, LR the
coarse input and NDVI the guide (all normalised):

    loss = alpha * Huber(degrade(SR), LR) + (1 - alpha) * Huber(G(SR), gamma * G(NDVI))

where `degrade` is the sensor PSF and decimation (`psf.py`), and G extracts texture: four Sobel
filters (0, 90, 45, 135 degrees; variant "sifnn1") or a PSF high-pass (x minus its blur with a
Gaussian whose MTF is `texture_mtf` at the coarse Nyquist; variant "sifnn2"). gamma < 0 encodes
the LST-NDVI anticorrelation of vegetated lowland; where terrain dominates (cold, bare summits
above green valleys) the relation turns positive. `gamma="patch"` therefore takes, for every
training patch, the slope of its coarse LST on its block-mean NDVI (normalised units, the
TsHARP regression of Agam et al. 2007), clipped to +-`gamma_clip`: the texture the network is
asked for follows each scene's own LST-NDVI relation, which the network can read from its
inputs at prediction time (gamma is used only by the loss). The reconstruction term ignores
`border` coarse pixels on each side, where the padded blur is least like the sensor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lstfill.errors import ConfigError
from lstfill.superres import psf

VARIANTS = ("sifnn1", "sifnn2")


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, padding=1, padding_mode="replicate", bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


class DoubleConv(nn.Sequential):
    """Two 3x3 convolutions, each with batch norm and ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(*_conv_bn_relu(cin, cout), *_conv_bn_relu(cout, cout))


class DownBlock(nn.Module):
    """Average pooling by 2, a residual double convolution, and a 3x3 convolution to `cout`."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(2)
        self.body = DoubleConv(cin, cin)
        self.out = nn.Sequential(*_conv_bn_relu(cin, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        return self.out(x + self.body(x))


class UpBlock(nn.Module):
    """Bilinear upsampling by 2, concatenation with the skip, a double convolution."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = DoubleConv(cin, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.body(torch.cat([skip, x], dim=1))


class SrUNet(nn.Module):
    """Coarse LST (N, 1, h, w) and fine NDVI (N, 1, h*factor, w*factor), both normalised, to
    the normalised fine LST (N, 1, h*factor, w*factor).

    The fine size must be a multiple of 2 ** (len(channels) - 1).
    """

    def __init__(
        self, factor: int = 4, channels: tuple[int, ...] = (16, 32, 64, 128), residual: bool = True
    ) -> None:
        super().__init__()
        if len(channels) < 2:
            raise ConfigError("superres.model.channels", "needs at least two widths")
        self.factor = factor
        self.residual = residual
        widths = list(channels[:-1]) + [channels[-1] // 2]
        self.inc = DoubleConv(2, widths[0])
        pairs = zip(widths[:-1], widths[1:], strict=True)
        self.downs = nn.ModuleList(DownBlock(a, b) for a, b in pairs)
        ups, x_ch = [], widths[-1]
        for level in range(len(widths) - 2, -1, -1):
            cout = widths[level - 1] if level > 0 else widths[0]
            ups.append(UpBlock(x_ch + widths[level], cout))
            x_ch = cout
        self.ups = nn.ModuleList(ups)
        self.head = nn.Conv2d(widths[0], 1, 3, padding=1, padding_mode="replicate")
        self.multiple = 2 ** (len(channels) - 1)

    def upsample(self, lr: torch.Tensor) -> torch.Tensor:
        """Bicubic upsampling of the coarse LST to the fine grid (pixel centres aligned)."""
        return F.interpolate(lr, scale_factor=self.factor, mode="bicubic", align_corners=False)

    def forward(self, lr: torch.Tensor, ndvi: torch.Tensor) -> torch.Tensor:
        up = self.upsample(lr)
        if up.shape[-2:] != ndvi.shape[-2:]:
            raise ValueError(f"NDVI {tuple(ndvi.shape)} does not match LST x{self.factor}")
        if up.shape[-2] % self.multiple or up.shape[-1] % self.multiple:
            raise ValueError(
                f"fine size {tuple(up.shape[-2:])} is not a multiple of {self.multiple}"
            )
        x = self.inc(torch.cat([up, ndvi], dim=1))
        skips = [x]
        for down in self.downs:
            x = down(x)
            skips.append(x)
        skips.pop()
        for up_block in self.ups:
            x = up_block(x, skips.pop())
        out = self.head(x)
        return up + out if self.residual else out


@dataclass
class LossConfig:
    """The self-supervised loss of one variant (`superres.loss` in the config)."""

    variant: str = "sifnn1"
    alpha: float = 0.99
    gamma: float | str = -0.5  # a number, or "patch" (per-patch coarse regression slope)
    gamma_clip: float = 2.0
    huber_delta: float = 1.0
    mtf: float = 0.1  # sensor PSF: MTF at the coarse Nyquist frequency
    texture_mtf: float = 0.25  # high-pass of variant sifnn2
    border: int = 2  # coarse pixels left out of the reconstruction term on each side
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(
                "superres.variants", f"unknown variant {self.variant!r}; choose from {VARIANTS}"
            )
        if isinstance(self.gamma, str) and self.gamma != "patch":
            raise ConfigError(
                f"superres.variants.{self.variant}.gamma",
                f"must be a number or 'patch', got {self.gamma!r}",
            )
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"superres.variants.{self.variant}.alpha", "must lie in [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_SOBEL = torch.tensor(
    [
        [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],  # 0 deg (horizontal gradient)
        [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],  # 90 deg
        [[0, 1, 2], [-1, 0, 1], [-2, -1, 0]],  # 45 deg
        [[-2, -1, 0], [-1, 0, 1], [0, 1, 2]],  # 135 deg
    ],
    dtype=torch.float32,
).unsqueeze(1)


def sobel4(x: torch.Tensor) -> torch.Tensor:
    """The four directional Sobel responses of (N, 1, H, W), same size (replicate padding)."""
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), _SOBEL.to(x))


class SifLoss(nn.Module):
    """The scale-invariance-free loss; called as loss((sr, ndvi), lr) by the training loop."""

    def __init__(self, cfg: LossConfig, factor: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.factor = factor
        self.sigma = psf.psf_sigma(factor, cfg.mtf)
        self.texture_sigma = psf.psf_sigma(factor, cfg.texture_mtf)

    def texture(self, x: torch.Tensor) -> torch.Tensor:
        if self.cfg.variant == "sifnn1":
            return sobel4(x)
        return psf.highpass(x, self.texture_sigma)

    def gamma(self, ndvi: torch.Tensor, lr: torch.Tensor) -> torch.Tensor | float:
        """The texture gain: fixed, or per sample the coarse LST-on-NDVI regression slope."""
        if self.cfg.gamma != "patch":
            return float(self.cfg.gamma)
        x = F.avg_pool2d(ndvi, self.factor).flatten(1)
        y = lr.flatten(1)
        x = x - x.mean(dim=1, keepdim=True)
        y = y - y.mean(dim=1, keepdim=True)
        slope = (x * y).sum(dim=1) / (x * x).sum(dim=1).clamp_min(1e-6)
        clip = self.cfg.gamma_clip
        return slope.clamp(-clip, clip).view(-1, 1, 1, 1).detach()

    def terms(
        self, sr: torch.Tensor, ndvi: torch.Tensor, lr: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction, texture) terms of the loss."""
        b = self.cfg.border
        coarse = psf.degrade(sr, self.factor, self.sigma)
        target = lr
        if b and min(coarse.shape[-2:]) > 2 * b:
            coarse, target = coarse[..., b:-b, b:-b], lr[..., b:-b, b:-b]
        delta = self.cfg.huber_delta
        rec = F.huber_loss(coarse, target, delta=delta)
        gamma = self.gamma(ndvi, lr)
        tex = F.huber_loss(self.texture(sr), gamma * self.texture(ndvi), delta=delta)
        return rec, tex

    def forward(self, output: tuple[torch.Tensor, torch.Tensor], lr: torch.Tensor) -> torch.Tensor:
        sr, ndvi = output
        rec, tex = self.terms(sr, ndvi, lr)
        return self.cfg.alpha * rec + (1.0 - self.cfg.alpha) * tex


class WithGuide(nn.Module):
    """Training view of a model: returns (prediction, guide) so the loss can see the NDVI."""

    def __init__(self, net: SrUNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, lr: torch.Tensor, ndvi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(lr, ndvi), ndvi
