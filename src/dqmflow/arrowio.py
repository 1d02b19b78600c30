"""Reading many small parquet files (a shard per run, a score file per histogram) quickly.

``pyarrow.parquet.read_table`` goes through ``pyarrow.dataset`` and pre-buffers with threads: on
a file of a few kB that costs 1.4 ms, six times the read itself. Merge reads every run's shard
twice, and collecting or assessing scores reads one file per histogram and algorithm config (6,000
for 1,000 histograms and 6 configs), so this module opens the one local file directly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["open_parquet", "read_parquet"]


@contextmanager
def open_parquet(path: str | Path) -> Iterator[pq.ParquetFile]:
    """The parquet file at ``path``, opened to be read in one go (no pre-buffering). A file that
    is not parquet (truncated, empty, overwritten) raises pyarrow's error with ``path`` in front,
    as ``pyarrow.parquet.read_table`` names it; a missing file raises ``FileNotFoundError``."""
    try:
        with pa.OSFile(str(path)) as source:
            yield pq.ParquetFile(source, pre_buffer=False)
    except pa.ArrowException as err:
        if str(path) in str(err):
            raise
        raise type(err)(f"{path}: {err}") from err


def read_parquet(path: str | Path, columns: Sequence[str] | None = None) -> pa.Table:
    """The table in the parquet file ``path`` (only ``columns`` if given), schema metadata
    included: the same table as ``pyarrow.parquet.read_table``, read without threads."""
    with open_parquet(path) as handle:
        if columns is not None:
            missing = [c for c in columns if c not in handle.schema_arrow.names]
            if missing:  # pyarrow would leave them out without a word
                raise ValueError(f"{path}: no column {', '.join(map(repr, missing))}")
        return handle.read(columns=list(columns) if columns is not None else None, use_threads=False)
