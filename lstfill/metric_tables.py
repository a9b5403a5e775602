"""Every job's `metrics.json` as tables of methods by scores: what the Snakemake report and the
viewer both show, so the two never disagree with each other or with the file.

A table has one row per method in the order of the file (models first, then baselines, as the
evaluation writes them) and one column per score; a score a method lacks is None. Values are the
file's numbers, unrounded: rounding is the display's business.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

JOBS = ("gapfill", "superres", "fusion", "downscale")

GAPFILL_OVERALL = (
    "n", "rmse", "mae", "bias", "r2", "within_1k", "within_2k", "within_3k",
    "rmse_median", "coverage_90", "halfwidth90_mean",
)  # fmt: skip
SUBSET_SCORES = ("n", "rmse", "mae", "bias", "r2")
DOWNSCALE_SCORES = ("rmse", "mse", "n")


@dataclass(frozen=True)
class MetricTable:
    """One table: `rows` are [method, value per column]."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    note: str = ""

    @property
    def methods(self) -> list[str]:
        """The row names."""
        return [row[0] for row in self.rows]


def _scores(method: Mapping[str, Any], keys: Sequence[str]) -> list[Any]:
    """The plain numbers `keys` of one method's entry (None where missing or not a number)."""
    out = []
    for key in keys:
        value = method.get(key)
        out.append(value if isinstance(value, int | float) or value is None else None)
    return out


def _score_keys(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """The union of the keys of `entries` that hold numbers (or None), in first-seen order."""
    keys: list[str] = []
    for entry in entries:
        for key, value in entry.items():
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if (number or value is None) and key not in keys:  # None: a score not computed
                keys.append(key)
    return keys


def _table(
    key: str,
    title: str,
    methods: Mapping[str, Mapping[str, Any]],
    columns: Sequence[str] = (),
    note: str = "",
) -> MetricTable:
    """Methods by `columns` (by default every numeric score any method has)."""
    cols = list(columns) or _score_keys(methods.values())
    rows = [[name, *_scores(entry, cols)] for name, entry in methods.items()]
    return MetricTable(key, title, cols, rows, note)


def _binned(
    key: str, title: str, methods: Mapping[str, Mapping[str, Any]], block: str, note: str
) -> MetricTable:
    """RMSE per bin of `block` ("by_gap_size", "by_distance"): one column per bin."""
    bins: list[str] = []
    for entry in methods.values():
        bins += [b for b in entry.get(block, {}) if b not in bins]
    rows = [
        [name, *[(entry.get(block, {}).get(b) or {}).get("rmse") for b in bins]]
        for name, entry in methods.items()
    ]
    return MetricTable(key, title, [f"rmse {b}" for b in bins], rows, note)


def gapfill_tables(metrics: Mapping[str, Any]) -> list[MetricTable]:
    """Gap-fill: the artificial-gap validation overall, by gap size, by distance to the nearest
    clear pixel and on the test blocks only."""
    methods = metrics["methods"]
    overall = {
        name: {**entry.get("overall", {}), **{k: v for k, v in entry.items() if k != "overall"}}
        for name, entry in methods.items()
    }
    subset = {
        name: entry.get("subsets", {}).get("test_blocks", {}) for name, entry in methods.items()
    }
    pairs = metrics.get("n_pairs")
    return [
        _table(
            "overall",
            "Artificial gaps: every hidden pixel (K)",
            overall,
            GAPFILL_OVERALL,
            f"{pairs} target/donor pairs; rmse_median is the median of the per-pair RMSEs; "
            "coverage_90 the share of hidden pixels inside the 90 % interval.",
        ),
        _binned("by_gap_size", "RMSE by gap size (pixels in the gap)", methods, "by_gap_size", ""),
        _binned(
            "by_distance",
            "RMSE by distance to the nearest clear pixel (m)",
            methods,
            "by_distance",
            "",
        ),
        _table("test_blocks", "Artificial gaps in the test blocks only (K)", subset, SUBSET_SCORES),
    ]


def superres_tables(metrics: Mapping[str, Any]) -> list[MetricTable]:
    """Super-resolution: the test days' scores against the fine truth."""
    days = metrics.get("n_days")
    return [
        _table(
            "test_days",
            "Test days against the 250 m truth",
            metrics["methods"],
            note=f"Mean over {days} test days, on pixels valid in every product.",
        )
    ]


def fusion_tables(metrics: Mapping[str, Any]) -> list[MetricTable]:
    """Fusion: the withheld-scene scores, then each protocol's NDVI scores."""
    variable = metrics.get("variable", "ndvi")
    tables = [_table("withheld", f"Withheld Sentinel-2 scenes ({variable})", metrics["methods"])]
    for name, protocol in metrics.get("protocols", {}).items():
        if name == "withheld":
            continue
        methods = protocol.get("bands", {}).get(variable) or protocol.get("methods")
        if methods:
            tables.append(_table(name, f"Protocol {name} ({variable})", methods))
    return tables


def downscale_tables(metrics: Mapping[str, Any]) -> list[MetricTable]:
    """Downscaling: per split (space, day), both bands together and each band's RMSE."""
    tables = []
    for split, block in metrics.get("splits", {}).items():
        methods = block["methods"]
        tables.append(
            _table(
                split,
                f"{split} split: both bands (K)",
                methods,
                DOWNSCALE_SCORES,
                f"{block.get('n_samples')} test samples",
            )
        )
        bands = block.get("by_band", {})
        rows = [
            [name, *[bands[b]["methods"].get(name, {}).get("rmse") for b in bands]]
            for name in methods
        ]
        tables.append(
            MetricTable(
                f"{split}_bands",
                f"{split} split: RMSE per band (K)",
                [f"rmse {b}" for b in bands],
                rows,
            )
        )
    return tables


BUILDERS = {
    "gapfill": gapfill_tables,
    "superres": superres_tables,
    "fusion": fusion_tables,
    "downscale": downscale_tables,
}


def job_tables(job: str, metrics: Mapping[str, Any]) -> list[MetricTable]:
    """The tables of `job`'s metrics (see :data:`JOBS`)."""
    return BUILDERS[job](metrics)


def methods_of(job: str, metrics: Mapping[str, Any]) -> list[str]:
    """Every method `job`'s metrics name (the rows each of its tables must have)."""
    if job == "downscale":
        names: list[str] = []
        for block in metrics.get("splits", {}).values():
            names += [n for n in block["methods"] if n not in names]
        return names
    return list(metrics["methods"])
