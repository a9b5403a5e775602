"""The `lstfill` command: every step of the workflow, for every job, by the same flags.

`lstfill <job> <step> --region R [--date D]` runs that one rule of the workflow for the region (one
date, or every date of the region), through Snakemake and nothing else: the same workflow
script, log, benchmark file and outputs as in a full run, and no other rule (the step's inputs
must exist; the error names the step that makes a missing one). `--profile profiles/slurm` sends
it to the cluster. `check-config`, `download` and `inventory` work on the config and the raw files
directly.

Every user error (config, region, date, missing input) is one line and exit code 2; a traceback
appears only for a bug, or for any error with `--debug`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from lstfill import layout
from lstfill.commands import OPTIONS, STEPS, pick_region, read_region_inventory, run_step
from lstfill.config import load_config, region_dates
from lstfill.errors import LstfillError
from lstfill.logs import DEBUG_ENV, USER_ERROR, setup_logging
from lstfill.stops import Stopped, exit_for


def cmd_check_config(args: argparse.Namespace) -> None:
    from lstfill.grid import grid_from_config

    cfg = load_config(args.config, plan=True)
    for name, region in cfg["regions"].items():
        grid = grid_from_config(region["grid"])
        fetched = ""
        if region["source"] == "download":
            fetched = f" fetching {', '.join(region['download']['sources'])}"
        print(
            f"{name}: source={region['source']}{fetched} {region['start']}..{region['end']} "
            f"grid {grid.crs} {grid.width}x{grid.height} @ {grid.res[0]:g}"
        )
    for name, region in cfg["downscale"]["regions"].items():
        files = "" if region["source"] == "demo" else f" lst {region['lst_files']}"
        print(f"{name}: downscaling, source={region['source']}{files}")
    print("config OK")


def _date_range(text: str) -> tuple[dt.date, dt.date]:
    """ "2023-07-01" or "2023-07-01..2023-07-05" as (start, end), inclusive."""
    first, _, last = text.partition("..")
    try:
        start = dt.date.fromisoformat(first)
        end = dt.date.fromisoformat(last) if last else start
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"not a date or range: {text!r} (YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD)"
        ) from exc
    if end < start:
        raise argparse.ArgumentTypeError(f"range ends before it starts: {text!r}")
    return start, end


def cmd_download(args: argparse.Namespace) -> None:
    """Search (and unless --dry-run fetch) one region's files outside Snakemake."""
    from lstfill.download import jobs, targets
    from lstfill.download.base import Area

    cfg = load_config(args.config)
    args.region = pick_region(cfg, args.region, downscale=False)
    region = cfg["regions"][args.region]
    sources = args.source or region.get("download", {}).get("sources", list(targets.SOURCES))
    period = region_dates(region)
    start, end = args.dates or period
    if start < period[0] or end > period[1]:
        raise LstfillError(
            f"--dates {start}..{end}: outside region {args.region}'s period "
            f"{period[0]}..{period[1]}"
        )
    area = Area.from_config(args.region, region)
    out = args.out or Path(layout.RAW_DIR.format(region=args.region))
    for source in sources:
        dated = source in targets.DATED
        refs, paths = jobs.run_download(
            source,
            area,
            start if dated else None,
            end if dated else None,
            targets.provider_settings(source, region, cfg),
            out,
            dry_run=args.dry_run,
            secrets=args.secrets,
        )
        print(f"# {source}: {args.region} {start}..{end}" if dated else f"# {source}")
        print(jobs.describe(refs) if args.dry_run else f"{len(paths)} files in place")


def cmd_inventory(args: argparse.Namespace) -> None:
    cfg = load_config(args.config)
    inv = read_region_inventory(cfg, pick_region(cfg, args.region, downscale=False))
    print(
        json.dumps(
            {k: len(v) if isinstance(v, dict | list) else v for k, v in inv.items()}, indent=1
        )
    )


def _add_common(parser: argparse.ArgumentParser) -> None:
    """The flags every subcommand has, by the same names (given before or after it)."""
    parser.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help="workflow config (default: config/config.yaml)",
    )
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="tracebacks for every error"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstfill", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=Path("config/config.yaml"),
        help="workflow config (default: config/config.yaml)",
    )
    parser.add_argument("--debug", action="store_true", help="tracebacks for every error")
    parser.add_argument("--log", default=None, help="also write the log to this file")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("check-config", help="validate the config and print each region")
    _add_common(s)
    s.set_defaults(func=cmd_check_config)

    s = sub.add_parser(
        "download",
        help="search and fetch a region's provider files (rules download_*) for a date range",
        description="Search each source's catalogue for the region and dates and fetch the "
        "files into resources/<region>/raw/<source>/ (complete files are skipped, partial ones "
        "resumed). Credentials: see the README, 'Running a real region'.",
    )
    _add_common(s)
    s.add_argument("--region", help="region of the config (default: its only region)")
    s.add_argument(
        "--source",
        nargs="+",
        choices=["ecostress", "sentinel2", "inca", "srtm", "modis", "sentinel3"],
        help="sources to fetch (default: the region's download.sources)",
    )
    s.add_argument(
        "--dates",
        type=_date_range,
        help="YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD inside the period (default: the period)",
    )
    s.add_argument("--dry-run", action="store_true", help="search only: list what would be fetched")
    s.add_argument(
        "--secrets",
        type=Path,
        help="secrets file (default: $LSTFILL_SECRETS or config/secrets.ini)",
    )
    s.add_argument(
        "--out",
        "--dest",
        dest="out",
        type=Path,
        help="raw folder (default: resources/<region>/raw)",
    )
    s.set_defaults(func=cmd_download)

    s = sub.add_parser("inventory", help="summarise a region's inventory")
    _add_common(s)
    s.add_argument("--region", help="region of the config (default: its only region)")
    s.set_defaults(func=cmd_inventory)

    for job, steps in STEPS.items():
        j = sub.add_parser(job, help=f"the {job} steps: {', '.join(steps)}")
        jsub = j.add_subparsers(dest="step", required=True, metavar="STEP")
        for name, spec in steps.items():
            s = jsub.add_parser(name, help=f"rule {spec.rule}: {spec.help}")
            _add_common(s)
            s.add_argument("--region", help="region of the config (default: its only region)")
            if spec.option is not None or "{variant}" in spec.target:
                flag = OPTIONS[spec.option] if spec.option else "variant"
                s.add_argument(f"--{flag}", help=f"one {spec.option or flag} (default: every one)")
            if "{variant}" in spec.target and spec.option != "variant":
                s.add_argument("--variant", help="one variant (default: every one)")
            s.add_argument("--cores", type=int, help="cores for Snakemake (default: all)")
            s.add_argument("--profile", type=Path, help="Snakemake profile (profiles/slurm)")
            s.add_argument("--force", action="store_true", help="run even if up to date")
            s.add_argument("--dry-run", action="store_true", help="show the jobs only")
            s.add_argument(
                "--out",
                type=Path,
                help="the folder whose resources/, results/ and logs/ the step reads and "
                "writes (default: the current one)",
            )
            s.set_defaults(func=run_step, job=job, step=name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.debug:
        os.environ[DEBUG_ENV] = "1"
    setup_logging(args.log)
    try:
        args.func(args)
    except Stopped as stop:
        exit_for(stop)
    except LstfillError as exc:
        if args.debug:
            raise
        print(f"lstfill: error: {exc}", file=sys.stderr)
        return USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
