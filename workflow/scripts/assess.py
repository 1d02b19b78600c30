"""Assess one algorithm config over all histograms (rule assess)."""

from pathlib import Path

from dqmflow.algorithms import load_config
from dqmflow.assess import assess_algorithm
from dqmflow.scriptlog import setup

log = setup(snakemake)
settings = snakemake.params.settings
config = load_config(snakemake.input.config)
metrics = assess_algorithm(
    snakemake.input.scores,
    snakemake.wildcards.algo,
    snakemake.input.table,
    Path(snakemake.output.metrics).parent,
    snakemake.output.plots,
    n_bootstrap=settings["n_bootstrap"],
    efficiencies=settings["efficiencies"],
    n_example_runs=settings["n_example_runs"],
    alpha=settings["alpha"],
    reco_label=config.cls.reconstruction_label,
)
log.info("mean AUC over histograms: %.3f", metrics["auc"].mean())
