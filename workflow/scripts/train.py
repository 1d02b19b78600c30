"""Train one model for one histogram and algorithm config (rule train)."""

from dqmflow.algorithms import load_config
from dqmflow.models import Preprocessing, train_model
from dqmflow.names import HistogramName
from dqmflow.scriptlog import setup

log = setup(snakemake)
info = train_model(
    snakemake.input.table,
    HistogramName.from_column(snakemake.params.histogram),
    load_config(snakemake.input.config),
    Preprocessing(**snakemake.params.preprocessing),
    snakemake.output.model,
)
log.info("%s [%s]: %s", info["histogram"], info["tag"], info.get("status", "trained"))
