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

import hashlib
import importlib
import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dqmflow.algorithms.base import AlgorithmConfig, ScoreBlock
from dqmflow.arrowio import read_parquet
from dqmflow.preprocess import Batch, histogram_split, load_batch, normalise
from dqmflow.runtable import RunTable, read_run_table
from dqmflow.scores import check_score_table, concat_score_files, empty_score_table
from dqmflow.storage import read_storage_info
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
        id=uuid.uuid4().hex,
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
    table = read_parquet(run_table, columns=["run_number", "label", "signature"]).to_pydict()
    current = [int(r) for r in table["run_number"]]
    if key is None:
        return current
    signatures = dict(zip(current, table["signature"], strict=True))
    labels = dict(zip(current, (int(v) for v in table["label"]), strict=True))
    previous, _ = read_training_record(record)
    candidates = [current] if previous is None else [[r for r in previous if r in signatures], current]
    code = config.code_digest()
    for pool in candidates:
        found = training_key(
            pool,
            signatures,
            labels,
            algorithm=config.as_dict(),
            preprocessing=asdict(prep),
            columns=columns,
            code=code,
        )
        if found == key:
            return pool
    raise RuntimeError(
        f"{record}: the run table {run_table} does not match the training runs the workflow planned with "
        f"(key {key}): the run table or the algorithm's code changed while the workflow ran: run snakemake again"
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
    record: str | Path | None = None,
    cache: str | Path | None = None,
) -> ChunkScores:
    """Score every run of the run table with the chunk's trained models.

    Runs whose histogram is missing get a row with a NaN score, so none disappears; so do all
    runs when the model could not be trained. An empty histogram in a run that is not short
    scores +inf for every algorithm. For each histogram, reconstructions of the
    ``n_reconstructed`` highest-scoring runs outside the training split and of ``reco_runs`` are
    written to its ``reco_files`` entry. Returns the chunk's rows of the long score table and the
    number of runs scored anew (:class:`ChunkScores`).

    With a ``cache`` file (kept by the job across reruns) and the chunk's training ``record``,
    scores are reused for runs whose file (signature) and entries are unchanged, computed by the
    same models (the record's id) and the same scoring code: adding runs to a frozen model scores
    only the new runs, and reads from ``storage`` only them and the runs to reconstruct.
    """
    columns = list(model_dirs)
    infos = {c: read_model_info(model_dirs[c]) for c in columns}
    trained = [c for c in columns if infos[c]["status"] == "trained"]
    frozen = {c: infos[c]["training_runs"] for c in trained}
    table = read_run_table(run_table, columns)
    runs = table.runs
    n = len(runs)
    model = config.load({c: Path(model_dirs[c]) for c in trained}) if trained else None
    identity = _scoring_identity(config, infos, record, model.bind(table) if model is not None else "")
    previous = _read_score_cache(cache, identity, columns)
    reuse = np.zeros(n, dtype=bool)
    scores = np.full((n, len(columns)), np.nan)
    extras: dict[str, np.ndarray] = {}  # per run x column: score band, latent coordinates
    if previous is not None:
        reuse, scores, extras = _reuse(previous, table, columns)
    todo = runs[~reuse]
    batch = None
    if model is not None and len(todo):
        # read everything at once when nothing is reused; else the new runs and their references
        subset = None if len(todo) == n else np.union1d(todo, model.runs_needed(table, todo))
        batch = load_batch(
            run_table, storage, columns, min_entries=prep.min_entries, frozen_training=frozen, runs=subset
        )
        rows = np.flatnonzero(~reuse)
        scored = np.flatnonzero(np.isin(batch.runs, todo))  # the batch's rows of those runs, in order
        block = model.score(batch)
        _check_block(block, batch, config.tag, trained, scored)
        position = {c: j for j, c in enumerate(block.columns)}
        fresh_extras = _fresh_extras(block, model.latent(batch), position, len(batch.runs))
        for name in fresh_extras:
            extras.setdefault(name, np.full_like(scores, np.nan))
        for j, column in enumerate(columns):
            data = batch.histograms.get(column)
            if column not in trained or column not in position or data is None:
                continue
            fresh = block.score[:, position[column]].copy()
            # An empty histogram where the run is not short is as anomalous as it gets, whatever
            # the algorithm's own measure says (an empty histogram "reconstructs" to almost nothing).
            empty = (data.counts.reshape(len(data), -1).sum(axis=1) == 0) & ~np.isin(
                data.split, ("missing", "low_stats")
            )
            # Bin contents that are not numbers (NaN, inf: a broken histogram) score +inf too.
            broken = ~_finite_counts(data.counts) & (data.split != "missing")
            if broken.any():
                log.warning(
                    "histogram %r: runs %s have bin contents that are not finite numbers: scored +inf",
                    column,
                    ", ".join(str(int(r)) for r in batch.runs[broken][:10]),
                )
            empty |= broken
            fresh[empty] = np.inf
            scores[rows, j] = fresh[scored]
            for name, values in fresh_extras.items():
                column_values = values[:, position[column]].copy()
                if not name.startswith("latent_"):  # the band and every seed's score: +inf as the score
                    column_values[empty] = np.inf
                extras[name][rows, j] = column_values[scored]
    tables, splits = [], {}
    for j, column in enumerate(columns):
        entries = table.entries[column]
        valid = ~np.isnan(entries)
        fitted = np.isin(runs, frozen[column]) if column in frozen else None
        split = histogram_split(table.split, valid, np.nan_to_num(entries, nan=0.0), prep.min_entries, fitted)
        if column not in trained:
            scores[:, j] = np.nan
        rows = _score_rows(table, column, config.tag, scores[:, j], split, entries, extras, j)
        check_score_table(rows, where=str(score_files[column]))
        Path(score_files[column]).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(rows, score_files[column])
        tables.append(rows)
        splits[column] = split
    cached_recos = _read_reco_cache(cache, identity, runs[reuse]) if previous is not None else {}
    recos = _write_reconstructions(
        run_table, table, storage, columns, scores, splits, model, trained, reco_files, prep, frozen,
        n_reconstructed, reco_runs, batch, todo, cached_recos, config.tag,
    )  # fmt: skip
    if cache is not None:
        _write_score_cache(cache, identity, table, columns, scores, extras)
        _write_reco_cache(cache, identity, recos)
    out = pa.concat_tables(tables) if tables else empty_score_table()
    return ChunkScores(out, len(todo) if model is not None else 0)


def _finite_counts(counts: np.ndarray) -> np.ndarray:
    """Per run: every bin content is a finite number."""
    return np.isfinite(counts.reshape(len(counts), -1)).all(axis=1)


def _check_block(block: ScoreBlock, batch: Batch, tag: str, trained: Sequence[str], scored: np.ndarray) -> None:
    """The contract of a scored batch: one row per run of the batch, the columns asked for, and a
    score for every run to score (rows ``scored``; the others were read as references) that has
    the histogram (NaN only where it is missing: a NaN would drop
    the run from every figure of merit and verdict unnoticed; +inf says "as anomalous as it
    gets"). Raises ``ValueError`` naming the algorithm config and the histogram."""
    n_runs = len(batch.runs)
    if block.score.shape[0] != n_runs:
        raise ValueError(f"algorithm config {tag!r}: its score block has {block.score.shape[0]} rows for {n_runs} runs")
    unknown = sorted(set(block.columns) - set(batch.columns))
    if unknown:
        raise ValueError(f"algorithm config {tag!r} scored histograms it was not given: {unknown}")
    position = {c: j for j, c in enumerate(block.columns)}
    to_score = np.isin(np.arange(n_runs), scored)
    for column in trained:
        data = batch.histograms.get(column)
        if data is None:
            continue
        if column not in position:
            raise ValueError(f"algorithm config {tag!r} gave no score for histogram {column!r} (its model is trained)")
        present = to_score & (data.split != "missing") & _finite_counts(data.counts)
        nan = present & np.isnan(block.score[:, position[column]])
        if nan.any():
            examples = ", ".join(str(int(r)) for r in batch.runs[nan][:5])
            raise ValueError(
                f"algorithm config {tag!r} gave NaN scores to {int(nan.sum())} of {int(present.sum())} runs of "
                f"histogram {column!r} (e.g. run {examples}): an algorithm scores every run that has the "
                "histogram (+inf for an unusable one)"
            )


@dataclass(frozen=True)
class ChunkScores:
    """What a score job wrote: its rows of the long score table, and how many runs it scored anew
    (the others' scores were reused)."""

    table: pa.Table
    scored_runs: int


def _score_rows(
    table: RunTable,
    column: str,
    tag: str,
    scores: np.ndarray,
    split: np.ndarray,
    entries: np.ndarray,
    extras: Mapping[str, np.ndarray],
    j: int,
) -> pa.Table:
    """One histogram's rows of the long score table (:mod:`dqmflow.scores`), built as Arrow
    columns: a score job writes thousands of these, and pandas cost it 5 ms per histogram."""
    n = len(table.runs)
    data: dict[str, Any] = {
        "run_number": pa.array(table.runs.astype(np.int64)),
        "year": pa.array(table.years.astype(np.int64)),
        "histogram": pa.array([column] * n, pa.string()),
        "algorithm": pa.array([tag] * n, pa.string()),
        "score": pa.array(scores.astype(np.float64)),
        "label": pa.array(table.labels.astype(np.int64)),
        "split": pa.array(split.astype(str), pa.string()),
        "entries": pa.array(np.nan_to_num(entries, nan=0.0).astype(np.float64)),
    }
    for name in sorted(extras, key=_extra_order):
        data[_extra_column(name)] = pa.array(extras[name][:, j].astype(np.float64))
    return pa.table(data)


def _scoring_identity(
    config: AlgorithmConfig, infos: Mapping[str, Mapping[str, Any]], record: str | Path | None, bound: str = ""
) -> str:
    """What scores depend on besides a run's data: the models (the training record's id, which
    every training rewrites), the chunk's model statuses, the scoring code and what the model
    said it depends on in the current run table (``bound``, e.g. its reference runs)."""
    if record is None:
        return ""
    try:
        trained_id = str(json.loads(Path(record).read_text())["id"])
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        return ""
    code = hashlib.sha1()
    modules = {"dqmflow.models", "dqmflow.preprocess", "dqmflow.algorithms.base", "dqmflow.algorithms.losses"}
    for module in sorted({*modules, config.cls.__module__}):  # sorted: a set's order changes between processes
        code.update(Path(str(importlib.import_module(module).__file__)).read_bytes())
    statuses = json.dumps({c: i["status"] for c, i in infos.items()}, sort_keys=True)
    return hashlib.sha1(f"{trained_id}|{statuses}|{code.hexdigest()}|{config.as_dict()}|{bound}".encode()).hexdigest()


def _read_cache(path: str | Path | None, identity: str, **expected: Any) -> pa.Table | None:
    """A cache file written under the same ``identity`` (and ``expected`` metadata), else None."""
    if path is None or not identity or not Path(path).exists():
        return None
    try:
        table = read_parquet(path)
    except (OSError, ValueError):  # unreadable: not used
        return None
    meta = json.loads((table.schema.metadata or {}).get(b"dqmflow", b"{}"))
    if meta.get("identity") != identity or any(meta.get(k) != v for k, v in expected.items()):
        return None
    return table


def _write_cache(path: str | Path, table: pa.Table, identity: str, **extra: Any) -> None:
    """Write a cache file whole or not at all (a partial file renamed into place)."""
    meta = {"dqmflow": json.dumps({"identity": identity, **extra})}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    partial = Path(f"{path}.partial")
    pq.write_table(table.replace_schema_metadata(meta), partial)
    partial.replace(path)


def _read_score_cache(cache: str | Path | None, identity: str, columns: Sequence[str]) -> pa.Table | None:
    return _read_cache(cache, identity, columns=list(columns))


#: Optional per-run values a score job stores beside the score: cache name -> score table column
#: (plus ``seed:<seed>`` -> ``score_seed_<seed>``, the scores of each seed of an ensemble).
EXTRA_COLUMNS = {"lo": "score_lo", "hi": "score_hi", "latent_1": "latent_1", "latent_2": "latent_2"}


def _extra_order(name: str) -> tuple[int, int]:
    """Columns in a fixed order, whether computed now or read from the cache."""
    return (1, int(name.split(":", 1)[1])) if name.startswith("seed:") else (0, list(EXTRA_COLUMNS).index(name))


def _extra_column(name: str) -> str:
    return f"score_seed_{name.split(':', 1)[1]}" if name.startswith("seed:") else EXTRA_COLUMNS[name]


def _fresh_extras(
    block: ScoreBlock, latent: Mapping[str, np.ndarray], position: Mapping[str, int], n_runs: int
) -> dict[str, np.ndarray]:
    """Score band, scores per seed and first two latent coordinates of a scored batch, runs x
    block columns."""
    out: dict[str, np.ndarray] = {}
    if block.score_lo is not None and block.score_hi is not None:
        out["lo"], out["hi"] = block.score_lo, block.score_hi
    if block.seed_scores is not None:
        for k, seed in enumerate(block.seeds):
            out[f"seed:{seed}"] = block.seed_scores[:, :, k]
    for k in (1, 2):
        if any(values.shape[1] >= k for values in latent.values()):
            values_k = np.full((n_runs, len(block.columns)), np.nan)
            for column, values in latent.items():
                if values.shape[1] >= k:
                    values_k[:, position[column]] = values[:, k - 1]
            out[f"latent_{k}"] = values_k
    return out


def _reuse(
    previous: pa.Table, table: RunTable, columns: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Which runs' cached scores still hold (same file, run split and entries per histogram), and
    them (scores and :data:`EXTRA_COLUMNS`)."""
    n = len(table.runs)
    scores = np.full((n, len(columns)), np.nan)
    names = previous.column_names
    stored = {c.rsplit("_", 1)[0] for c in names if c.startswith("seed:")} | {
        name for name in EXTRA_COLUMNS if f"{name}_0" in names
    }
    extras = {name: np.full_like(scores, np.nan) for name in sorted(stored, key=_extra_order)}
    cached_runs = previous["run_number"].to_numpy()
    if len(cached_runs) == 0:
        return np.zeros(n, dtype=bool), scores, extras
    order = np.argsort(cached_runs, kind="stable")
    row = order[np.minimum(np.searchsorted(cached_runs, table.runs, sorter=order), len(cached_runs) - 1)]
    found = cached_runs[row] == table.runs

    def cached(name: str) -> np.ndarray:
        return previous[name].to_numpy(zero_copy_only=False)[row]

    same = found & (cached("signature") == table.signatures) & (table.signatures != "")
    same &= cached("split") == table.split  # low_stats decides the +inf of empty histograms
    for j, column in enumerate(columns):
        old, new = cached(f"entries_{j}").astype(np.float64), table.entries[column]
        same &= (old == new) | (np.isnan(old) & np.isnan(new))
    for j in range(len(columns)):
        scores[same, j] = cached(f"score_{j}").astype(np.float64)[same]
        for name, values in extras.items():
            values[same, j] = cached(f"{name}_{j}").astype(np.float64)[same]
    return same, scores, extras


def _write_score_cache(
    cache: str | Path,
    identity: str,
    table: RunTable,
    columns: Sequence[str],
    scores: np.ndarray,
    extras: Mapping[str, np.ndarray],
) -> None:
    data: dict[str, Any] = {
        "run_number": table.runs.astype(np.int64),
        "signature": table.signatures.astype(str),
        "split": table.split.astype(str),
    }
    for j, column in enumerate(columns):
        data[f"entries_{j}"] = table.entries[column].astype(np.float64)
        data[f"score_{j}"] = scores[:, j]
        for name, values in extras.items():
            data[f"{name}_{j}"] = values[:, j]
    _write_cache(cache, pa.table(data), identity, columns=list(columns))


Reco = tuple[np.ndarray, np.ndarray | None]  # (unit-area original, reconstruction) of one run, float32


def _reco_cache_path(cache: str | Path) -> Path:
    return Path(str(cache).removesuffix(".parquet") + ".reco.parquet")


def _read_reco_cache(cache: str | Path | None, identity: str, valid_runs: np.ndarray) -> dict[tuple[str, int], Reco]:
    """Stored reconstructions of runs whose scores are reused (same models, file, split, entries)."""
    table = _read_cache(None if cache is None else _reco_cache_path(cache), identity)
    if table is None:
        return {}
    valid = {int(r) for r in valid_runs}
    out: dict[tuple[str, int], Reco] = {}
    for column, run, original, reco in zip(*(table[c].to_pylist() for c in table.column_names), strict=True):
        if int(run) in valid:
            out[(column, int(run))] = (
                np.asarray(original, np.float32),
                None if reco is None else np.asarray(reco, np.float32),
            )
    return out


def _write_reco_cache(cache: str | Path, identity: str, recos: Mapping[tuple[str, int], Reco]) -> None:
    columns: dict[str, list[Any]] = {"histogram": [], "run_number": [], "original": [], "reconstruction": []}
    for (column, run), (original, reco) in recos.items():
        columns["histogram"].append(column)
        columns["run_number"].append(run)
        columns["original"].append(original)
        columns["reconstruction"].append(reco)
    schema = pa.schema(
        [
            ("histogram", pa.string()),
            ("run_number", pa.int64()),
            ("original", pa.list_(pa.float32())),
            ("reconstruction", pa.list_(pa.float32())),
        ],
    )
    _write_cache(_reco_cache_path(cache), pa.table(columns, schema=schema), identity)


def _write_reconstructions(
    run_table: str | Path,
    table: RunTable,
    storage: str | Path,
    columns: Sequence[str],
    scores: np.ndarray,
    splits: Mapping[str, np.ndarray],
    model: Any,
    trained: Sequence[str],
    reco_files: Mapping[str, str | Path],
    prep: Preprocessing,
    frozen: Mapping[str, Any],
    n_reconstructed: int,
    reco_runs: Sequence[int],
    batch: Batch | None,
    batch_scored: np.ndarray,
    cached: Mapping[tuple[str, int], Reco],
    tag: str,
) -> dict[tuple[str, int], Reco]:
    """float32 originals (unit area) and reconstructions of each histogram's top runs outside the
    training split and of ``reco_runs``. They come from ``cached``, from the runs just scored
    (``batch``), or are read for the few runs in neither. Returns them, by (column, run)."""
    chosen: dict[str, list[int]] = {}
    runs = table.runs
    for j, column in enumerate(columns):
        split, score = splits[column], scores[:, j]
        candidates = np.flatnonzero(~np.isin(split, ("train", "missing", "low_stats")) & ~np.isnan(score))
        top = candidates[np.argsort(-score[candidates], kind="stable")[:n_reconstructed]]  # short runs are shown apart
        available = set(runs[split != "missing"].tolist())
        wanted = [*runs[top].tolist(), *reco_runs]
        chosen[column] = [r for r in dict.fromkeys(int(r) for r in wanted) if r in available]
    in_batch = set() if batch is None else {int(r) for r in batch_scored}  # not the references read with them
    unread = sorted(
        {r for c, wanted_runs in chosen.items() for r in wanted_runs if (c, r) not in cached and r not in in_batch}
    )
    if unread and model is not None:  # and the runs reconstructing them reads (references)
        unread = np.union1d(unread, model.runs_needed(table, np.asarray(unread))).tolist()
    extra = (
        load_batch(run_table, storage, columns, min_entries=prep.min_entries, frozen_training=frozen, runs=unread)
        if unread
        else None
    )
    out: dict[tuple[str, int], Reco] = {}
    stored = read_storage_info(storage)
    row_of = {int(r): i for i, r in enumerate(runs)}
    for j, column in enumerate(columns):
        todo: dict[int, Reco] = {}
        for source in (batch, extra):
            data = source.histograms.get(column) if source is not None else None
            if source is None or data is None:
                continue
            wanted_here = [r for r in chosen[column] if (column, r) not in cached and r not in todo]
            if source is batch:
                wanted_here = [r for r in wanted_here if r in in_batch]
            present = np.isin(source.runs, wanted_here)
            if not present.any():
                continue
            recos = None
            if model is not None and column in trained:
                recos = model.reconstruct(source, source.runs[present], [column]).get(column)
                expected = data.counts[present].shape
                got = np.shape(recos) if recos is not None else expected
                if got[:1] != expected[:1] or int(np.prod(got[1:])) != int(np.prod(expected[1:])):
                    raise ValueError(
                        f"algorithm config {tag!r}: the reconstructions of histogram {column!r} have shape {got}, "
                        f"not the runs' histograms' {expected} (runs x bins)"
                    )
            originals = normalise(data.counts[present]).astype(np.float32)
            for i, run in enumerate(source.runs[present]):
                reco = None if recos is None else np.asarray(recos[i], np.float32).reshape(-1)
                todo[int(run)] = (originals[i].reshape(-1), reco)
        rows: dict[str, list[Any]] = {"run_number": [], "score": [], "original": [], "reconstruction": []}
        for run in chosen[column]:
            item = cached.get((column, run)) or todo.get(run)
            if item is None:
                continue
            out[(column, run)] = item
            rows["run_number"].append(run)
            rows["score"].append(float(scores[row_of[run], j]))
            rows["original"].append(item[0].reshape(-1))
            rows["reconstruction"].append(item[1])
        info = stored.get(column)
        meta = {
            "histogram": column,
            "shape": list(info.shape) if info else [],
            "edges": [e.tolist() for e in info.edges] if info else [],
            "axis_titles": list(info.axis_titles) if info else [],
        }
        schema = pa.schema(
            [
                ("run_number", pa.int64()),
                ("score", pa.float64()),
                ("original", pa.list_(pa.float32())),
                ("reconstruction", pa.list_(pa.float32())),
            ],
            metadata={"dqmflow": json.dumps(meta)},
        )
        Path(reco_files[column]).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(rows, schema=schema), reco_files[column])
    return out


def _string_ranks(column: pa.ChunkedArray) -> np.ndarray:
    """Each string's rank among the column's distinct strings (sorting a few hundred distinct
    histogram names beats comparing millions of strings)."""
    codes = pc.dictionary_encode(column.combine_chunks())
    rank = np.empty(len(codes.dictionary), dtype=np.int64)
    rank[np.argsort(np.asarray(codes.dictionary.to_pylist(), dtype=object), kind="stable")] = np.arange(len(rank))
    return rank[np.asarray(codes.indices.to_numpy(), dtype=np.int64)]


def collect_scores(paths: Sequence[str | Path], output: str | Path) -> pa.Table:
    """Concatenate per-(histogram, algorithm) score files into the long ``scores.parquet``, sorted
    by algorithm, histogram and run."""
    table = concat_score_files(paths)
    order = [_string_ranks(table["algorithm"]), _string_ranks(table["histogram"]), table["run_number"].to_numpy()]
    table = table.take(np.lexsort(order[::-1]))  # stable, like a sort by the three columns
    check_score_table(table, where=str(output))
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, output)
    return table
