"""Train one algorithm config on every histogram of a chunk (rules train_<CHUNK>)."""

from dqmflow.algorithms import load_config
from dqmflow.chunks import read_chunk_histograms, write_model_manifest
from dqmflow.models import Preprocessing, train_chunk
from dqmflow.scriptlog import setup, timed

log = setup(snakemake)
columns = read_chunk_histograms(snakemake.input.histograms, len(snakemake.output.models))
models = dict(zip(columns, snakemake.output.models, strict=True))
with timed(log):
    infos = train_chunk(
        snakemake.input.runs,
        snakemake.input.storage,
        load_config(snakemake.input.config),
        Preprocessing(**snakemake.params.preprocessing),
        models,
        snakemake.params.record,
        snakemake.params.training,
    )
write_model_manifest(snakemake.output.manifest, models)
failed = [column for column, info in infos.items() if info["status"] != "trained"]
log.info("%d of %d histograms trained [%s]", len(infos) - len(failed), len(infos), snakemake.wildcards.algo)
