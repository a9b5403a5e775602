"""Super-resolution PSF, U-Net, loss and tiled sharpening."""

import math

import numpy as np
import pytest
import torch

from lstfill.method import Method, load_method
from lstfill.superres import psf
from lstfill.superres.dataset import PatchPairs
from lstfill.superres.method import (
    METHODS,
    Sharpener,
    TileConfig,
    energy_residual,
    mask_product,
)
from lstfill.superres.model import LossConfig, SifLoss, SrUNet, WithGuide, sobel4
from lstfill.training.checkpoint import save_checkpoint
from lstfill.training.settings import TrainConfig


def test_psf_sigma_matches_the_mtf_definition():
    sigma = psf.psf_sigma(4, 0.1)
    assert sigma == pytest.approx(2.7322, abs=1e-3)  # sqrt(-ln 0.1 / 2) / (pi * 0.125)
    # the Gaussian's MTF at the coarse Nyquist frequency is the requested value
    assert math.exp(-2 * math.pi**2 * sigma**2 * 0.125**2) == pytest.approx(0.1)
    assert psf.psf_sigma(2, 0.25) == pytest.approx(math.sqrt(math.log(4) / 2) / (math.pi * 0.25))
    with pytest.raises(ValueError):
        psf.psf_sigma(4, 1.5)


def test_degrade_returns_block_constants_and_blur_keeps_constants():
    coarse = np.arange(12, dtype=np.float32).reshape(3, 4) + 290
    fine = np.kron(coarse, np.ones((4, 4), np.float32))
    # a wide field whose blocks are constant: interior coarse pixels come back (blur is linear
    # and symmetric, a linear ramp survives it)
    ramp = np.add.outer(np.arange(40.0), np.arange(40.0)).astype(np.float32)  # linear in fine px
    out = psf.degrade_np(ramp, 4)
    centres = np.arange(10) * 4 + 1.5
    np.testing.assert_allclose(out[3:7, 3:7], np.add.outer(centres, centres)[3:7, 3:7], atol=1e-3)
    const = psf.degrade_np(np.full((16, 16), 300.0, np.float32), 4)
    np.testing.assert_allclose(const, 300.0, atol=1e-4)
    assert psf.degrade_np(fine, 4).shape == (3, 4)
    with pytest.raises(ValueError):
        psf.decimate(torch.zeros(1, 1, 10, 8), 4)


def test_sobel4_directions():
    x = torch.arange(8.0).repeat(8, 1)[None, None]  # increases along columns by 1
    g = sobel4(x)[0, :, 3:5, 3:5]
    assert torch.allclose(g[0], torch.full_like(g[0], 8.0))  # horizontal: 1 * (1 + 2 + 1) * 2
    assert torch.allclose(g[1], torch.zeros_like(g[1]))  # vertical
    assert torch.allclose(g[2], torch.full_like(g[2], 6.0))  # 2 + 2 + 2 (cross-correlation)
    assert torch.allclose(g[3], torch.full_like(g[3], 6.0))


def test_unet_shapes_residual_start_and_size_check():
    torch.manual_seed(0)
    net = SrUNet(4, (8, 16, 32), residual=True)
    lr, ndvi = torch.randn(2, 1, 8, 12), torch.randn(2, 1, 32, 48)
    assert net(lr, ndvi).shape == (2, 1, 32, 48)
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
    np.testing.assert_allclose(net(lr, ndvi).detach(), net.upsample(lr), atol=1e-6)
    with pytest.raises(ValueError, match="multiple"):
        SrUNet(4, (8, 16, 32, 64))(torch.randn(1, 1, 3, 3), torch.randn(1, 1, 12, 12))


def test_loss_terms_vanish_for_a_consistent_prediction():
    rng = np.random.default_rng(0)
    fine = torch.from_numpy(rng.normal(size=(1, 1, 32, 32)).astype(np.float32))
    cfg = LossConfig(variant="sifnn1", alpha=0.5, gamma=-0.5)
    loss = SifLoss(cfg, 4)
    lr = psf.degrade(fine, 4, loss.sigma)
    ndvi = -2.0 * fine  # gamma * G(ndvi) = G(fine): texture matches exactly
    rec, tex = loss.terms(fine, ndvi, lr)
    assert float(rec) == pytest.approx(0.0, abs=1e-10) and float(tex) == pytest.approx(0, abs=1e-10)
    rec2, tex2 = loss.terms(fine + 1.0, ndvi, lr)  # offset: reconstruction 0.5 * 1^2 (Huber)
    assert float(rec2) == pytest.approx(0.5, abs=1e-5) and float(tex2) == pytest.approx(0, abs=1e-5)
    v2 = SifLoss(LossConfig(variant="sifnn2", alpha=0.0, gamma=-0.5), 4)
    assert float(v2((fine, ndvi), lr)) == pytest.approx(0.0, abs=1e-10)
    with pytest.raises(Exception, match="variant"):
        LossConfig(variant="sifnn9")


def _pairs(n: int = 12, s: int = 8, seed: int = 0) -> tuple[PatchPairs, dict[str, float]]:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    ndvi = ndimage.gaussian_filter(rng.uniform(0, 1, (n, s * 4, s * 4)), (0, 2, 2))
    fine = 300 - 20 * ndvi
    lst = np.stack([psf.degrade_np(f, 4) for f in fine]).astype(np.float32)
    split = np.array([0] * (n - 3) + [1] * 3, np.int8)
    pairs = PatchPairs(
        lst,
        ndvi.astype(np.float32),
        split,
        np.full(n, np.datetime64("2020-01-01", "D")),
        np.zeros((n, 2), np.int32),
        4,
    )
    norm = {
        "lst_mean": float(lst.mean()),
        "lst_std": float(lst.std()),
        "ndvi_mean": float(ndvi.mean()),
        "ndvi_std": float(ndvi.std()),
    }
    return pairs, norm


def test_tiled_prediction_equals_one_tile_and_masks_gaps():
    pairs, norm = _pairs()
    model = Sharpener(LossConfig(), 4, (8, 16, 32), norm=norm, tiles=TileConfig(64, 0))
    rng = np.random.default_rng(1)
    lst = (300 + rng.normal(0, 1, (20, 28))).astype(np.float32)
    ndvi = rng.uniform(0, 1, (80, 112)).astype(np.float32)
    whole = model.predict_full(lst, ndvi)
    model.tiles = TileConfig(8, 0)  # non-overlapping tiles: the U-Net's border effects differ
    tiled = model.predict_full(lst, ndvi)
    model.tiles = TileConfig(12, 4)
    blended = model.predict_full(lst, ndvi)
    assert whole.shape == (80, 112) and np.isfinite(whole).all()
    # tiles see less context, so they differ a little, blending with overlap less so
    assert np.abs(blended - whole).mean() < np.abs(tiled - whole).mean() + 1e-6
    assert np.abs(blended - whole).mean() < 0.5
    lst[2, 3] = np.nan
    ndvi[50, 60] = np.nan
    out = model.predict(lst, ndvi)
    assert np.isnan(out[8:12, 12:16]).all() and np.isnan(out[50, 60])
    assert np.isfinite(out).sum() == out.size - 16 - 1


def test_mask_product_and_energy_residual():
    coarse = np.full((12, 12), 300.0, np.float32)
    fine = np.full((48, 48), 300.0, np.float32)
    assert energy_residual(fine, coarse, 4) == pytest.approx(0.0, abs=1e-3)
    assert energy_residual(fine + 0.5, coarse, 4) == pytest.approx(0.5, abs=1e-3)
    coarse[0, 0] = np.nan
    masked = mask_product(fine, coarse, np.ones((48, 48)), 4)
    assert np.isnan(masked[:4, :4]).all() and np.isfinite(masked[4:, :]).all()


def test_training_reduces_the_loss_and_checkpoint_round_trips(tmp_path):
    torch.manual_seed(0)
    pairs, norm = _pairs()
    training = TrainConfig(
        epochs=3, batch_size=4, learning_rate=1e-3, lr_schedule="plateau", patience=3, seed=1
    )
    model = Sharpener(
        LossConfig(variant="sifnn1"), 4, (8, 16, 32), norm=norm, training=training, crop=4
    )
    assert isinstance(model, Method)
    res = model.fit((pairs, norm), tmp_path / "work", progress=False)
    assert len(res.history) == 3
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    save_checkpoint(tmp_path / "m.pt", **model.state())
    loaded = load_method(tmp_path / "m.pt", METHODS)
    assert loaded.norm == norm and loaded.loss_cfg == model.loss_cfg
    lst, ndvi = pairs.lst[0], pairs.ndvi[0]
    np.testing.assert_allclose(loaded.predict(lst, ndvi), model.predict(lst, ndvi), atol=1e-5)
    # the model is tied to its inputs: the wrong NDVI size is refused
    with pytest.raises(ValueError, match="NDVI"):
        loaded.predict(lst, ndvi[:-4])
    assert WithGuide(model.net)(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 32, 32))[1].shape == (
        1,
        1,
        32,
        32,
    )


def test_patch_gamma_is_the_coarse_regression_slope():
    rng = np.random.default_rng(0)
    ndvi = torch.from_numpy(rng.uniform(0, 1, (2, 1, 32, 32)).astype(np.float32))
    ndvi_c = torch.nn.functional.avg_pool2d(ndvi, 4)
    lr = torch.cat([0.7 * ndvi_c[:1] + 3.0, -5.0 * ndvi_c[1:]])  # slopes +0.7 and -5 (clipped)
    loss = SifLoss(LossConfig(variant="sifnn1", gamma="patch", gamma_clip=2.0), 4)
    g = loss.gamma(ndvi, lr).flatten()
    assert g[0].item() == pytest.approx(0.7, abs=1e-4) and g[1].item() == pytest.approx(-2.0)
    assert SifLoss(LossConfig(gamma=-0.25), 4).gamma(ndvi, lr) == -0.25
    with pytest.raises(Exception, match="patch"):
        LossConfig(gamma="auto")
