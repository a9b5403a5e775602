"""The Process API of Sentinel Hub, as the Sentinel-2 and Sentinel-3 downloaders use it.

The Process API cuts each acquisition (or day) to a grid snapped to the product's pixel size,
one POST per output chunk of at most ``max_pixels`` per side. This module holds what does not
depend on the product: the chunk requests on a grid, the checked reading and mosaicking of
fetched chunks, and :func:`download`, the one download loop: it fetches each group of chunks
(a scene, a day) and hands it to the assembly that the provider's :class:`Product` names. The
service, token and catalogue are :mod:`lstfill.download.cdse`'s; the providers keep their
collection, evalscript, catalogue query and file layout.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from sentinelhub import BBox, DataCollection, MimeType, SentinelHubRequest, SHConfig

from lstfill.download.base import DownloadError, FileRef
from lstfill.download.cdse import (
    CREDENTIAL_HINT,
    POLICY,
    PROVIDER,
    authorized_session,
    bbox,
)
from lstfill.download.credentials import SentinelHubCredentials, sentinelhub_credentials
from lstfill.download.fetch import Fetcher
from lstfill.download.http import public_url
from lstfill.grid import Grid

CHUNKS = ".chunks"  # the folder under `dest` where fetched chunks wait for their assembly

log = logging.getLogger(__name__)
Window = tuple[int, int, int, int]  # row offset, column offset, height, width


# ---------------------------------------------------------------------------------------------
# Process API requests on a grid


def res_grid(grid: Grid, res: float) -> Grid:
    """The grid at `res` metres over `grid`'s extent, its edges snapped outward to multiples of
    `res` so that it stays on the product's native pixel grid (no resampling shift)."""
    x0, y0, x1, y1 = (round(v / res, 6) for v in grid.bounds)
    snapped = (math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1))
    return Grid.from_bbox(grid.crs, [v * res for v in snapped], res)


def split(n: int, max_size: int) -> list[tuple[int, int]]:
    """(offset, size) of the fewest near-equal parts of `n` pixels with no part over `max_size`."""
    parts = math.ceil(n / max_size)
    edges = [i * n // parts for i in range(parts + 1)]
    return [(a, b - a) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def chunk_windows(height: int, width: int, max_pixels: int) -> list[tuple[tuple[int, int], Window]]:
    """((row, col), (row_off, col_off, height, width)) of the chunks that tile a grid exactly."""
    return [
        ((i, j), (r0, c0, h, w))
        for i, (r0, h) in enumerate(split(height, max_pixels))
        for j, (c0, w) in enumerate(split(width, max_pixels))
    ]


def process_payload(
    config: SHConfig,
    coll: DataCollection,
    script: str,
    box: BBox,
    size: tuple[int, int],
    **input_args: Any,
) -> tuple[str, dict[str, Any]]:
    """(URL, JSON body) of one Process API request for a uint16 TIFF, as sentinelhub-py builds
    it; `input_args` (time_interval, mosaicking_order, other_args, ...) go to its input data."""
    request = SentinelHubRequest(
        evalscript=script,
        input_data=[SentinelHubRequest.input_data(coll, **input_args)],
        responses=[SentinelHubRequest.output_response("default", MimeType.TIFF)],
        bbox=box,
        size=size,
        config=config,
    )
    download = request.download_list[0]
    return str(download.url), json.loads(json.dumps(download.post_values))


def chunk_refs(
    config: SHConfig,
    coll: DataCollection,
    script: str,
    input_args: Mapping[str, Any],
    grid: Grid,
    max_pixels: int,
    name: Callable[[tuple[int, int]], str],
    meta: Mapping[str, Any],
) -> list[FileRef]:
    """One Process API request (see :func:`process_payload`) per chunk of `grid`, `name` giving
    its file under `dest`; the ref's `meta` is `meta` plus where the chunk goes (row, col,
    window, and the grid's shape, transform and CRS)."""
    refs = []
    for index, (r0, c0, h, w) in chunk_windows(*grid.shape, max_pixels):
        x0, y1 = grid.transform @ (c0, r0)
        x1, y0 = grid.transform @ (c0 + w, r0 + h)
        box = bbox((x0, y0, x1, y1), grid.crs)
        url, body = process_payload(config, coll, script, box, (w, h), **input_args)
        place = {
            "row": index[0],
            "col": index[1],
            "window": [r0, c0, h, w],
            "shape": list(grid.shape),
            "transform": list(grid.transform)[:6],
            "crs": grid.crs,
        }
        refs.append(
            FileRef(
                url=url,
                name=name(index),
                kind="geotiff",
                method="POST",
                json=body,
                headers={"Accept": "image/tiff"},
                meta={**meta, **place},
            )
        )
    return refs


# ---------------------------------------------------------------------------------------------
# fetched chunks


def read_chunk(path: Path, ref: FileRef, count: int, band: int | None = None) -> np.ndarray:
    """Band `band` (0-based; every band when None) of a fetched chunk of `count` bands, after
    checking it is on the requested grid.

    A chunk on another grid is deleted (the fetcher would otherwise keep it as complete).
    """
    meta = ref.meta or {}
    r0, c0, h, w = meta["window"]
    expected = Affine(*meta["transform"]) @ Affine.translation(c0, r0)
    with rasterio.open(path) as src:
        problem = None
        if (src.height, src.width) != (h, w) or src.count != count:
            problem = (
                f"{src.count} band(s) of {src.height}x{src.width} px, expected {count} of {h}x{w}"
            )
        elif not src.transform.almost_equals(expected, precision=1e-6 * abs(expected.a)):
            problem = f"another grid ({tuple(src.transform)[:6]}, expected {tuple(expected)[:6]})"
        data = None if problem else src.read() if band is None else src.read(band + 1)
    if data is None:
        path.unlink(missing_ok=True)
        raise DownloadError(
            f"{PROVIDER}: {public_url(ref.url)} answered {path.name} with {problem}; the chunk was "
            "deleted: run again, and report it if it persists"
        )
    return data


def mosaic(dest: Path, refs: Sequence[FileRef], count: int, band: int | None = None) -> np.ndarray:
    """Band `band` (every band when None) of the full uint16 grid, its chunks put in place."""
    meta = refs[0].meta or {}
    shape = tuple(meta["shape"]) if band is not None else (count, *meta["shape"])
    out = np.zeros(shape, dtype=np.uint16)
    for ref in refs:
        r0, c0, h, w = ref.meta["window"]  # type: ignore[index]
        out[..., r0 : r0 + h, c0 : c0 + w] = read_chunk(dest / ref.name, ref, count, band)
    return out


# ---------------------------------------------------------------------------------------------
# download loop


@dataclass(frozen=True)
class Product:
    """What the download loop needs of a provider's product.

    `key` is the ref meta key that groups chunks into one output (a scene, a day), `name` the
    product in the error for a foreign ref ("Sentinel-2"), `label` the prefix of an output in
    the log ("Sentinel-3 ", or ""). `with_defaults` gives the settings over the defaults, checked;
    `target` names an output, `complete` says whether one is already whole, and `assemble`
    writes it from its fetched chunks (None: skipped, nothing written).
    """

    key: str
    name: str
    with_defaults: Callable[[dict[str, Any] | None], dict[str, Any]]
    target: Callable[[Path, str], Path]
    complete: Callable[[Path, Sequence[FileRef]], bool]
    assemble: Callable[[Path, str, Sequence[FileRef]], Path | None]
    label: str = ""


def group_refs(refs: Sequence[FileRef], key: str, what: str) -> dict[str, list[FileRef]]:
    """The refs grouped by ``meta[key]``, in order of first appearance; a ref without it is not a
    `what` chunk request (DownloadError)."""
    groups: dict[str, list[FileRef]] = {}
    for ref in refs:
        if not ref.meta or key not in ref.meta:
            raise DownloadError(f"{PROVIDER}: {ref.name} is not a {what} chunk request")
        groups.setdefault(ref.meta[key], []).append(ref)
    return groups


def download(
    product: Product,
    refs: Sequence[FileRef],
    dest: str | Path,
    settings: dict[str, Any] | None,
    *,
    creds: SentinelHubCredentials | None = None,
    fetcher: Fetcher | None = None,
) -> list[Path]:
    """Fetch each output's chunks under ``dest/.chunks`` and assemble it; returns the outputs.

    An output that is already complete is not fetched again. Without `fetcher`, one is made
    (only when something is to be fetched) with a bearer-token session for `creds` (default:
    :func:`sentinelhub_credentials`). An output the assembly skips is left out.
    """
    cfg = product.with_defaults(settings)
    groups = group_refs(refs, product.key, product.name)
    dest = Path(dest)
    todo = {
        key
        for key, group in groups.items()
        if not product.complete(product.target(dest, key), group)
    }
    if todo and fetcher is None:
        session = authorized_session(creds or sentinelhub_credentials(), cfg)
        fetcher = Fetcher(PROVIDER, session=session, policy=POLICY, credential_hint=CREDENTIAL_HINT)
    outputs = []
    for key, group in groups.items():
        if key not in todo:
            log.info("%s: %s%s is already complete", PROVIDER, product.label, key)
            outputs.append(product.target(dest, key))
            continue
        assert fetcher is not None
        fetcher.fetch_all(group, dest)
        output = product.assemble(dest, key, group)
        shutil.rmtree(dest / CHUNKS / key, ignore_errors=True)
        if output is not None:
            outputs.append(output)
    with contextlib.suppress(OSError):
        (dest / CHUNKS).rmdir()  # only when empty
    return outputs
