"""Snakemake adapter: block-average the DEM onto the yearly files' LST grid."""

from lstfill.downscale.steps import dem
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
dem(list(snakemake.input.lst), list(snakemake.input.dem), snakemake.output.dem)
