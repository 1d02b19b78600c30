"""List every DQM file of one primary dataset and year (checkpoint discover)."""

from pathlib import Path

from dqmflow.discover import list_source, write_catalog
from dqmflow.scriptlog import setup

log = setup(snakemake)
pd, year = snakemake.wildcards.pd, int(snakemake.wildcards.year)
files = list_source(snakemake.params.source, pd, year, retries=snakemake.params.retries)
write_catalog(files, snakemake.output.catalog)
Path(snakemake.output.source).write_text(snakemake.params.source + "\n", encoding="utf-8")
log.info("%d files of %s %d found under %s", len(files), pd, year, snakemake.params.source)
if not files:
    log.warning(
        "no DQM file of %s %d under %s (expected Run%d/%s/R000NNNNxx/DQM_V*.root)",
        pd,
        year,
        snakemake.params.source,
        year,
        pd,
    )
