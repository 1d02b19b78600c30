"""Tables across algorithm configs (rule summary)."""

from pathlib import Path

from dqmflow.assess import summarise
from dqmflow.scriptlog import setup

log = setup(snakemake)
tags = [Path(p).parent.name for p in snakemake.input.metrics]
summarise(
    dict(zip(tags, snakemake.input.metrics, strict=True)),
    dict(zip(tags, snakemake.input.run_level, strict=True)),
    dict(zip(tags, snakemake.input.ranking, strict=True)),
    Path(snakemake.output.auc).parent,
)
log.info("summary of %d algorithm configs written", len(tags))
