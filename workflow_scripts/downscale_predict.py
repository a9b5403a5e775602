"""Snakemake adapter: the downscaled map (9x9 mean + predicted deviation) of one day."""

import torch

from lstfill.downscale.steps import predict
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
predict(
    list(snakemake.input.lst),
    snakemake.input.dem,
    snakemake.input.model,
    snakemake.wildcards.day,
    snakemake.params.qa_strict,
    snakemake.output.product,
    device=snakemake.params.device,
)
