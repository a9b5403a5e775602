"""The sensor point-spread function (PSF) that links a fine LST field to its coarse observation.

SIF-NN-SR (Ait-Bachir et al. 2025, arXiv:2502.01204) models the coarse sensor as a Gaussian blur
whose modulation transfer function (MTF) equals 0.1 at the coarse Nyquist frequency, followed by
decimation. For a Gaussian of standard deviation sigma (fine pixels) the MTF is
exp(-2 pi^2 sigma^2 f^2); setting it to `mtf` at f = 1 / (2 factor) cycles per fine pixel gives
sigma = sqrt(-ln(mtf) / 2) / (pi f), about 2.73 fine pixels for factor 4 and mtf 0.1.

Decimation samples the blurred field at the coarse pixel centres (bilinear between the fine
pixels around each centre), so degrading a fine field that is constant within coarse blocks
returns those constants. The same operator serves the self-supervised loss, the
energy-conservation residual of every product and the evaluation, all in PyTorch so that the
loss is differentiable; `degrade_np` wraps it for numpy arrays.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def psf_sigma(factor: int, mtf: float = 0.1) -> float:
    """Gaussian sigma (fine pixels) whose MTF is `mtf` at the Nyquist frequency of a grid
    `factor` times coarser."""
    if not 0.0 < mtf < 1.0:
        raise ValueError(f"mtf must lie in (0, 1), got {mtf}")
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    nyquist = 1.0 / (2.0 * factor)
    return math.sqrt(-math.log(mtf) / 2.0) / (math.pi * nyquist)


def gaussian_kernel(sigma: float, truncate: float = 3.0) -> torch.Tensor:
    """Normalised 1-D Gaussian of `sigma` pixels, radius ceil(truncate * sigma)."""
    radius = max(1, int(math.ceil(truncate * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) with replicate padding (edges are not darkened)."""
    if sigma <= 0:
        return x
    k = gaussian_kernel(sigma).to(dtype=x.dtype, device=x.device)
    r = k.numel() // 2
    c = x.shape[1]
    kx = k.view(1, 1, 1, -1).expand(c, 1, 1, -1)
    ky = k.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), kx, groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), ky, groups=c)


def decimate(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Sample (N, C, H, W) at the centres of `factor` x `factor` blocks (bilinear)."""
    h, w = x.shape[-2:]
    if h % factor or w % factor:
        raise ValueError(f"fine shape {(h, w)} is not a multiple of factor {factor}")
    return F.interpolate(
        x, size=(h // factor, w // factor), mode="bilinear", align_corners=False, antialias=False
    )


def degrade(x: torch.Tensor, factor: int, sigma: float) -> torch.Tensor:
    """The coarse observation of a fine field: PSF blur, then decimation."""
    return decimate(blur(x, sigma), factor)


def highpass(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """x minus its Gaussian low-pass: the detail a sensor with that PSF would not resolve."""
    return x - blur(x, sigma)


def degrade_np(fine: np.ndarray, factor: int, mtf: float = 0.1) -> np.ndarray:
    """`degrade` for a 2-D numpy field (NaN-free), as float64 (H/factor, W/factor)."""
    t = torch.from_numpy(np.asarray(fine, dtype=np.float32))[None, None]
    with torch.no_grad():
        out = degrade(t, factor, psf_sigma(factor, mtf))
    return out[0, 0].double().numpy()
