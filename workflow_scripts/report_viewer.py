"""Snakemake adapter: the region's offline viewer (maps, series, metric tables, runs)."""

from lstfill.logs import setup_logging
from lstfill.viewer.steps import viewer

setup_logging(snakemake.log[0])
viewer(
    dict(snakemake.input),
    snakemake.params.settings,
    snakemake.wildcards.region,
    snakemake.output.html,
)
