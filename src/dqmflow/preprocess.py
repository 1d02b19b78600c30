"""From the run table and the histogram storage to model inputs: runs x histograms, cut and split.

* The run's split comes from the run table (:mod:`dqmflow.runtable`): decided once, the same for
  every histogram and algorithm.
* Normalisation: every histogram is scaled to unit area (AutoDQM_ML); an empty one stays zero.
* Per histogram, a run of the ``train`` split is fitted on only if its histogram was read and
  has at least ``min_entries`` entries (default 10,000). A train run whose histogram is below
  that is scored as ``test`` for that histogram: a single low or empty histogram in a full run is
  itself suspicious. Runs where the histogram could not be read are ``missing`` and get no score.
* A model keeps the training runs it was fitted on: runs added later (``frozen_training``) are
  scored out of sample (``test``) until the user asks to retrain.

This module reads parquet through :mod:`dqmflow.storage` and :mod:`dqmflow.runtable` only; it
never imports the fetch layer (uproot, awkward).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dqmflow.names import HistogramName
from dqmflow.runtable import SPLITS, RunTable, read_run_table
from dqmflow.storage import read_counts

__all__ = ["SPLITS", "Batch", "HistogramSet", "load_batch", "normalise"]


def normalise(counts: np.ndarray) -> np.ndarray:
    """Scale every histogram (first axis = runs) to unit area; empty histograms stay zero."""
    axes = tuple(range(1, counts.ndim))
    total = counts.sum(axis=axes, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts, dtype=np.float64), where=total > 0)


@dataclass(frozen=True)
class HistogramSet:
    """One histogram over many runs: raw ``counts`` (runs first), entries, labels and split."""

    name: HistogramName
    runs: np.ndarray
    years: np.ndarray
    labels: np.ndarray
    counts: np.ndarray  # (n_runs, nx) or (n_runs, nx, ny)
    entries: np.ndarray
    split: np.ndarray  # one of SPLITS per run, for this histogram
    edges: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return len(self.runs)

    @property
    def normalised(self) -> np.ndarray:
        return normalise(self.counts)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.counts.shape[1:])

    def subset(self, mask: np.ndarray) -> HistogramSet:
        return HistogramSet(
            self.name,
            self.runs[mask],
            self.years[mask],
            self.labels[mask],
            self.counts[mask],
            self.entries[mask],
            self.split[mask],
            self.edges,
        )

    @property
    def training(self) -> HistogramSet:
        return self.subset(self.split == "train")


@dataclass(frozen=True)
class Batch:
    """Runs x histograms: the rows of the run table and the histograms of one job.

    ``histograms`` holds one :class:`HistogramSet` per column, all over the same runs (in the
    run table's order), with the per-histogram split described in the module docstring. A
    histogram that no file contained is in ``never_read`` instead.
    """

    table: RunTable
    histograms: dict[str, HistogramSet]
    never_read: tuple[str, ...] = ()

    @property
    def runs(self) -> np.ndarray:
        return self.table.runs

    @property
    def columns(self) -> list[str]:
        return list(self.histograms)

    def __getitem__(self, column: str) -> HistogramSet:
        return self.histograms[column]


def histogram_split(
    run_split: np.ndarray,
    valid: np.ndarray,
    entries: np.ndarray,
    min_entries: float,
    fitted: np.ndarray | None = None,
) -> np.ndarray:
    """Split of every run for one histogram (see the module docstring); ``fitted``, if given,
    marks the runs a model was actually trained on (the rest of ``train`` becomes ``test``)."""
    split = np.asarray(run_split, dtype=object).copy()
    usable = valid & (np.nan_to_num(entries, nan=0.0) >= min_entries)
    split[(split == "train") & ~usable] = "test"
    if fitted is not None:
        split[(split == "train") & ~fitted] = "test"
    split[~valid] = "missing"
    return split.astype(str)


def load_batch(
    run_table: str | Path,
    storage: str | Path,
    columns: Sequence[str],
    *,
    min_entries: float = 10_000,
    frozen_training: Mapping[str, Collection[int]] | None = None,
    runs: Collection[int] | None = None,
) -> Batch:
    """Read ``columns`` (one subsystem's histograms) for every run of the run table (or only
    ``runs``, in the run table's order).

    ``frozen_training``, if given, maps a column to the runs its model was trained on: other runs
    of the ``train`` split (runs added since) are scored as ``test`` for that histogram.
    """
    table = read_run_table(run_table, columns)
    if runs is not None:
        table = table.subset(np.isin(table.runs, np.fromiter(runs, dtype=np.int64)))
    stored_runs, counts, info = read_counts(storage, columns, None if runs is None else table.runs.tolist())
    position = {int(r): i for i, r in enumerate(stored_runs)}
    rows = np.array([position.get(int(r), -1) for r in table.runs], dtype=np.int64)
    aligned = len(rows) == len(stored_runs) and bool(np.all(rows == np.arange(len(stored_runs))))
    histograms: dict[str, HistogramSet] = {}
    for column in columns:
        if column not in counts:
            continue
        stored, stored_valid = counts.pop(column)
        if aligned:  # the usual case: storage and run table hold the same runs in the same order
            values, valid = stored, stored_valid
        else:  # runs whose file could not be read are in the run table only
            present = rows >= 0
            values = np.zeros((len(rows), *info[column].shape))
            values[present] = stored[rows[present]]
            valid = np.zeros(len(rows), dtype=bool)
            valid[present] = stored_valid[rows[present]]
            del stored
        entries = np.where(valid, np.nan_to_num(table.entries[column], nan=0.0), 0.0)
        fitted = None
        if frozen_training is not None and column in frozen_training:
            frozen = {int(r) for r in frozen_training[column]}
            fitted = np.array([int(r) in frozen for r in table.runs], dtype=bool)
        histograms[column] = HistogramSet(
            name=HistogramName.from_column(column),
            runs=table.runs,
            years=table.years,
            labels=table.labels,
            counts=values,
            entries=entries,
            split=histogram_split(table.split, valid, entries, min_entries, fitted),
            edges=info[column].edges,
        )
    never_read = tuple(c for c in columns if c not in info)
    return Batch(table, histograms, never_read)
