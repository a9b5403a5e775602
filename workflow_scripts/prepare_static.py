"""Snakemake adapter: DEM, slope, aspect and land cover on the region grid."""

from lstfill.cube import build_static
from lstfill.grid import Grid
from lstfill.inventory import read_inventory
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
inv = read_inventory(snakemake.input.inventory)
build_static(inv, Grid.from_dict(inv["grid"]), snakemake.output.static, snakemake.params.tolerance)
