"""The Snakemake workflow end to end on a tiny demo region, run in a temporary directory.

Checks that every acquisition gets a cube, a quicklook and a gap-filled product, that the
gap-fill evaluation is written, that every MODIS day gets a sharpened product and the
super-resolution evaluation is written, that the downscaling job writes its maps, metrics and
runs table, that the fusion job writes one product per day and its evaluation, that asking
for one cube or one product by its path reruns only what it needs, and
that the report builds.
"""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
import yaml
from conftest import SNAKEMAKE, copy_run, job_counts, run_snakemake


def run(workdir: Path, *args: str) -> str:
    return run_snakemake(workdir, *args)


@pytest.fixture(scope="module")
def workdir(tiny_run, tmp_path_factory):
    """A copy of the session's tiny run: these tests delete and rebuild files."""
    return copy_run(tiny_run, tmp_path_factory.mktemp("wf") / "run")


def test_every_acquisition_has_a_cube_and_quicklook(workdir):
    inv = json.loads((workdir / "resources/tiny/inventory.json").read_text())
    acqs = list(inv["acquisitions"])
    assert len(acqs) == 6
    for acq in acqs:
        with xr.open_dataset(workdir / f"results/tiny/cubes/{acq}.nc") as ds:
            assert ds.sizes == {"time": 1, "y": 32, "x": 32}
            assert {"lst", "lst_valid", "ndvi", "t2m", "gl_6h", "elevation", "water"} <= set(
                ds.data_vars
            )
        assert (workdir / f"results/tiny/report/quicklooks/{acq}.png").stat().st_size > 10_000
    table = (workdir / "results/tiny/report/cubes.csv").read_text().splitlines()
    assert len(table) == 1 + len(acqs)
    assert list((workdir / "resources/tiny/truth").rglob("*_LST_truth.tif"))
    assert not [p for p in (workdir / "resources/tiny/raw").rglob("*") if "truth" in p.name]


def test_gapfill_products_and_metrics(workdir):
    acqs = json.loads((workdir / "resources/tiny/inventory.json").read_text())["acquisitions"]
    for acq in acqs:
        assert (workdir / f"results/tiny/gapfill/filled/{acq}.tif").stat().st_size > 1000
    metrics = json.loads((workdir / "results/tiny/gapfill/metrics.json").read_text())
    assert set(metrics["methods"]) == {
        "model_patch_cnn",
        "model_context",
        "baseline_climatology_anomaly",
        "baseline_mean_lapse",
        "baseline_temporal",
        "baseline_hgb",
    }
    assert metrics["n_hidden_pixels"] > 0
    # every method scored on the same hidden pixels
    assert {m["overall"]["n"] for m in metrics["methods"].values()} == {metrics["n_hidden_pixels"]}
    selection = json.loads((workdir / "results/tiny/gapfill/model/selection.json").read_text())
    validation = selection["validation"]
    assert set(validation) == {"patch_cnn", "context"}
    assert selection["method"] == min(validation, key=lambda k: validation[k]["rmse"])
    assert metrics["selected_method"] == selection["method"]
    chosen = metrics["methods"][f"model_{selection['method']}"]
    assert metrics["coverage_90"] == chosen["coverage_90"]
    assert 0.0 <= metrics["coverage_90"] <= 1.0
    with rasterio.open(workdir / f"results/tiny/gapfill/filled/{next(iter(acqs))}.tif") as src:
        assert src.tags()["method"] == selection["method"]


def test_superres_products_and_metrics(workdir):
    days = sorted(p.stem for p in (workdir / "results/tiny/superres/scenes").glob("*.nc"))
    assert len(days) == 4
    for day in days:
        assert (workdir / f"results/tiny/superres/sharpened/sifnn1/{day}.tif").stat().st_size > 500
    metrics = json.loads((workdir / "results/tiny/superres/metrics.json").read_text())
    assert set(metrics["methods"]) == {
        "model_sifnn1",
        "baseline_bicubic",
        "baseline_tsharp",
        "baseline_dms",
    }
    assert metrics["methods"]["model_sifnn1"]["rmse"] < 10
    target = f"results/tiny/superres/sharpened/sifnn1/{days[0]}.tif"
    (workdir / target).unlink()
    assert job_counts(run(workdir, "--dry-run", target)) == {"superres_predict": 1}
    run(workdir, target)


def test_downscale_products_metrics_and_runs(workdir):
    out = workdir / "results/tiny_il/downscale"
    (info,) = (out / "samples").glob("*.json")
    days = json.loads(info.read_text())["days"]
    assert len(days) == 5
    for day in days:
        with rasterio.open(out / f"maps/{day}.tif") as src:
            assert src.descriptions == ("night", "day")
            assert src.crs.to_epsg() == 4326
            assert np.isfinite(src.read(1)).any()
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["splits"]) == {"space", "day"}
    for split in metrics["splits"].values():
        assert set(split["methods"]) == {"model_mlp", "baseline_zero", "baseline_linear"}
        assert len({m["n"] for m in split["methods"].values()}) == 1  # the same samples
        assert split["methods"]["model_mlp"]["n"] > 0
    assert set(metrics["importance"]["space"]) == {
        "time",
        "position",
        "lst_mean",
        "height_mean",
        "height_diffs",
    }
    runs = (out / "runs.csv").read_text().splitlines()
    assert len(runs) == 1 + 2  # header, one row per split
    target = f"results/tiny_il/downscale/maps/{days[0]}.tif"
    (workdir / target).unlink()
    assert job_counts(run(workdir, "--dry-run", target)) == {"downscale_predict": 1}
    run(workdir, target)


def test_fusion_products_and_metrics(workdir):
    out = workdir / "results/tiny/fusion"
    days = sorted(p.stem for p in (out / "daily").glob("*.tif"))
    assert days == [f"202307{d:02d}" for d in range(1, 9)]  # every day of the period
    assert len(list((workdir / "resources/tiny/raw/sentinel3").glob("S3_SY_2_SYN_*.tif"))) == 8
    with rasterio.open(out / f"daily/{days[2]}.tif") as src:
        assert src.descriptions[0] == "ndvi" and src.descriptions[-3:] == (
            "weight",
            "days_to_fine",
            "flag",
        )
        assert src.tags()["coarse_source"] == "sentinel3" and src.tags()["fine_dates"]
        ndvi = src.read(1)
        assert np.isfinite(ndvi).mean() > 0.9 and np.nanmax(np.abs(ndvi)) <= 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["methods"]) == {
        "model_efast",
        "baseline_nearest",
        "baseline_linear",
        "baseline_offset",
        "baseline_coarse",
    }
    assert len({m["n"] for m in metrics["methods"].values()}) == 1  # the same pixels
    assert metrics["methods"]["model_efast"]["rmse"] < metrics["methods"]["baseline_coarse"]["rmse"]
    assert metrics["protocols"]["truth"]["days"] == 8
    target = f"results/tiny/fusion/daily/{days[0]}.tif"
    (workdir / target).unlink()
    assert job_counts(run(workdir, "--dry-run", target)) == {"fusion_predict": 1}
    run(workdir, target)


def test_a_cube_from_the_fused_product_of_a_modis_coarse_series(tiny_run, tmp_path):
    """prepare.sentinel2.source: fused and fusion.coarse: modis, asked for one cube by name."""
    workdir = copy_run(tiny_run, tmp_path / "run")
    config_path = workdir / "config" / "config.yaml"
    cfg = yaml.safe_load(config_path.read_text())
    cfg.setdefault("prepare", {})["sentinel2"] = {"source": "fused"}
    cfg["fusion"] = {"coarse": "modis"}
    config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))  # key order is in the params
    acq = next(
        iter(json.loads((workdir / "resources/tiny/inventory.json").read_text())["acquisitions"])
    )
    target = f"results/tiny/cubes/{acq}.nc"
    counts = job_counts(run(workdir, "--dry-run", target))
    assert counts == {"fusion_coarse": 1, "fusion_predict": 1, "prepare_cube": 1}
    run(workdir, target)
    with xr.open_dataset(workdir / target) as ds:
        assert ds.attrs["s2_source"] == "fused"
        ndvi, age = ds["ndvi"].values, ds["s2_age_days"].values
        assert np.isfinite(ndvi).mean() > 0.9 and np.nanmax(np.abs(age)) == 0
        assert float(ds["s2_weight"].max()) > 0
    with xr.open_dataset(workdir / "results/tiny/fusion/coarse.nc") as coarse:
        assert coarse.attrs["source"] == "modis" and set(coarse.data_vars) >= {"ndvi", "b04"}


def test_asking_for_one_product_reruns_only_its_prediction(workdir):
    # runs before the cube test below, which makes every downstream file out of date
    acq = next(
        iter(json.loads((workdir / "resources/tiny/inventory.json").read_text())["acquisitions"])
    )
    target = f"results/tiny/gapfill/filled/{acq}.tif"
    (workdir / target).unlink()
    out = run(workdir, "--dry-run", target)
    assert job_counts(out) == {"gapfill_predict": 1}


def test_asking_for_one_cube_reruns_only_that_cube(workdir):
    acq = json.loads((workdir / "resources/tiny/inventory.json").read_text())["acquisitions"]
    target = f"results/tiny/cubes/{next(iter(acq))}.nc"
    (workdir / target).unlink()
    out = run(workdir, "--dry-run", target)
    assert job_counts(out) == {"prepare_cube": 1}
    run(workdir, target)
    assert (workdir / target).exists()


def test_report_builds(workdir):
    """As `make demo` asks for it: `--report` with no --cores (no job runs)."""
    cmd = [*SNAKEMAKE, "-d", str(workdir), "--workflow-profile", "none"]
    proc = subprocess.run(
        [*cmd, "--report", str(workdir / "report.html")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    html = (workdir / "report.html").read_text(errors="ignore")
    assert len(html) > 50_000
