"""Snakemake adapter: fetch one source's files for one region and day, then write the manifest."""

import datetime as dt

from lstfill.download.base import Area
from lstfill.download.jobs import run_download, write_manifest
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
source = snakemake.params.source
region = snakemake.wildcards.region
day = (
    dt.datetime.strptime(snakemake.wildcards.day, "%Y%m%d").date()
    if "day" in snakemake.wildcards.keys()
    else None
)
refs, paths = run_download(
    source,
    Area.from_config(region, snakemake.params.region_cfg),
    day,
    day,
    snakemake.params.settings,
    snakemake.params.raw_dir,
)
write_manifest(snakemake.output.manifest, source, region, day, refs, paths)
