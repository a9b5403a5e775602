"""Snakemake adapter: sharpen one MODIS day scene to a 250 m COG."""

import torch

from lstfill.logs import setup_logging
from lstfill.superres.steps import predict

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
predict(
    snakemake.input.scene,
    snakemake.input.model,
    snakemake.params.device,
    snakemake.output.product,
)
