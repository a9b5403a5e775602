"""Snakemake adapter: every SIF-NN-SR variant and baseline against the demo's fine truth."""

import torch

from lstfill.logs import setup_logging
from lstfill.superres.steps import evaluate

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
evaluate(
    list(snakemake.input.scenes),
    list(snakemake.input.truth),
    snakemake.input.split,
    dict(zip(snakemake.params.variants, snakemake.input.models, strict=True)),
    snakemake.params.superres,
    snakemake.output.metrics,
    snakemake.output.figure,
)
