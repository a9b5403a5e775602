"""Thermal-sharpening baselines (bicubic, TsHARP, DMS) on small synthetic rasters whose fine
truth is known: a linear or nonlinear LST-predictor relation, aggregated to a 4x coarser grid."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from lstfill.raster import block_mean, block_mean_t4
from lstfill.superres.baselines import bicubic, fit_tsharp, fractional_cover, tsharp
from lstfill.superres.dms import dms, homogeneity_weights

F = 4


def _field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """A smooth random field scaled to [0, 1]."""
    f = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (f - f.min()) / (f.max() - f.min())


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.nanmean((np.asarray(a, float) - b) ** 2)))


@pytest.fixture(scope="module")
def linear_scene():
    """NDVI with sub-block detail; LST = 320 - 20 NDVI + 0.05 K noise; coarse = block mean."""
    rng = np.random.default_rng(7)
    ndvi = 0.6 * _field(rng, (96, 96), 1.0) + 0.4 * _field(rng, (96, 96), 4.0)
    truth = 320.0 - 20.0 * ndvi + 0.05 * rng.standard_normal(ndvi.shape)
    return ndvi.astype(np.float32), truth, block_mean(truth, F).astype(np.float64)


def _nonlinear_scene(n_coarse: int, seed: int):
    """Two predictors, LST = 300 + 15 exp(-3 NDVI) + 5 b2; coarse = (mean T^4)^(1/4)."""
    rng = np.random.default_rng(seed)
    shape = (n_coarse * F, n_coarse * F)
    ndvi = 0.6 * _field(rng, shape, 1.0) + 0.4 * _field(rng, shape, 4.0)
    b2 = _field(rng, shape, 2.0)
    truth = 300.0 + 15.0 * np.exp(-3.0 * ndvi) + 5.0 * b2
    preds = np.stack([ndvi, b2]).astype(np.float32)
    return preds, truth, block_mean_t4(truth, F).astype(np.float64)


@pytest.fixture(scope="module")
def nonlinear_scene():
    return _nonlinear_scene(24, seed=3)


# --- bicubic ------------------------------------------------------------------------------


def test_bicubic_constant_stays_constant():
    out = bicubic(np.full((5, 7), 301.5), F)
    assert out.shape == (20, 28) and out.dtype == np.float32
    np.testing.assert_allclose(out, 301.5, atol=1e-4)


def test_bicubic_reproduces_linear_ramp_at_fine_pixel_centres():
    i, j = np.arange(12.0), np.arange(10.0)
    coarse = 280.0 + 0.7 * i[:, None] + 1.3 * j[None, :]
    out = bicubic(coarse, F)
    # fine pixel k has its centre at coarse coordinate (k + 0.5) / F - 0.5
    fi, fj = (np.arange(48) + 0.5) / F - 0.5, (np.arange(40) + 0.5) / F - 0.5
    expected = 280.0 + 0.7 * fi[:, None] + 1.3 * fj[None, :]
    np.testing.assert_allclose(out[8:-8, 8:-8], expected[8:-8, 8:-8], atol=1e-4)
    np.testing.assert_allclose(out, expected, atol=1e-3)  # odd-reflection padding: also edges
    np.testing.assert_allclose(block_mean(out, F), coarse, atol=1e-4)


def test_bicubic_nan_coarse_pixel_gives_nan_block_only():
    coarse = 290.0 + np.add.outer(np.arange(8.0), np.arange(8.0))
    coarse[3, 4] = np.nan
    out = bicubic(coarse, F)
    assert np.isnan(out[12:16, 16:20]).all()
    assert np.isnan(out).sum() == F * F
    assert np.isfinite(out[8:20, 12:24][~np.isnan(out[8:20, 12:24])]).all()
    assert 295.0 < np.nanmax(out[8:20, 12:24]) < 300.0  # neighbours not spoiled by the NaN
    assert np.isnan(bicubic(np.full((2, 2), np.nan), 2)).all()


@pytest.mark.parametrize(
    "args",
    [(np.zeros(5), 4), (np.zeros((2, 2, 2)), 4), (np.zeros((2, 2)), 0), (np.zeros((2, 2)), 2.5)],
)
def test_bicubic_rejects_bad_shapes_and_factors(args):
    with pytest.raises(ValueError):
        bicubic(*args)


# --- block aggregation --------------------------------------------------------------------


def test_block_mean_hand_computed():
    fine = np.array([[300.0, 310.0, 1.0, 2.0], [290.0, 280.0, 3.0, np.nan]])
    np.testing.assert_allclose(block_mean(fine, 2), [[295.0, np.nan]])
    np.testing.assert_allclose(block_mean(fine, 2, min_valid=0.75), [[295.0, 2.0]])
    assert np.isnan(block_mean(fine, 2, min_valid=1.0)[0, 1])
    assert block_mean(np.stack([fine, 2 * fine]), 2).shape == (2, 1, 2)
    with pytest.raises(ValueError):
        block_mean(np.zeros((6, 6)), 4)


def test_block_mean_t4_hand_computed():
    fine = np.array([[300.0, 310.0], [300.0, 310.0]])
    expected = ((300.0**4 + 310.0**4) / 2) ** 0.25  # 305.1229 K, warmer than the mean 305 K
    assert block_mean_t4(fine, 2)[0, 0] == pytest.approx(expected, abs=1e-4)
    assert expected == pytest.approx(305.12288, abs=1e-4)
    fine[1, 1] = np.nan
    assert np.isnan(block_mean_t4(fine, 2)[0, 0])
    assert block_mean_t4(fine, 2, min_valid=0.5)[0, 0] == pytest.approx(
        ((2 * 300.0**4 + 310.0**4) / 3) ** 0.25, abs=1e-4
    )


# --- TsHARP -------------------------------------------------------------------------------


def test_fit_tsharp_recovers_slope(linear_scene):
    ndvi, _, coarse = linear_scene
    a0, a1 = fit_tsharp(coarse, ndvi, F)
    assert a1 == pytest.approx(-20.0, abs=0.2)
    assert a0 == pytest.approx(320.0, abs=0.2)
    _, a1_h = fit_tsharp(coarse, ndvi, F, homogeneous_share=0.25)
    assert a1_h == pytest.approx(-20.0, abs=0.5)


def test_fit_tsharp_excludes_pixels_below_min_t(linear_scene):
    ndvi, _, coarse = linear_scene
    cloudy = coarse.copy()
    cloudy[::3, ::3] = 250.0
    assert fit_tsharp(cloudy, ndvi, F)[1] == pytest.approx(-20.0, abs=0.2)
    assert abs(fit_tsharp(cloudy, ndvi, F, min_t=0.0)[1] + 20.0) > 1.0


def test_tsharp_conserves_block_mean_and_beats_bicubic(linear_scene):
    ndvi, truth, coarse = linear_scene
    out = tsharp(coarse, ndvi, F)
    assert out.shape == truth.shape and out.dtype == np.float32
    np.testing.assert_allclose(block_mean(out, F), coarse, atol=1e-3)
    rmse_ts, rmse_bc = _rmse(out, truth), _rmse(bicubic(coarse, F), truth)
    assert rmse_ts < 0.2 * rmse_bc
    assert rmse_ts < 0.1


def test_tsharp_fc_basis_and_t4_aggregation(linear_scene):
    ndvi, _, coarse = linear_scene
    fc = fractional_cover(ndvi)
    assert np.nanmin(fc) >= 0.0 and np.nanmax(fc) <= 1.0
    assert fc[ndvi >= np.percentile(ndvi, 98)].min() == pytest.approx(1.0)
    out_fc = tsharp(coarse, ndvi, F, basis="fc")
    np.testing.assert_allclose(block_mean(out_fc, F), coarse, atol=1e-3)
    out_t4 = tsharp(coarse, ndvi, F, aggregate="t4")
    np.testing.assert_allclose(block_mean_t4(out_t4, F), coarse, atol=1e-3)


def test_tsharp_nan_handling_and_errors(linear_scene):
    ndvi, _, coarse = linear_scene
    ndvi, coarse = ndvi.copy(), coarse.copy()
    ndvi[5, 6] = np.nan
    coarse[10, 10] = np.nan
    out = tsharp(coarse, ndvi, F)
    assert np.isnan(out[5, 6]) and np.isfinite(out[4:8, 4:8]).sum() == 15
    assert np.isnan(out[40:44, 40:44]).all()
    assert np.isnan(out).sum() == 17
    # the block holding the NaN NDVI pixel still averages to its coarse value
    assert np.nanmean(out[4:8, 4:8]) == pytest.approx(coarse[1, 1], abs=1e-3)
    with pytest.raises(ValueError):
        tsharp(coarse, ndvi[:-1], F)
    with pytest.raises(ValueError):
        tsharp(coarse, ndvi, F, basis="evi")


# --- DMS ----------------------------------------------------------------------------------


def test_homogeneity_weights():
    cv = np.linspace(0.05, 0.5, 10)
    w, threshold = homogeneity_weights(cv, 80.0)
    assert threshold == pytest.approx(np.percentile(cv, 80))
    assert w[0] == pytest.approx(1.0) and np.all(np.diff(w) < 0)
    assert w.min() == 0.0 and w.max() == 1.0  # 1/CV min-max scaled (Gao et al. 2012, 2.2)
    unhalved, _ = homogeneity_weights(cv, 100.0)
    above = cv >= threshold
    assert above.sum() == 2
    np.testing.assert_allclose(w[above], unhalved[above] / 2)
    np.testing.assert_allclose(w[~above], unhalved[~above])
    with pytest.raises(ValueError, match="positive"):  # uniform blocks are not samples
        homogeneity_weights(np.r_[0.0, cv], 80.0)


# The synthetic scenes are noise-free, so the leaf lines need next to no ridge penalty; the
# default (1.0, pyDMS's, for noisy real LST) shrinks them towards leaf means.
EXACT = {"ridge_alpha": 1e-4}


def test_dms_beats_bicubic_and_conserves_energy(nonlinear_scene):
    preds, truth, coarse = nonlinear_scene
    info: dict = {}
    out = dms(coarse, preds, F, info=info, **EXACT)
    assert out.shape == truth.shape and out.dtype == np.float32
    rmse_dms, rmse_bc = _rmse(out, truth), _rmse(bicubic(coarse, F), truth)
    assert rmse_dms < 0.3 * rmse_bc
    assert _rmse(tsharp(coarse, preds[0], F), truth) > 2 * rmse_dms  # nonlinear: DMS wins
    # one cubic-convolution pass of the coarse residual conserves energy only approximately
    # (measured: RMS 0.015 K, max 0.27 K from a 0.09 K RMS residual); three passes tighten it
    # (max 0.04 K)
    err = block_mean_t4(out, F) - coarse
    assert info["n_samples"] == coarse.size
    assert info["residual_rms_after"] == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-6)
    assert info["residual_rms_after"] < min(0.03, 0.3 * info["residual_rms_before"])
    assert np.abs(err).max() < 0.5
    tight = dms(coarse, preds, F, residual_iterations=3, **EXACT)
    err3 = block_mean_t4(tight, F) - coarse
    assert np.abs(err3).max() < 0.08 and np.sqrt(np.mean(err3**2)) < 0.01


def test_dms_is_deterministic(nonlinear_scene):
    preds, _, coarse = nonlinear_scene
    first = dms(coarse, preds, F, n_estimators=5, seed=4)
    np.testing.assert_array_equal(first, dms(coarse, preds, F, n_estimators=5, seed=4))
    np.testing.assert_array_equal(first, dms(coarse, preds, F, n_estimators=5, seed=4, n_jobs=2))
    np.testing.assert_allclose(
        first, dms(coarse, preds, F, n_estimators=5, seed=4, chunk_rows=7), atol=1e-4
    )
    assert not np.array_equal(first, dms(coarse, preds, F, n_estimators=5, seed=5))


def test_dms_local_and_global_models():
    preds, truth, coarse = _nonlinear_scene(16, seed=11)
    info: dict = {}
    out = dms(coarse, preds, F, moving_window=4, info=info, **EXACT)
    assert info["n_local_models"] == 16
    assert np.isfinite(out).all()
    assert _rmse(out, truth) < 0.5 * _rmse(bicubic(coarse, F), truth)
    assert np.sqrt(np.mean((block_mean_t4(out, F) - coarse) ** 2)) < 0.03


def test_dms_nan_predictor_and_nan_coarse(nonlinear_scene):
    preds, truth, coarse = nonlinear_scene
    preds, coarse = preds.copy(), coarse.copy()
    preds[1, 10, 13] = np.nan
    coarse[5, 7] = np.nan
    coarse[0, 0] = np.nan
    info: dict = {}
    out = dms(coarse, preds, F, info=info, **EXACT)
    assert np.isnan(out[10, 13])
    assert np.isnan(out[20:24, 28:32]).all() and np.isnan(out[:4, :4]).all()
    assert np.isnan(out).sum() == 1 + 2 * F * F
    assert info["n_samples"] == coarse.size - 3  # two NaN LST pixels, one partial block
    assert _rmse(out, truth) < 0.3 * _rmse(bicubic(coarse, F), truth)


def test_dms_rejects_bad_shapes(nonlinear_scene):
    preds, _, coarse = nonlinear_scene
    with pytest.raises(ValueError, match="spatial shape"):
        dms(coarse, preds[:, :-1], F)
    with pytest.raises(ValueError, match="dims|must be"):
        dms(coarse, preds[None], F)
    with pytest.raises(ValueError):
        dms(coarse[0], preds, F)


def test_dms_accepts_a_single_2d_predictor(nonlinear_scene):
    preds, truth, coarse = nonlinear_scene
    out = dms(coarse, preds[0], F, n_estimators=5)
    assert out.shape == truth.shape and np.isfinite(out).all()
    assert _rmse(out, truth) < _rmse(bicubic(coarse, F), truth)
