"""Figures of merit, p-values and the figure plan of a chunk of histograms, all algorithms (rule
assess_histograms); rule draw_figures draws the figures."""

from dqmflow.assess import Settings, assess_histograms, write_chunk, write_figure_plan
from dqmflow.scores import concat_score_files
from dqmflow.scriptlog import setup, timed

log = setup(snakemake)
settings = Settings.from_mapping(snakemake.params.settings)
reco_files = {tuple(key): path for key, path in zip(snakemake.params.reco_keys, snakemake.input.reco, strict=True)}
with timed(log):
    scores = concat_score_files(snakemake.input.scores).to_pandas()
    result = assess_histograms(
        scores,
        None,
        settings,
        reco_files=reco_files,
        reco_labels=snakemake.params.reco_labels,
        n_histograms=snakemake.params.n_histograms,
        plan_figures=True,
    )
    write_chunk(result, snakemake.output)
    write_figure_plan(result.figure_plan, snakemake.output.figure_plan)
log.info(
    "%d histograms x %d algorithms assessed; %d figures of %d histograms to draw (plots: %s)",
    scores["histogram"].nunique(),
    scores["algorithm"].nunique(),
    len(result.figure_plan),
    result.figures["histogram"].nunique() if len(result.figures) else 0,
    settings.plots,
)
