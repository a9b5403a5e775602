"""Image-quality metrics for LST super-resolution (1 km MODIS -> 250 m), scored on a reference.

Pixel metrics (RMSE, bias, ubRMSE, PSNR), structural metrics (SSIM, Wang et al. 2004, IEEE TIP
13:600; GSSIM, the SSIM of Sobel gradient magnitudes) and the frequency recovery ratio (FRR) of
the SIF-NN-SR evaluation (Ait-Bachir et al. 2025, arXiv:2502.01204), which asks how much of the
high-frequency power that bicubic interpolation loses a method puts back.

Every function takes `pred` and `ref`, 2-D arrays of the same shape (K), and an optional boolean
`mask` of the pixels to score; the pixels actually used are always `mask` & both finite, so NaN
fill (e.g. around a rotated ASTER swath) never enters a metric. Scalars come back as Python floats.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from scipy.signal.windows import hann

_TRUNCATE = 3.5  # Gaussian window radius in sigmas: int(3.5 * 1.5 + 0.5) = 5, an 11x11 window


def _valid(
    pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 copies of (pred, ref) and the boolean mask of usable pixels (mask & both finite)."""
    p = np.asarray(pred, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    if p.ndim != 2 or p.shape != r.shape:
        raise ValueError(f"pred and ref must be 2-D of the same shape, got {p.shape} and {r.shape}")
    ok = np.isfinite(p) & np.isfinite(r)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != p.shape:
            raise ValueError(f"mask shape {m.shape} differs from image shape {p.shape}")
        ok &= m
    return p, r, ok


def _range(values: np.ndarray) -> float:
    """max - min of `values` (NaN when empty): the default PSNR / SSIM data range."""
    return float(values.max() - values.min()) if values.size else math.nan


# --------------------------------------------------------------------------- pixel metrics


def rmse(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Root-mean-square error over the scored pixels (NaN if none)."""
    p, r, ok = _valid(pred, ref, mask)
    return math.sqrt(float(np.mean((p[ok] - r[ok]) ** 2))) if ok.any() else math.nan


def bias(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean error pred - ref over the scored pixels (NaN if none)."""
    p, r, ok = _valid(pred, ref, mask)
    return float(np.mean(p[ok] - r[ok])) if ok.any() else math.nan


def rmse_debiased(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Unbiased RMSE (ubRMSE): RMSE after removing the mean bias, i.e. the error's std."""
    p, r, ok = _valid(pred, ref, mask)
    if not ok.any():
        return math.nan
    err = p[ok] - r[ok]
    return math.sqrt(float(np.mean((err - err.mean()) ** 2)))


def psnr(
    pred: np.ndarray,
    ref: np.ndarray,
    mask: np.ndarray | None = None,
    data_range: float | None = None,
) -> float:
    """Peak signal-to-noise ratio 10 log10(range^2 / MSE) in dB.

    `data_range` defaults to ref.max() - ref.min() over the scored pixels, as the SIF-NN-SR
    evaluation does per (pred, ref) pair. Returns inf for MSE = 0 and NaN with no pixel or a
    non-positive range.
    """
    p, r, ok = _valid(pred, ref, mask)
    if not ok.any():
        return math.nan
    rng = _range(r[ok]) if data_range is None else float(data_range)
    if not rng > 0:
        return math.nan
    mse = float(np.mean((p[ok] - r[ok]) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(rng**2 / mse)


# --------------------------------------------------------------------------- SSIM


def _local_mean(values: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-weighted mean of `values` over the valid pixels (normalised convolution).

    `values` must already be zero where invalid; `weight` is the Gaussian-filtered validity mask.
    Outside the image counts as invalid (constant-zero padding).
    """
    num = ndimage.gaussian_filter(values, sigma, mode="constant", cval=0.0, truncate=_TRUNCATE)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / weight


def ssim_map(
    pred: np.ndarray,
    ref: np.ndarray,
    mask: np.ndarray | None = None,
    data_range: float | None = None,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    min_window_valid: float = 0.99,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel SSIM (Wang et al. 2004) and the boolean mask of the pixels it is scored on.

    Local means, variances and the covariance use a Gaussian window (sigma, truncated at 3.5
    sigma: 11x11 for sigma = 1.5) and the population (1/N-weighted) form, as Wang et al. do, but by
    normalised convolution over the valid pixels only: the masked values and the mask are both
    filtered and divided, so NaN fill or masked areas do not bleed into nearby windows. A pixel
    is scored if it is valid and at least `min_window_valid` of its window weight is valid (the
    image outside its borders counts as invalid). Where the whole window is valid the map equals
    the standard Gaussian-window SSIM. `data_range` defaults to ref max - min over valid pixels.
    """
    p, r, ok = _valid(pred, ref, mask)
    rng = _range(r[ok]) if data_range is None else float(data_range)
    if not ok.any() or not rng > 0:
        return np.full(p.shape, math.nan), np.zeros(p.shape, dtype=bool)
    c1, c2 = (k1 * rng) ** 2, (k2 * rng) ** 2
    # Second moments about a common offset keep the variances precise at ~300 K magnitudes.
    offset = float(r[ok].mean())
    x = np.where(ok, p - offset, 0.0)
    y = np.where(ok, r - offset, 0.0)
    okf = ok.astype(np.float64)
    weight = ndimage.gaussian_filter(okf, sigma, mode="constant", cval=0.0, truncate=_TRUNCATE)
    mx, my = _local_mean(x, weight, sigma), _local_mean(y, weight, sigma)
    vx = np.maximum(_local_mean(x * x, weight, sigma) - mx * mx, 0.0)
    vy = np.maximum(_local_mean(y * y, weight, sigma) - my * my, 0.0)
    cxy = _local_mean(x * y, weight, sigma) - mx * my
    mx, my = mx + offset, my + offset
    luminance = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    structure = (2 * cxy + c2) / (vx + vy + c2)
    scored = ok & (weight >= min_window_valid)
    return np.where(scored, luminance * structure, math.nan), scored


def ssim(
    pred: np.ndarray,
    ref: np.ndarray,
    mask: np.ndarray | None = None,
    data_range: float | None = None,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    min_window_valid: float = 0.99,
) -> float:
    """Mean SSIM (Wang et al. 2004, IEEE TIP 13:600) over the scored pixels of `ssim_map`.

    NaN when no pixel has a sufficiently valid window or the data range is not positive.
    """
    smap, scored = ssim_map(pred, ref, mask, data_range, sigma, k1, k2, min_window_valid)
    return float(smap[scored].mean()) if scored.any() else math.nan


# --------------------------------------------------------------------------- GSSIM


def gradient_magnitude(img: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude sqrt(Gx^2 + Gy^2) (scipy.ndimage.sobel, mode='nearest').

    NaN-propagating: a pixel whose 3x3 neighbourhood holds a NaN is NaN, so gradients are never
    taken across fill. Pixels on the image border use nearest-edge replication.
    """
    a = np.asarray(img, dtype=np.float64)
    bad = ~np.isfinite(a)
    filled = np.where(bad, 0.0, a)
    gx = ndimage.sobel(filled, axis=1, mode="nearest")
    gy = ndimage.sobel(filled, axis=0, mode="nearest")
    bad_near = ndimage.maximum_filter(bad, size=3, mode="nearest")
    return np.where(bad_near, math.nan, np.hypot(gx, gy))


def gssim(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Gradient SSIM: SSIM of the Sobel gradient magnitudes of pred and ref (SIF-NN-SR metric).

    Rewards sharp edges in the right places, which pixel SSIM on smooth LST barely sees. Pixels
    outside the scored set are set to NaN before the gradients, so the gradients are scored on
    the mask eroded by one pixel (no gradient straddles a mask edge); the data range is the
    reference gradient magnitude's max - min over that eroded mask.
    """
    p, r, ok = _valid(pred, ref, mask)
    gp = gradient_magnitude(np.where(ok, p, math.nan))
    gr = gradient_magnitude(np.where(ok, r, math.nan))
    return ssim(gp, gr)


# --------------------------------------------------------------------------- spectra and FRR


def radial_spectrum(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum in dB relative to the lowest non-zero frequency bin f0.

    The mean is removed and a 2-D (periodic) Hann window applied before |FFT|^2: an image is not
    periodic, and its edge discontinuities would otherwise leak broadband power that swamps the
    high-frequency tail we want to compare. Power is averaged in integer-radius bins
    k = round(|f| * n) with n = min(height, width), so bin k is the frequency k / n cycles per
    pixel. DC (k = 0) is dropped; returns (freqs, power_db) for k = 1 ... n // 2, i.e.
    f0 = 1/n ... 0.5, with power_db[0] = 0 by construction (the attenuation spectrum).

    Raises ValueError unless `img` is a 2-D all-finite image of at least 4x4 with power at f0.
    """
    a = np.asarray(img, dtype=np.float64)
    if a.ndim != 2 or min(a.shape) < 4:
        raise ValueError(f"radial_spectrum needs a 2-D image of at least 4x4, got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("radial_spectrum needs an all-finite rectangle (crop the valid window)")
    h, w = a.shape
    window = np.outer(hann(h, sym=False), hann(w, sym=False))
    power = np.abs(np.fft.fft2((a - a.mean()) * window)) ** 2
    n = min(h, w)
    radius = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :])
    k = np.rint(radius * n).astype(np.intp)
    kmax = n // 2
    sel = (k >= 1) & (k <= kmax)
    sums = np.bincount(k[sel], weights=power[sel], minlength=kmax + 1)[1:]
    counts = np.bincount(k[sel], minlength=kmax + 1)[1:]
    mean_power = sums / counts
    if not mean_power[0] > 0:
        raise ValueError("no power at the lowest frequency bin (constant image?)")
    rel = np.maximum(mean_power / mean_power[0], 1e-30)  # floor at -300 dB, never -inf
    return np.arange(1, kmax + 1) / n, 10.0 * np.log10(rel)


def frr_from_spectra(p_db: np.ndarray, b_db: np.ndarray, r_db: np.ndarray) -> dict[str, float]:
    """Frequency recovery from dB spectra of the method (p), bicubic (b) and reference (r).

    Sums over the bins given (pass the bins above f0; at f0 all three are 0 dB and add nothing):
      PFR = sum max(r - b, 0)                               power bicubic lost (possible recovery)
      AFR = sum [max(min(p, r), min(b, r)) - min(b, r)]     recovered, capped at the reference
      FRR = AFR / PFR                                       (NaN if PFR == 0)
      FRO = sum over bins with p > b of max(p - r, 0)       over-recovery above the reference
      FRU = PFR - AFR                                       under-recovery (still missing)
    FRR is 1 when the method restores the reference spectrum (or more), 0 when it adds nothing
    over bicubic; FRO flags spurious high-frequency power the method added.
    """
    p, b, r = (np.asarray(v, dtype=np.float64) for v in (p_db, b_db, r_db))
    if not p.shape == b.shape == r.shape or p.ndim != 1:
        raise ValueError(f"spectra must be 1-D of one length, got {p.shape}, {b.shape}, {r.shape}")
    floor = np.minimum(b, r)
    pfr = float(np.sum(np.maximum(r - b, 0.0)))
    afr = float(np.sum(np.maximum(np.minimum(p, r), floor) - floor))
    fro = float(np.sum(np.where(p > b, np.maximum(p - r, 0.0), 0.0)))
    return {
        "frr": afr / pfr if pfr > 0 else math.nan,
        "afr": afr,
        "pfr": pfr,
        "fro": fro,
        "fru": pfr - afr,
    }


def frr(pred: np.ndarray, bicubic: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """FRR, AFR, PFR, FRO, FRU (see `frr_from_spectra`) from `radial_spectrum` of the three images.

    All three must be all-finite rectangles of one shape; the bins above f0 are compared.
    """
    shapes = {np.shape(pred), np.shape(bicubic), np.shape(ref)}
    if len(shapes) != 1:
        raise ValueError(f"pred, bicubic and ref differ in shape: {sorted(shapes)}")
    spectra = [radial_spectrum(img)[1][1:] for img in (pred, bicubic, ref)]
    return frr_from_spectra(*spectra)


def _largest_in_histogram(heights: list[int]) -> tuple[int, int, int, int]:
    """(area, col0, col1, height) of the largest rectangle under a histogram (stack algorithm)."""
    best = (0, 0, 0, 0)
    stack: list[tuple[int, int]] = []  # (first column, height), heights increasing
    for col, height in enumerate([*heights, 0]):
        start = col
        while stack and stack[-1][1] >= height:
            first, h = stack.pop()
            if h * (col - first) > best[0]:
                best = (h * (col - first), first, col, h)
            start = first
        stack.append((start, height))
    return best


def largest_valid_rectangle(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Largest axis-aligned all-True rectangle of a boolean mask, as (row0, row1, col0, col1).

    Half-open bounds: mask[row0:row1, col0:col1] is all True. Used to cut a rectangular valid
    window out of a rotated-swath reference before taking spectra. Classic maximal rectangle:
    column heights of consecutive Trues per row, then the largest rectangle under each row's
    histogram, O(H*W). Ties keep the first found (topmost bottom row, then leftmost). Raises
    ValueError if the mask has no True pixel.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {m.shape}")
    heights = np.zeros(m.shape[1], dtype=np.intp)
    best_area, best = 0, (0, 0, 0, 0)
    for row in range(m.shape[0]):
        heights = np.where(m[row], heights + 1, 0)
        area, col0, col1, h = _largest_in_histogram(heights.tolist())
        if area > best_area:
            best_area, best = area, (row + 1 - h, row + 1, col0, col1)
    if best_area == 0:
        raise ValueError("mask has no valid pixel")
    return best


def _nan_frr(note: str) -> dict[str, float | str]:
    return {**dict.fromkeys(("frr", "afr", "pfr", "fro", "fru"), math.nan), "note": note}


def frr_masked(
    pred: np.ndarray,
    bicubic: np.ndarray,
    ref: np.ndarray,
    mask: np.ndarray | None = None,
    min_size: int = 32,
) -> dict[str, float | str]:
    """`frr` on the largest rectangle where `mask` holds and all three images are finite.

    Adds "window" ("row0:row1,col0:col1" of the crop) and "note" ("" on success). If the crop
    has a side shorter than `min_size`, there is no valid pixel, or the crop has no spectrum
    (constant), every FRR value is NaN and "note" says why.
    """
    p, r, ok = _valid(pred, ref, mask)
    b = np.asarray(bicubic, dtype=np.float64)
    if b.shape != p.shape:
        raise ValueError(f"bicubic shape {b.shape} differs from image shape {p.shape}")
    ok &= np.isfinite(b)
    if not ok.any():
        return {**_nan_frr("no pixel valid in all of pred, bicubic and ref"), "window": ""}
    r0, r1, c0, c1 = largest_valid_rectangle(ok)
    window = f"{r0}:{r1},{c0}:{c1}"
    if min(r1 - r0, c1 - c0) < min_size:
        note = f"largest valid rectangle {r1 - r0}x{c1 - c0} is smaller than {min_size}"
        return {**_nan_frr(note), "window": window}
    crop = (slice(r0, r1), slice(c0, c1))
    try:
        out: dict[str, float | str] = {**frr(p[crop], b[crop], r[crop])}
    except ValueError as err:
        return {**_nan_frr(str(err)), "window": window}
    return {**out, "window": window, "note": ""}


# --------------------------------------------------------------------------- summary


def quality_metrics(
    pred: np.ndarray,
    ref: np.ndarray,
    bicubic: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> dict[str, float]:
    """rmse, bias, rmse_debiased (ubRMSE), psnr, ssim, gssim, frr and n (scored pixels).

    frr is NaN without `bicubic` (and when `frr_masked` cannot find a large enough window).
    """
    _, _, ok = _valid(pred, ref, mask)
    fr = math.nan if bicubic is None else float(frr_masked(pred, bicubic, ref, mask)["frr"])
    return {
        "rmse": rmse(pred, ref, mask),
        "bias": bias(pred, ref, mask),
        "rmse_debiased": rmse_debiased(pred, ref, mask),
        "psnr": psnr(pred, ref, mask),
        "ssim": ssim(pred, ref, mask),
        "gssim": gssim(pred, ref, mask),
        "frr": fr,
        "n": float(ok.sum()),
    }
