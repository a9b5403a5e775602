"""Snakemake adapter: artificial-gap evaluation of every gap-fill method and baseline."""

import torch

from lstfill.gapfill.steps import evaluate
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
evaluate(
    list(snakemake.input.cubes),
    list(snakemake.input.models),
    snakemake.input.split,
    snakemake.params.gapfill,
    snakemake.output.metrics,
    snakemake.output.figure,
    threads=snakemake.threads,
    selection=snakemake.input.selection,
)
