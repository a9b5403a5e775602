"""Snakemake adapter: write the synthetic Israel-format region (yearly LST file and DEM)."""

from lstfill.logs import setup_logging
from lstfill.sources.demo_israel import write_demo_region

setup_logging(snakemake.log[0])
write_demo_region(snakemake.output.lst, snakemake.output.dem, snakemake.params.demo)
