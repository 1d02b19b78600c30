"""Run verdicts, summary tables and figures of a primary dataset (rule verdicts)."""

import logging

import pandas as pd

from dqmflow.assess import CHUNK_FILES, OUTPUTS, SUMMARY_FIGURES, Settings, assess_dataset, read_chunks, report_verdicts
from dqmflow.scriptlog import PROGRESS, setup, timed
from dqmflow.verdicts import failed_algorithms

log = setup(snakemake)
terminal = logging.getLogger(PROGRESS)
settings = Settings.from_mapping(snakemake.params.settings)
chunks = read_chunks({name: snakemake.input[name] for name in CHUNK_FILES})
with timed(log):
    verdicts = assess_dataset(
        chunks,
        {name: snakemake.output[name] for name in OUTPUTS},
        settings,
        figures={name: snakemake.output[f"{name}_plot"] for name in SUMMARY_FIGURES},
    )
report_verdicts(verdicts, pd.read_csv(snakemake.output.run_level), log.info)
for problem in verdicts.problems:
    terminal.warning("WARNING: %s", problem)
failed = failed_algorithms(verdicts.pvalues)
if failed:
    raise SystemExit(
        f"every model of algorithm config(s) {failed} failed: no score in any histogram of {snakemake.wildcards.pd} "
        f"(see logs/{snakemake.wildcards.pd}/train/ and the models' model.json); fix or remove the config"
    )
if verdicts.table["score"].isna().all():
    raise SystemExit(f"no run of {snakemake.wildcards.pd} got a verdict: no histogram has a usable p-value")
terminal.info(
    "%d of %d runs flagged (%s); see %s", int(verdicts.table["flagged"].sum()), len(verdicts.table),
    verdicts.combiner, snakemake.output.verdicts,
)  # fmt: skip
