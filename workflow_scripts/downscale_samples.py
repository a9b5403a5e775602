"""Snakemake adapter: the 9x9 window samples of the selected days and bands, and their summary."""

from lstfill.downscale.steps import samples
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
samples(
    list(snakemake.input.lst),
    snakemake.input.dem,
    snakemake.params.downscale,
    snakemake.output.samples,
    snakemake.output.info,
)
