"""Snakemake adapter: one day's MOD11A1 and MOD09GQ granules -> a MODIS day scene NetCDF."""

from lstfill.logs import setup_logging
from lstfill.superres.steps import scene

setup_logging(snakemake.log[0])
scene(
    snakemake.input.MOD11A1,
    snakemake.input.MOD09GQ,
    snakemake.params.superres,
    snakemake.output.scene,
)
