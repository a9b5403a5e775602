"""Snakemake adapter: table and figure of a region's cubes."""

from lstfill.logs import setup_logging
from lstfill.quicklook import summarise_cubes

setup_logging(snakemake.log[0])
summarise_cubes(list(snakemake.input.cubes), snakemake.output.table, snakemake.output.figure)
