"""Snakemake adapter: write the synthetic Israel-format region (yearly LST file and DEM)."""

from lstfill.demo.israel import write_demo_region
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
write_demo_region(snakemake.output.lst, snakemake.output.dem, snakemake.params.demo)
