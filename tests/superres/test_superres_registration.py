"""Sub-pixel registration of the NDVI guide on the coarse LST."""

import numpy as np
import pytest
from scipy import ndimage

from lstfill.method import load_method
from lstfill.superres import psf
from lstfill.superres.method import METHODS, Sharpener, TileConfig
from lstfill.superres.model import LossConfig
from lstfill.superres.registration import (
    RegistrationConfig,
    coarse_correlation,
    register_ndvi,
    shift_fine,
)
from lstfill.training.checkpoint import save_checkpoint


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth fine NDVI (64x64) and the coarse LST (16x16) it explains, cooler where greener."""
    rng = np.random.default_rng(seed)
    ndvi = ndimage.gaussian_filter(rng.normal(0, 1, (64, 64)), 3, mode="nearest")
    ndvi = (0.5 + 0.3 * ndvi / ndvi.std()).astype(np.float32)
    lst = (300.0 - 10.0 * psf.degrade_np(ndvi, 4, 0.1)).astype(np.float32)
    return lst, ndvi


def test_offsets_grid():
    assert RegistrationConfig(max_shift=1.0, step=0.5).offsets() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert RegistrationConfig(max_shift=0.0).offsets() == [0.0]
    assert RegistrationConfig(max_shift=0.7, step=0.5).offsets() == [-0.5, 0.0, 0.5]


def test_shift_fine_moves_down_right_and_keeps_nan():
    a = np.zeros((8, 8), np.float32)
    a[2, 3] = 1.0
    out = shift_fine(a, 1.0, 2.0)
    assert out[3, 5] == pytest.approx(1.0) and out.sum() == pytest.approx(1.0)
    a[0, 0] = np.nan
    out = shift_fine(a, 1.0, 0.0)
    assert np.isnan(out[1, 0]) and np.isfinite(out[5, 5])


def test_register_recovers_a_known_shift():
    lst, ndvi = _scene()
    cfg = RegistrationConfig(max_shift=1.0, step=0.5)
    # aligned already: the unshifted NDVI, unchanged
    out, off = register_ndvi(lst, ndvi, 4, 0.1, cfg)
    assert off == (0.0, 0.0) and np.array_equal(out, ndvi)
    # the guide moved 1 px up and 0.5 px right: the search moves it back
    moved = shift_fine(ndvi, -1.0, 0.5)
    out, off = register_ndvi(lst, moved, 4, 0.1, cfg)
    assert off == (1.0, -0.5)
    assert abs(coarse_correlation(lst, out, 4, 0.1, 3)) > abs(
        coarse_correlation(lst, moved, 4, 0.1, 3)
    )
    # max_shift 0: no search
    out, off = register_ndvi(lst, moved, 4, 0.1, RegistrationConfig(max_shift=0.0))
    assert off == (0.0, 0.0) and np.array_equal(out, moved)


def test_sharpener_applies_and_stores_registration(tmp_path):
    lst, ndvi = _scene(1)
    norm = {"lst_mean": 300.0, "lst_std": 3.0, "ndvi_mean": 0.5, "ndvi_std": 0.3}
    model = Sharpener(LossConfig(), 4, (8, 16), norm=norm, tiles=TileConfig(16, 0))
    plain = model.predict(lst, ndvi)
    model.registration = RegistrationConfig(max_shift=0.0)
    assert np.array_equal(model.predict(lst, ndvi), plain)
    moved = shift_fine(ndvi, 1.0, 0.0)
    model.registration = RegistrationConfig(max_shift=1.0, step=0.5)
    registered = model.predict(lst, moved)
    expected = model.predict_full(lst, shift_fine(moved, -1.0, 0.0))
    np.testing.assert_allclose(registered, expected, atol=1e-5)
    # cloudy coarse pixels and missing NDVI: still registered, NaN where the inputs are
    lst[2, 3] = np.nan
    moved[40, 41] = np.nan
    out = model.predict(lst, moved)
    assert np.isnan(out[8:12, 12:16]).all() and np.isnan(out[40, 41])
    assert np.isfinite(out).sum() == out.size - 16 - 1
    save_checkpoint(tmp_path / "m.pt", **model.state())
    loaded = load_method(tmp_path / "m.pt", METHODS)
    assert loaded.registration == model.registration
    model.registration = None
    save_checkpoint(tmp_path / "n.pt", **model.state())
    assert load_method(tmp_path / "n.pt", METHODS).registration is None
