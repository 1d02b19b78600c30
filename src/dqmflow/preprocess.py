"""From the merged table to model inputs: one histogram's runs, normalised, cut and split.

* Normalisation: every histogram is scaled to unit area (AutoDQM_ML); an empty one stays zero.
* Low statistics: a histogram with fewer entries than ``min_entries`` (default 10,000) is never
  used for training. A *run* is marked ``low_stats`` (scored, but left out of the metrics) when
  most of its histograms are below ``min_entries``: a short run. A single low or empty histogram
  in a run with enough statistics is itself suspicious, so that run stays in the test split.
* Split: a run's split is drawn from a hash of (seed, run number), so it never changes when
  other runs are added or removed. Runs labelled bad are never in ``train``.
* Runs where the histogram could not be read are marked ``missing`` and get no score.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dqmflow.metadata import BAD
from dqmflow.names import HistogramName

__all__ = ["SPLITS", "HistogramSet", "assign_split", "load_histogram", "normalise"]

SPLITS = ("train", "test", "low_stats", "missing")


def assign_split(run: int, seed: int, train_fraction: float) -> str:
    """``'train'`` or ``'test'`` for ``run``, stable under adding or removing other runs."""
    digest = hashlib.blake2b(f"{seed}:{run}".encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2**64
    return "train" if u < train_fraction else "test"


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
    split: np.ndarray  # one of SPLITS per run
    edges: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return len(self.runs)

    @property
    def normalised(self) -> np.ndarray:
        return normalise(self.counts)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.counts.shape[1:]

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

    @property
    def scorable(self) -> HistogramSet:
        return self.subset(self.split != "missing")


def _to_numpy(column: pa.ChunkedArray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    arr = column.combine_chunks()
    valid = ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    flat = arr
    for _ in shape:
        flat = flat.flatten()
    values = np.asarray(flat.to_numpy(zero_copy_only=False), dtype=np.float64)
    out = np.zeros((len(arr), *shape))
    out[valid] = values.reshape((int(valid.sum()), *shape))
    return out, valid


def short_runs(table: pa.Table, entry_columns: list[str], min_entries: float) -> np.ndarray:
    """Runs where most of the histograms read have fewer than ``min_entries`` entries."""
    entries = np.column_stack([table[c].to_numpy(zero_copy_only=False) for c in entry_columns])
    read = ~np.isnan(entries)
    low = (entries < min_entries) & read
    return low.sum(axis=1) * 2 > np.maximum(read.sum(axis=1), 1)


def load_histogram(
    table_path: str | Path,
    name: HistogramName,
    *,
    min_entries: float = 10_000,
    train_fraction: float = 0.5,
    seed: int = 0,
) -> HistogramSet:
    """Read one histogram of the merged table and assign every run's split."""
    from dqmflow.merge import read_histogram_metadata

    meta = read_histogram_metadata(table_path)["histograms"]
    if name.column not in meta:
        raise KeyError(f"histogram {name.column!r} was not read from any file of {table_path}")
    info = meta[name.column]
    shape = tuple(info["shape"])
    entry_columns = [f"{column}_entries" for column in meta]
    table = pq.read_table(table_path, columns=["run_number", "year", "label", name.column, *entry_columns])
    counts, valid = _to_numpy(table[name.column], shape)
    runs = table["run_number"].to_numpy()
    labels = table["label"].to_numpy()
    entries = np.nan_to_num(table[f"{name.column}_entries"].to_numpy(zero_copy_only=False), nan=0.0)
    split = np.array([assign_split(int(r), seed, train_fraction) for r in runs], dtype=object)
    split[((labels == BAD) | (entries < min_entries)) & (split == "train")] = "test"
    split[short_runs(table, entry_columns, min_entries)] = "low_stats"
    split[~valid] = "missing"
    return HistogramSet(
        name=name,
        runs=runs,
        years=table["year"].to_numpy(),
        labels=labels,
        counts=counts,
        entries=entries,
        split=split.astype(str),
        edges=tuple(np.asarray(e) for e in info["edges"]),
    )
