"""Concatenate all score files of a primary dataset (rule collect_scores)."""

from dqmflow.models import collect_scores
from dqmflow.scriptlog import setup

log = setup(snakemake)
table = collect_scores(snakemake.input.scores, snakemake.output.scores)
log.info("%d scores written to %s", table.num_rows, snakemake.output.scores)
