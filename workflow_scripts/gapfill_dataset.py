"""Snakemake adapter: the gap-fill patch dataset and the date/block split of a region."""

from lstfill.gapfill.steps import dataset
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
dataset(
    list(snakemake.input.cubes),
    snakemake.params.gapfill,
    snakemake.output.dataset,
    snakemake.output.split,
)
