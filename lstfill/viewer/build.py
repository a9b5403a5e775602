"""Write a region's offline viewer: a static folder that opens from disk (file://) or from any
static web server, with no request leaving it.

    viewer/index.html, viewer.js, viewer.css   the page (lstfill/viewer/static)
    viewer/vendor/{leaflet,uplot}/             the pinned npm libraries (lstfill.viewer.vendor)
    viewer/data/index.js                       region, jobs, colour maps, metric tables, runs
    viewer/data/{job}.js                       a job's maps, encoded (lstfill.viewer.encode)

Data travel as <script> files rather than JSON or COGs because a page opened from disk may load
scripts but not fetch files; a job's maps load only when its tab is opened.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lstfill.io import atomic_folder, atomic_output, json_ready
from lstfill.metric_tables import job_tables, methods_of
from lstfill.raster import block_mean
from lstfill.runs import read_runs
from lstfill.viewer import vendor
from lstfill.viewer.encode import STEPS, Quantiser, encode_codes
from lstfill.viewer.layers import JobView

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
PAGE_FILES = ("viewer.js", "viewer.css", "index.html")  # the page last: present means complete
COLOUR_MAPS = {"lst": "inferno", "uncertainty": "viridis", "ndvi": "YlGn"}
# Largest side of a map in the viewer (pixels): twice the 300 px map box, room to zoom in once.
MAX_SIDE = 600


def colour_lut(name: str) -> str:
    """A matplotlib colour map as 256 hex RGB triplets in one string."""
    import matplotlib

    rgba = matplotlib.colormaps[name](np.linspace(0, 1, 256))
    return "".join(f"{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}" for r, g, b, _ in rgba)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def shrink(frame: np.ndarray, factor: int) -> np.ndarray:
    """The mean of the valid pixels of every `factor` x `factor` block of `frame` (NaN where
    none is valid), the frame padded with NaN to whole blocks."""
    if factor == 1:
        return frame
    height, width = frame.shape
    padded = np.full((-(-height // factor) * factor, -(-width // factor) * factor), np.nan)
    padded[:height, :width] = frame
    return block_mean(padded, factor, min_valid=1 / factor**2)


def job_payload(view: JobView, max_side: int = MAX_SIDE) -> dict[str, Any]:
    """A job's maps and series as the page reads them: per panel its grid, quantiser, encoded
    frames and, per slider position, the frame shown (-1: none that day). A panel larger than
    `max_side` pixels on a side is shown block-averaged (and says so in its title), so that a
    large region's viewer stays a few MB a job."""
    times = view.times
    panels = []
    for panel in view.panels:
        factor = -(-max(panel.frames[0].shape) // max_side)
        frames = [shrink(f, factor) for f in panel.frames]
        title = panel.title + (f" ({factor}x{factor} block means)" if factor > 1 else "")
        quantiser = Quantiser.for_frames(frames, STEPS[panel.kind])
        height, width = frames[0].shape
        index = {t: i for i, t in enumerate(panel.times)}
        panels.append(
            {
                "key": panel.key,
                "title": title,
                "kind": panel.kind,
                "units": panel.units,
                "width": width,
                "height": height,
                "offset": quantiser.offset,
                "step": quantiser.step,
                "times": [_iso(t) for t in panel.times],
                "at": [index.get(t, -1) for t in times],
                "frames": [encode_codes(quantiser.codes(f)) for f in frames],
            }
        )
    return {
        "job": view.job,
        "title": view.title,
        "note": view.note,
        "times": [_iso(t) for t in times],
        "panels": panels,
        "series": [vars(s) for s in view.series],
    }


def runs_payload(path: str | Path | None) -> dict[str, list]:
    """The runs table as {"columns": [...], "rows": [[...]]} (empty without a file or a run)."""
    rows = read_runs(path) if path and Path(path).exists() else []
    return {"columns": list(rows[0]) if rows else [], "rows": [list(r.values()) for r in rows]}


def tables_payload(metrics: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Every job's metric tables (lstfill.metric_tables) and the methods its file names."""
    out = {}
    for job, data in metrics.items():
        out[job] = {
            "methods": methods_of(job, data),
            "selected": data.get("selected_method"),
            "protocol": data.get("protocol", ""),
            "tables": [
                {"key": t.key, "title": t.title, "columns": t.columns, "rows": t.rows,
                 "note": t.note}
                for t in job_tables(job, data)
            ],
        }  # fmt: skip
    return out


def _script(variable: str, payload: Any) -> str:
    """A script that stores `payload` under window.LSTFILL[variable...]."""
    text = json.dumps(json_ready(payload), separators=(",", ":"), allow_nan=False)
    return f"window.LSTFILL=window.LSTFILL||{{jobs:{{}}}};window.LSTFILL{variable}={text};\n"


def build_viewer(
    out: str | Path,
    region: str,
    views: Sequence[JobView],
    metrics: Mapping[str, Mapping[str, Any]],
    runs: str | Path | None = None,
    *,
    regions: Sequence[str] = (),
    npm_cache: str | Path | None = None,
    registry: str = vendor.DEFAULT_REGISTRY,
) -> dict[str, int]:
    """Write the viewer folder `out` (its index.html, page files, vendor/ and data/), each part
    atomically; returns the bytes written per part. `regions` are the workflow's regions, whose
    viewers (beside this one under results/) the page links to."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    index = {
        "region": region,
        "regions": list(regions) or [region],
        "built": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "jobs": [{"job": v.job, "title": v.title} for v in views],
        "colours": {kind: colour_lut(name) for kind, name in COLOUR_MAPS.items()},
        "metrics": tables_payload(metrics),
        "runs": runs_payload(runs),
    }
    sizes: dict[str, int] = {}
    with atomic_folder(out / "data") as tmp:
        (tmp / "index.js").write_text(_script(".index", index))
        for view in views:
            (tmp / f"{view.job}.js").write_text(_script(f".jobs[{view.job!r}]", job_payload(view)))
        sizes["data"] = sum(p.stat().st_size for p in tmp.iterdir())
    with atomic_folder(out / "vendor") as tmp:
        vendor.vendor_assets(tmp, cache=Path(npm_cache) if npm_cache else None, registry=registry)
        sizes["vendor"] = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
    for name in PAGE_FILES:
        with atomic_output(out / name) as tmp:
            shutil.copyfile(STATIC / name, tmp)
        sizes[name] = (out / name).stat().st_size
    log.info("viewer of %s: %s bytes in %s", region, sum(sizes.values()), out)
    return sizes
