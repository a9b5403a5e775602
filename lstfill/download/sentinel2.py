"""Sentinel-2 L2A from the Copernicus Data Space Ecosystem through sentinelhub-py.

The Sentinel Hub catalogue (STAC) lists the L2A products over the region; the Process API then
cuts each acquisition to the region's grid as uint16 GeoTIFFs, one request per output chunk of at
most ``max_pixels`` per side and per resolution (10 m: B02 B03 B04 B08; 20 m: B11 B12 SCL). The
chunks are fetched by the shared :class:`~lstfill.download.fetch.Fetcher` with an OAuth bearer
token, assembled band by band and written as one scene folder in the layout that
:mod:`lstfill.sources.sentinel2` reads. The service and token are :mod:`lstfill.download.cdse`'s,
the chunking and download loop :mod:`lstfill.download.process_api`'s, shared with Sentinel-3.

Values are harmonised (``harmonizeValues``): Sentinel Hub removes the BOA_ADD_OFFSET of
processing baselines >= 04.00, so the files are tagged BOA_ADD_OFFSET=0 and reflectance is
DN / 10000 for every baseline. DN 0 means no data (``dataMask`` 0) in every band.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from sentinelhub import DataCollection, SHConfig
from sentinelhub.data_collections import DataCollectionDefinition

from lstfill.download import cdse
from lstfill.download import process_api as api
from lstfill.download.base import Area, DownloadError, FileRef
from lstfill.download.cdse import CDSE_TOKEN_URL, CDSE_URL, PROVIDER
from lstfill.download.credentials import SentinelHubCredentials, sentinelhub_credentials
from lstfill.io import atomic_folder, write_cog
from lstfill.sources import sentinel2 as s2

ACCOUNT = "sentinelhub"
DEFAULTS: dict[str, Any] = {
    "base_url": CDSE_URL,
    "token_url": CDSE_TOKEN_URL,
    "max_cloud_cover": 80,
    "bands": list(s2.REFLECTANCE_BANDS),
    "max_pixels": 2500,
}
COLLECTION_NAME = "SENTINEL2_L2A_CDSE"
TIME_MARGIN = dt.timedelta(minutes=1)  # Process API window around the granule's sensing time
CATALOG_FIELDS = {
    "include": ["id", "properties.datetime", "properties.eo:cloud_cover"],
    "exclude": [],
}
RESOLUTIONS = (10, 20)
HARMONIZE = {"processing": {"harmonizeValues": True}}  # no BOA_ADD_OFFSET in the DNs

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# settings, configuration, session


def settings_with_defaults(settings: dict[str, Any] | None) -> dict[str, Any]:
    """`settings` over :data:`DEFAULTS`, with URLs without a trailing slash and bands checked."""
    merged = cdse.merged_settings(DEFAULTS, settings)
    merged["bands"] = cdse.checked_bands(merged["bands"], s2.REFLECTANCE_BANDS)
    if int(merged["max_pixels"]) < 1:
        raise DownloadError(f"{PROVIDER}: settings 'max_pixels' must be positive; fix the config")
    return merged


def collection(
    base_url: str,
    base: DataCollectionDefinition | None = None,
    name: str = COLLECTION_NAME,
) -> DataCollection:
    """L2A (or the collection `base` defines, registered as `name`) served by `base_url` (CDSE
    by default), registered once per URL (see :func:`lstfill.download.cdse.collection`)."""
    base = base if base is not None else DataCollection.SENTINEL2_L2A.value
    return cdse.collection(base_url, base, name)


# ---------------------------------------------------------------------------------------------
# catalogue search


def search(
    area: Area,
    start: dt.date,
    end: dt.date,
    settings: dict[str, Any],
    *,
    creds: SentinelHubCredentials | None = None,
) -> list[FileRef]:
    """Process API requests (one FileRef per chunk and resolution) for every L2A acquisition
    over `area` from `start` to `end` (inclusive) under ``max_cloud_cover`` percent."""
    cfg = settings_with_defaults(settings)
    config = cdse.sh_config(creds or sentinelhub_credentials(), cfg)
    items = cdse.catalog_search(
        config,
        collection(cfg["base_url"]),
        area.grid,
        time=(start, end),
        filter=f"eo:cloud_cover < {cfg['max_cloud_cover']}",
        filter_lang="cql2-text",
        fields=CATALOG_FIELDS,
    )
    refs: list[FileRef] = []
    for sid, item in select_items(items, area.mgrs_tile):
        refs.extend(scene_refs(area, sid.name, item["properties"]["datetime"], cfg, config))
    scenes = {ref.meta["scene"] for ref in refs if ref.meta}
    log.info("%s: %d scene(s) in %d request(s)", PROVIDER, len(scenes), len(refs))
    return refs


def product_id(item_id: str) -> s2.SceneId | None:
    """The L2A product an item id names (a trailing ".SAFE" is ignored), else None."""
    try:
        return s2.parse_scene_name(item_id.removesuffix(".SAFE"))
    except ValueError:
        return None


def select_items(
    items: Sequence[dict[str, Any]], tile: str | None
) -> list[tuple[s2.SceneId, dict[str, Any]]]:
    """One item per acquisition (spacecraft and datatake time), sorted by time.

    With `tile`, only that MGRS tile's products, and of reprocessed duplicates the newest
    baseline; without, the first product of each datatake (the Process API mosaics the whole
    datatake over the area anyway).
    """
    want = tile.upper().removeprefix("T") if tile else None
    chosen: dict[tuple[str, dt.datetime], tuple[s2.SceneId, dict[str, Any]]] = {}
    for item in items:
        sid = product_id(str(item.get("id", "")))
        if sid is None or (want and sid.tile != want):
            continue
        key = (sid.spacecraft, sid.time)
        if key not in chosen or _reprocessed(sid, chosen[key][0]):
            chosen[key] = (sid, item)
    return sorted(chosen.values(), key=lambda pair: (pair[0].time, pair[0].name))


def _reprocessed(sid: s2.SceneId, old: s2.SceneId) -> bool:
    """Whether `sid` is a newer processing of the same tile and datatake as `old`."""
    return sid.tile == old.tile and (sid.baseline, sid.proc_time) > (old.baseline, old.proc_time)


# ---------------------------------------------------------------------------------------------
# Process API requests


def evalscript(bands: Sequence[str]) -> str:
    """Evalscript for uint16 DNs of `bands`, all 0 where ``dataMask`` is 0.

    Reflectance DNs of valid pixels are kept >= 1 so that 0 keeps meaning "no data" (harmonised
    DNs of very dark pixels may be 0); SCL is returned as it is (its class 0 is "no data").
    """
    values = ", ".join(f"s.{b}" if b == "SCL" else f"Math.max(s.{b}, 1)" for b in bands)
    zeros = ", ".join("0" for _ in bands)
    inputs = json.dumps([*bands, "dataMask"])
    return (
        "//VERSION=3\n"
        "function setup() {\n"
        "  return {\n"
        f'    input: [{{bands: {inputs}, units: "DN"}}],\n'
        f'    output: {{id: "default", bands: {len(bands)}, sampleType: "UINT16"}}\n'
        "  };\n"
        "}\n"
        "function evaluatePixel(s) {\n"
        f"  return s.dataMask ? [{values}] : [{zeros}];\n"
        "}\n"
    )


def request_bands(bands: Sequence[str], res: int) -> list[str]:
    """The bands of the `res` m request: the wanted ones at that resolution, SCL at 20 m."""
    native = s2.BANDS_10M if res == 10 else s2.BANDS_20M
    return [b for b in native if b in bands or b == "SCL"]


def _interval(time: str) -> tuple[dt.datetime, dt.datetime]:
    """The Process API time range around a catalogue datetime (one acquisition only)."""
    t = dt.datetime.fromisoformat(time.replace("Z", "+00:00"))
    t = (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    return t - TIME_MARGIN, t + TIME_MARGIN + dt.timedelta(seconds=1)


def scene_refs(
    area: Area, scene: str, time: str, settings: dict[str, Any], config: SHConfig
) -> list[FileRef]:
    """The Process API requests for one scene: per resolution, one per chunk of the grid."""
    cfg = settings_with_defaults(settings)
    sid = s2.parse_scene_name(scene)
    coll = collection(cfg["base_url"])
    interval = _interval(time)
    refs = []
    for res in RESOLUTIONS:
        bands = request_bands(cfg["bands"], res)
        if bands:
            refs += api.chunk_refs(
                config,
                coll,
                evalscript(bands),
                {"time_interval": interval, "other_args": HARMONIZE},
                api.res_grid(area.grid, res),
                int(cfg["max_pixels"]),
                partial(_chunk_name, sid.name, res),
                {"scene": sid.name, "res": res, "tile": sid.tile, "time": time, "bands": bands},
            )
    return refs


def _chunk_name(scene: str, res: int, index: tuple[int, int]) -> str:
    return f"{api.CHUNKS}/{scene}/{res}m_{index[0]}_{index[1]}.tif"


# ---------------------------------------------------------------------------------------------
# download and assembly


def _resolution_groups(refs: Sequence[FileRef]) -> dict[int, list[FileRef]]:
    groups: dict[int, list[FileRef]] = {}
    for ref in refs:
        groups.setdefault(int(ref.meta["res"]), []).append(ref)  # type: ignore[index]
    return groups


def _band_path(folder: Path, scene: str, band: str, res: int) -> Path:
    sid = s2.parse_scene_name(scene)
    return folder / s2.band_filename(sid.tile, sid.time, band, res)


def _complete(folder: Path, refs: Sequence[FileRef]) -> bool:
    """Whether `folder` holds every band file of the scene, each opening on the expected grid."""
    if not folder.is_dir():
        return False
    for res, group in _resolution_groups(refs).items():
        shape = tuple(group[0].meta["shape"])  # type: ignore[index]
        for band in group[0].meta["bands"]:  # type: ignore[index]
            path = _band_path(folder, folder.name, band, res)
            try:
                with rasterio.open(path) as src:
                    if (src.height, src.width) != shape or src.count != 1:
                        return False
            except (rasterio.errors.RasterioError, OSError):
                return False
    return True


def _mosaic(dest: Path, refs: Sequence[FileRef], index: int) -> np.ndarray:
    """Band `index` of one resolution, the chunks placed into the full uint16 grid."""
    return api.mosaic(dest, refs, len(refs[0].meta["bands"]), index)  # type: ignore[index]


def _tags(band: str, baseline: str) -> dict[str, object]:
    """Tags of a band file. Harmonised Process API DNs carry no offset (Sentinel Hub has removed
    the baseline >= 04.00 BOA_ADD_OFFSET), so BOA_ADD_OFFSET is 0 whatever the baseline says:
    the reader applies this tag, and reflectance is DN / 10000."""
    if band == "SCL":
        return {"BAND": "SCL", "PROCESSING_BASELINE": baseline}
    return {
        "BAND": band,
        "BOA_ADD_OFFSET": 0,
        "BOA_QUANTIFICATION_VALUE": s2.QUANTIFICATION,
        "PROCESSING_BASELINE": baseline,
    }


def assemble_scene(dest: Path, scene: str, refs: Sequence[FileRef]) -> Path | None:
    """Write the scene folder from its fetched chunks, band by band (one full band in memory).

    Mirrors :func:`lstfill.sources.sentinel2.write_scene`'s layout, but tags BOA_ADD_OFFSET=0,
    which write_scene cannot be told. Returns None (and writes nothing) when SCL is all no data.
    """
    sid = s2.parse_scene_name(scene)
    groups = _resolution_groups(refs)
    if 20 not in groups:
        raise DownloadError(f"{PROVIDER}: no 20 m request for {scene} (SCL is required)")
    bands20 = groups[20][0].meta["bands"]  # type: ignore[index]
    scl = _mosaic(dest, groups[20], bands20.index("SCL"))
    if not scl.any():
        log.warning("%s: %s has no valid pixel over the region; skipped", PROVIDER, scene)
        return None
    final = dest / scene
    with atomic_folder(final) as staging:
        _write_band(staging, scene, "SCL", scl.astype(np.uint8), groups[20][0], sid.baseline)
        del scl
        for _, group in sorted(groups.items()):
            for index, band in enumerate(group[0].meta["bands"]):  # type: ignore[index]
                if band != "SCL":
                    data = _mosaic(dest, group, index)
                    _write_band(staging, scene, band, data, group[0], sid.baseline)
    log.info("%s: wrote %s", PROVIDER, final)
    return final


def _write_band(
    folder: Path, scene: str, band: str, data: np.ndarray, ref: FileRef, baseline: str
) -> None:
    meta = ref.meta or {}
    path = _band_path(folder, scene, band, int(meta["res"]))
    write_cog(path, data, Affine(*meta["transform"]), meta["crs"], 0, _tags(band, baseline))


PRODUCT = api.Product(
    key="scene",
    name="Sentinel-2",
    with_defaults=settings_with_defaults,
    target=lambda dest, scene: dest / scene,
    complete=_complete,
    assemble=assemble_scene,
)
# Fetch the chunks of every scene in the refs and write each scene folder under `dest` (see
# :func:`lstfill.download.process_api.download`); a scene without any valid pixel is skipped
# with a warning. Returns the scene folders.
download = partial(api.download, PRODUCT)
