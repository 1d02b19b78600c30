"""The run table: one row per run of a primary dataset, with the split every model shares.

``merge`` writes ``entries.parquet`` (run, year, era, label, whether the file could be read, and
the entries of every histogram); :func:`build_run_table` adds the split and writes
``runs.parquet``. The split is decided here, once, for every histogram and algorithm:

* ``missing``: the run's file could not be read (nothing to score);
* ``low_stats``: a short run, where most of the histograms read have fewer than ``min_entries``
  entries; it is scored and reported, but left out of metrics and training;
* otherwise a number ``u`` in [0, 1) drawn from a hash of (seed, run number) decides:
  ``train`` if ``u < train_fraction``, ``calibration`` if ``u < train_fraction +
  calibration_fraction``, else ``test``. The split of a run therefore never changes when other
  runs are added or removed. Runs labelled bad never go to ``train`` or ``calibration``: they go
  to ``test``. ``calibration`` runs are good runs that no model trains on, so p-values computed
  against them are calibrated out of sample.

A histogram with fewer than ``min_entries`` entries in a run that is not short is not fitted on
(see :mod:`dqmflow.preprocess`): a single low or empty histogram in a full run is itself
suspicious, and that histogram's score of the run counts as out of sample.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dqmflow.arrowio import read_parquet

__all__ = [
    "BAD",
    "ENTRIES_SUFFIX",
    "NOT_REFERENCE",
    "SPLITS",
    "RunTable",
    "assign_split",
    "build_run_table",
    "read_run_table",
    "reference_mask",
    "runs_to_flag",
    "uniform",
]

SPLITS = ("train", "calibration", "test", "low_stats", "missing")
ENTRIES_SUFFIX = "_entries"
BAD = 1


def uniform(run: int, seed: int) -> float:
    """A number in [0, 1) that depends only on ``seed`` and ``run`` (BLAKE2b hash)."""
    digest = hashlib.blake2b(f"{seed}:{run}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


#: Splits whose runs are never reference runs of the verdicts: in-sample, too short, or not read.
NOT_REFERENCE = ("train", "low_stats", "missing")


def reference_mask(split: np.ndarray, label: np.ndarray, mode: str) -> np.ndarray:
    """Which runs (rows) are reference runs of the verdicts (:mod:`dqmflow.verdicts`) under
    ``mode``: ``calibration``, the calibration split's runs not labelled bad; ``good``, runs
    labelled good (0) outside :data:`NOT_REFERENCE`; ``all``, runs not labelled bad outside it.
    Shared by the verdicts and the planning-time warning, so that both count the same runs."""
    split = np.asarray(split, dtype=object)
    label = np.asarray(label)
    if mode == "calibration":
        return (split == "calibration") & (label != BAD)
    outside = ~np.isin(split, NOT_REFERENCE)
    return outside & ((label == 0) if mode == "good" else (label != BAD))


def runs_to_flag(false_alarm_rate: float) -> int:
    """Reference runs needed to flag any run at ``false_alarm_rate``: with ``n`` of them no run
    p-value is below ``1/n``."""
    return math.ceil(1.0 / false_alarm_rate - 1e-9)


def assign_split(run: int, seed: int, train_fraction: float, calibration_fraction: float = 0.0) -> str:
    """``'train'``, ``'calibration'`` or ``'test'`` for ``run``, stable under adding other runs."""
    u = uniform(run, seed)
    if u < train_fraction:
        return "train"
    return "calibration" if u < train_fraction + calibration_fraction else "test"


def short_runs(entries: np.ndarray, min_entries: float) -> np.ndarray:
    """Runs (rows) where most of the histograms read (non-NaN) have fewer than ``min_entries``."""
    read = ~np.isnan(entries)
    low = (np.nan_to_num(entries, nan=np.inf) < min_entries) & read
    return low.sum(axis=1) * 2 > np.maximum(read.sum(axis=1), 1)


@dataclass(frozen=True)
class RunTable:
    """The rows of ``runs.parquet`` that a job asked for."""

    runs: np.ndarray
    years: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    entries: dict[str, np.ndarray]  # per histogram column; NaN where not usable
    signatures: np.ndarray  # the run's file: path|size|mtime ("" if unknown)

    def __len__(self) -> int:
        return len(self.runs)

    def subset(self, mask: np.ndarray) -> RunTable:
        return RunTable(
            self.runs[mask],
            self.years[mask],
            self.labels[mask],
            self.split[mask],
            {column: values[mask] for column, values in self.entries.items()},
            self.signatures[mask],
        )


def build_run_table(
    entries_path: str | Path,
    output: str | Path,
    *,
    min_entries: float = 10_000,
    train_fraction: float = 0.5,
    calibration_fraction: float = 0.2,
    seed: int = 0,
) -> pa.Table:
    """Add every run's split to ``entries.parquet`` and write ``runs.parquet``."""
    if train_fraction + calibration_fraction >= 1:
        raise ValueError(
            f"train_fraction ({train_fraction}) + calibration_fraction ({calibration_fraction}) must be below 1, "
            "or no run is left to test"
        )
    table = read_parquet(entries_path)
    runs = table["run_number"].to_numpy()
    labels = table["label"].to_numpy()
    readable = np.asarray(table["readable"].to_numpy(zero_copy_only=False), dtype=bool)
    entry_columns = [c for c in table.column_names if c.endswith(ENTRIES_SUFFIX)]
    entries = (
        np.column_stack([table[c].to_numpy(zero_copy_only=False) for c in entry_columns])
        if entry_columns
        else np.zeros((len(runs), 0))
    )
    split = np.array([assign_split(int(r), seed, train_fraction, calibration_fraction) for r in runs], dtype=object)
    split[(labels == BAD) & (split != "test")] = "test"
    split[short_runs(entries, min_entries)] = "low_stats"
    split[~readable] = "missing"
    index = table.column_names.index("readable")
    out = table.remove_column(index).add_column(index, "split", pa.array(split.astype(str)))
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(out, output)
    return out


def read_run_table(path: str | Path, columns: Sequence[str] = ()) -> RunTable:
    """Read the run table with the entries of the histogram ``columns`` only."""
    schema = pq.read_schema(path)
    wanted = [f"{c}{ENTRIES_SUFFIX}" for c in columns if f"{c}{ENTRIES_SUFFIX}" in schema.names]
    extra = ["signature"] if "signature" in schema.names else []
    table = read_parquet(path, columns=["run_number", "year", "label", "split", *extra, *wanted])
    entries = {c: np.full(table.num_rows, np.nan) for c in columns}
    for c in columns:
        if f"{c}{ENTRIES_SUFFIX}" in wanted:
            entries[c] = np.asarray(table[f"{c}{ENTRIES_SUFFIX}"].to_numpy(zero_copy_only=False), dtype=np.float64)
    return RunTable(
        runs=table["run_number"].to_numpy(),
        years=table["year"].to_numpy(),
        labels=table["label"].to_numpy(),
        split=np.asarray(table["split"].to_pylist(), dtype=str),
        entries=entries,
        signatures=np.asarray(table["signature"].to_pylist() if extra else [""] * table.num_rows, dtype=object),
    )
