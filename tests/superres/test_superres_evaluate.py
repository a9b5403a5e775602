"""Super-resolution quality metrics: hand-computed pixel metrics, SSIM identities and masking,
GSSIM, radial spectra, FRR definitions, the largest valid rectangle and the summary dict."""

import itertools
import math

import numpy as np
import pytest
from scipy import ndimage

from lstfill.metrics import (
    bias,
    gradient_magnitude,
    gssim,
    psnr,
    rmse,
    rmse_debiased,
    ssim,
    ssim_map,
)
from lstfill.superres.evaluate import (
    frr,
    frr_from_spectra,
    frr_masked,
    largest_valid_rectangle,
    quality_metrics,
    radial_spectrum,
)


def _field(shape=(64, 64), sigma=3.0, seed=0, scale=5.0, base=300.0):
    """Smooth synthetic LST-like field (K)."""
    rng = np.random.default_rng(seed)
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return base + scale * f / f.std()


# --------------------------------------------------------------------------- pixel metrics


def test_pixel_metrics_hand_computed_2x2():
    ref = np.array([[300.0, 302.0], [304.0, 306.0]])
    pred = np.array([[301.0, 302.0], [303.0, 308.0]])  # errors 1, 0, -1, 2
    assert rmse(pred, ref) == pytest.approx(math.sqrt(6 / 4))
    assert bias(pred, ref) == pytest.approx(0.5)
    assert rmse_debiased(pred, ref) == pytest.approx(math.sqrt(6 / 4 - 0.25))
    # default data_range = ref max - min = 6 K: 10 log10(36 / 1.5)
    assert psnr(pred, ref) == pytest.approx(10 * math.log10(36 / 1.5))
    assert psnr(pred, ref, data_range=60.0) == pytest.approx(10 * math.log10(3600 / 1.5))


def test_pixel_metrics_mask_nan_and_edge_cases():
    ref = np.array([[300.0, 302.0], [304.0, np.nan]])
    pred = np.array([[301.0, 302.0], [303.0, 999.0]])
    assert rmse(pred, ref) == pytest.approx(math.sqrt(2 / 3))  # NaN pixel skipped
    mask = np.array([[True, True], [False, False]])
    assert bias(pred, ref, mask) == pytest.approx(0.5)
    # data_range over the mask only: 302 - 300
    assert psnr(pred, ref, mask) == pytest.approx(10 * math.log10(4 / 0.5))
    assert psnr(ref, ref) == math.inf
    assert math.isnan(rmse(pred, ref, np.zeros((2, 2), bool)))
    assert type(rmse(pred, ref)) is float
    with pytest.raises(ValueError):
        rmse(np.zeros((2, 2)), np.zeros((2, 3)))


# --------------------------------------------------------------------------- SSIM


def _gauss_window(sigma=1.5, radius=5):
    ax = np.arange(-radius, radius + 1)
    g = np.exp(-(ax**2) / (2 * sigma**2))
    w = np.outer(g, g)
    return w / w.sum()


def test_ssim_map_matches_standard_definition_in_interior():
    x, y = _field(seed=1), _field(seed=2)
    rng_ = float(y.max() - y.min())
    c1, c2 = (0.01 * rng_) ** 2, (0.03 * rng_) ** 2
    smap, scored = ssim_map(x, y)
    w = _gauss_window()
    for i, j in [(5, 5), (20, 33), (58, 58), (31, 7)]:
        px, py = x[i - 5 : i + 6, j - 5 : j + 6], y[i - 5 : i + 6, j - 5 : j + 6]
        mx, my = (w * px).sum(), (w * py).sum()
        vx, vy = (w * px**2).sum() - mx**2, (w * py**2).sum() - my**2
        cxy = (w * px * py).sum() - mx * my
        want = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        assert scored[i, j]
        assert smap[i, j] == pytest.approx(want, rel=1e-9)
    # pixels within 2 px of the border (and the 3rd-px corners) lack > 1 % of their window
    assert not scored[2, 30] and not scored[30, 61] and not scored[3, 3]
    assert scored[3, 30] and scored[4:-4, 4:-4].all()


def test_ssim_identity_and_constant_offset():
    x = _field()
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-12)
    # same local variances and covariance: SSIM = luminance term only, per pixel
    # (2 m (m + d) + C1) / (m^2 + (m + d)^2 + C1) = 1 - d^2 / (m^2 + (m + d)^2 + C1)
    c1 = (0.01 * float(x.max() - x.min())) ** 2
    w = _gauss_window()
    for d in (0.5, 2.0):
        smap, _ = ssim_map(x + d, x)
        m = (w * x[25:36, 15:26]).sum()  # local mean of ref at (30, 20)
        assert smap[30, 20] == pytest.approx(1 - d**2 / (m**2 + (m + d) ** 2 + c1), rel=1e-12)
        assert 0.9 < ssim(x + d, x) < 1.0
    assert ssim(x + 2.0, x) < ssim(x + 0.5, x)


def test_ssim_two_constant_images_hand_derived():
    a, b, rng_ = 300.0, 290.0, 50.0
    c1 = (0.01 * rng_) ** 2
    want = (2 * a * b + c1) / (a**2 + b**2 + c1)
    got = ssim(np.full((24, 24), a), np.full((24, 24), b), data_range=rng_)
    assert got == pytest.approx(want, rel=1e-12)
    # a constant reference has no data range: SSIM undefined unless one is given
    assert math.isnan(ssim(np.full((24, 24), a), np.full((24, 24), b)))


def test_ssim_nan_region_does_not_contaminate():
    x, y = _field((96, 96), seed=3), _field((96, 96), seed=4)
    y = 0.7 * x + 0.3 * y  # correlated pair
    pred = x.copy()
    pred[:, 60:] = np.nan  # fill, e.g. outside a swath
    smap, scored = ssim_map(pred, y, data_range=20.0)
    full_map, _ = ssim_map(x, y, data_range=20.0)
    # map identical wherever the window does not reach the NaNs (>= 6 px away)
    np.testing.assert_allclose(smap[:, :54], full_map[:, :54], rtol=1e-10)
    assert not scored[:, 60:].any()
    assert scored[10:-10, 54:57].all()  # near the edge: windows still >= 99 % valid
    # mean SSIM over the rest vs. over a fully valid crop well away from the NaNs
    s_masked = ssim(pred, y, data_range=20.0)
    s_crop = ssim(x[:, :48], y[:, :48], data_range=20.0)
    assert s_masked == pytest.approx(s_crop, abs=0.03)
    # an explicit mask behaves like NaN fill
    mask = np.ones(x.shape, bool)
    mask[:, 60:] = False
    assert ssim(x, y, mask, data_range=20.0) == pytest.approx(s_masked, rel=1e-12)


def test_ssim_decreases_with_noise():
    x = _field()
    rng = np.random.default_rng(7)
    noise = rng.standard_normal(x.shape)
    values = [ssim(x + s * noise, x) for s in (0.0, 0.2, 0.5, 1.0, 2.0, 4.0)]
    assert values[0] == pytest.approx(1.0)
    assert all(a > b for a, b in itertools.pairwise(values))


# --------------------------------------------------------------------------- GSSIM


def test_gradient_magnitude_and_nan_propagation():
    ramp = np.tile(np.arange(8.0), (8, 1))  # d/dx = 1 per px; Sobel gain 8 => Gx = 8
    g = gradient_magnitude(ramp)
    np.testing.assert_allclose(g[1:-1, 1:-1], 8.0)
    ramp[4, 4] = np.nan
    g = gradient_magnitude(ramp)
    assert np.isnan(g[3:6, 3:6]).all()
    assert np.isfinite(g).sum() == 64 - 9


def test_gssim_identity_and_blur():
    x = _field(sigma=1.5)
    assert gssim(x, x) == pytest.approx(1.0, abs=1e-12)
    blurred = ndimage.gaussian_filter(x, 1.5, mode="nearest")
    assert gssim(blurred, x) < 0.95
    assert gssim(blurred, x) < gssim(ndimage.gaussian_filter(x, 0.7, mode="nearest"), x)


def test_gssim_scores_eroded_mask():
    x, y = _field(seed=5), _field(seed=6)
    mask = np.ones(x.shape, bool)
    mask[:, 40:] = False
    fill = x.copy()
    fill[:, 40:] = -9999.0  # finite fill: masked out, must not create a gradient edge
    assert gssim(fill, y, mask) == pytest.approx(gssim(x, y, mask), rel=1e-12)


# --------------------------------------------------------------------------- radial spectrum


def test_radial_spectrum_sinusoid_peak():
    yy, xx = np.mgrid[0:64, 0:64]
    img = np.sin(2 * np.pi * 0.125 * xx) + 0.01 * np.cos(2 * np.pi * 0.03 * yy)
    freqs, db = radial_spectrum(img)
    assert freqs[0] == pytest.approx(1 / 64) and freqs[-1] == pytest.approx(0.5)
    assert db[0] == 0.0
    assert freqs[np.argmax(db)] == pytest.approx(0.125)
    # diagonal wave at |f| = 0.125 (fx = fy = 0.125 / sqrt 2) peaks in the same bin
    f = 0.125 / math.sqrt(2)
    _, db = radial_spectrum(np.sin(2 * np.pi * f * (xx + yy)))
    assert freqs[np.argmax(db)] == pytest.approx(0.125)


def test_radial_spectrum_white_noise_flat_and_blur_decays():
    rng = np.random.default_rng(11)
    noise = rng.standard_normal((128, 128))
    freqs, db = radial_spectrum(noise)
    assert np.std(db[4:]) < 1.0  # flat within ~1 dB (first bins have few samples)
    assert abs(np.polyfit(freqs[4:], db[4:], 1)[0]) < 5  # no trend (dB per cycle/px)
    _, db_blur = radial_spectrum(ndimage.gaussian_filter(noise, 2.0, mode="wrap"))
    at = {f: db_blur[np.argmin(np.abs(freqs - f))] for f in (0.05, 0.1, 0.2, 0.3)}
    assert at[0.05] > at[0.1] > at[0.2] > at[0.3]
    assert at[0.3] < -40


def test_radial_spectrum_rejects_nan_and_non_2d():
    img = np.ones((16, 16))
    img[3, 3] = np.nan
    with pytest.raises(ValueError):
        radial_spectrum(img)
    with pytest.raises(ValueError):
        radial_spectrum(np.ones(16))
    with pytest.raises(ValueError):
        radial_spectrum(np.full((16, 16), 3.0))  # no power at all


def test_radial_spectrum_rectangular_bins():
    rng = np.random.default_rng(2)
    freqs, db = radial_spectrum(rng.standard_normal((40, 64)))
    assert len(freqs) == 20 and freqs[-1] == pytest.approx(0.5)
    assert np.isfinite(db).all()


# --------------------------------------------------------------------------- FRR


R = np.array([0.0, -10.0, -20.0, -30.0])
B = np.array([0.0, -20.0, -40.0, -60.0])


def test_frr_from_spectra_hand_made():
    full = frr_from_spectra(R, B, R)
    assert full == {"frr": 1.0, "afr": 60.0, "pfr": 60.0, "fro": 0.0, "fru": 0.0}
    none = frr_from_spectra(B, B, R)
    assert none["frr"] == 0.0 and none["fru"] == 60.0
    half = frr_from_spectra((R + B) / 2, B, R)  # halfway in dB: 5 + 10 + 15 of 10 + 20 + 30
    assert half["frr"] == pytest.approx(0.5) and half["afr"] == pytest.approx(30.0)
    # overshoot: recovery capped at the reference, the excess is FRO (bins where p > b)
    over = frr_from_spectra(R + np.array([0.0, 5.0, 5.0, 5.0]), B, R)
    assert over["frr"] == 1.0 and over["fro"] == pytest.approx(15.0)
    # below bicubic: nothing recovered, nothing over-recovered
    under = frr_from_spectra(B - 5, B, R)
    assert under["frr"] == 0.0 and under["fro"] == 0.0
    # bins where bicubic already exceeds the reference: no possible recovery, p > b there
    # adds over-recovery above the reference
    mixed = frr_from_spectra(np.array([0.0, -5.0]), np.array([0.0, -8.0]), np.array([0.0, -10.0]))
    assert mixed["pfr"] == 0.0 and math.isnan(mixed["frr"]) and mixed["fro"] == 5.0


def test_frr_on_images():
    ref = _field((64, 64), sigma=1.0, seed=8)
    bic = ndimage.gaussian_filter(ref, 1.5, mode="nearest")
    assert frr(ref, bic, ref)["frr"] == pytest.approx(1.0)
    assert frr(bic, bic, ref)["frr"] == 0.0
    partial = frr(ndimage.gaussian_filter(ref, 0.8, mode="nearest"), bic, ref)["frr"]
    assert 0.0 < partial < 1.0
    with pytest.raises(ValueError):
        frr(ref, bic[:, :32], ref)


def _rotated_square(n=128, half=50, angle=30.0):
    yy, xx = np.mgrid[0:n, 0:n] - (n - 1) / 2
    a = math.radians(angle)
    u = xx * math.cos(a) + yy * math.sin(a)
    v = -xx * math.sin(a) + yy * math.cos(a)
    return (np.abs(u) <= half) & (np.abs(v) <= half)


def test_frr_masked_rotated_swath():
    ref = _field((128, 128), sigma=1.0, seed=9)
    bic = ndimage.gaussian_filter(ref, 1.5, mode="nearest")
    swath = _rotated_square()
    ref_swath = np.where(swath, ref, np.nan)  # NaN fill around the swath
    out = frr_masked(ref, bic, ref_swath)
    assert out["frr"] == pytest.approx(1.0) and out["note"] == ""
    r0, r1, c0, c1 = (int(v) for v in out["window"].replace(",", ":").split(":"))
    assert swath[r0:r1, c0:c1].all() and min(r1 - r0, c1 - c0) >= 32
    assert frr_masked(bic, bic, ref_swath)["frr"] == 0.0
    small = frr_masked(ref, bic, ref, mask=_rotated_square(half=15))
    assert math.isnan(small["frr"]) and "smaller than 32" in small["note"]
    empty = frr_masked(ref, bic, ref, mask=np.zeros(ref.shape, bool))
    assert math.isnan(empty["frr"]) and empty["note"]


# --------------------------------------------------------------------------- rectangle


def _brute_force_area(mask):
    h, w = mask.shape
    best = 0
    for r0, c0 in itertools.product(range(h), range(w)):
        for r1, c1 in itertools.product(range(r0 + 1, h + 1), range(c0 + 1, w + 1)):
            if mask[r0:r1, c0:c1].all():
                best = max(best, (r1 - r0) * (c1 - c0))
    return best


def test_largest_valid_rectangle_hand_made():
    full = np.ones((5, 7), bool)
    assert largest_valid_rectangle(full) == (0, 5, 0, 7)
    # L-shape: 10x3 vertical bar (30) and a 4x10 bottom bar (40)
    ell = np.zeros((10, 10), bool)
    ell[:, :3] = True
    ell[6:, :] = True
    assert largest_valid_rectangle(ell) == (6, 10, 0, 10)
    # diamond (45-degree rotated square) |r - 4| + |c - 4| <= 4: the 5x5 centre square wins
    rr, cc = np.mgrid[0:9, 0:9]
    diamond = np.abs(rr - 4) + np.abs(cc - 4) <= 4
    assert largest_valid_rectangle(diamond) == (2, 7, 2, 7)
    single = np.zeros((4, 4), bool)
    single[2, 1] = True
    assert largest_valid_rectangle(single) == (2, 3, 1, 2)
    with pytest.raises(ValueError):
        largest_valid_rectangle(np.zeros((4, 4), bool))


def test_largest_valid_rectangle_matches_brute_force():
    rng = np.random.default_rng(3)
    masks = [rng.random((7, 9)) < p for p in (0.5, 0.7, 0.85)]
    masks.append(_rotated_square(n=12, half=4, angle=20.0))
    for mask in masks:
        r0, r1, c0, c1 = largest_valid_rectangle(mask)
        assert mask[r0:r1, c0:c1].all()
        assert (r1 - r0) * (c1 - c0) == _brute_force_area(mask)


# --------------------------------------------------------------------------- summary


def test_quality_metrics_offset_case():
    ref = _field((64, 64), sigma=1.0, seed=10)
    pred = ref + 1.0
    m = quality_metrics(pred, ref)
    assert set(m) == {"rmse", "bias", "rmse_debiased", "psnr", "ssim", "gssim", "frr", "n"}
    assert all(type(v) is float for v in m.values())
    assert m["rmse"] == pytest.approx(1.0) and m["bias"] == pytest.approx(1.0)
    assert m["rmse_debiased"] == pytest.approx(0.0, abs=1e-9)
    assert m["psnr"] == pytest.approx(20 * math.log10(ref.max() - ref.min()))
    assert 0.9 < m["ssim"] < 1.0
    assert m["gssim"] == pytest.approx(1.0)  # an offset leaves the gradients unchanged
    assert math.isnan(m["frr"]) and m["n"] == 64 * 64
    bic = ndimage.gaussian_filter(ref, 1.5, mode="nearest")
    mask = np.ones(ref.shape, bool)
    mask[:8] = False
    m = quality_metrics(ref, ref, bicubic=bic, mask=mask)
    assert m["frr"] == pytest.approx(1.0) and m["n"] == 56 * 64 and m["ssim"] == pytest.approx(1)
