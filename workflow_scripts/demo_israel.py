"""Snakemake adapter: write the synthetic Israel-format region (yearly LST file and DEM)."""

from lstfill.demo.israel import write_israel_region
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
write_israel_region(snakemake.params.demo, snakemake.output.lst, snakemake.output.dem)
