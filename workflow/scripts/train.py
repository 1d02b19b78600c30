"""Train one algorithm config on every histogram of a chunk (rules train_<CHUNK>)."""

from dqmflow.algorithms import load_config
from dqmflow.models import Preprocessing, train_chunk
from dqmflow.scriptlog import setup, timed

log = setup(snakemake)
with timed(log):
    infos = train_chunk(
        snakemake.input.runs,
        snakemake.input.storage,
        load_config(snakemake.input.config),
        Preprocessing(**snakemake.params.preprocessing),
        dict(zip(snakemake.params.histograms, snakemake.output.models, strict=True)),
        snakemake.params.record,
        snakemake.params.training,
    )
failed = [column for column, info in infos.items() if info["status"] != "trained"]
log.info("%d of %d histograms trained [%s]", len(infos) - len(failed), len(infos), snakemake.wildcards.algo)
