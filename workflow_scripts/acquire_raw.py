"""Snakemake adapter: get the region's raw files (demo or local) and write their inventory."""

from lstfill.acquire import acquire
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
acquire(
    snakemake.wildcards.region,
    snakemake.params.region_cfg,
    snakemake.params.region_dir,
    snakemake.output.inventory,
)
