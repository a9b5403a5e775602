"""Snakemake adapter: a job's metrics.json -> the report's HTML tables and their long CSV."""

from lstfill.logs import setup_logging
from lstfill.report_tables import write_job_metrics

setup_logging(snakemake.log[0])
write_job_metrics(
    snakemake.wildcards.job,
    snakemake.wildcards.region,
    snakemake.input.metrics,
    snakemake.output.html,
    snakemake.output.csv,
)
