"""Name the histograms of a chunk, once (rule chunk_histograms; see dqmflow.chunks)."""

from dqmflow.chunks import write_chunk_histograms
from dqmflow.scriptlog import setup

log = setup(snakemake)
write_chunk_histograms(snakemake.output.histograms, snakemake.params.histograms)
log.info("%d histograms", len(snakemake.params.histograms))
