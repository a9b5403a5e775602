"""A job's metric tables (`lstfill.metric_tables`) as the Snakemake report shows them: one
self-contained HTML page (inline CSS, no script, no external resource) and a long CSV with the
exact numbers; plus which jobs a region's report has metric tables for.

Standard library only: rules/common.smk imports `region_jobs` and `evaluated_jobs` at parse
time.
"""

from __future__ import annotations

import csv
import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lstfill.errors import InputError
from lstfill.fusion.targets import coarse_files
from lstfill.inventory import modis_days
from lstfill.metric_tables import MetricTable, job_tables

EM_DASH = "\u2014"
CSV_COLUMNS = ("table", "method", "column", "value")
COUNT_COLUMNS = {"n", "n_pixels", "n_pairs", "n_samples"}
HIGHER_IS_BETTER = {"r2", "nse", "ssim", "gssim", "psnr"}
LOWER_IS_BETTER = ("rmse", "mae", "mse", "energy_residual_rms_k")  # name prefixes

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.05em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #ddd; }
th { background: #f0f0f0; text-align: right; } th:first-child { text-align: left; }
td { text-align: right; font-variant-numeric: tabular-nums; }
td:first-child { text-align: left; font-family: monospace; }
tr.model td { background: #eef5fb; }
td.best { font-weight: bold; }
p.note { color: #555; font-size: 0.85em; max-width: 60em; }
"""


def region_jobs(inventory: Mapping[str, Any], coarse: str) -> list[str]:
    """The jobs that run in a (non-downscaling) region, as `all_targets` plans them: gap-fill
    always; super-resolution where the inventory has MODIS days; fusion where it has Sentinel-2
    scenes and a coarse series (`coarse`: fusion.coarse)."""
    jobs = ["gapfill"]
    if modis_days(dict(inventory)):
        jobs.append("superres")
    if inventory["sentinel2"] and coarse_files(dict(inventory), coarse):
        jobs.append("fusion")
    return jobs


def evaluated_jobs(
    region_cfg: Mapping[str, Any], inventory: Mapping[str, Any], coarse: str
) -> list[str]:
    """The jobs of :func:`region_jobs` with a metrics.json: super-resolution only in a demo
    region (only it has a fine truth)."""
    jobs = region_jobs(inventory, coarse)
    return [j for j in jobs if j != "superres" or region_cfg["source"] == "demo"]


def is_count(column: str) -> bool:
    """Whether `column` holds a count (shown as an integer)."""
    return column in COUNT_COLUMNS


def format_value(column: str, value: Any) -> str:
    """A cell: None or NaN as an em dash, counts as integers, other numbers to 4 significant
    digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return EM_DASH
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if is_count(column) and math.isfinite(value):
        return f"{round(value):d}"
    return f"{value:.4g}"


def _key(column: str, value: Any) -> float | None:
    """The value to minimise to find the best method in `column` (None: no ranking)."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return None
    name = column.split(" ")[0]  # "rmse 0-100" ranks like rmse
    if name == "bias":
        return abs(value)
    if name in HIGHER_IS_BETTER or name.startswith("within_"):
        return -value
    if name.startswith(LOWER_IS_BETTER):
        return value
    return None


def best_rows(table: MetricTable) -> list[set[int]]:
    """Per column, the indices of the rows holding its best value (empty where the column is
    not ranked or fewer than two rows have a value)."""
    best: list[set[int]] = []
    for c, column in enumerate(table.columns, start=1):
        keys = {i: _key(column, row[c]) for i, row in enumerate(table.rows)}
        ranked = {i: k for i, k in keys.items() if k is not None}
        top = min(ranked.values()) if len(ranked) > 1 else None
        best.append({i for i, k in ranked.items() if k == top} if top is not None else set())
    return best


def table_html(table: MetricTable) -> str:
    """One table as an HTML fragment: its title, a header row ("method" and the columns), one row
    per method (models shaded, each ranked column's best value in bold) and its note."""
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in ["method", *table.columns])
    best = best_rows(table)
    body = []
    for i, row in enumerate(table.rows):
        cls = ' class="model"' if str(row[0]).startswith("model_") else ""
        cells = [f"<td>{esc(str(row[0]))}</td>"]
        for c, (column, value) in enumerate(zip(table.columns, row[1:], strict=True)):
            bold = ' class="best"' if i in best[c] else ""
            cells.append(f"<td{bold}>{esc(format_value(column, value))}</td>")
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    note = f'<p class="note">{esc(table.note)}</p>' if table.note else ""
    return (
        f"<h2>{esc(table.title)}</h2>\n<table>\n<thead><tr>{head}</tr></thead>\n"
        f"<tbody>\n{chr(10).join(body)}\n</tbody>\n</table>\n{note}"
    )


def tables_html(tables: Sequence[MetricTable], title: str, intro: str = "") -> str:
    """A self-contained HTML page of `tables` (inline CSS, nothing fetched)."""
    esc = html.escape
    legend = (
        "Rows: lstfill's models (model_*, shaded) and the baselines (baseline_*), scored on "
        "the same pixels; the best value of a ranked column is in bold; \u2014: no value."
    )
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">',
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="note">{esc(intro)}</p>' if intro else "",
        f'<p class="note">{esc(legend)}</p>',
        *(table_html(t) for t in tables),
        "</body>\n</html>\n",
    ]
    return "\n".join(p for p in parts if p)


def write_tables_html(
    tables: Sequence[MetricTable], path: str | Path, title: str, intro: str = ""
) -> Path:
    """Write `tables_html` to `path`, atomically."""
    from lstfill.io import atomic_output  # not at parse time: common.smk imports this module

    with atomic_output(path) as tmp:
        tmp.write_text(tables_html(tables, title, intro), encoding="utf-8")
    return Path(path)


def csv_value(value: Any) -> str:
    """A number exactly as Python writes it back (repr of a float), None as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_tables_csv(tables: Sequence[MetricTable], path: str | Path) -> Path:
    """`tables` in long format at `path`: one line per table, method and column, with the
    file's exact number (an empty value where the method has none); atomically."""
    from lstfill.io import atomic_output

    with atomic_output(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for table in tables:
            for method, *values in table.rows:
                for column, value in zip(table.columns, values, strict=True):
                    writer.writerow([table.key, method, column, csv_value(value)])
    return Path(path)


JOB_TITLES = {
    "gapfill": "Gap-fill",
    "superres": "Super-resolution",
    "fusion": "Fusion",
    "downscale": "Downscaling",
}


def write_job_metrics(
    job: str, region: str, metrics_path: str | Path, html_path: str | Path, csv_path: str | Path
) -> list[MetricTable]:
    """The HTML page and the CSV of `job`'s metrics.json in `region` (the page's introduction is
    the file's protocol, where it states one)."""
    metrics_path = Path(metrics_path)
    try:
        metrics = json.loads(metrics_path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(metrics_path, f"cannot read the {job} metrics: {exc}") from exc
    tables = job_tables(job, metrics)
    protocol = metrics.get("protocol")
    title = f"{JOB_TITLES.get(job, job)} metrics, region {region}"
    write_tables_html(tables, html_path, title, protocol if isinstance(protocol, str) else "")
    write_tables_csv(tables, csv_path)
    return tables
