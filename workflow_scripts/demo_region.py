"""Snakemake adapter: write the synthetic demo region's raw files and its truth."""

from lstfill.demo.region import write_region
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
write_region(snakemake.params.region_cfg, snakemake.output.raw, snakemake.output.truth)
