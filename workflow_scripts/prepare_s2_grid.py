"""Snakemake adapter: one Sentinel-2 scene averaged onto the region grid from clear pixels."""

from lstfill.cube import build_s2_grid
from lstfill.grid import Grid
from lstfill.inventory import read_inventory
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
inv = read_inventory(snakemake.input.inventory)
s2 = snakemake.params.sentinel2
build_s2_grid(
    snakemake.input.scene,
    Grid.from_dict(inv["grid"]),
    s2["bands"],
    s2["scl_invalid"],
    snakemake.output.grid,
    snakemake.params.tolerance,
)
