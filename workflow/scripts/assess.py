"""Assess one algorithm config over all histograms (rule assess)."""

from pathlib import Path

import pandas as pd

from dqmflow.algorithms import load_config
from dqmflow.assess import assess_algorithm
from dqmflow.scores import read_scores
from dqmflow.scriptlog import setup

log = setup(snakemake)
settings = snakemake.params.settings
config = load_config(snakemake.input.config)
metrics = assess_algorithm(
    pd.concat([read_scores(path) for path in snakemake.input.scores], ignore_index=True),
    snakemake.wildcards.algo,
    Path(snakemake.output.metrics).parent,
    snakemake.output.plots,
    reco_files=snakemake.input.reco,
    n_bootstrap=settings["n_bootstrap"],
    efficiencies=settings["efficiencies"],
    n_example_runs=settings["n_example_runs"],
    alpha=settings["alpha"],
    reco_label=config.cls.reconstruction_label,
)
log.info("mean AUC over histograms: %.3f", metrics["auc"].mean())
