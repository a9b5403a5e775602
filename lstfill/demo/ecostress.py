"""The demo's ECOSTRESS L2T LSTE granules (LST, error, QC, cloud, water, height, view zenith)
and the gap-free LST each one samples (the truth)."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np
from affine import Affine

from lstfill.demo.physics import (
    Meteo,
    Surface,
    cloud_cover,
    cloud_mask,
    correlated_field,
    surface_temperature,
)
from lstfill.demo.schedule import Overpass
from lstfill.demo.world import World, rng_for
from lstfill.grid import Grid
from lstfill.io import write_cog
from lstfill.raster import Raster
from lstfill.sources import ecostress

INCA_MARGIN_M = 5_000.0
ISS_EPOCH = datetime(2018, 7, 1)
ISS_PERIOD_S = 5_556.0


def _qc_bits(**fields: np.ndarray | int) -> np.ndarray:
    shifts = {
        "mandatory": 0,
        "data_quality": 2,
        "cloud_ocean": 4,
        "iterations": 6,
        "atm_opacity": 8,
        "mmd": 10,
        "emis_accuracy": 12,
        "lst_accuracy": 14,
    }
    qc = np.zeros(np.shape(fields["mandatory"]), dtype=np.uint16)
    for name, value in fields.items():
        qc |= (np.asarray(value, dtype=np.uint16) & 3) << shifts[name]
    return qc


def write_ecostress(
    world: World,
    grid: Grid,
    surf: Surface,
    meteo: Meteo,
    overpasses: list[Overpass],
    cfg: dict,
    folder: Path,
    truth: Path,
) -> dict[int, Raster]:
    """Write every granule's layers and its truth; return each overpass's (padded) cloud mask."""
    res = grid.res[0]
    pad = int(math.ceil((INCA_MARGIN_M + 1_500.0) / res))
    inner = (slice(pad, pad + grid.height), slice(pad, pad + grid.width))
    padded_tr = grid.transform @ Affine.translation(-pad, -pad)
    shape_p = (grid.height + 2 * pad, grid.width + 2 * pad)
    water = surf.water >= 0.5
    masks = {}
    xkm = (surf.x - surf.x.mean()) / 1000.0
    for o in overpasses:
        rng = rng_for(int(cfg["seed"]), "ecostress", o.index)
        mask_p = cloud_mask(rng, shape_p, res, o.cloud_fraction, inner)
        masks[o.index] = Raster(mask_p.astype(np.float32), padded_tr, grid.crs)
        cloud = mask_p[inner]
        cover = cloud_cover(mask_p, res)[inner]
        noise = correlated_field(rng, grid.shape, 1_200.0 / res)
        lst_true = surface_temperature(surf, o.time, meteo, cover, noise)

        vz = np.abs(rng.uniform(-28, 28) + rng.choice([-0.12, 0.12]) * xkm).astype(np.float32)
        ta = meteo.air_temperature_k(o.time, surf.z, surf.hab, world.lon0)
        rh = meteo.humidity(o.time, ta, world.lon0)
        err = (
            0.45
            + 0.025 * vz
            + 0.007 * (rh - 30.0)
            + 0.15 * np.abs(correlated_field(rng, grid.shape, 8))
        )
        err = np.clip(err, 0.5, 2.0).astype(np.float32)
        lst = lst_true + rng.standard_normal(grid.shape, dtype=np.float32) * 0.5 * err

        u = rng.uniform(size=grid.shape)
        nominal = correlated_field(rng, grid.shape, 4) > 2.0
        bad = u < 0.003
        not_produced = (u >= 0.003) & (u < 0.005)
        mandatory = np.where(nominal | bad, 1, 0)
        mandatory = np.where(not_produced, 3, np.where(cloud, 2, mandatory))
        lst_acc = np.select([err < 1.0, err < 1.5, err < 2.0], [3, 2, 1], 0)
        qc = _qc_bits(
            mandatory=mandatory,
            data_quality=np.where(bad, 3, 0),
            cloud_ocean=0,
            iterations=3,
            atm_opacity=np.clip((rh - 20) // 25, 0, 3).astype(int),
            mmd=1,
            emis_accuracy=np.where(surf.tree > 0.5, 1, 2),
            lst_accuracy=lst_acc,
        )
        if rng.uniform() < 0.5:
            lst = np.where(cloud, np.nan, lst)
        else:  # the retrieval ran on the cloud top: garbage cold values
            lst = np.where(cloud, lst - rng.uniform(25, 50) + 3 * noise, lst)
        lst = np.where(bad, lst - 30.0, lst)
        lst = np.where(not_produced, np.nan, lst).astype(np.float32)

        orbit = int((o.time - ISS_EPOCH).total_seconds() // ISS_PERIOD_S)
        scene = 1 + int(((o.time - ISS_EPOCH).total_seconds() % ISS_PERIOD_S) / ISS_PERIOD_S * 14)
        gid = ecostress.granule_id(orbit, scene, str(cfg["tile"]), o.time)
        layers = {
            "LST": lst,
            "LST_err": np.where(np.isnan(lst), np.nan, err).astype(np.float32),
            "QC": qc,
            "cloud": cloud.astype(np.uint8),
            "water": water.astype(np.uint8),
            "height": surf.z.astype(np.float32),
            "view_zenith": vz,
        }
        ecostress.write_granule(folder, gid, layers, grid.transform, grid.crs)
        write_cog(
            truth / "ecostress" / f"{gid}_LST_truth.tif",
            lst_true,
            grid.transform,
            grid.crs,
            nodata=float("nan"),
            tags={"granule_id": gid, "units": "K"},
        )
    return masks
