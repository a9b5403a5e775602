"""benchmarks/sr_modis_aster.py and its protocol (lstfill.superres.aster) on a tiny synthetic
MODIS/ASTER pair set (offline, seconds)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from conftest import load_benchmark
from rasterio.crs import CRS
from rasterio.warp import Resampling, reproject, transform_bounds
from scipy import ndimage

from lstfill.io import write_cog
from lstfill.superres import aster
from lstfill.superres.aster_training import VARIANTS

SINU = CRS.from_string("+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs")
UTM = CRS.from_epsg(32631)
COARSE = 926.625
FINE = COARSE / 4
SHIFT = (1, 2)  # NDVI origin: 1 fine row south, 2 fine columns east of the LST origin
IDS = (0, 5, 7)
N = 16  # coarse pixels per side


bench = load_benchmark("sr_modis_aster")


def _write(path: Path, data: np.ndarray, transform: Affine, crs: CRS) -> None:
    write_cog(path, data.astype(np.float32), transform, crs, nodata=float("nan"))


def _ndvi_of(truth: np.ndarray) -> np.ndarray:
    return np.clip(0.5 - 0.06 * (truth - 300.0), -1.0, 1.0)


def _aster(truth: np.ndarray, fine_t: Affine, rng: np.random.Generator) -> tuple:
    """`truth` on a shifted UTM grid, NaN outside a rotated swath, a few cold (< 270 K) pixels."""
    h, w = truth.shape
    bounds = (fine_t.c, fine_t.f + fine_t.e * h, fine_t.c + fine_t.a * w, fine_t.f)
    left, bottom, right, top = transform_bounds(SINU, UTM, *bounds)
    px = 231.65
    transform = Affine(px, 0.0, left - 300.0, 0.0, -px, top + 200.0)
    shape = (int((top - bottom + 500) / px) + 2, int((right - left + 600) / px) + 2)
    aster = np.full(shape, np.nan, dtype=np.float32)
    reproject(
        truth.astype(np.float32),
        aster,
        src_transform=fine_t,
        src_crs=SINU,
        dst_transform=transform,
        dst_crs=UTM,
        resampling=Resampling.bilinear,
        src_nodata=np.nan,
        dst_nodata=np.nan,
    )
    rows, cols = np.indices(shape, dtype=float)
    rows, cols = rows - shape[0] / 2, cols - shape[1] / 2
    angle = math.radians(10.0)
    u = cols * math.cos(angle) + rows * math.sin(angle)
    v = -cols * math.sin(angle) + rows * math.cos(angle)
    aster[(np.abs(u) > 0.42 * shape[1]) | (np.abs(v) > 0.42 * shape[0])] = np.nan
    aster[shape[0] // 2 : shape[0] // 2 + 3, shape[1] // 2 : shape[1] // 2 + 3] = 250.0
    aster += rng.normal(0.0, 0.3, shape).astype(np.float32)
    return aster, transform


def make_dataset(root: Path) -> dict[str, np.ndarray]:
    """Three pairs in the README layout; returns the fine truth (aligned grid) per pair id."""
    rng = np.random.default_rng(42)
    r, c = SHIFT
    truths = {}
    rows = []
    for k, pid in enumerate(IDS):
        x0, y0 = 235_000.0 + k * 20 * COARSE, 5_004_000.0 - k * 10 * COARSE
        lst_t = Affine(COARSE, 0.0, x0, 0.0, -COARSE, y0)
        fine_t = lst_t @ Affine.scale(0.25)
        ndvi_t = fine_t @ Affine.translation(c, r)
        size = 4 * N + 4
        truth = 300.0 + 6.0 * ndimage.gaussian_filter(rng.normal(size=(size, size)), 2.0) * 4
        truth += np.linspace(-3, 3, size)[None, :]
        fine = truth[: 4 * N, : 4 * N]
        lst = fine.reshape(N, 4, N, 4).mean(axis=(1, 3))
        ndvi = _ndvi_of(truth[r : r + 4 * N, c : c + 4 * N])
        aster, aster_t = _aster(fine, fine_t, rng)
        d = root / "pairs" / f"{pid:03d}"
        d.mkdir(parents=True)
        _write(d / "lst_1km.tif", lst, lst_t, SINU)
        _write(d / "ndvi_250m.tif", ndvi, ndvi_t, SINU)
        _write(d / "aster_lst.tif", aster, aster_t, UTM)
        meta = {"id": pid, "lst_origin_minus_ndvi_origin_fine_px": {"rows": -r, "cols": -c}}
        (d / "meta.json").write_text(json.dumps(meta))
        rows.append(
            {
                "id": pid,
                "lst_minus_ndvi_origin_rows": float(-r),
                "lst_minus_ndvi_origin_cols": float(-c),
                "split": "dev",
            }
        )
        truths[f"{pid:03d}"] = fine
    with (root / "manifest.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return truths


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    root = tmp_path_factory.mktemp("sr_modis_aster")
    return root, make_dataset(root)


@pytest.fixture(scope="module")
def quick_run(dataset, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("out") / "bench.json"
    assert bench.main([str(dataset[0]), "--json", str(out), "--quick", "--threads", "1"]) == 0
    return json.loads(out.read_text()), out


def test_shift_down_right_pads_edges() -> None:
    a = np.arange(12, dtype=float).reshape(3, 4)
    expected = np.array([[0, 0, 0, 1], [0, 0, 0, 1], [4, 4, 4, 5]], dtype=float)
    np.testing.assert_array_equal(aster.shift_down_right(a, 1, 2), expected)
    np.testing.assert_array_equal(aster.shift_down_right(a, 0, 0), a)


def test_aligned_ndvi_matches_the_lst_grid(dataset) -> None:
    root, truths = dataset
    pairs = aster.load_pairs(root)
    assert [p.id for p in pairs] == [f"{i:03d}" for i in IDS]
    r, c = SHIFT
    for p in pairs:
        assert p.shift == SHIFT
        assert p.aligned_transform.almost_equals(p.lst.transform @ Affine.scale(0.25))
        aligned = p.ndvi_aligned
        assert aligned.shape == p.ndvi.data.shape
        # on the aligned grid the NDVI belongs to the truth under the same fine pixel
        np.testing.assert_allclose(aligned[r:, c:], _ndvi_of(truths[p.id])[r:, c:], atol=1e-6)
        np.testing.assert_array_equal(aligned[:r, c:], np.repeat(p.ndvi.data[:1, :-c], r, 0))


def test_inconsistent_manifest_offset_is_an_error(dataset, tmp_path: Path) -> None:
    root, _ = dataset
    with pytest.raises(ValueError, match="manifest"):
        aster.load_pair(root / "pairs" / "000", {0: (2, 2)})


def test_quick_benchmark_json(quick_run) -> None:
    result, out = quick_run
    names = {"model_sifnn1", "model_sifnn2", "baseline_bicubic", "baseline_tsharp", "baseline_dms"}
    names.add(bench.DMS_GLOBAL)  # the global DMS model next to the windowed reference one
    assert set(result["methods"]) == names
    assert result["n_pairs"] == len(IDS)
    assert result["placement"] == "lst_aligned"
    assert set(result["reference"]) == {aster.REF_README, aster.REF_LSTFILL}
    assert result["reference"][aster.REF_README]["rmse_mean"] > 0
    for m in result["methods"].values():
        assert 0.0 <= m["wins_vs_bicubic"] <= 1.0
        assert 0 <= m["wins_vs_bicubic_count"] <= len(IDS)
        assert m["rmse_mean"] > 0 and math.isfinite(m["rmse_mean"])
        for key in (
            "rmse_median",
            "rmse_debiased_mean",
            "bias_mean",
            "psnr_mean",
            "ssim_mean",
            "gssim_mean",
            "frr_mean",
            "energy_residual_mean",
        ):
            assert key in m
    assert result["methods"]["baseline_bicubic"]["wins_vs_bicubic_count"] == 0
    assert len(result["pairs"]) == len(IDS)
    for row in result["pairs"]:
        assert set(row["methods"]) == names
        assert row["n"] > 0
        assert {s["n"] for s in row["methods"].values()} == {row["n"]}
        assert row["shift_rows_cols"] == list(SHIFT)
    for variant in VARIANTS:
        assert out.with_name(f"{out.stem}_{variant}.pt").exists()
    assert result["config"]["models"]["trained"] is True
    assert result["config"]["models"]["registration"]["max_shift"] == 1.0


def test_checkpoints_rescore_identically(quick_run, dataset, tmp_path: Path) -> None:
    result, out = quick_run
    ckpts = [str(out.with_name(f"{out.stem}_{v}.pt")) for v in VARIANTS]
    out2 = tmp_path / "rescored.json"
    argv = [str(dataset[0]), "--json", str(out2), "--checkpoint", *ckpts, "--threads", "1"]
    assert bench.main(argv) == 0
    again = json.loads(out2.read_text())
    for name in ("model_sifnn1", "model_sifnn2"):
        assert again["methods"][name]["rmse_mean"] == pytest.approx(
            result["methods"][name]["rmse_mean"], abs=1e-5
        )


def test_missing_or_empty_data_dir_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    assert bench.main([str(tmp_path / "nope"), "--json", str(out), "--quick"]) == 2
    (tmp_path / "empty" / "pairs").mkdir(parents=True)
    assert bench.main([str(tmp_path / "empty"), "--json", str(out), "--quick"]) == 2
    assert not out.exists()
