"""Snakemake adapter: the S2 grids near {day} and the coarse series -> the day's fused COG."""

from lstfill.fusion.steps import predict
from lstfill.grid import Grid
from lstfill.inventory import read_inventory
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
inv = read_inventory(snakemake.input.inventory)
s2 = snakemake.params.sentinel2
predict(
    snakemake.wildcards.day,
    snakemake.input.s2,
    snakemake.input.coarse,
    Grid.from_dict(inv["grid"]),
    snakemake.params.fusion,
    s2["bands"],
    s2["min_clear_subpixels"],
    snakemake.output.product,
)
