"""Fetch one run range of one subsystem into per-run shards (rule fetch)."""

from pathlib import Path

from dqmflow.discover import DqmFile
from dqmflow.fetch import fetch_batch
from dqmflow.names import HistogramName
from dqmflow.scriptlog import setup

log = setup(snakemake)
settings = snakemake.params.settings
manifest = Path(snakemake.output.manifest)
stats = fetch_batch(
    [DqmFile(**f) for f in snakemake.params.files.value],
    [HistogramName.from_column(c) for c in snakemake.params.histograms],
    shard_dir=manifest.with_suffix(""),
    manifest=manifest,
    reuse=settings["reuse_shards"],
    on_error=settings["on_error"],
    retries=settings["retries"],
    max_host_failures=settings["max_host_failures"],
)
log.info(
    "%d files: %d read, %d reused, %d failed in %.1f s",
    stats.files,
    stats.files - stats.reused - stats.failed,
    stats.reused,
    stats.failed,
    stats.seconds,
)
