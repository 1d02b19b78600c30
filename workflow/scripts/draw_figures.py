"""The figures a chunk's assessment planned (rule draw_figures): charts written, PNGs drawn or, when
unchanged, copied from the cache."""

from dqmflow.assess import draw_figures
from dqmflow.scriptlog import setup, timed

log = setup(snakemake)
with timed(log):  # logs the figures drawn, copied from the cache, and the charts written
    draw_figures(snakemake.input.plan, snakemake.output.plots, snakemake.params.figure_cache)
