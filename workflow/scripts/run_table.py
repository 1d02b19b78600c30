"""Decide every run's split once, for all histograms and algorithms (rule run_table)."""

from collections import Counter

from dqmflow.runtable import build_run_table
from dqmflow.scriptlog import setup

log = setup(snakemake)
prep = snakemake.params.preprocessing
table = build_run_table(
    snakemake.input.entries,
    snakemake.output.runs,
    min_entries=prep["min_entries"],
    train_fraction=prep["train_fraction"],
    calibration_fraction=prep["calibration_fraction"],
    seed=prep["seed"],
)
log.info("%d runs: %s", table.num_rows, dict(Counter(table["split"].to_pylist())))
