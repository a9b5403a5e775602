"""Snakemake adapter: a job's product quicklook (input beside product) for the report."""

from lstfill.logs import setup_logging
from lstfill.viewer.quicklook import plot_product
from lstfill.viewer.steps import job_views

setup_logging(snakemake.log[0])
(view,) = job_views(dict(snakemake.input), snakemake.params.settings)
plot_product(view, snakemake.output.png)
