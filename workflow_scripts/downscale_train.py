"""Snakemake adapter: train the MLP of one split (resuming) and write the run's row."""

import torch

from lstfill.downscale.steps import train
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
train(
    snakemake.input.samples,
    snakemake.params.downscale,
    snakemake.wildcards.split,
    snakemake.output.model,
    snakemake.output.curve,
    snakemake.params.workdir,
    snakemake.output.run,
    run_name=f"{snakemake.wildcards.region}-{snakemake.wildcards.split}",
)
