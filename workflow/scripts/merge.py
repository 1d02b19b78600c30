"""Merge a primary dataset's shards into histograms.parquet (rule merge), and record what
selected them in selection.json (the markers of other selections are deleted)."""

from collections import defaultdict
from pathlib import Path

import pandas as pd

from dqmflow.merge import merge, read_histogram_metadata, write_selection_record
from dqmflow.names import HistogramName
from dqmflow.scriptlog import setup

log = setup(snakemake)
selection = snakemake.params.selection.value
by_subsystem = defaultdict(list)
for path in snakemake.input.manifests:
    by_subsystem[Path(path).parent.name].append(path)
report = merge(
    by_subsystem,
    [HistogramName.from_column(c) for c in snakemake.params.histograms],
    {int(run): label for run, label in selection["labels"].items()},
    snakemake.output.table,
    snakemake.output.report,
    extra_problems=selection["problems"],
    storage=dict(zip(snakemake.params.subsystems, snakemake.output.storage, strict=True)),
    entries=snakemake.output.entries,
    signatures={int(run): signature for run, signature in selection["signatures"].items()},
)
for status, count in report["status"].value_counts().items():
    log.warning("%d fetch report rows with status %s (see %s)", count, status, snakemake.output.report)
meta = read_histogram_metadata(snakemake.output.table)
for column in meta["never_read"]:
    log.error("histogram %r %s", column, meta["never_read_reasons"].get(column, "was not found in any file"))
write_selection_record(
    snakemake.output.record,
    snakemake.params.identity,
    histograms=snakemake.params.histograms,
    runs=pd.read_parquet(snakemake.output.table, columns=["run_number"])["run_number"].tolist(),
    keep_markers=snakemake.params.markers,
)
