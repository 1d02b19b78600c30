"""Model jobs: train (or score with) one algorithm config on a chunk of histograms, in one process.

A *chunk* is a list of histograms of one subsystem. :func:`train_chunk` reads only those
histograms' columns of the subsystem's storage file and the run table, fits the algorithm over
runs x histograms (:class:`~dqmflow.algorithms.base.MultiHistogramAlgorithm`) and writes one model
folder per histogram with its ``model.json`` (status, the runs it was fitted on, fit time), plus a
*training record* for the chunk: the runs it was trained among (the *pool*) and its training key
(:mod:`dqmflow.training`). The workflow compares that key with the current one to decide whether
a model must be retrained: runs added later are scored, not trained on, until the user asks to
retrain.

:func:`score_chunk` scores every run of the run table and writes, per histogram, the rows of the
long score table and, in their own file, float32 reconstructions of the most anomalous runs and
of requested runs only.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dqmflow.algorithms.base import AlgorithmConfig
from dqmflow.preprocess import Batch, load_batch, normalise
from dqmflow.scores import SCORE_COLUMNS, check_score_table
from dqmflow.training import read_training_record, training_key, write_training_record

log = logging.getLogger(__name__)

__all__ = ["Preprocessing", "collect_scores", "read_model_info", "score_chunk", "train_chunk", "training_pool"]


@dataclass(frozen=True)
class Preprocessing:
    """How runs are cut and split before training (see :mod:`dqmflow.runtable`)."""

    min_entries: float = 10_000
    train_fraction: float = 0.5
    calibration_fraction: float = 0.2
    seed: int = 0


def read_model_info(directory: str | Path) -> dict[str, Any]:
    return dict(json.loads((Path(directory) / "model.json").read_text()))


def train_chunk(
    run_table: str | Path,
    storage: str | Path,
    config: AlgorithmConfig,
    prep: Preprocessing,
    model_dirs: Mapping[str, str | Path],
    record: str | Path,
    key: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Fit ``config`` on the histograms of ``model_dirs`` ({column: output folder}).

    The runs trained among (the *pool*) are those of the chunk's previous training record that
    are still in the run table, or every run of the run table: whichever gives the training
    ``key`` the workflow planned with (:mod:`dqmflow.training`; without a key, every run). So a
    model retrained because its params changed keeps its runs, and runs added since join only
    when the user asks to retrain. The record is rewritten with the pool and the key.

    A histogram that was never read, or that has too few usable training runs for the algorithm
    (:class:`~dqmflow.algorithms.base.NotEnoughData`), gets a ``model.json`` with ``"status":
    "failed"`` and the reason; its runs are scored NaN. Any other error stops the job and names
    the histogram. Returns the ``model.json`` contents per column.
    """
    columns = list(model_dirs)
    pool = training_pool(run_table, config, prep, columns, record, key)
    batch = load_batch(
        run_table, storage, columns, min_entries=prep.min_entries, frozen_training=dict.fromkeys(columns, pool)
    )
    model = config.build()
    start = time.perf_counter()
    failures = model.fit(batch) if batch.histograms else {}
    seconds = time.perf_counter() - start
    for column in batch.never_read:
        failures[column] = f"histogram {column!r} was not read from any file of {storage}"
    trained = [c for c in columns if c not in failures]
    dirs = {c: Path(model_dirs[c]) for c in columns}
    for directory in dirs.values():
        directory.mkdir(parents=True, exist_ok=True)
    model.save({c: dirs[c] for c in trained})
    base = {**config.as_dict(), "preprocessing": asdict(prep)}
    infos: dict[str, dict[str, Any]] = {}
    for column in columns:
        info: dict[str, Any] = {"histogram": column, **base}
        if column in failures:
            info.update(status="failed", error=failures[column])
            log.error("%s [%s]: no model: %s", column, config.tag, failures[column])
        else:
            data = batch[column]
            info.update(
                status="trained",
                runs={
                    s: int((data.split == s).sum()) for s in ("train", "calibration", "test", "low_stats", "missing")
                },
                training_runs=data.runs[data.split == "train"].tolist(),
                fit_seconds=round(seconds / max(len(trained), 1), 4),
            )
        (dirs[column] / "model.json").write_text(json.dumps(info, indent=1))
        infos[column] = info
    write_training_record(
        record,
        pool,
        key or "",
        algorithm=config.tag,
        histograms=columns,
        trained=len(trained),
        failed=failures,
        fit_seconds=round(seconds, 3),
    )
    return infos


def training_pool(
    run_table: str | Path,
    config: AlgorithmConfig,
    prep: Preprocessing,
    columns: Sequence[str],
    record: str | Path,
    key: str | None,
) -> list[int]:
    """The runs to train among: see :func:`train_chunk`."""
    table = pq.read_table(run_table, columns=["run_number", "label", "signature"]).to_pydict()
    current = [int(r) for r in table["run_number"]]
    if key is None:
        return current
    signatures = dict(zip(current, table["signature"], strict=True))
    labels = dict(zip(current, (int(v) for v in table["label"]), strict=True))
    previous, _ = read_training_record(record)
    candidates = [current] if previous is None else [[r for r in previous if r in signatures], current]
    for pool in candidates:
        found = training_key(
            pool, signatures, labels, algorithm=config.as_dict(), preprocessing=asdict(prep), columns=columns
        )
        if found == key:
            return pool
    raise RuntimeError(
        f"{record}: the run table {run_table} does not match the training runs the workflow planned with "
        f"(key {key}); it changed while the workflow ran: run snakemake again"
    )


def score_chunk(
    run_table: str | Path,
    storage: str | Path,
    config: AlgorithmConfig,
    prep: Preprocessing,
    model_dirs: Mapping[str, str | Path],
    score_files: Mapping[str, str | Path],
    reco_files: Mapping[str, str | Path],
    *,
    n_reconstructed: int = 10,
    reco_runs: Sequence[int] = (),
) -> pd.DataFrame:
    """Score every run of the run table with the chunk's trained models.

    Runs whose histogram is missing get a row with a NaN score, so none disappears; so do all
    runs when the model could not be trained. An empty histogram in a run that is not short
    scores +inf for every algorithm. For each histogram, reconstructions of the
    ``n_reconstructed`` highest-scoring runs outside the training split and of ``reco_runs`` are
    written to its ``reco_files`` entry. Returns the long score table of the chunk.
    """
    columns = list(model_dirs)
    infos = {c: read_model_info(model_dirs[c]) for c in columns}
    trained = [c for c in columns if infos[c]["status"] == "trained"]
    frozen = {c: infos[c]["training_runs"] for c in trained}
    batch = load_batch(run_table, storage, columns, min_entries=prep.min_entries, frozen_training=frozen)
    runs = batch.runs
    scores = np.full((len(runs), len(columns)), np.nan)
    lo = hi = None
    model = None
    if trained:
        model = config.load({c: Path(model_dirs[c]) for c in trained})
        block = model.score(batch)
        if block.score_lo is not None and block.score_hi is not None:
            lo, hi = np.full_like(scores, np.nan), np.full_like(scores, np.nan)
        position = {c: j for j, c in enumerate(block.columns)}
        for j, column in enumerate(columns):
            if column in position and column in trained:
                scores[:, j] = block.score[:, position[column]]
                if lo is not None and hi is not None and block.score_lo is not None and block.score_hi is not None:
                    lo[:, j], hi[:, j] = block.score_lo[:, position[column]], block.score_hi[:, position[column]]
    frames = []
    for j, column in enumerate(columns):
        data = batch.histograms.get(column)
        split = data.split if data is not None else np.full(len(runs), "missing")
        entries = data.entries if data is not None else np.zeros(len(runs))
        if data is not None and column in trained:
            # An empty histogram where the run is not short is as anomalous as it gets, whatever
            # the algorithm's own measure says (an empty histogram "reconstructs" to almost nothing).
            empty = (data.counts.reshape(len(runs), -1).sum(axis=1) == 0) & ~np.isin(split, ("missing", "low_stats"))
            scores[empty, j] = np.inf
        frame = pd.DataFrame(
            {
                "run_number": runs.astype(np.int64),
                "year": batch.table.years.astype(np.int64),
                "histogram": column,
                "algorithm": config.tag,
                "score": scores[:, j],
                "label": batch.table.labels.astype(np.int64),
                "split": split,
                "entries": entries.astype(np.float64),
            }
        )
        if lo is not None and hi is not None:
            frame["score_lo"], frame["score_hi"] = lo[:, j], hi[:, j]
        check_score_table(frame, where=str(score_files[column]))
        Path(score_files[column]).parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(score_files[column], index=False)
        frames.append(frame)
        _write_reconstructions(
            batch, column, frame, model if column in trained else None, reco_files[column], n_reconstructed, reco_runs
        )
    return pd.concat(frames, ignore_index=True)


def _write_reconstructions(
    batch: Batch,
    column: str,
    frame: pd.DataFrame,
    model: Any,
    output: str | Path,
    n_reconstructed: int,
    reco_runs: Sequence[int],
) -> None:
    """float32 originals (unit area) and reconstructions of the top runs and requested runs."""
    candidates = frame[~frame["split"].isin(("train", "missing"))].sort_values("score", ascending=False, kind="stable")
    chosen = list(dict.fromkeys([*candidates["run_number"].head(n_reconstructed).tolist(), *reco_runs]))
    data = batch.histograms.get(column)
    shape = list(data.shape) if data is not None else []
    rows: dict[str, list[Any]] = {"run_number": [], "score": [], "original": [], "reconstruction": []}
    if data is not None and chosen:
        present = np.isin(batch.runs, chosen) & (data.split != "missing")
        recos = model.reconstruct(batch, batch.runs[present], [column]).get(column) if model is not None else None
        originals = normalise(data.counts[present]).astype(np.float32)
        for i, run in enumerate(batch.runs[present]):
            rows["run_number"].append(int(run))
            rows["score"].append(float(frame["score"].to_numpy()[present][i]))
            rows["original"].append(originals[i].reshape(-1))
            rows["reconstruction"].append(None if recos is None else np.asarray(recos[i], np.float32).reshape(-1))
    schema = pa.schema(
        [
            ("run_number", pa.int64()),
            ("score", pa.float64()),
            ("original", pa.list_(pa.float32())),
            ("reconstruction", pa.list_(pa.float32())),
        ],
        metadata={
            "dqmflow": json.dumps(
                {"histogram": column, "shape": shape, "edges": [e.tolist() for e in data.edges] if data else []}
            )
        },
    )
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows, schema=schema), output)


def collect_scores(paths: Sequence[str | Path], output: str | Path) -> pd.DataFrame:
    """Concatenate per-(histogram, algorithm) score files into the long ``scores.parquet``."""
    frames = [pd.read_parquet(p) for p in paths]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCORE_COLUMNS)
    frame = frame.sort_values(["algorithm", "histogram", "run_number"], kind="stable", ignore_index=True)
    check_score_table(frame, where=str(output))
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(output, index=False)
    return frame
