"""The super-resolution evaluation: every SIF-NN-SR variant and every baseline on the test days,
scored against a fine truth on the same pixels.

The scores are the pixel and structural metrics of `lstfill.metrics` (RMSE, bias, ubRMSE, PSNR,
SSIM, GSSIM) and the frequency recovery ratio (FRR) of the SIF-NN-SR evaluation (Ait-Bachir et
al. 2025, arXiv:2502.01204), which asks how much of the high-frequency power that bicubic
interpolation loses a method puts back.

Every metric takes `pred` and `ref`, 2-D arrays of the same shape (K), and an optional boolean
`mask` of the pixels to score; the pixels actually used are always `mask` & both finite, so NaN
fill (e.g. around a rotated ASTER swath) never enters a metric. Scalars come back as Python floats.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal.windows import hann

from lstfill.device import job_device
from lstfill.errors import InputError
from lstfill.io import read_raster
from lstfill.method import load_method
from lstfill.metrics import _valid, bias, finite_mean, gssim, psnr, rmse, rmse_debiased, ssim
from lstfill.superres.baselines import Predict, baseline_methods
from lstfill.superres.inputs import read_day_scene
from lstfill.superres.method import DEVICE_KEY, METHODS, Sharpener, energy_residual

log = logging.getLogger(__name__)

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


def all_methods(
    models: Mapping[str, Sharpener], cfg: dict, factor: int, device: Any, **dms_settings: Any
) -> dict[str, Predict]:
    """Every model (under its key in `models`) and every baseline (`baseline_methods`, given
    `dms_settings`), each a `Predict` on (coarse LST, fine NDVI); the models run on `device`."""
    methods: dict[str, Predict] = {
        name: (lambda lst, ndvi, m=m: m.predict(lst, ndvi, device)) for name, m in models.items()
    }
    methods.update(baseline_methods(cfg, factor, **dms_settings))
    return methods


def score_test_days(
    scene_paths: Sequence[str | Path],
    truth_paths: Sequence[str | Path],
    split_path: str | Path,
    checkpoints: dict[str, str | Path],
    cfg: dict,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Every model and baseline on the test days of the split, scored against the fine truth on
    the same pixels (valid in every product and in the truth). `truth_paths[i]` is the truth of
    `scene_paths[i]`. The models run on superres.training.device. Returns the metrics and the
    arrays of the day with the most scored pixels (for the figure)."""

    device = job_device(cfg["training"]["device"], DEVICE_KEY)
    if len(scene_paths) != len(truth_paths):
        raise ValueError("one truth raster per scene is needed")
    test_days = set(json.loads(Path(split_path).read_text())["test"])
    scenes = [(read_day_scene(s), s, t) for s, t in zip(scene_paths, truth_paths, strict=True)]
    chosen = [c for c in scenes if c[0].date.isoformat() in test_days]
    if not chosen:
        raise InputError(split_path, f"none of its test days {sorted(test_days)} has a scene")
    models = {f"model_{name}": load_method(path, METHODS) for name, path in checkpoints.items()}
    per_day: list[dict[str, Any]] = []
    shown: dict[str, np.ndarray] | None = None
    for scene, scene_path, truth_path in chosen:
        truth, _, _, _, _ = read_raster(truth_path)
        if truth.shape != scene.ndvi.shape:
            raise InputError(
                truth_path,
                f"shape {truth.shape} is not the scene's fine grid "
                f"{scene.ndvi.shape} ({scene_path})",
            )
        methods = all_methods(models, cfg, scene.factor, device)
        outputs = {name: fn(scene.lst, scene.ndvi) for name, fn in methods.items()}
        mask = np.isfinite(truth) & np.all([np.isfinite(o) for o in outputs.values()], axis=0)
        if not mask.any():
            log.warning("%s: no pixel valid in every product; skipped", scene_path)
            continue
        bic = outputs["baseline_bicubic"]
        day = {"date": scene.date.isoformat(), "n": int(mask.sum()), "methods": {}}
        for name, out in outputs.items():
            q = quality_metrics(out, truth, bicubic=bic, mask=mask)
            q["energy_residual_rms_k"] = energy_residual(
                out, scene.lst, scene.factor, cfg["psf_mtf"]
            )
            day["methods"][name] = q
        per_day.append(day)
        if shown is None or mask.sum() > shown["_n"]:
            shown = {"_n": mask.sum(), "truth": truth, "lst": scene.lst, **outputs}
    if not per_day:
        raise InputError(
            scene_paths[0] if scene_paths else "superres", "no test day has pixels to score"
        )
    names = list(per_day[0]["methods"])
    keys = [k for k in per_day[0]["methods"][names[0]] if k != "n"]
    summary = {
        name: {
            **{k: finite_mean([d["methods"][name][k] for d in per_day]) for k in keys},
            "n_pixels": int(sum(d["n"] for d in per_day)),
        }
        for name in names
    }
    result = {
        "split": json.loads(Path(split_path).read_text()),
        "protocol": "Each test day's coarse LST (with its cloud gaps) and fine NDVI are sharpened "
        "by every method; metrics compare with the fine truth on pixels valid in every product, "
        "averaged over the test days. frr: share of the spectral energy bicubic loses that the "
        "method recovers. energy_residual_rms_k: PSF-degraded product minus the coarse input.",
        "n_days": len(per_day),
        "methods": summary,
        "days": per_day,
    }
    assert shown is not None
    return result, shown
