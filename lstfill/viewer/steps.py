"""The viewer's workflow step: read each job's maps and metrics, write the viewer folder."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lstfill.viewer import layers
from lstfill.viewer.build import build_viewer

log = logging.getLogger(__name__)


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def job_views(files: Mapping[str, Any], settings: Mapping[str, Any]) -> list[layers.JobView]:
    """The JobView of every job in settings["jobs"], from the files the rule names (keys as in
    rules/common.smk's viewer_inputs)."""
    views = []
    for job in settings["jobs"]:
        if job == "gapfill":
            views.append(layers.gapfill_view(_as_list(files["cubes"]), _as_list(files["gapfill"])))
        elif job == "superres":
            by_variant: dict[str, list[str]] = defaultdict(list)
            for path in _as_list(files["superres"]):
                by_variant[Path(path).parent.name].append(path)
            views.append(layers.superres_view(_as_list(files["sr_scenes"]), by_variant))
        elif job == "fusion":
            views.append(
                layers.fusion_view(
                    files["coarse"], _as_list(files["s2"]), _as_list(files["fusion"]),
                    float(settings["fusion_min_clear"]),
                )
            )  # fmt: skip
        elif job == "downscale":
            views.append(
                layers.downscale_view(
                    _as_list(files["lst"]), _as_list(files["downscale"]),
                    bool(settings["downscale_qa_strict"]),
                )
            )  # fmt: skip
    return views


def job_of_metrics(path: str | Path) -> str:
    """The job a metrics file belongs to: its folder's name (results/{region}/{job}/)."""
    return Path(path).parent.name


def viewer(
    files: Mapping[str, Any], settings: Mapping[str, Any], region: str, index_html: str | Path
) -> dict[str, int]:
    """Write the viewer whose page is `index_html` (its folder holds the rest)."""
    views = job_views(files, settings)
    metrics = {}
    for path in _as_list(files.get("metrics")):
        metrics[job_of_metrics(path)] = json.loads(Path(path).read_text())
    sizes = build_viewer(
        Path(index_html).parent, region, views, metrics, files.get("runs"),
        regions=settings.get("regions", [region]),
    )  # fmt: skip
    log.info("viewer written: %s", ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sizes.items()))
    return sizes
