"""lstfill.tiling: tiled prediction equals whole-scene prediction for a pointwise model."""

import numpy as np
import pytest

from lstfill.tiling import predict_tiled, ramp, tile_starts


def test_tile_starts_cover_the_axis_and_end_flush():
    assert tile_starts(10, 16, 8) == [0]
    assert tile_starts(40, 16, 12) == [0, 12, 24]
    for n, tile, step in [(37, 16, 12), (100, 32, 24), (33, 32, 1)]:
        starts = tile_starts(n, tile, step)
        assert starts[-1] == n - tile
        assert all(b - a <= step for a, b in zip(starts, starts[1:], strict=False))


def test_ramp_is_one_inside_and_symmetric():
    w = ramp(10, 3)
    assert w[3:7] == pytest.approx(1.0)
    assert w == pytest.approx(w[::-1])
    assert w[0] == pytest.approx(0.5 / 3)
    assert ramp(5, 0) == pytest.approx(1.0)


@pytest.mark.parametrize("scale", [1, 3])
def test_blended_tiles_of_a_pointwise_model_give_the_whole_scene_prediction(scale):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(45, 38)).astype(np.float32)

    def model(rows: slice, cols: slice) -> np.ndarray:
        tile = 2.0 * x[rows, cols] + 1.0
        return np.kron(tile, np.ones((scale, scale), np.float32))

    out = predict_tiled(model, x.shape, tile=16, overlap=4, scale=scale)
    expected = np.kron(2.0 * x + 1.0, np.ones((scale, scale), np.float32))
    assert out.shape == (45 * scale, 38 * scale)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_overlaps_average_tiles_that_disagree():
    calls = []

    def model(rows: slice, cols: slice) -> np.ndarray:
        calls.append((rows.start, cols.start))
        return np.full((rows.stop - rows.start, cols.stop - cols.start), float(len(calls)))

    out = predict_tiled(model, (1, 24), tile=16, overlap=8)
    assert calls == [(0, 0), (0, 8)]
    assert out[0, 0] == 1.0 and out[0, -1] == 2.0
    assert 1.0 < out[0, 12] < 2.0  # inside the overlap both tiles count
