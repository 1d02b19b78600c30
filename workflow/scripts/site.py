"""The browsable, searchable web page of a primary dataset (rule site)."""

from pathlib import Path

import pandas as pd

from dqmflow.assess import CHUNK_FILES, SUMMARY_FIGURES, read_chunks, write_site
from dqmflow.scriptlog import setup, timed
from dqmflow.site import read_run_problems

log = setup(snakemake)
chunks = read_chunks({name: snakemake.input[name] for name in CHUNK_FILES})
verdicts = pd.read_csv(snakemake.input.verdicts)
verdicts["histograms"] = verdicts["histograms"].fillna("")
with timed(log):
    index = write_site(
        snakemake.output.site,
        verdicts,
        chunks,
        snakemake.input.plots,
        title=f"dqmflow: {snakemake.wildcards.pd}",
        summary_figures={name: snakemake.input[f"{name}_plot"] for name in SUMMARY_FIGURES},
        tables={
            name: snakemake.input[key]
            for name, key in (
                ("verdicts", "verdicts"),
                ("run_level_auc", "summary_run_level"),
                ("metrics", "summary_metrics"),
                ("false_alarm_tex", "summary_false_alarm"),
                ("top_runs", "summary_top_runs"),
            )
        },
        problems=Path(snakemake.input.problems).read_text().splitlines(),
        run_problems=read_run_problems(snakemake.input.fetch_report),
    )
log.info("web page written: %s", index)
