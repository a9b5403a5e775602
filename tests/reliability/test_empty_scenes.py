"""Empty is not cloudy: a granule off the region, one without any LST value and an all-cloud one
are told apart (inventory, log, cube), and every product and evaluation says how much of an
acquisition was observed.

The region is 10 x 12 pixels at 70 m (UTM 32N). Granules are written with the ECOSTRESS writer
(`write_granule`); the gap-fill cubes are the fake cubes of `fakes.cubes`.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
import torch
import xarray as xr
from affine import Affine
from fakes.cubes import demo_region_config, write_fake_cube
from pyproj import Transformer
from scipy import ndimage

from lstfill.acquire import build_inventory
from lstfill.config import validate_config
from lstfill.cube import build_cube, build_static
from lstfill.errors import InputError
from lstfill.gapfill import steps
from lstfill.gapfill.evaluate import select_pairs
from lstfill.grid import Grid
from lstfill.inventory import (
    CLOUD,
    NO_OVERLAP,
    NO_VALID_LST,
    acquisition_id,
    excluded_acquisitions,
    inca_files_for,
)
from lstfill.io import write_cog
from lstfill.sources import ecostress, inca, landcover
from lstfill.superres import inputs as sr_inputs
from lstfill.superres import steps as sr_steps
from lstfill.training.rng import seed_everything

torch.set_num_threads(1)

GRID = Grid.from_bbox("EPSG:32632", [680000, 5236000, 680840, 5236700], 70)  # 10 rows, 12 cols
START, END = dt.date(2023, 7, 1), dt.date(2023, 7, 31)
BANDS = ["B02", "B03", "B04", "B08", "B11", "B12"]
PREPARE = {
    "ecostress": {"max_mandatory_qa": 1},
    "sentinel2": {"bands": BANDS, "window_days": 20, "source": "fused"},
    "inca": {"parameters": ["T2M"], "cumulative": [], "cumulative_hours": 6},
}


def _time(day: int) -> dt.datetime:
    return dt.datetime(2023, 7, day, 10, 30, tzinfo=dt.UTC)


def _granule(
    raw: Path,
    day: int,
    *,
    tile: str = "32TPT",
    shift_m: float = 0.0,
    lst_nan: bool = False,
    cloud: str = "left",
) -> str:
    """One granule on the region grid shifted `shift_m` east; `cloud`: 'left' (the left three
    columns), 'all' or 'none'; `lst_nan`: every LST pixel fill (NaN)."""
    rows, cols = GRID.shape
    lst = np.tile(290.0 + np.arange(cols, dtype=np.float32), (rows, 1))
    if lst_nan:
        lst[:] = np.nan
    mask = np.zeros(GRID.shape, np.uint8)
    mask[:, : {"left": 3, "all": cols, "none": 0}[cloud]] = 1
    gid = ecostress.granule_id(28000 + day, 1, tile, _time(day))
    ecostress.write_granule(
        raw / "ecostress",
        gid,
        {
            "LST": lst,
            "LST_err": np.full(GRID.shape, 1.0, np.float32),
            "QC": np.where(mask == 1, 0b10, 0b00).astype(np.uint16),
            "cloud": mask,
            "water": np.zeros(GRID.shape, np.uint8),
            "height": np.zeros(GRID.shape, np.float32),
            "view_zenith": np.full(GRID.shape, 12.0, np.float32),
        },
        GRID.transform @ Affine.translation(shift_m / GRID.res[0], 0),
        "EPSG:32632",
    )
    return gid


def _static_inputs(raw: Path) -> None:
    """A flat DEM and land cover (no water) on the region grid, a little larger than it."""
    t = GRID.transform @ Affine.translation(-2, -2)
    shape = (GRID.height + 4, GRID.width + 4)
    write_cog(raw / "srtm" / "dem.tif", np.full(shape, 500.0, np.float32), t, GRID.crs, np.nan)
    for layer, value in (("tree_cover", 40), ("imperviousness", 10), ("water", 0)):
        path = raw / "landcover" / landcover.layer_filename(layer)
        landcover.write_layer(path, np.full(shape, value, np.uint8), t, GRID.crs)


def _inca(raw: Path, day: int) -> None:
    to_inca = Transformer.from_crs(GRID.crs, "EPSG:31287", always_xy=True)
    cx, cy = to_inca.transform(np.mean(GRID.x), np.mean(GRID.y))
    x = np.round(cx, -3) + 1000.0 * np.arange(-5, 6)
    y = np.round(cy, -3) + 1000.0 * np.arange(5, -6, -1)
    times = [dt.datetime(2023, 7, day, h, tzinfo=dt.UTC) for h in range(24)]
    data = {"T2M": np.full((24, len(y), len(x)), 20.0)}
    inca.write_inca(raw / "inca" / inca.filename(times[0], times[-1]), times, x, y, data)


def _fused(path: Path) -> Path:
    """A fusion product on the region grid (the cube's S2 layers without a Sentinel-2 scene)."""
    names = [b.lower() for b in BANDS] + ["ndvi", "weight"]
    data = np.stack([np.full(GRID.shape, 0.2, np.float32) for _ in names])
    write_cog(path, data, GRID.transform, GRID.crs, nodata=np.nan, band_names=names)
    return path


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    """Raw files of six acquisitions and the inventory built from them."""
    root = tmp_path_factory.mktemp("empty")
    raw = root / "raw"
    gids = {
        "partly_cloudy": _granule(raw, 1),
        "off_region": _granule(raw, 2, shift_m=50_000.0),
        "no_valid_lst": _granule(raw, 3, lst_nan=True, cloud="none"),
        "all_cloud": _granule(raw, 4, cloud="all"),
        "nan_under_cloud": _granule(raw, 5, lst_nan=True, cloud="all"),
        "half_overlap": _granule(raw, 6, shift_m=6 * 70.0),
        # two tiles at one time: the off-region one is dropped, the acquisition stays
        "pair_on": _granule(raw, 7, tile="32TPT"),
        "pair_off": _granule(raw, 7, tile="32TQT", shift_m=-80_000.0),
    }
    _static_inputs(raw)
    for day in (1, 2, 3, 4):
        _inca(raw, day)
    return {"root": root, "raw": raw, "gids": gids}


@pytest.fixture(scope="module")
def inventory(region):
    return build_inventory(region["raw"], "t", GRID, START, END)


def _acq(day: int) -> str:
    return acquisition_id(_time(day))


def test_granule_off_the_region_is_left_out_with_no_overlap(region, caplog):
    with caplog.at_level(logging.WARNING, logger="lstfill.acquire"):
        inv = build_inventory(region["raw"], "t", GRID, START, END)
    gids = region["gids"]
    assert _acq(2) not in inv["acquisitions"]
    assert excluded_acquisitions(inv)[_acq(2)] == NO_OVERLAP == "no overlap"
    assert inv["excluded_granules"][gids["off_region"]] == NO_OVERLAP
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(gids["off_region"] in m and "no overlap" in m for m in warned)
    # a tile off the region beside one on it: the acquisition keeps only the one on it
    assert inv["acquisitions"][_acq(7)]["granules"] == [gids["pair_on"]]
    assert inv["excluded_granules"][gids["pair_off"]] == NO_OVERLAP
    assert _acq(7) not in inv["excluded"]
    # half on the region is on it
    assert inv["acquisitions"][_acq(6)]["granules"] == [gids["half_overlap"]]


def test_granule_without_lst_is_left_out_with_no_valid_lst(region, inventory, caplog):
    gid = region["gids"]["no_valid_lst"]
    assert _acq(3) not in inventory["acquisitions"]
    assert inventory["excluded"][_acq(3)] == NO_VALID_LST == "no valid LST"
    assert inventory["excluded_granules"][gid] == NO_VALID_LST
    with caplog.at_level(logging.WARNING, logger="lstfill.acquire"):
        build_inventory(region["raw"], "t", GRID, START, END)
    assert any(gid in r.getMessage() and "no valid LST" in r.getMessage() for r in caplog.records)


def test_all_cloud_granules_stay_in_as_cloud(region, inventory):
    gids = region["gids"]
    assert inventory["acquisitions"][_acq(4)]["granules"] == [gids["all_cloud"]]
    # LST all fill, but flagged cloud: cloud, not an empty granule
    assert inventory["acquisitions"][_acq(5)]["granules"] == [gids["nan_under_cloud"]]
    assert set(inventory["excluded"]) == {_acq(2), _acq(3)}
    assert json.loads(json.dumps(inventory)) == inventory  # the inventory stays plain JSON


def test_no_granule_on_the_region_is_an_error_that_says_so(tmp_path):
    raw = tmp_path / "raw"
    _granule(raw, 2, shift_m=50_000.0)
    _static_inputs(raw)
    with pytest.raises(InputError, match="1 left out"):
        build_inventory(raw, "t", GRID, START, END)


def _cube(region: dict, inv: dict, day: int, name: str) -> Path:
    root = region["root"]
    static = root / "static.nc"
    if not static.exists():
        build_static(inv, GRID, static)
    fused = _fused(root / f"fused_{day}.tif")
    incas = inca_files_for(inv, _time(day), 6)
    return build_cube(_acq(day), inv, static, [fused], incas, PREPARE, root / name)


def test_cube_records_clear_fraction_and_names_the_empty_case(region, inventory, caplog):
    with xr.open_dataset(_cube(region, inventory, 1, "partly.nc")) as ds:
        assert ds.attrs["clear_fraction"] == pytest.approx(0.75)  # 9 of 12 columns clear
        assert "no_clear_reason" not in ds.attrs
    with caplog.at_level(logging.WARNING, logger="lstfill.cube"):
        path = _cube(region, inventory, 4, "cloudy.nc")
    assert any("all cloud" in r.getMessage() for r in caplog.records)
    with xr.open_dataset(path) as ds:
        assert ds.attrs["clear_fraction"] == 0 and ds.attrs["no_clear_reason"] == CLOUD
    # an inventory written before the exclusions lists the empty granules: the cube says why
    old = copy.deepcopy(inventory)
    for day, key in ((2, "off_region"), (3, "no_valid_lst")):
        old["acquisitions"][_acq(day)] = {
            "time": _time(day).isoformat(),
            "granules": [region["gids"][key]],
        }
    del old["excluded"], old["excluded_granules"]
    for day, reason, words in ((2, NO_OVERLAP, "no overlap"), (3, NO_VALID_LST, "no valid LST")):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="lstfill.cube"):
            path = _cube(region, old, day, f"old_{day}.nc")
        assert any(words in r.getMessage() for r in caplog.records), reason
        with xr.open_dataset(path) as ds:
            assert ds.attrs["clear_fraction"] == 0 and ds.attrs["no_clear_reason"] == reason


def test_cube_of_an_excluded_acquisition_is_refused_with_the_reason(region, inventory):
    with pytest.raises(InputError, match="left out of the inventory: no overlap"):
        _cube(region, inventory, 2, "excluded.nc")
    assert not (region["root"] / "excluded.nc").exists()


# --- gap-fill products and evaluation on fake cubes -------------------------------------------

SIZE = 24
GF_GRID = Grid("EPSG:32632", Affine(70.0, 0, 675000.0, 0, -70.0, 5242200.0), SIZE, SIZE)
NUMERIC = ["b04", "t2m", "elevation", "doy_sin", "doy_cos"]
CLEAR = [1.0, 0.45, 0.95, 0.0, 0.85, 0.4, 0.98, 0.7, 0.6, 0.9]  # day 4 has no clear pixel
NO_CLEAR = 3


def _gf_config() -> dict:
    raw = {
        "regions": demo_region_config(GF_GRID),
        "gapfill": {
            "features": {"numeric": NUMERIC, "categorical": ["water"]},
            "model": {"filters": [8, 8, 8, 8], "dense": 8},
            "training": {"epochs": 1, "batch_size": 128, "device": "cpu"},
            "max_patches_per_acquisition": 100,
            "mc_passes": 2,
            "split": {"test_days": 2, "val_days": 2, "min_valid_test": 0.5, "block_size": 8},
            "evaluation": {"max_pairs": 6, "hgb_max_iter": 10},
        },
    }
    return validate_config(raw)["gapfill"]


def _water() -> np.ndarray:
    water = np.zeros((SIZE, SIZE), np.uint8)
    water[2:5, 18:22] = 1
    return water


def _gf_cube(folder: Path, k: int, clear: float, attrs: dict | None = None) -> Path:
    """Acquisition k's cube, `clear` of its pixels observed (before the water is taken out)."""
    rng = np.random.default_rng(10 + k)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    elev = (700 + 800 * yy + 150 * np.sin(5 * xx)).astype(np.float32)
    water = _water()
    when = dt.datetime(2023, 7, 1 + k, 10, 17, 5)
    t2m = (289 + 3 * np.sin(k) - 0.0065 * (elev - 700) + rng.normal(0, 0.2, elev.shape)).astype(
        np.float32
    )
    b04 = (0.05 + 0.1 * xx + rng.normal(0, 0.005, elev.shape)).astype(np.float32)
    truth = t2m + 12 - 30 * (b04 - 0.1) + rng.normal(0, 0.3, elev.shape)
    if clear <= 0:
        ok = np.zeros(elev.shape, bool)
    else:
        field = ndimage.gaussian_filter(rng.normal(size=elev.shape), 3.0)
        ok = field <= np.quantile(field, clear)
    ok &= water == 0
    acq = f"{when:%Y%m%dT%H%M%S}"
    return write_fake_cube(
        folder / f"{acq}.nc",
        GF_GRID,
        when,
        {
            "lst": np.where(ok, truth, np.nan).astype(np.float32),
            "lst_valid": ok.astype(np.uint8),
            "lst_err": np.where(ok, 0.8, np.nan).astype(np.float32),
            "b04": b04,
            "t2m": t2m,
        },
        {"elevation": elev, "water": water},
        attrs={"acquisition": acq, **(attrs or {})},
    )


@pytest.fixture(scope="module")
def gapfill(tmp_path_factory):
    """Cubes (one with no clear pixel), a split whose test days include that one, and a patch
    CNN trained on the rest."""
    root = tmp_path_factory.mktemp("gapfill_empty")
    (root / "cubes").mkdir()
    cubes = [_gf_cube(root / "cubes", k, c) for k, c in enumerate(CLEAR)]
    cfg = _gf_config()
    steps.dataset(cubes, cfg, root / "patches.nc", root / "split.json")
    seed_everything(0)
    ckpt = root / "model.pt"
    steps.train(
        root / "patches.nc", cubes, root / "split.json", cfg, ckpt, root / "c.png", root / "w"
    )
    split = json.loads((root / "split.json").read_text())
    empty = cubes[NO_CLEAR].stem
    for key in ("train", "val"):
        split[key] = [a for a in split[key] if a != empty]
    split["test"] = sorted({*split["test"], empty})
    (root / "split_with_empty.json").write_text(json.dumps(split))
    return {"root": root, "cubes": cubes, "cfg": cfg, "checkpoint": ckpt, "empty": empty}


def _tags(path: Path) -> dict[str, str]:
    with rasterio.open(path) as src:
        return src.tags()


def test_product_of_a_no_clear_acquisition_says_so(gapfill, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="lstfill.gapfill.steps"):
        steps.predict(gapfill["cubes"][NO_CLEAR], gapfill["checkpoint"], tmp_path / "p.tif")
    tags = _tags(tmp_path / "p.tif")
    assert float(tags["clear_fraction"]) == 0 and int(tags["clear_pixels"]) == 0
    assert "no clear pixel" in tags["no_clear_pixel"]
    assert any(
        r.levelno == logging.WARNING and "no clear pixel" in r.getMessage() for r in caplog.records
    )
    # the cube's reason travels into the tags
    cube = _gf_cube(tmp_path, NO_CLEAR, 0.0, attrs={"no_clear_reason": CLOUD})
    steps.predict(cube, gapfill["checkpoint"], tmp_path / "q.tif")
    assert "(cloud)" in _tags(tmp_path / "q.tif")["no_clear_pixel"]


def test_product_of_a_partly_cloudy_acquisition_has_its_clear_fraction(gapfill, tmp_path):
    cube = gapfill["cubes"][5]  # 40 % clear before the water is taken out
    steps.predict(cube, gapfill["checkpoint"], tmp_path / "p.tif")
    with xr.open_dataset(cube) as ds:
        observed = ds["lst_valid"].values[0] == 1
    land = _water() == 0
    expected = observed[land].sum() / land.sum()
    tags = _tags(tmp_path / "p.tif")
    assert 0.3 < expected < 0.5
    assert float(tags["clear_fraction"]) == pytest.approx(expected, abs=1e-6)
    assert int(tags["clear_pixels"]) == int(observed[land].sum())
    assert "no_clear_pixel" not in tags


def test_evaluation_never_takes_a_no_clear_day_as_target(gapfill, tmp_path, caplog):
    root = gapfill["root"]
    out = tmp_path / "metrics.json"
    with caplog.at_level(logging.WARNING, logger="lstfill.gapfill.steps"):
        steps.evaluate(
            gapfill["cubes"],
            gapfill["checkpoint"],
            root / "split_with_empty.json",
            gapfill["cfg"],
            out,
            tmp_path / "fig.png",
        )
    m = json.loads(out.read_text())
    assert gapfill["empty"] in m["split"]["test"]
    assert m["n_targets_excluded_no_clear"] == 1
    assert m["targets_excluded_no_clear"] == [gapfill["empty"]]
    targets = {p["target"] for p in m["pairs"]}
    assert targets and gapfill["empty"] not in targets
    assert any(gapfill["empty"] in r.getMessage() for r in caplog.records)


def test_pair_selection_skips_targets_without_a_clear_pixel():
    vf = np.array([0.0, 0.5, 1.0, 0.6])
    pairs = select_pairs(vf, target_min=0.0, donor_min=0.2, donor_max=0.9, max_pairs=100)
    assert {p.target for p in pairs} == {1, 2, 3}


# --- super-resolution: the all-cloud day ------------------------------------------------------


class _IdentitySharpener:
    """Stands in for a trained SIF-NN-SR: repeats each coarse pixel over its fine ones."""

    factor = 4
    loss_cfg = SimpleNamespace(mtf=0.1, variant="sifnn1")

    def predict(self, lst: np.ndarray, ndvi: np.ndarray, device: object) -> np.ndarray:
        return np.kron(lst, np.ones((self.factor, self.factor), np.float32))


@pytest.mark.parametrize("cloudy_rows", [16, 4])
def test_superres_product_tags_its_clear_fraction(tmp_path, monkeypatch, cloudy_rows):
    monkeypatch.setattr("lstfill.method.load_method", lambda *a, **k: _IdentitySharpener())
    lst = np.full((16, 16), 300.0, np.float32)
    lst[:cloudy_rows] = np.nan
    scene = sr_inputs.DayScene(
        date=dt.date(2023, 7, 1),
        lst=lst,
        ndvi=np.full((64, 64), 0.5, np.float32),
        transform=Affine(1000.0, 0, 0, 0, -1000.0, 5_000_000.0),
        crs="EPSG:32632",
        factor=4,
    )
    path = sr_inputs.write_day_scene(scene, tmp_path / "scene.nc")
    sr_steps.predict(path, tmp_path / "model.pt", "cpu", tmp_path / "p.tif")
    tags = _tags(tmp_path / "p.tif")
    assert float(tags["clear_fraction"]) == pytest.approx(1 - cloudy_rows / 16)
    assert ("no_clear_pixel" in tags) == (cloudy_rows == 16)
