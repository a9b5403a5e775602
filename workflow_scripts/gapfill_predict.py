"""Snakemake adapter: fill one acquisition's gaps with the selected method and write the
product COG."""

import torch

from lstfill.gapfill.steps import predict_selected
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
predict_selected(
    snakemake.input.cube,
    list(snakemake.input.models),
    snakemake.input.selection,
    snakemake.output.product,
    list(snakemake.input.history),
    snakemake.params.chunk_rows,
    device=snakemake.params.device,
)
