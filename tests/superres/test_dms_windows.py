"""The parts of the Data Mining Sharpener (Gao et al. 2012) on small arrays with known answers:
homogeneity weights, moving windows, local/global blending, the T^4 residual correction, cubic
convolution and the leaf-linear trees."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from lstfill.raster import block_mean, block_mean_t4
from lstfill.superres.baselines import repeat_blocks
from lstfill.superres.dms import (
    _block_stats,
    _coarse_samples,
    blend,
    coarse_residual,
    coefficient_of_variation,
    correct_residual,
    cubic_convolution,
    dms,
    homogeneity_weights,
    local_weights,
    moving_windows,
)
from lstfill.superres.dms_trees import LeafLinearTree, leaf_ridge

F = 4


# --- homogeneity ---------------------------------------------------------------------------


def _block(mean: float, half_range: float) -> np.ndarray:
    """A 4x4 block of two values mean +- half_range (so its std is half_range)."""
    return np.where(np.indices((F, F)).sum(axis=0) % 2 == 0, mean + half_range, mean - half_range)


def test_cv_and_weights_on_a_constructed_array():
    # one row of five blocks: CV 0.1, 0.2, 0.4, 0.5 (negative mean: |mean|) and 0 (uniform)
    fine = np.hstack(
        [_block(0.5, 0.05), _block(0.5, 0.1), _block(0.25, 0.1), _block(-0.2, 0.1), _block(0.3, 0)]
    )[None].astype(np.float32)
    mean, std = _block_stats(fine, F, chunk_rows=512)
    cv = coefficient_of_variation(mean, std)
    np.testing.assert_allclose(cv[0], [0.1, 0.2, 0.4, 0.5, 0.0], rtol=1e-5)
    lst = np.full((1, 5), 300.0)
    lst_nan = lst.copy()
    lst_nan[0, 1] = np.nan
    samples = _coarse_samples(lst, fine, F, chunk_rows=512)
    np.testing.assert_array_equal(samples.mask[0], [True, True, True, True, False])  # uniform: out
    assert _coarse_samples(lst_nan, fine, F, 512).mask.sum() == 3
    # 1/CV = 10, 5, 2.5, 2 -> min-max scaled 1, 3/8, 1/16, 0; the 80th-percentile CV is 0.44,
    # so only the last (least homogeneous) sample is halved
    w, threshold = homogeneity_weights(cv[0, :4], 80.0)
    assert threshold == pytest.approx(0.44, rel=1e-5)
    np.testing.assert_allclose(w, [1.0, 3 / 8, 1 / 16, 0.0], atol=1e-6)
    w60, threshold60 = homogeneity_weights(cv[0, :4], 60.0)
    assert threshold60 == pytest.approx(0.36, rel=1e-5)
    np.testing.assert_allclose(w60, [1.0, 3 / 8, 1 / 32, 0.0], atol=1e-6)
    np.testing.assert_array_equal(homogeneity_weights(np.array([0.3]))[0], [1.0])
    np.testing.assert_array_equal(homogeneity_weights(np.full(3, 0.2), 0.0)[0], [1.0] * 3)


def test_multiband_cv_is_the_band_mean():
    mean = np.array([[[0.5, 2.0]]])
    std = np.array([[[0.05, 0.6]]])
    np.testing.assert_allclose(coefficient_of_variation(mean, std), [[0.2]])


# --- moving windows ------------------------------------------------------------------------


def test_moving_windows_tile_and_extend_like_pydms():
    windows = moving_windows(64, 40, 15, 0.25)
    assert len(windows) == 5 * 3
    (pred_rows, pred_cols), (rows, cols) = windows[0]
    assert (pred_rows, pred_cols) == (slice(0, 15), slice(0, 15))
    assert (rows, cols) == (slice(0, 18), slice(0, 18))  # 15 + floor(3.75)
    (pred_rows, _), (rows, _) = windows[3]  # second window row
    assert pred_rows == slice(15, 30) and rows == slice(11, 33)  # floor(15 - 3.75), floor(33.75)
    (pred_rows, pred_cols), (rows, cols) = windows[-1]
    assert (pred_rows, pred_cols) == (slice(60, 64), slice(30, 40))
    assert (rows, cols) == (slice(56, 64), slice(26, 40))  # clipped to the grid
    covered = np.zeros((64, 40), int)
    for (r, c), _ in windows:
        covered[r, c] += 1
    assert (covered == 1).all()  # the prediction windows tile the grid
    assert moving_windows(8, 8, 8, 0.0) == [((slice(0, 8),) * 2, (slice(0, 8),) * 2)]


# --- local / global blending ---------------------------------------------------------------


def test_local_weights():
    res_l = np.array([1.0, 0.5, 0.0, np.nan, np.nan, 2.0])
    res_g = np.array([1.0, 1.0, 1.0, 1.0, np.nan, np.nan])
    w = local_weights(res_l, res_g)
    np.testing.assert_allclose(w, [0.5, 0.8, 1.0, 0.0, 0.5, 0.5])


def test_blend_of_identical_predictions_is_that_prediction():
    rng = np.random.default_rng(0)
    glob = (300 + 5 * rng.random((16, 16))).astype(np.float32)
    lst_c = block_mean_t4(glob, F).astype(np.float64) + rng.normal(0, 0.5, (4, 4))
    np.testing.assert_allclose(blend(lst_c, glob.copy(), glob, F), glob, rtol=1e-6)
    local = glob + 1.0
    local[:4, :4] = np.nan  # no local model there: the global prediction
    out = blend(lst_c, local, glob, F)
    np.testing.assert_allclose(out[:4, :4], glob[:4, :4], rtol=1e-6)
    assert np.all((out >= glob - 1e-3) & (out <= local + 1e-3) | np.isnan(local))


def _linear_scene(n_coarse: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fine NDVI with sub-block detail and coarse LST = 320 - 20 * block-mean NDVI (exact)."""
    rng = np.random.default_rng(seed)
    size = n_coarse * F
    smooth = np.kron(rng.random((n_coarse, n_coarse)), np.ones((F, F)))
    ndvi = (0.2 + 0.6 * smooth + 0.02 * rng.random((size, size))).astype(np.float32)
    return 320.0 - 20.0 * block_mean(ndvi, F).astype(np.float64), ndvi


def test_local_models_on_the_global_data_reduce_to_the_global_model():
    # an exact linear relation, with no ridge penalty, is fitted exactly by every leaf of every
    # model; a single window covering the grid sees the global model's samples, smaller windows
    # the same relation, so blending changes nothing (no clipping: the fine NDVI reaches beyond
    # the block means that bound a small leaf)
    lst_c, ndvi = _linear_scene(16, seed=1)
    kw = {
        "ridge_alpha": 0.0,
        "extrapolation": 10.0,
        "n_estimators": 3,
        "residual_correction": False,
    }
    glob = dms(lst_c, ndvi, F, **kw)
    np.testing.assert_allclose(glob, 320.0 - 20.0 * ndvi, atol=1e-3)
    for window in (16, 8):
        info: dict = {}
        out = dms(lst_c, ndvi, F, moving_window=window, info=info, **kw)
        assert info["n_local_models"] == (16 // window) ** 2
        np.testing.assert_allclose(out, glob, atol=1e-3)


def test_windows_without_enough_samples_fall_back_to_global():
    lst_c, ndvi = _linear_scene(16, seed=2)
    lst_c[:8, :8] = np.nan  # the first 8x8 window keeps its 2-pixel extension: 36 < 40 samples
    info: dict = {}
    out = dms(lst_c, ndvi, F, moving_window=8, min_samples_leaf=40, info=info, n_estimators=2)
    assert info["n_local_models"] == 3
    assert np.isnan(out[:32, :32]).all() and np.isfinite(out[32:]).all()


# --- residual correction in T^4 --------------------------------------------------------------


def test_coarse_residual_aggregates_t4():
    pred = np.full((4, 4), 280.0)
    pred[:, 2:] = 320.0
    t4_mean = ((280.0**4 + 320.0**4) / 2) ** 0.25
    assert t4_mean > 300.0  # the radiance mean of two temperatures exceeds their mean
    res = coarse_residual(np.array([[305.0]]), pred, F)
    assert res[0, 0] == pytest.approx(305.0 - t4_mean, abs=1e-3)


def test_t4_residual_correction_restores_the_coarse_t4_mean_exactly():
    # block-uniform prediction and a residual uniform over the grid: the interpolated residual is
    # that constant, so every block becomes its coarse value and (mean T^4)^(1/4) = T_c exactly
    rng = np.random.default_rng(3)
    p = 290.0 + 20.0 * rng.random((5, 6))
    pred = repeat_blocks(p, F)
    lst_c = p + 1.7
    out = correct_residual(lst_c, pred, F)
    np.testing.assert_allclose(out, repeat_blocks(lst_c, F), atol=1e-9)
    t4 = block_mean(out.astype(np.float64) ** 4, F).astype(np.float64)  # float32 block mean
    np.testing.assert_allclose(t4**0.25, lst_c, rtol=1e-6)
    np.testing.assert_allclose(coarse_residual(lst_c, out, F), 0.0, atol=1e-3)


def test_t4_residual_correction_shrinks_a_general_residual():
    rng = np.random.default_rng(4)
    pred = 300.0 + 3.0 * rng.random((32, 32))
    lst_c = block_mean_t4(pred, F).astype(np.float64) + rng.normal(0, 1.0, (8, 8))
    before = np.sqrt(np.mean(coarse_residual(lst_c, pred, F) ** 2))
    after = [
        np.sqrt(np.mean(coarse_residual(lst_c, correct_residual(lst_c, pred, F, it), F) ** 2))
        for it in (1, 2, 3)
    ]
    assert after[0] < 0.5 * before and after[1] < 0.5 * after[0] and after[2] < 0.5 * after[1]


# --- cubic convolution ---------------------------------------------------------------------


def test_cubic_convolution_known_values():
    np.testing.assert_allclose(cubic_convolution(np.full((3, 4), 7.5), F), 7.5)
    # a ramp is reproduced exactly away from the replicated edges
    ramp = np.add.outer(np.arange(8.0), 2.0 * np.arange(8.0))
    centres = (np.arange(32) + 0.5) / F - 0.5
    expected = np.add.outer(centres, 2.0 * centres)
    np.testing.assert_allclose(cubic_convolution(ramp, F)[8:-8, 8:-8], expected[8:-8, 8:-8])
    # with an odd factor the central fine pixel sits on the coarse centre: the coarse value
    rng = np.random.default_rng(5)
    coarse = rng.random((4, 5))
    np.testing.assert_allclose(cubic_convolution(coarse, 3)[1::3, 1::3], coarse, atol=1e-12)
    # a spike gives the Keys kernel (a = -0.5) at the fine centres' distances from it:
    # 1.375, 1.125, 0.875, 0.625, then 0.375, 0.125, 0.125, 0.375 coarse pixels
    spike = np.zeros((1, 5))
    spike[0, 2] = 1.0
    row = cubic_convolution(spike, F)[0]
    np.testing.assert_allclose(
        row[4:12],
        [-0.0732421875, -0.0478515625, 0.0908203125, 0.3896484375]
        + [0.7275390625, 0.9638671875, 0.9638671875, 0.7275390625],
        atol=1e-12,
    )


def test_cubic_convolution_nan_pixels_do_not_spread():
    coarse = np.arange(16.0).reshape(4, 4)
    coarse[1, 2] = np.nan
    out = cubic_convolution(coarse, F)
    assert np.isnan(out[4:8, 8:12]).all() and np.isfinite(out).sum() == 15 * 16


# --- the leaf-linear trees -----------------------------------------------------------------


def test_leaf_ridge_is_sklearn_ridge_per_leaf():
    rng = np.random.default_rng(6)
    x = rng.random((60, 2))
    y = 3.0 + x @ [2.0, -1.0] + rng.normal(0, 0.1, 60)
    leaf = np.repeat([1, 3, 4], 20)
    coef, intercept = leaf_ridge(x, y, leaf, 5, alpha=0.7)
    for node in (1, 3, 4):
        ridge = Ridge(alpha=0.7).fit(x[leaf == node], y[leaf == node])
        np.testing.assert_allclose(coef[node], ridge.coef_, rtol=1e-8)
        assert intercept[node] == pytest.approx(ridge.intercept_, rel=1e-10)
    assert (coef[[0, 2]] == 0).all() and (intercept[[0, 2]] == 0).all()


def test_leaf_linear_tree_fits_lines_and_clips_extrapolation():
    x = np.linspace(0.0, 1.0, 40)[:, None]
    y = np.where(x[:, 0] < 0.5, 10.0 * x[:, 0], 20.0 - 10.0 * x[:, 0])
    tree = LeafLinearTree(max_leaf_nodes=2, min_samples_leaf=5, ridge_alpha=0.0).fit(x, y)
    np.testing.assert_allclose(tree.predict(x), y, atol=1e-6)
    # beyond the data the lines are clipped at the leaf range widened by 25 %
    lo = tree.predict(np.array([[-1.0]]))[0]
    assert lo == pytest.approx(y[x[:, 0] < 0.5].min() - 0.25 * np.ptp(y[x[:, 0] < 0.5]))
