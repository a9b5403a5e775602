"""Snakemake adapter: fill one acquisition's gaps and write the product COG."""

import torch

from lstfill.gapfill.steps import predict
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
predict(
    snakemake.input.cube,
    snakemake.input.model,
    snakemake.output.product,
    snakemake.params.chunk_rows,
    device=snakemake.params.device,
)
