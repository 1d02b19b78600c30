"""Train one model per (histogram, algorithm config) and score every run with it."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dqmflow.algorithms.base import AlgorithmConfig
from dqmflow.names import HistogramName
from dqmflow.preprocess import HistogramSet, load_histogram

log = logging.getLogger(__name__)

__all__ = ["SCORE_COLUMNS", "Preprocessing", "collect_scores", "score_model", "train_model"]

SCORE_COLUMNS = ["run_number", "year", "histogram", "algorithm", "score", "label", "split", "entries"]


@dataclass(frozen=True)
class Preprocessing:
    """How runs are cut and split before training (see :mod:`dqmflow.preprocess`)."""

    min_entries: float = 10_000
    train_fraction: float = 0.5
    seed: int = 0

    def load(self, table: str | Path, name: HistogramName) -> HistogramSet:
        return load_histogram(
            table, name, min_entries=self.min_entries, train_fraction=self.train_fraction, seed=self.seed
        )


def train_model(
    table: str | Path, name: HistogramName, config: AlgorithmConfig, prep: Preprocessing, out_dir: str | Path
) -> dict[str, object]:
    """Fit ``config``'s algorithm on ``name``'s training runs; write the model into ``out_dir``.

    A histogram that was never read, or that has too few training runs for the algorithm, gets
    a model folder whose ``model.json`` says ``"status": "failed"`` with the reason; its runs are
    then scored NaN rather than the whole workflow stopping.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = {"histogram": name.column, **config.as_dict(), "preprocessing": asdict(prep)}
    try:
        data = prep.load(table, name)
        start = time.perf_counter()
        model = config.build().fit(data)
        seconds = time.perf_counter() - start
    except (KeyError, ValueError) as err:
        info = {**base, "status": "failed", "error": str(err).strip("'\"")}
        log.error("%s [%s]: no model: %s", name.column, config.tag, info["error"])
        (out / "model.json").write_text(json.dumps(info, indent=1))
        return info
    model.save(out)
    counts = {s: int((data.split == s).sum()) for s in ("train", "test", "low_stats", "missing")}
    info = {
        **base,
        "status": "trained",
        "runs": counts,
        "low_stats_runs": data.runs[data.split == "low_stats"].tolist(),
        "missing_runs": data.runs[data.split == "missing"].tolist(),
        "fit_seconds": round(seconds, 3),
    }
    (out / "model.json").write_text(json.dumps(info, indent=1))
    return info


def score_model(
    table: str | Path,
    name: HistogramName,
    config: AlgorithmConfig,
    prep: Preprocessing,
    model_dir: str | Path,
    output: str | Path,
) -> pd.DataFrame:
    """Score every run of ``name`` with a trained model; write scores and reconstructions.

    Runs whose histogram is missing get a row with a NaN score, so none disappears; so do all
    runs when the model could not be trained. An empty histogram in a run that is not short
    scores +inf for every algorithm.
    """
    info = json.loads((Path(model_dir) / "model.json").read_text())
    try:
        data = prep.load(table, name)
    except KeyError:
        data = _all_missing(table, name)
    scores = np.full(len(data), np.nan)
    n_bins = int(np.prod(data.shape))
    reco_flat: list[np.ndarray | None] = [None] * len(data)
    if info["status"] == "trained" and (data.split != "missing").any():
        model = config.cls.load(Path(model_dir), config.params)
        scorable = data.scorable
        idx = np.flatnonzero(data.split != "missing")
        scores[idx] = model.score(scorable)
        # An empty histogram where the run is not short is as anomalous as it gets, whatever the
        # algorithm's own measure says (an empty histogram "reconstructs" to almost nothing).
        empty = scorable.counts.reshape(len(scorable), -1).sum(axis=1) == 0
        scores[idx[empty & (scorable.split != "low_stats")]] = np.inf
        reco = model.reconstruct(scorable)
        if reco is not None:
            for j, i in enumerate(idx):
                reco_flat[i] = reco[j].reshape(-1)
    frame = pd.DataFrame(
        {
            "run_number": data.runs.astype(np.int64),
            "year": data.years.astype(np.int64),
            "histogram": name.column,
            "algorithm": config.tag,
            "score": scores,
            "label": data.labels.astype(np.int64),
            "split": data.split,
            "entries": data.entries,
        }
    )
    table_out = pa.Table.from_pandas(frame, preserve_index=False)
    reco_type = pa.list_(pa.float64())
    reco_col = pa.array([None if r is None else r for r in reco_flat], type=reco_type)
    table_out = table_out.append_column("reconstruction", reco_col)
    meta = {
        "dqmflow": json.dumps({"shape": list(data.shape), "n_bins": n_bins, "edges": [e.tolist() for e in data.edges]})
    }
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table_out.replace_schema_metadata(meta), output)
    return frame


def _all_missing(table: str | Path, name: HistogramName) -> HistogramSet:
    """Every run of ``table`` marked missing, for a histogram no file contained."""
    frame = pq.read_table(table, columns=["run_number", "year", "label"])
    n = frame.num_rows
    return HistogramSet(
        name=name,
        runs=frame["run_number"].to_numpy(),
        years=frame["year"].to_numpy(),
        labels=frame["label"].to_numpy(),
        counts=np.zeros((n, 1)),
        entries=np.zeros(n),
        split=np.full(n, "missing"),
        edges=(np.array([0.0, 1.0]),),
    )


def collect_scores(paths: Sequence[str | Path], output: str | Path) -> pd.DataFrame:
    """Concatenate per-(histogram, algorithm) score files into the long ``scores.parquet``."""
    frames = [pq.read_table(p, columns=SCORE_COLUMNS).to_pandas() for p in paths]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCORE_COLUMNS)
    frame = frame.sort_values(["algorithm", "histogram", "run_number"], kind="stable", ignore_index=True)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(output, index=False)
    return frame
