"""Snakemake adapter: the row files of a region's training runs -> runs.csv."""

from lstfill.logs import setup_logging
from lstfill.runs import collect_runs

setup_logging(snakemake.log[0])
collect_runs(snakemake.input.runs, snakemake.output.runs)
