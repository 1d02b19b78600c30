"""Score every run with one trained model (rule score)."""

from dqmflow.algorithms import load_config
from dqmflow.models import Preprocessing, score_model
from dqmflow.names import HistogramName
from dqmflow.scriptlog import setup

log = setup(snakemake)
frame = score_model(
    snakemake.input.table,
    HistogramName.from_column(snakemake.params.histogram),
    load_config(snakemake.input.config),
    Preprocessing(**snakemake.params.preprocessing),
    snakemake.input.model,
    snakemake.output.scores,
)
log.info("scored %d runs (%s)", frame["score"].notna().sum(), frame["split"].value_counts().to_dict())
