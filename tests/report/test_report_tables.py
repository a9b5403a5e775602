"""The report's metric tables: every job's metrics.json (shaped as the demo's) becomes a
self-contained HTML page with one table per MetricTable and a long CSV with the exact numbers."""

import csv
import json
import math
from html.parser import HTMLParser
from pathlib import Path

import pytest

from lstfill.errors import InputError
from lstfill.metric_tables import job_tables, methods_of
from lstfill.report_tables import (
    EM_DASH,
    evaluated_jobs,
    format_value,
    tables_html,
    write_job_metrics,
    write_tables_csv,
)


def _gapfill_entry(rmse: float, interval: bool) -> dict:
    overall = {"n": 1200.0, "rmse": rmse, "mae": rmse * 0.7, "bias": -0.1, "r2": 0.9}
    overall |= {"within_1k": 0.4, "within_2k": 0.7, "within_3k": 0.85}
    entry = {
        "overall": overall,
        "n_pairs": 4,
        "rmse_median": rmse * 0.95,
        "by_gap_size": {"0-100": {"rmse": rmse - 0.2}, "100+": {"rmse": rmse + 0.3}},
        "by_distance": {"0-140": {"rmse": rmse - 0.4}, "140+": {"rmse": rmse + 0.1}},
        "subsets": {"test_blocks": {"n": 300.0, "rmse": rmse + 0.2, "mae": 1.0, "bias": 0.0}},
    }
    if interval:
        entry |= {"coverage_90": 0.91, "halfwidth90_mean": 3.5}
    return entry


def _superres(rmse: float, frr: float | None) -> dict:
    keys = ("bias", "rmse_debiased", "psnr", "ssim", "gssim")
    return {"rmse": rmse, **dict.fromkeys(keys, 0.5), "frr": frr, "n_pixels": 152000}


def _fusion(rmse: float) -> dict:
    return {"rmse": rmse, "mae": rmse / 2, "bias": 0.001, "r2": 0.99, "nse": 0.98, "n": 5000.0}


def _downscale_split(rmses: dict[str, float], n: int) -> dict:
    methods = {m: {"mse": r * r, "rmse": r, "n": n} for m, r in rmses.items()}
    band = {"methods": {m: {"mse": r, "rmse": r, "n": n // 2} for m, r in rmses.items()}}
    return {"methods": methods, "n_samples": n, "by_band": {"night": band, "day": band}}


METRICS = {
    "gapfill": {
        "protocol": "Artificial gaps from real clouds.",
        "n_pairs": 4,
        "methods": {
            "model_patch_cnn": _gapfill_entry(2.1234567, True),
            "model_context": _gapfill_entry(2.2, True),
            "baseline_temporal": _gapfill_entry(3.4, False),
        },
    },
    "superres": {
        "n_days": 3,
        "methods": {
            "model_sifnn1": _superres(2.02716012930651, 0.632),
            "baseline_bicubic": _superres(2.129, 0.0),
            "baseline_dms": _superres(2.26, None),
        },
    },
    "fusion": {
        "variable": "ndvi",
        "methods": {"model_efast": _fusion(0.0197), "baseline_nearest": _fusion(0.0262)},
        "protocols": {
            "withheld": {"bands": {"ndvi": {"model_efast": _fusion(0.0197)}}},
            "gap_30d": {
                "bands": {
                    "ndvi": {"model_efast": _fusion(0.0304), "baseline_nearest": _fusion(0.07)}
                }
            },
        },
    },
    "downscale": {
        "splits": {
            "space": _downscale_split(
                {"model_mlp": 0.9185, "baseline_zero": 1.15, "baseline_linear": 0.96}, 58720
            ),
            "day": _downscale_split(
                {"model_mlp": 0.9028, "baseline_zero": 1.14, "baseline_linear": 0.95}, 112896
            ),
        }
    },
}


class _Tables(HTMLParser):
    """The tables of a page as lists of rows of cell texts, and every tag's attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.attrs: list[tuple[str, str | None]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.attrs += attrs
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("job", list(METRICS))
def test_every_method_is_a_row_of_every_table_and_the_csv_holds_the_numbers(job, tmp_path):
    metrics = METRICS[job]
    src = tmp_path / "metrics.json"
    src.write_text(json.dumps(metrics))
    page, table_csv = tmp_path / f"metrics_{job}.html", tmp_path / f"metrics_{job}.csv"
    tables = write_job_metrics(job, "demo", src, page, table_csv)
    assert tables and [t.key for t in tables] == [t.key for t in job_tables(job, metrics)]

    parsed = _Tables()
    parsed.feed(page.read_text())
    assert len(parsed.tables) == len(tables)
    for table, rows in zip(tables, parsed.tables, strict=True):
        assert rows[0] == ["method", *table.columns]
        assert [r[0] for r in rows[1:]] == methods_of(job, metrics)

    found = {(r["table"], r["method"], r["column"]): r["value"] for r in _read_csv(table_csv)}
    for table in tables:
        for method, *values in table.rows:
            for column, value in zip(table.columns, values, strict=True):
                text = found.pop((table.key, method, column))
                assert (float(text) == value) if value is not None else text == ""
    assert not found


def test_numbers_are_those_of_the_file(tmp_path):
    src = tmp_path / "metrics.json"
    src.write_text(json.dumps(METRICS["superres"]))
    write_job_metrics("superres", "demo", src, tmp_path / "m.html", tmp_path / "m.csv")
    rows = _read_csv(tmp_path / "m.csv")
    rmse = next(r for r in rows if r["method"] == "model_sifnn1" and r["column"] == "rmse")
    assert float(rmse["value"]) == 2.02716012930651  # exact, not rounded
    frr = next(r for r in rows if r["method"] == "baseline_dms" and r["column"] == "frr")
    assert frr["value"] == ""
    page = _Tables()
    page.feed((tmp_path / "m.html").read_text())
    header, *body = page.tables[0]
    cells = {row[0]: dict(zip(header, row, strict=True)) for row in body}
    assert cells["model_sifnn1"]["rmse"] == "2.027"
    assert cells["model_sifnn1"]["n_pixels"] == "152000"
    assert cells["baseline_dms"]["frr"] == EM_DASH


def test_formatting():
    assert format_value("n", 377680.0) == "377680"
    assert format_value("rmse", 2.142177112890285) == "2.142"
    assert format_value("bias", 4.807772764707247e-06) == "4.808e-06"
    assert format_value("psnr", 24.36738874714365) == "24.37"
    assert format_value("rmse", None) == EM_DASH
    assert format_value("r2", math.nan) == EM_DASH


def test_the_page_is_self_contained_and_marks_the_best_rmse():
    tables = job_tables("gapfill", METRICS["gapfill"])
    page = tables_html(tables, "Gap-fill metrics, region demo", "Artificial gaps <from> clouds.")
    assert "http" not in page and "src=" not in page and "<script" not in page
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert "&lt;from&gt;" in page  # text is escaped
    assert '<td class="best">2.123</td>' in page  # the lowest overall rmse, in bold
    assert '<td class="best">3.4</td>' not in page


def test_unreadable_metrics_name_the_file(tmp_path):
    bad = tmp_path / "metrics.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="metrics.json"):
        write_job_metrics("gapfill", "demo", bad, tmp_path / "m.html", tmp_path / "m.csv")


def test_csv_of_no_values_keeps_the_rows(tmp_path):
    tables = job_tables("fusion", METRICS["fusion"])
    out = write_tables_csv(tables, tmp_path / "t.csv")
    rows = _read_csv(out)
    assert {r["table"] for r in rows} == {"withheld", "gap_30d"}


@pytest.mark.parametrize(
    ("source", "modis", "jobs"),
    [
        ("demo", True, ["gapfill", "superres"]),
        ("demo", False, ["gapfill"]),
        ("local", True, ["gapfill"]),
    ],
)
def test_evaluated_jobs_follow_the_plan(source, modis, jobs):
    """Super-resolution metrics need MODIS days and a fine truth (demo); fusion needs S2 scenes
    and a coarse series."""
    days = {"20230701": {"MOD11A1": "a.hdf", "MOD09GQ": "b.hdf"}} if modis else {}
    inv = {"modis_days": days, "modis": {}, "sentinel2": {}, "sentinel3": {"20230701": "s3.tif"}}
    assert evaluated_jobs({"source": source}, inv, "sentinel3") == jobs
    inv["sentinel2"] = {"S2A_scene": {}}
    assert evaluated_jobs({"source": source}, inv, "sentinel3") == [*jobs, "fusion"]
    inv["sentinel3"] = {}
    assert evaluated_jobs({"source": source}, inv, "sentinel3") == jobs
