"""Snakemake adapter: train one gap-fill method (resuming from its work folder) and calibrate
its intervals."""

import torch

from lstfill.gapfill.steps import train
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
train(
    snakemake.input.get("dataset"),
    list(snakemake.input.cubes),
    snakemake.input.split,
    snakemake.params.gapfill,
    snakemake.output.model,
    snakemake.output.curve,
    snakemake.params.workdir,
    method=snakemake.wildcards.method,
)
