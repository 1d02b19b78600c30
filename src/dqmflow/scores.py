"""The long score table: the one contract between scoring and assessment.

One row per (run, histogram, algorithm)::

    run_number  int     the run
    histogram   str     AutoDQM_ML column name, e.g. ``L1T//Run summary/L1TStage2EMTF/emtfTrackPhi``
    algorithm   str     the algorithm config's tag
    score       float   larger = more anomalous; NaN = not scored, +inf = maximally anomalous
    score_lo    float   optional lower bound of the score (e.g. over training seeds)
    score_hi    float   optional upper bound
    label       int     1 bad, 0 good, -1 unknown (optional: -1 when absent)
    split       str     train | calibration | test | low_stats | missing (optional)
    entries     float   the histogram's entries in the run (optional)
    latent_1/2  float   the run's first two latent coordinates (PCA, autoencoders; optional)
    score_seed_<seed>   float   the score given by one seed of a seed ensemble (optional)
    year        int     optional

Assessment reads only this table (plus, for figures, the optional reconstruction files), so a
table written by another tool in this format is assessed the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dqmflow.runtable import SPLITS

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "SCORE_COLUMNS",
    "ScoreTableError",
    "check_score_table",
    "concat_score_files",
    "empty_score_table",
    "read_scores",
]

REQUIRED_COLUMNS = ("run_number", "histogram", "algorithm", "score")
OPTIONAL_COLUMNS = ("score_lo", "score_hi", "label", "split", "entries", "year", "latent_1", "latent_2")
_SCORE_TYPES = {
    "run_number": pa.int64(), "year": pa.int64(), "histogram": pa.string(), "algorithm": pa.string(),
    "score": pa.float64(), "label": pa.int64(), "split": pa.string(), "entries": pa.float64(),
}  # fmt: skip
SCORE_COLUMNS = list(_SCORE_TYPES)
_INTEGER = ("run_number", "label", "year")
_NUMERIC = ("score", "score_lo", "score_hi", "entries", "latent_1", "latent_2")
_KEY = ["run_number", "histogram", "algorithm"]

Table = TypeVar("Table", "pd.DataFrame", pa.Table)


class ScoreTableError(ValueError):
    """A score table does not follow the contract above."""


def check_score_table(table: Table, where: str = "score table") -> Table:
    """Check columns, types and values of a score table (a pandas DataFrame, or an Arrow table as
    score jobs write it); returns ``table`` unchanged (raises :class:`ScoreTableError`)."""
    if isinstance(table, pa.Table):
        _check(where, _ArrowView(table))
    else:
        _check(where, _PandasView(table))
    return table


def _decoded(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary-encoded column as plain values (its dictionary may repeat a value)."""
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


class _ArrowView:
    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.columns = list(table.column_names)
        self.rows = table.num_rows

    def type_of(self, column: str) -> tuple[bool, bool, str]:
        kind = self.table.schema.field(column).type
        integer = pa.types.is_integer(kind)
        return integer, integer or pa.types.is_floating(kind), str(kind)

    def unique(self, column: str) -> list[Any]:
        return pc.unique(self.table[column]).to_pylist()

    def missing(self, column: str) -> int:
        return int(self.table[column].null_count)

    def first_duplicate(self) -> dict[str, Any] | None:
        keys = self.table.select(_KEY)
        runs = np.asarray(keys["run_number"].to_numpy(), dtype=np.int64)
        if len(runs) == 0:
            return None
        # One integer per (histogram, algorithm, run): the strings' dictionary codes and the run.
        codes = [pc.dictionary_encode(_decoded(keys[c]).combine_chunks()) for c in _KEY[1:]]
        sizes = [len(code.dictionary) for code in codes]
        span = int(runs.max()) - int(runs.min()) + 1
        if sizes[0] * sizes[1] * span >= 2**62:  # too wide for one integer: let Arrow group
            counted = keys.group_by(_KEY).aggregate([([], "count_all")])
            several = counted.filter(pc.greater(counted["count_all"], 1))
            return {c: several[c][0].as_py() for c in _KEY} if several.num_rows else None
        histogram, algorithm = (np.asarray(code.indices.to_numpy(), dtype=np.int64) for code in codes)
        key = (histogram * sizes[1] + algorithm) * span + (runs - runs.min())
        values, counts = np.unique(key, return_counts=True)
        if not (counts > 1).any():
            return None
        row = int(np.flatnonzero(key == values[counts > 1][0])[1])  # the second row of the smallest repeated key
        return {c: keys[c][row].as_py() for c in _KEY}


class _PandasView:
    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.columns = list(frame.columns)
        self.rows = len(frame)

    def type_of(self, column: str) -> tuple[bool, bool, str]:
        from pandas.api import types as ptypes

        dtype = self.frame[column].dtype
        return ptypes.is_integer_dtype(dtype), ptypes.is_numeric_dtype(dtype), str(dtype)

    def unique(self, column: str) -> list[Any]:
        return list(self.frame[column].unique())

    def missing(self, column: str) -> int:
        return int(self.frame[column].isna().sum())

    def first_duplicate(self) -> dict[str, Any] | None:
        duplicated = self.frame.duplicated(_KEY)
        if not duplicated.any():
            return None
        row = self.frame[duplicated].iloc[0]
        return {c: row[c] for c in _KEY}


def _check(where: str, view: _ArrowView | _PandasView) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in view.columns]
    if missing:
        raise ScoreTableError(f"{where}: missing column(s) {missing}; a score table needs {list(REQUIRED_COLUMNS)}")
    if view.rows == 0:
        return

    def present(names: Sequence[str]) -> list[str]:
        return [c for c in names if c in view.columns]

    for column in present(_INTEGER):
        integer, _, kind = view.type_of(column)
        if not integer:
            raise ScoreTableError(f"{where}: column {column!r} must hold integers, not {kind}")
    for column in present([*_NUMERIC, *(c for c in view.columns if str(c).startswith("score_seed_"))]):
        _, numeric, kind = view.type_of(column)
        if not numeric:
            raise ScoreTableError(f"{where}: column {column!r} must be numeric, not {kind}")
    for column in present([*_KEY, "year"]):
        if n_missing := view.missing(column):
            raise ScoreTableError(f"{where}: column {column!r} has {n_missing} missing value(s); every row needs one")
    if "split" in view.columns:
        odd = sorted({str(v) for v in view.unique("split")} - set(SPLITS))
        if odd:
            raise ScoreTableError(f"{where}: unknown split value(s) {odd}; allowed: {list(SPLITS)}")
    if "label" in view.columns:
        odd_labels = sorted((v for v in view.unique("label") if not _is_label(v)), key=str)
        if odd_labels:
            shown = ", ".join(str(v) for v in odd_labels)
            raise ScoreTableError(f"{where}: labels must be 1 (bad), 0 (good) or -1 (unknown), not [{shown}]")
    row = view.first_duplicate()
    if row is not None:
        raise ScoreTableError(
            f"{where}: run {row['run_number']} has several scores for {row['histogram']!r} [{row['algorithm']}]"
        )


def _is_label(value: Any) -> bool:
    try:
        return int(value) == value and int(value) in (-1, 0, 1)
    except (TypeError, ValueError):  # a missing value (pd.NA, None) or text
        return False


def empty_score_table() -> pa.Table:
    """A score table without rows, with the columns and types that score jobs write."""
    return pa.schema(list(_SCORE_TYPES.items())).empty_table()


def concat_score_files(paths: Sequence[str | Path]) -> pa.Table:
    """The score files of dqmflow's score jobs (parquet, one per histogram and algorithm config),
    each checked, as one Arrow table in the order given; a column that some files lack (e.g. the
    latent coordinates of PCA) is null in the rows of the others. Much faster than reading each
    with pandas (:mod:`dqmflow.arrowio`): one file per histogram and config adds up."""
    from dqmflow.arrowio import read_parquet

    tables = [check_score_table(read_parquet(path), where=str(path)) for path in paths]
    if not tables:
        return empty_score_table()
    return pa.concat_tables(tables, promote_options="permissive")  # e.g. string and large_string


def read_scores(path: str | Path) -> pd.DataFrame:
    """Read a long score table (parquet or CSV) and check it."""
    import pandas as pd

    path = Path(path)
    frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    return check_score_table(frame, where=str(path))
