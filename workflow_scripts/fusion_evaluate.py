"""Snakemake adapter: withheld-scene evaluation of the fusion -> metrics.json and the figure."""

from lstfill.fusion.steps import evaluate
from lstfill.grid import Grid
from lstfill.inventory import read_inventory
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
inv = read_inventory(snakemake.input.inventory)
s2 = snakemake.params.sentinel2
evaluate(
    snakemake.input.s2,
    snakemake.input.coarse,
    Grid.from_dict(inv["grid"]),
    snakemake.params.fusion,
    s2["bands"],
    s2["min_clear_subpixels"],
    snakemake.params.period,
    snakemake.input.truth,
    snakemake.output.metrics,
    snakemake.output.figure,
)
