"""Snakemake adapter: the region's Sentinel-3 or MOD09GQ files -> the coarse series NetCDF."""

from lstfill.fusion.steps import coarse
from lstfill.grid import Grid
from lstfill.inventory import read_inventory
from lstfill.logs import setup_logging

setup_logging(snakemake.log[0])
inv = read_inventory(snakemake.input.inventory)
coarse(
    snakemake.params.fusion["coarse"],
    snakemake.input.files,
    Grid.from_dict(inv["grid"]),
    snakemake.params.fusion["ratio"],
    snakemake.params.bands,
    snakemake.output.coarse,
)
