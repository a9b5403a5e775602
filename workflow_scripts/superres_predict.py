"""Snakemake adapter: sharpen one MODIS day scene to a 250 m COG."""

import torch

from lstfill.logs import setup_logging
from lstfill.superres.jobs import write_product

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
write_product(
    snakemake.input.scene,
    snakemake.input.model,
    snakemake.output.product,
    device=snakemake.params.device,
)
