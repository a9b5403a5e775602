"""Snakemake adapter: train one SIF-NN-SR variant (resuming from its work folder)."""

import torch

from lstfill.logs import setup_logging
from lstfill.superres.steps import train

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
train(
    snakemake.input.dataset,
    snakemake.params.superres,
    snakemake.wildcards.variant,
    snakemake.output.model,
    snakemake.output.curve,
    snakemake.params.workdir,
)
