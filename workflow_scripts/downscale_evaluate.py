"""Snakemake adapter: each split's MLP against predict-0, permutation importance, the figure."""

import torch

from lstfill.downscale.steps import evaluate
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
models = dict(zip(snakemake.params.kinds, snakemake.input.models, strict=True))
evaluate(
    snakemake.input.samples,
    models,
    snakemake.params.downscale,
    snakemake.output.metrics,
    snakemake.output.figure,
)
