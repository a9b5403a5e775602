"""Snakemake adapter: day split and clean patch pairs for super-resolution training."""

from lstfill.logs import setup_logging
from lstfill.superres.steps import dataset

setup_logging(snakemake.log[0])
dataset(
    list(snakemake.input.scenes),
    snakemake.params.superres,
    snakemake.output.dataset,
    snakemake.output.split,
)
