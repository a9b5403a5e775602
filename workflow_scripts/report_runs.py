"""Snakemake adapter: a region's checkpoints, gap-fill selection and metrics -> runs.csv (the
inputs a region lacks are absent)."""

from lstfill.logs import setup_logging
from lstfill.runs_table import region_runs, write_runs_csv

setup_logging(snakemake.log[0])
given = snakemake.input
rows = region_runs(
    gapfill_models=list(given.get("gapfill_models", [])),
    gapfill_selection=given.get("gapfill_selection"),
    gapfill_metrics=given.get("gapfill_metrics"),
    superres_models=list(given.get("superres_models", [])),
    superres_metrics=given.get("superres_metrics"),
    downscale_models=list(given.get("downscale_models", [])),
    downscale_metrics=given.get("downscale_metrics"),
)
write_runs_csv(rows, snakemake.output.runs)
