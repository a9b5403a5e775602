"""The `lstfill` command: each subcommand calls the same function as the workflow rule of that name.

Paths default to the workflow's layout (resources/{region}/..., results/{region}/...), so a
step can be rerun by hand, outside Snakemake, with the same result.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from lstfill.config import load_config
from lstfill.errors import LstfillError
from lstfill.grid import Grid, grid_from_config
from lstfill.logs import setup_logging


def _paths(region: str) -> dict[str, Path]:
    return {
        "region_dir": Path("resources") / region,
        "inventory": Path("resources") / region / "inventory.json",
        "static": Path("results") / region / "cubes" / "static.nc",
        "cubes": Path("results") / region / "cubes",
    }


def _region(cfg: dict, name: str) -> dict:
    if name not in cfg["regions"]:
        raise LstfillError(
            f"region {name!r} is not in the config (have: {', '.join(cfg['regions'])})"
        )
    return cfg["regions"][name]


def cmd_check_config(args: argparse.Namespace) -> None:
    cfg = load_config(args.config)
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


def cmd_acquire(args: argparse.Namespace) -> None:
    from lstfill.acquire import acquire

    cfg = load_config(args.config)
    p = _paths(args.region)
    region = _region(cfg, args.region)
    if region["source"] == "demo":  # rule demo_region
        from lstfill.demo.region import write_region

        write_region(region, p["region_dir"] / "raw", p["region_dir"] / "truth")
    acquire(args.region, region, p["region_dir"], p["inventory"])


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
    from lstfill.config import region_dates
    from lstfill.download import jobs, targets
    from lstfill.download.base import Area

    cfg = load_config(args.config)
    if args.region is None:
        if len(cfg["regions"]) != 1:
            raise LstfillError(f"name the region with --region (have: {', '.join(cfg['regions'])})")
        args.region = next(iter(cfg["regions"]))
    region = _region(cfg, args.region)
    sources = args.source or region.get("download", {}).get("sources", list(targets.SOURCES))
    start, end = args.dates or region_dates(region)
    area = Area.from_config(args.region, region)
    for source in sources:
        dated = source in targets.DATED
        refs, paths = jobs.run_download(
            source,
            area,
            start if dated else None,
            end if dated else None,
            targets.provider_settings(source, region, cfg),
            args.dest or _paths(args.region)["region_dir"] / "raw",
            dry_run=args.dry_run,
            secrets=args.secrets,
        )
        print(f"# {source}: {args.region} {start}..{end}" if dated else f"# {source}")
        print(jobs.describe(refs) if args.dry_run else f"{len(paths)} files in place")


def cmd_static(args: argparse.Namespace) -> None:
    from lstfill.cube import build_static
    from lstfill.inventory import read_inventory

    p = _paths(args.region)
    inv = read_inventory(p["inventory"])
    build_static(inv, Grid.from_dict(inv["grid"]), args.out or p["static"])


def cmd_cube(args: argparse.Namespace) -> None:
    from lstfill.cube import build_cube, build_s2_grid
    from lstfill.inventory import (
        inca_files_for,
        parse_acquisition_id,
        read_inventory,
        s2_scenes_near,
    )

    cfg = load_config(args.config)
    p = _paths(args.region)
    inv = read_inventory(p["inventory"])
    grid = Grid.from_dict(inv["grid"])
    s2cfg = cfg["prepare"]["sentinel2"]
    time = parse_acquisition_id(args.date)
    s2_paths = []
    for scene in s2_scenes_near(inv, time, s2cfg["window_days"]):
        out = p["cubes"] / "sentinel2" / f"{scene}.nc"
        if not out.exists():
            build_s2_grid(
                inv["sentinel2"][scene]["folder"], grid, s2cfg["bands"], s2cfg["scl_invalid"], out
            )
        s2_paths.append(out)
    inca_paths = inca_files_for(inv, time, cfg["prepare"]["inca"]["cumulative_hours"])
    build_cube(
        args.date,
        inv,
        p["static"],
        s2_paths,
        inca_paths,
        cfg["prepare"],
        args.out or p["cubes"] / f"{args.date}.nc",
    )


def cmd_quicklook(args: argparse.Namespace) -> None:
    from lstfill.quicklook import plot_quicklook

    plot_quicklook(args.cube, args.png)


def cmd_inventory(args: argparse.Namespace) -> None:
    from lstfill.inventory import read_inventory

    inv = read_inventory(_paths(args.region)["inventory"])
    print(
        json.dumps(
            {k: len(v) if isinstance(v, dict | list) else v for k, v in inv.items()}, indent=1
        )
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lstfill", description=__doc__)
    parser.add_argument("--config", default="config/config.yaml", help="workflow config (YAML)")
    parser.add_argument("--log", default=None, help="also write the log to this file")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser(
        "check-config", help="validate the config and print each region's grid"
    ).set_defaults(func=cmd_check_config)
    s = sub.add_parser(
        "acquire", help="rules demo_region (a demo region) and acquire_raw: raw files, inventory"
    )
    s.add_argument("region")
    s.set_defaults(func=cmd_acquire)
    s = sub.add_parser(
        "download",
        help="rules download_*: search and fetch a region's provider files",
        description="Search each source's catalogue for the region and dates and fetch the "
        "files into resources/<region>/raw/<source>/ (complete files are skipped, partial ones "
        "resumed). Credentials: see the README, 'Running a real region'.",
    )
    s.add_argument("--config", default=argparse.SUPPRESS, help="workflow config (YAML)")
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
        help="YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD (default: the region's period)",
    )
    s.add_argument("--dry-run", action="store_true", help="search only: list what would be fetched")
    s.add_argument(
        "--secrets",
        type=Path,
        help="secrets file (default: $LSTFILL_SECRETS or config/secrets.ini)",
    )
    s.add_argument("--dest", type=Path, help="raw folder (default: resources/<region>/raw)")
    s.set_defaults(func=cmd_download)
    s = sub.add_parser("inventory", help="summarise a region's inventory")
    s.add_argument("region")
    s.set_defaults(func=cmd_inventory)
    s = sub.add_parser("static", help="rule prepare_static: DEM, slope, aspect, land cover")
    s.add_argument("region")
    s.add_argument("--out", type=Path)
    s.set_defaults(func=cmd_static)
    s = sub.add_parser("cube", help="rules prepare_s2_grid + prepare_cube for one acquisition")
    s.add_argument("region")
    s.add_argument("date", help="acquisition id YYYYMMDDTHHMMSS (UTC)")
    s.add_argument("--out", type=Path)
    s.set_defaults(func=cmd_cube)
    s = sub.add_parser("quicklook", help="rule report_quicklook: PNG of a cube")
    s.add_argument("cube", type=Path)
    s.add_argument("png", type=Path)
    s.set_defaults(func=cmd_quicklook)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log)
    try:
        args.func(args)
    except LstfillError as exc:
        print(f"lstfill: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
