"""Snakemake adapter: PNG quicklook of one cube."""

from lstfill.logs import setup_logging
from lstfill.quicklook import plot_quicklook

setup_logging(snakemake.log[0])
plot_quicklook(snakemake.input.cube, snakemake.output.png)
