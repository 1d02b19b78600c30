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

from pathlib import Path

import pandas as pd
from pandas.api import types as ptypes

from dqmflow.runtable import SPLITS

__all__ = [
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "SCORE_COLUMNS",
    "ScoreTableError",
    "check_score_table",
    "read_scores",
]

REQUIRED_COLUMNS = ("run_number", "histogram", "algorithm", "score")
OPTIONAL_COLUMNS = ("score_lo", "score_hi", "label", "split", "entries", "year", "latent_1", "latent_2")
SCORE_COLUMNS = ["run_number", "year", "histogram", "algorithm", "score", "label", "split", "entries"]


class ScoreTableError(ValueError):
    """A score table does not follow the contract above."""


def check_score_table(frame: pd.DataFrame, where: str = "score table") -> pd.DataFrame:
    """Check columns, types and values; returns ``frame`` unchanged (raises :class:`ScoreTableError`)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ScoreTableError(f"{where}: missing column(s) {missing}; a score table needs {list(REQUIRED_COLUMNS)}")
    if len(frame) == 0:
        return frame
    for column in ("run_number", "label", "year"):
        if column in frame.columns and not ptypes.is_integer_dtype(frame[column]):
            raise ScoreTableError(f"{where}: column {column!r} must hold integers, not {frame[column].dtype}")
    numeric = ("score", "score_lo", "score_hi", "entries", "latent_1", "latent_2")
    for column in [*numeric, *(c for c in frame.columns if str(c).startswith("score_seed_"))]:
        if column in frame.columns and not ptypes.is_numeric_dtype(frame[column]):
            raise ScoreTableError(f"{where}: column {column!r} must be numeric, not {frame[column].dtype}")
    if "split" in frame.columns:
        odd = sorted(set(frame["split"].astype(str)) - set(SPLITS))
        if odd:
            raise ScoreTableError(f"{where}: unknown split value(s) {odd}; allowed: {list(SPLITS)}")
    if "label" in frame.columns:
        odd_labels = sorted(set(frame["label"].tolist()) - {-1, 0, 1})
        if odd_labels:
            raise ScoreTableError(f"{where}: labels must be 1 (bad), 0 (good) or -1 (unknown), not {odd_labels}")
    duplicated = frame.duplicated(["run_number", "histogram", "algorithm"])
    if duplicated.any():
        row = frame[duplicated].iloc[0]
        raise ScoreTableError(
            f"{where}: run {row['run_number']} has several scores for {row['histogram']!r} [{row['algorithm']}]"
        )
    return frame


def read_scores(path: str | Path) -> pd.DataFrame:
    """Read a long score table (parquet or CSV) and check it."""
    path = Path(path)
    frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    return check_score_table(frame, where=str(path))
