"""Score every run with the trained models of a chunk (rules score_<CHUNK>)."""

import numpy as np

from dqmflow.algorithms import load_config
from dqmflow.chunks import read_model_manifest
from dqmflow.models import Preprocessing, score_chunk
from dqmflow.scriptlog import setup, timed

log = setup(snakemake)
models = read_model_manifest(snakemake.input.models, len(snakemake.output.scores))
columns = list(models)
settings = snakemake.params.reconstructions
with timed(log):
    result = score_chunk(
        snakemake.input.runs,
        snakemake.input.storage,
        load_config(snakemake.input.config),
        Preprocessing(**snakemake.params.preprocessing),
        models,
        dict(zip(columns, snakemake.output.scores, strict=True)),
        dict(zip(columns, snakemake.output.reco, strict=True)),
        n_reconstructed=settings["n_reconstructed"],
        reco_runs=settings["reco_runs"],
        record=snakemake.params.record,
        cache=snakemake.params.cache,
    )
scores = result.table["score"].to_numpy()
splits = result.table["split"].value_counts().to_pylist()
log.info(
    "%d scores of %d histograms (%s); %d runs scored anew, the others reused",
    (~np.isnan(scores)).sum(),
    len(columns),
    {item["values"]: item["counts"] for item in splits},
    result.scored_runs,
)
