"""Snakemake adapter: score the trained gap-fill methods on the validation days and name the
product's method."""

import torch

from lstfill.gapfill.steps import select
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
select(
    list(snakemake.input.cubes),
    list(snakemake.input.models),
    snakemake.input.split,
    snakemake.params.gapfill,
    snakemake.output.selection,
    threads=snakemake.threads,
)
