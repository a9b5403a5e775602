"""Snakemake adapter: block-average the DEM onto the yearly files' LST grid."""

from lstfill.downscale.jobs import align_dem
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
align_dem(list(snakemake.input.lst), list(snakemake.input.dem), snakemake.output.dem)
