"""Run verdicts, summary tables and figures of a primary dataset (rule verdicts)."""

import pandas as pd

from dqmflow.assess import CHUNK_FILES, OUTPUTS, SUMMARY_FIGURES, Settings, assess_dataset, read_chunks, report_verdicts
from dqmflow.scriptlog import setup, timed

log = setup(snakemake)
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
    log.warning(problem)
