"""`lstfill <job> <step>`: each rule of the workflow as a command, run through Snakemake.

A step makes its rule's outputs for a region (one date, or every date of the region) with the
same workflow script, log and benchmark file as a full run, and no other rule: a dry run first
checks that no other rule must run before it. Wildcards come from options (`--date`,
`--method`, ...) and are checked against the config, the region's period and its inventory, so
a wrong value is one line naming it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstfill import layout
from lstfill.config import load_config, region_dates
from lstfill.errors import LstfillError

Items = Callable[[dict, str], list[str]]
WORKFLOW = Path(__file__).resolve().parents[1]  # the Snakefile beside the package
PLAN_TIMEOUT_S = 300  # a dry run of one step takes seconds; a hang is Snakemake's, not the step's


@dataclass(frozen=True)
class Step:
    """One rule as a command: its output pattern, the wildcard an option picks (`--date`,
    `--method`, ...) and, where that option is left out, every value the region has."""

    rule: str
    target: str
    help: str
    option: str | None = None  # the wildcard of `target` set by an option of the same name
    every: Items | None = None  # every value of that wildcard in the region
    downscale: bool = False  # the region is one of downscale.regions


def read_region_inventory(cfg: dict, region: str) -> dict:
    """The inventory of `region` (InputError naming the file while there is none)."""
    from lstfill.inventory import read_inventory

    return read_inventory(layout.INVENTORY.format(region=region))


def _acquisitions(cfg: dict, region: str) -> list[str]:
    return list(read_region_inventory(cfg, region)["acquisitions"])


def _modis_days(cfg: dict, region: str) -> list[str]:
    from lstfill.inventory import modis_days

    return list(modis_days(read_region_inventory(cfg, region)))


def _scenes(cfg: dict, region: str) -> list[str]:
    return list(read_region_inventory(cfg, region)["sentinel2"])


def _fusion_days(cfg: dict, region: str) -> list[str]:
    from lstfill.fusion.targets import fusion_days

    return fusion_days(cfg["regions"][region])


def _methods(cfg: dict, region: str) -> list[str]:
    return list(cfg["gapfill"]["methods"])


def _variants(cfg: dict, region: str) -> list[str]:
    return list(cfg["superres"]["variants"])


def _splits(cfg: dict, region: str) -> list[str]:
    return list(cfg["downscale"]["split"]["kinds"])


def _downscale_days(cfg: dict, region: str) -> list[str]:
    from lstfill.downscale.targets import days_of

    info = Path(
        layout.DS_SAMPLES_INFO.format(region=region, key=layout.downscale_samples_key(cfg, region))
    )
    if not info.is_file():
        raise LstfillError(f"{info}: no samples yet; run `lstfill downscale samples` first")
    return days_of(info)


def _region_jobs(cfg: dict, region: str) -> list[str]:
    from lstfill.report_tables import region_jobs

    return region_jobs(read_region_inventory(cfg, region), cfg["fusion"]["coarse"])


def _metric_jobs(cfg: dict, region: str) -> list[str]:
    from lstfill.report_tables import evaluated_jobs

    inv = read_region_inventory(cfg, region)
    return evaluated_jobs(cfg["regions"][region], inv, cfg["fusion"]["coarse"])


STEPS: dict[str, dict[str, Step]] = {
    "demo": {
        "region": Step("demo_region", layout.RAW_DIR, "synthesise a demo region's raw files"),
        "israel": Step(
            "demo_israel",
            layout.DS_DEMO_LST,
            "synthesise a demo downscaling region",
            downscale=True,
        ),
    },
    "acquire": {
        "raw": Step("acquire_raw", layout.INVENTORY, "list a region's raw files (its inventory)"),
    },
    "prepare": {
        "static": Step("prepare_static", layout.STATIC, "DEM, slope, aspect and land cover"),
        "s2-grid": Step(
            "prepare_s2_grid", layout.S2_GRID, "a Sentinel-2 scene on the grid", "scene", _scenes
        ),
        "cube": Step(
            "prepare_cube", layout.CUBE, "one acquisition's datacube", "acquisition", _acquisitions
        ),
    },
    "gapfill": {
        "dataset": Step("gapfill_dataset", layout.GAPFILL_DATASET, "patches and the split"),
        "train": Step("gapfill_train", layout.GAPFILL_MODEL, "train a method", "method", _methods),
        "select": Step("gapfill_select", layout.GAPFILL_SELECTION, "pick the product's method"),
        "predict": Step(
            "gapfill_predict", layout.GAPFILL_PRODUCT, "filled COGs", "acquisition", _acquisitions
        ),
        "evaluate": Step("gapfill_evaluate", layout.GAPFILL_METRICS, "artificial-gap evaluation"),
    },
    "superres": {
        "scene": Step("superres_scene", layout.SR_SCENE, "a MODIS day's scene", "day", _modis_days),
        "dataset": Step("superres_dataset", layout.SR_DATASET, "patches and the day split"),
        "train": Step("superres_train", layout.SR_MODEL, "train a variant", "variant", _variants),
        "predict": Step(
            "superres_predict", layout.SR_PRODUCT, "sharpened COGs", "day", _modis_days
        ),
        "evaluate": Step("superres_evaluate", layout.SR_METRICS, "evaluation against the truth"),
    },
    "downscale": {
        "dem": Step("downscale_dem", layout.DS_DEM, "the DEM on the LST grid", downscale=True),
        "samples": Step("downscale_samples", layout.DS_SAMPLES_INFO, "9x9 samples", downscale=True),
        "train": Step(
            "downscale_train", layout.DS_MODEL, "train a split's MLP", "split", _splits, True
        ),
        "predict": Step(
            "downscale_predict", layout.DS_PRODUCT, "downscaled maps", "day", _downscale_days, True
        ),
        "evaluate": Step("downscale_evaluate", layout.DS_METRICS, "evaluation", downscale=True),
        "runs": Step("downscale_runs", layout.DS_RUNS, "the runs table", downscale=True),
    },
    "fusion": {
        "coarse": Step("fusion_coarse", layout.FUSION_COARSE, "the daily coarse series"),
        "predict": Step(
            "fusion_predict", layout.FUSION_PRODUCT, "daily fused NDVI", "day", _fusion_days
        ),
        "evaluate": Step("fusion_evaluate", layout.FUSION_METRICS, "evaluation"),
    },
    "report": {
        "quicklook": Step(
            "report_quicklook", layout.QUICKLOOK, "a cube's PNG", "acquisition", _acquisitions
        ),
        "cubes": Step("report_cubes", layout.CUBE_TABLE, "the table of the region's cubes"),
        "metrics": Step(
            "report_metrics", layout.REPORT_METRICS, "a job's metric tables", "job", _metric_jobs
        ),
        "runs": Step("report_runs", layout.REPORT_RUNS, "the table of the region's trained models"),
        "downscale-metrics": Step(
            "report_metrics",
            layout.REPORT_METRICS.replace("{job}", "downscale"),
            "a downscaling region's metric tables",
            downscale=True,
        ),
        "downscale-runs": Step(
            "report_runs", layout.REPORT_RUNS, "a downscaling region's runs table", downscale=True
        ),
        "product": Step(
            "report_product",
            layout.REPORT_PRODUCT,
            "a job's product quicklook",
            "job",
            _region_jobs,
        ),
        "viewer": Step("report_viewer", layout.VIEWER, "the region's offline viewer"),
        "downscale-product": Step(
            "report_product",
            layout.REPORT_PRODUCT.replace("{job}", "downscale"),
            "a downscaling region's product quicklook",
            downscale=True,
        ),
        "downscale-viewer": Step(
            "report_viewer", layout.VIEWER, "a downscaling region's viewer", downscale=True
        ),
    },
}
# the command-line option that sets each wildcard
OPTIONS = {
    "acquisition": "date",
    "day": "date",
    "scene": "scene",
    "method": "method",
    "variant": "variant",
    "split": "split",
    "job": "of",  # --job would clash with the command's job
}


def pick_region(cfg: dict, name: str | None, downscale: bool) -> str:
    """The region named by --region (default: the config's only one), checked against the
    config."""
    regions = cfg["downscale"]["regions"] if downscale else cfg["regions"]
    where = "the config's " + ("downscale.regions" if downscale else "regions")
    if name is None:
        if len(regions) != 1:
            raise LstfillError(f"name the region with --region (have: {', '.join(regions)})")
        return next(iter(regions))
    layout.pick("region", name, regions, where)
    return name


def _date_value(text: str, wildcard: str) -> str:
    """--date as the wildcard wants it: an acquisition YYYYMMDDTHHMMSS, a day YYYYMMDD (also
    accepted as YYYY-MM-DD)."""
    if wildcard == "acquisition":
        if not re.fullmatch(r"\d{8}T\d{6}", text):
            raise LstfillError(f"--date {text!r}: an acquisition is YYYYMMDDTHHMMSS (UTC)")
        return text
    day = text.replace("-", "")
    try:
        dt.datetime.strptime(day, "%Y%m%d")
    except ValueError:
        raise LstfillError(f"--date {text!r}: a day is YYYYMMDD or YYYY-MM-DD") from None
    return day


def _check_in_period(cfg: dict, region: str, value: str) -> None:
    start, end = region_dates(cfg["regions"][region])
    day = dt.datetime.strptime(value[:8], "%Y%m%d").date()
    if not start <= day <= end:
        raise LstfillError(f"--date {value}: outside region {region}'s period {start}..{end}")


def step_targets(cfg: dict, job: str, step: str, args: argparse.Namespace) -> list[str]:
    """The output files whose rule is the step, for the region and the options given."""
    spec = STEPS[job][step]
    region = pick_region(cfg, args.region, spec.downscale)
    flag = OPTIONS.get(spec.option or "")
    given = getattr(args, flag, None) if flag else None
    if given is not None and flag == "date":
        given = _date_value(given, spec.option)
        if not spec.downscale:
            _check_in_period(cfg, region, given)
    if not spec.downscale and job not in ("demo", "acquire"):
        read_region_inventory(
            cfg, region
        )  # every later step reads it: say so if it is not there yet
    fields: dict[str, Any] = {"region": region}
    if "{key}" in spec.target:
        fields["key"] = layout.downscale_samples_key(cfg, region)
    if spec.option is None:
        return [spec.target.format(**fields)]
    every = spec.every(cfg, region) if spec.every else []
    if given is not None:
        layout.pick(spec.option, given, every, f"region {region}")
    values = every if given is None else [given]
    if not values:
        raise LstfillError(f"region {region} has no {spec.option} for `{job} {step}`")
    # the variant of a sharpened product is a second wildcard: every variant unless one is named
    variants = [args.variant] if getattr(args, "variant", None) else _variants(cfg, region)
    out = []
    for value in values:
        if "{variant}" in spec.target and spec.option != "variant":
            out += [
                spec.target.format(**fields, **{spec.option: value}, variant=v) for v in variants
            ]
        else:
            out.append(spec.target.format(**fields, **{spec.option: value}))
    return out


def snakemake_command(
    args: argparse.Namespace, rule: str, targets: Sequence[str], dry_run: bool = False
) -> list[str]:
    """The Snakemake command line that makes `targets` (with `dry_run`: lists the jobs)."""
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(args.cores or "all")]
    if not Path("Snakefile").is_file():  # a working directory of its own: this workflow's
        cmd += ["--snakefile", str(WORKFLOW / "Snakefile")]
    cmd += ["--configfile", str(args.config)]
    if args.profile:
        cmd += ["--profile", str(args.profile)]
    if args.force:
        cmd += ["--forcerun", rule]
    if dry_run:
        cmd += ["--dry-run", "--quiet", "rules"]
    return [*cmd, "--", *targets]


def job_counts(output: str) -> dict[str, int]:
    """Jobs per rule from the 'Job stats' table of a Snakemake (dry) run."""
    if "Job stats:" not in output:
        return {}
    table = output.split("Job stats:")[-1]
    found = re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)
    return {m[1]: int(m[2]) for m in found if m[1] != "total"}


def run_step(args: argparse.Namespace) -> None:
    """Run the step's rule for its targets, and no other rule: a step whose inputs another rule
    must first make (or remake) is refused, naming those rules."""
    cfg = load_config(args.config, plan=True)
    if args.out is not None:  # another project folder: its resources/, results/ and logs/
        args.config = args.config.resolve()
        args.profile = args.profile.resolve() if args.profile else None
        if not args.out.is_dir():
            raise LstfillError(f"--out {args.out}: no such folder")
        os.chdir(args.out)
    spec = STEPS[args.job][args.step]
    targets = step_targets(cfg, args.job, args.step, args)
    try:
        plan = subprocess.run(
            snakemake_command(args, spec.rule, targets, dry_run=True),
            capture_output=True,
            text=True,
            timeout=PLAN_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise LstfillError(
            f"Snakemake did not finish planning `{args.job} {args.step}` in {PLAN_TIMEOUT_S} s; "
            f"run `snakemake --dry-run {targets[0]}` to see why"
        ) from None
    text = plan.stdout + plan.stderr
    if plan.returncode != 0:
        raise LstfillError(_snakemake_problem(args, text, plan.returncode))
    others = {r: n for r, n in job_counts(text).items() if r != spec.rule}
    if others:
        jobs = ", ".join(f"{rule} ({n} job{'s' * (n > 1)})" for rule, n in others.items())
        raise LstfillError(
            f"`{args.job} {args.step}` needs other steps to run first: {jobs}; run them "
            f"(or `snakemake --cores all {targets[0]}` for all it needs)"
        )
    if args.dry_run:
        sys.stderr.write(text)
        return
    proc = subprocess.Popen(
        snakemake_command(args, spec.rule, targets),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stderr.write(line)
        lines.append(line)
    if proc.wait() != 0:
        raise LstfillError(_snakemake_problem(args, "".join(lines), proc.returncode))


def _snakemake_problem(args: argparse.Namespace, text: str, rc: int) -> str:
    """One line for Snakemake's failure: the missing inputs of the step, or where to look."""
    missing = re.search(
        r"Missing input files for rule (\S+):\s*\n(?:\s*affected files:\s*\n)?"
        r"((?:\s+\S+\n?)+)",
        text,
    )
    if missing:
        files = missing.group(2).split()
        return (
            f"`{args.job} {args.step}` needs {', '.join(files[:3])}"
            f"{f' and {len(files) - 3} more' if len(files) > 3 else ''}, which do not exist yet: "
            "run the steps before it (or `snakemake --cores all` for everything)"
        )
    error = re.search(r"^\s*(\w*(?:Error|Exception)\b.*)$", text, re.MULTILINE)
    detail = f": {error.group(1).strip()}" if error else ""
    where = "; see its log under logs/"
    return f"`{args.job} {args.step}` failed (Snakemake exit code {rc}){detail}{where}"
