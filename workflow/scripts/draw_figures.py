"""The figures a chunk's assessment planned (rule draw_figures), unchanged ones copied from the cache."""

from dqmflow.assess import draw_figures
from dqmflow.scriptlog import setup, timed

log = setup(snakemake)
with timed(log):
    drawn, copied = draw_figures(snakemake.input.plan, snakemake.output.plots, snakemake.params.figure_cache)
log.info("%d figures drawn, %d unchanged (copied from the cache)", drawn, copied)
