"""Snakemake adapter: one acquisition's aligned datacube."""

from lstfill.cube import build_cube
from lstfill.inventory import read_inventory
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
build_cube(
    snakemake.wildcards.acquisition,
    read_inventory(snakemake.input.inventory),
    snakemake.input.static,
    list(snakemake.input.s2),
    list(snakemake.input.inca),
    snakemake.params.prepare,
    snakemake.output.cube,
)
