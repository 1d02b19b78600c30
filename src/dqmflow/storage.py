"""Histogram storage that a model job opens cheaply: one parquet file per subsystem.

``merge`` writes, beside the AutoDQM_ML-format ``histograms.parquet``, one file per subsystem with
``run_number`` and one column per histogram: the bin contents of a run as a fixed-size list of
float64 (2D maps flattened row-major ``[ix][iy]``, no flow bins), null where the run has no
usable histogram. Shapes, edges and axis titles are in the file's metadata under ``dqmflow``
(``{"histograms": {column: {"shape", "edges", "axis_titles"}}}``; files written before axis titles
were stored read with ``""`` titles). Column statistics are not written (they would make the
footer grow with bins x row groups), so a job that reads the columns of its histograms parses a
small footer and reads nothing else.

This module imports only numpy and pyarrow: model jobs never load the fetch layer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["HistogramInfo", "StorageWriter", "read_counts", "read_storage_info"]


@dataclass(frozen=True)
class HistogramInfo:
    """Binning of one stored histogram and the ROOT titles of its axes (x, then y for 2D maps).

    ``axis_titles`` is padded with ``""`` to one title per dimension of ``shape``.
    """

    shape: tuple[int, ...]
    edges: tuple[np.ndarray, ...]
    axis_titles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        ndim = len(self.shape)
        if isinstance(self.axis_titles, str) or len(self.axis_titles) > ndim:
            raise ValueError(f"axis titles {self.axis_titles!r} for a histogram of shape {self.shape}")
        titles = tuple(str(t or "") for t in self.axis_titles) + ("",) * (ndim - len(self.axis_titles))
        object.__setattr__(self, "axis_titles", titles)

    @property
    def n_bins(self) -> int:
        return int(np.prod(self.shape))

    def as_dict(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "edges": [e.tolist() for e in self.edges],
            "axis_titles": list(self.axis_titles),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> HistogramInfo:
        """Inverse of :meth:`as_dict`; a dict without ``axis_titles`` (older files) gives ``""`` titles."""
        return cls(
            tuple(int(n) for n in raw["shape"]),
            tuple(np.asarray(e, dtype=np.float64) for e in raw["edges"]),
            tuple(str(t) for t in raw.get("axis_titles") or ()),
        )


class StorageWriter:
    """Writes one subsystem's storage file chunk by chunk of runs (bounded memory)."""

    def __init__(self, path: str | Path, histograms: Mapping[str, HistogramInfo]) -> None:
        self.histograms = dict(histograms)
        fields = [pa.field("run_number", pa.int64())]
        fields += [pa.field(c, pa.list_(pa.float64(), info.n_bins)) for c, info in self.histograms.items()]
        meta = {"dqmflow": json.dumps({"histograms": {c: i.as_dict() for c, i in self.histograms.items()}})}
        self.schema = pa.schema(fields, metadata=meta)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(path, self.schema, write_statistics=["run_number"])

    def write(self, runs: Sequence[int], contents: Mapping[str, Sequence[np.ndarray | None]]) -> None:
        """Append runs; ``contents[column][i]`` is run ``i``'s bin contents or ``None``."""
        columns: dict[str, pa.Array] = {"run_number": pa.array(np.asarray(runs, dtype=np.int64))}
        for column, info in self.histograms.items():
            arrays = contents[column]
            flat = np.zeros((len(arrays), info.n_bins))
            mask = np.ones(len(arrays), dtype=bool)
            for i, arr in enumerate(arrays):
                if arr is not None:
                    flat[i] = np.asarray(arr, dtype=np.float64).reshape(-1)
                    mask[i] = False
            columns[column] = pa.FixedSizeListArray.from_arrays(
                pa.array(flat.reshape(-1)), info.n_bins, mask=pa.array(mask)
            )
        self._writer.write_table(pa.table(columns, schema=self.schema))

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> StorageWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def read_storage_info(path: str | Path) -> dict[str, HistogramInfo]:
    """Binning and axis titles of every histogram stored in ``path`` (read from the footer only)."""
    meta = pq.read_schema(path).metadata or {}
    raw = json.loads(meta[b"dqmflow"])["histograms"]
    return {column: HistogramInfo.from_dict(info) for column, info in raw.items()}


def read_counts(
    path: str | Path, columns: Sequence[str], runs: Sequence[int] | None = None
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]], dict[str, HistogramInfo]]:
    """Read the runs and the given histogram columns of a storage file (only ``runs``, if
    given: row groups without them are skipped by their run-number statistics).

    Returns ``(runs, {column: (counts, valid)}, {column: info})``: ``counts`` has shape
    ``(n_runs, *shape)`` with zeros where ``valid`` is false. Columns that the file does not
    hold (histograms that no file contained) are left out of both dicts.
    """
    info = read_storage_info(path)
    present = [c for c in columns if c in info]
    handle = pq.ParquetFile(path)
    groups = list(range(handle.metadata.num_row_groups))
    if runs is not None:  # only the row groups whose run-number range holds a wanted run
        wanted = np.asarray(sorted(int(r) for r in runs), dtype=np.int64)
        position = handle.schema_arrow.get_field_index("run_number")
        kept = []
        for group in groups:
            stats = handle.metadata.row_group(group).column(position).statistics
            if stats is None or not stats.has_min_max or np.any((wanted >= stats.min) & (wanted <= stats.max)):
                kept.append(group)
        groups = kept

    def read(column: str) -> pa.ChunkedArray:
        return handle.read_row_groups(groups, columns=[column])[column]

    all_runs = read("run_number").to_numpy()
    keep = np.isin(all_runs, wanted) if runs is not None else np.ones(len(all_runs), dtype=bool)
    stored_runs = all_runs[keep]
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for column in present:  # one column at a time: memory holds the numpy copies, not the arrow tables too
        arr = read(column).combine_chunks()
        if runs is not None:
            arr = arr.filter(pa.array(keep))
        valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        counts = np.zeros((len(arr), info[column].n_bins))
        if valid.any():
            values = arr.flatten().to_numpy(zero_copy_only=False)  # nulls' slots are left out
            counts[valid] = values.reshape(int(valid.sum()), -1)
        del arr
        out[column] = (counts.reshape((len(counts), *info[column].shape)), valid)
    return stored_runs, out, {c: info[c] for c in present}
