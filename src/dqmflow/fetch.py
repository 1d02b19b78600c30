"""Fetch: read the requested histograms of many DQM files into one parquet shard per run.

A fetch *batch* is the set of runs of one primary dataset, subsystem and run range. For each
run it writes ``<shard_dir>/R000NNNNxx/<run>.parquet`` (long format: one row per histogram with its
class, entries, shape, bin contents, edges, title and axis titles ``x_title``/``y_title``; the
folders hold at most 100 runs, like the DQM GUI's) and the batch
writes a *manifest*: one row per (run, histogram) with a status (``ok``, ``empty``, ``missing``,
``wrong_type``, ``unreadable``, ``file_error``), the problem and a hash of the binning. Nothing is
silently lost: a file that cannot be read gets a ``file_error`` row and no shard.

Shards are reused when the file's signature (path, size, mtime) and the requested histograms are
unchanged, so re-running a batch after runs were added reads only the new files. Shards written
before axis titles were stored (no ``x_title``/``y_title`` columns) still read, with ``""`` titles.

A manifest is written to a temporary file and renamed, and ends with a footer line holding its
row count (``# dqmflow manifest complete: N rows``): :func:`read_manifest` refuses a manifest
without it (a copy torn by a kill, or written by hand), so a merge never takes a partial batch for
a whole one.

**Dead servers.** After ``max_host_failures`` consecutive connection failures to one XRootD host
(each already retried with backoff), the remaining files of that host are recorded as
``file_error`` (server unreachable) without being tried, and :class:`HostUnreachable` is raised
after the manifest is written, unless ``on_error='skip'``.

**A file that becomes unreadable** after its run was fetched keeps its last good shard: the run
stays in the table with the histograms read before, and the manifest gets a ``stale`` row naming
the error (see the README, "Resuming after a failure").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dqmflow.arrowio import open_parquet, read_parquet
from dqmflow.discover import DqmFile, batch_of, check_xrootd_allowed, is_remote
from dqmflow.manifest import MANIFEST_FOOTER, footer_rows, manifest_is_complete
from dqmflow.names import HistogramName
from dqmflow.rootio import Histogram, TruncatedFileError, read_file

__all__ = [
    "MANIFEST_COLUMNS", "FetchError", "HostUnreachable", "IncompleteManifestError", "binning_hash", "fetch_batch",
    "host_of", "manifest_is_complete", "read_manifest", "read_shard", "read_shard_titles", "shard_path",
]  # fmt: skip

log = logging.getLogger(__name__)
progress_log = logging.getLogger("dqmflow.progress")

MANIFEST_COLUMNS = [
    "run_number", "year", "era", "file", "histogram", "status", "problem", "binning", "layout", "entries",
]  # fmt: skip
SHARD_SCHEMA = pa.schema(
    [
        ("histogram", pa.string()),
        ("classname", pa.string()),
        ("entries", pa.float64()),
        ("shape", pa.list_(pa.int32())),
        ("values", pa.list_(pa.float64())),
        ("edges_x", pa.list_(pa.float64())),
        ("edges_y", pa.list_(pa.float64())),
        ("title", pa.string()),
        ("x_title", pa.string()),  # TAxis titles; y_title is null for a 1D histogram, as edges_y
        ("y_title", pa.string()),
    ]
)
_TITLE_COLUMNS = ("x_title", "y_title")


ON_ERROR = ("auto", "skip", "fail")


class FetchError(RuntimeError):
    """Raised when ``on_error='fail'`` and a file cannot be read."""


class HostUnreachable(FetchError):
    """Raised (unless ``on_error='skip'``) when the circuit breaker gave up on a server."""


class IncompleteManifestError(ValueError):
    """A manifest lacks its footer or has another number of rows than the footer says."""


def host_of(path: str) -> str:
    """``host[:port]`` of a ``root://`` URL, ``""`` for a local path."""
    if not is_remote(path):
        return ""
    return path[len("root://") :].split("/", 1)[0]


def is_connection_error(err: BaseException) -> bool:
    """Does ``err`` say the server could not be reached (as opposed to a bad or missing file)?"""
    if isinstance(err, ConnectionError | TimeoutError):
        return True
    text = str(err).lower()
    return isinstance(err, OSError) and any(
        word in text for word in ("connection", "socket", "operation expired", "timed out", "unreachable")
    )


def binning_hash(hist: Histogram) -> str:
    """Short hash of a histogram's class dimension and edges; equal hashes mean same binning."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(str(hist.ndim).encode())
    for edges in hist.edges:
        digest.update(np.round(np.asarray(edges, dtype=np.float64), 9).tobytes())
    return digest.hexdigest()


def shard_path(shard_dir: str | Path, run: int) -> Path:
    """Where the shard of ``run`` lives below a batch's shard folder."""
    return Path(shard_dir) / batch_of(run, 100) / f"{run}.parquet"


def _contents_key(histograms: Sequence[HistogramName]) -> str:
    return hashlib.blake2b("\n".join(h.column for h in histograms).encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class FetchStats:
    files: int = 0
    reused: int = 0
    failed: int = 0
    seconds: float = 0.0


#: XRootD's permanent answers: 3010 permission denied, 3011 no such file (retrying cannot help).
_PERMANENT_XROOTD = re.compile(r"\[(3010|3011)\]")


def _permanent(err: Exception) -> bool:
    """A read error that retrying cannot fix: a file cut short, no permission, no such file."""
    return isinstance(err, TruncatedFileError) or bool(_PERMANENT_XROOTD.search(str(err)))


def _read_with_retries(item: DqmFile, keys: dict[str, str], retries: int, backoff: float):
    if is_remote(item.path):
        check_xrootd_allowed()
    attempt = 0
    while True:
        try:
            return read_file(item.path, keys)
        except Exception as err:
            transient = is_remote(item.path) and isinstance(err, OSError | TimeoutError) and not _permanent(err)
            if not transient or attempt >= retries:
                raise
            wait = backoff * 2**attempt
            log.warning(
                "run %d: %s reading %s; retry %d/%d in %.1f s", item.run, err, item.path, attempt + 1, retries, wait
            )
            time.sleep(wait)
            attempt += 1


def _shard_table(found: dict[str, Histogram]) -> pa.Table:
    rows: dict[str, list[Any]] = {name: [] for name in SHARD_SCHEMA.names}
    for column, hist in found.items():
        rows["histogram"].append(column)
        rows["classname"].append(hist.classname)
        rows["entries"].append(hist.entries)
        rows["shape"].append(list(hist.values.shape))
        rows["values"].append(hist.values.reshape(-1))
        rows["edges_x"].append(hist.edges[0])
        rows["edges_y"].append(hist.edges[1] if hist.ndim == 2 else None)
        rows["title"].append(hist.title)
        titles = _padded(hist.axis_titles, hist.ndim)
        rows["x_title"].append(titles[0])
        rows["y_title"].append(titles[1] if hist.ndim == 2 else None)
    return pa.table(rows, schema=SHARD_SCHEMA)


def _padded(titles: Sequence[str | None], ndim: int) -> tuple[str, ...]:
    """``ndim`` axis titles: ``titles`` cut or padded with ``""`` (None counts as ``""``)."""
    return tuple(str(t or "") for t in titles[:ndim]) + ("",) * max(ndim - len(titles), 0)


def _title_lists(table: pa.Table) -> tuple[list[str | None], list[str | None]]:
    """The ``x_title`` and ``y_title`` columns of a shard, all None for shards without them."""

    def strings(column: str) -> list[str | None]:
        return table[column].to_pylist() if column in table.column_names else [None] * table.num_rows

    return strings("x_title"), strings("y_title")


def read_shard(path: str | Path, columns: set[str] | None = None) -> dict[str, Histogram]:
    """Histograms stored in one shard, by column name (only ``columns`` if given).

    Axis titles are ``""`` in shards written before they were stored.
    """
    table = read_parquet(path)
    names = table["histogram"].to_pylist()
    keep = [i for i, n in enumerate(names) if columns is None or n in columns]

    def lists(column: str) -> tuple[np.ndarray, np.ndarray]:
        arr = table[column].combine_chunks()
        return arr.offsets.to_numpy(), arr.values.to_numpy(zero_copy_only=False)

    (v_off, values), (x_off, xs), (y_off, ys), (s_off, shapes) = (
        lists(c) for c in ("values", "edges_x", "edges_y", "shape")
    )
    y_valid = table["edges_y"].combine_chunks().is_valid().to_numpy(zero_copy_only=False)
    entries = table["entries"].to_numpy()
    classes, titles = table["classname"].to_pylist(), table["title"].to_pylist()
    x_titles, y_titles = _title_lists(table)
    out: dict[str, Histogram] = {}
    for i in keep:
        shape = tuple(int(n) for n in shapes[s_off[i] : s_off[i + 1]])
        edges = [xs[x_off[i] : x_off[i + 1]]]
        if y_valid[i]:
            edges.append(ys[y_off[i] : y_off[i + 1]])
        hist_values = values[v_off[i] : v_off[i + 1]].reshape(shape)
        axis_titles = _padded((x_titles[i], y_titles[i]), len(edges))
        out[names[i]] = Histogram(hist_values, tuple(edges), float(entries[i]), classes[i], titles[i], axis_titles)
    return out


def read_shard_titles(path: str | Path) -> dict[str, tuple[str, str]]:
    """``{column: (x title, y title)}`` of the histograms in one shard, reading only those columns
    (cheap); ``""`` where a histogram has no such axis title or the shard predates axis titles."""
    with open_parquet(path) as handle:
        present = [c for c in _TITLE_COLUMNS if c in handle.schema_arrow.names]
        table = handle.read(columns=["histogram", *present], use_threads=False)
    x_titles, y_titles = _title_lists(table)
    return {
        name: (x or "", y or "") for name, x, y in zip(table["histogram"].to_pylist(), x_titles, y_titles, strict=True)
    }


def _reusable(shard: Path, signature: str, contents_key: str) -> list[dict] | None:
    if not shard.exists():
        return None
    try:
        meta = pq.read_schema(shard).metadata or {}
    except Exception:
        return None
    if meta.get(b"source") != signature.encode() or meta.get(b"contents") != contents_key.encode():
        return None
    return json.loads(meta[b"manifest"])


def _manifest_row(item: DqmFile, column: str, status: str, problem: str, hist: Histogram | None = None) -> dict:
    """One manifest row: run and file, histogram, status, problem and (if read) binning and entries."""
    return {
        "run_number": item.run,
        "year": item.year,
        "era": item.era,
        "file": item.path,
        "histogram": column,
        "status": status,
        "problem": problem,
        "binning": binning_hash(hist) if hist is not None else "",
        "layout": hist.layout if hist is not None else "",
        "entries": hist.entries if hist is not None else np.nan,
    }


def _fetch_one(
    item: DqmFile, histograms: Sequence[HistogramName], shard: Path, signature_key: str, retries: int, backoff: float
) -> tuple[list[dict], Exception | None]:
    """The manifest rows of one file (and its shard written), or one ``file_error`` row and the error."""
    keys = {h.column: h.in_file(item.run) for h in histograms}
    try:
        found, problems = _read_with_retries(item, keys, retries, backoff)
    except Exception as err:
        return [_manifest_row(item, "", "file_error", f"cannot read file: {type(err).__name__}: {err}")], err
    rows = []
    for hist in histograms:
        column = hist.column
        if column in found:
            h = found[column]
            empty = h.entries <= 0 and not np.any(h.values)
            status, problem = ("empty", "empty histogram: no entries") if empty else ("ok", "")
            rows.append(_manifest_row(item, column, status, problem, h))
        else:
            problem = problems[column]
            rows.append(_manifest_row(item, column, problem.split(":", 1)[0].replace(" ", "_"), problem))
    table = _shard_table(found)
    meta = {"source": item.signature, "contents": signature_key, "manifest": json.dumps(rows, default=float)}
    table = table.replace_schema_metadata(meta)
    shard.parent.mkdir(parents=True, exist_ok=True)
    tmp = shard.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    tmp.replace(shard)
    return rows, None


def _stale_rows(shard: Path, item: DqmFile, error: str) -> list[dict] | None:
    """Manifest rows of the last good shard of ``item``'s run (read from an older file signature),
    with a ``stale`` row saying why it is kept; ``None`` if there is no readable shard."""
    if not shard.exists():
        return None
    try:
        meta = pq.read_schema(shard).metadata or {}
        rows: list[dict] = json.loads(meta[b"manifest"])
        source = meta.get(b"source", b"").decode()
    except Exception:
        return None
    if not rows or rows[0]["status"] == "file_error":
        return None
    note = _manifest_row(item, "", "stale", f"{error}; kept the shard read before from {source.split('|')[0]}")
    return [note, *rows]


def fetch_batch(
    files: Sequence[DqmFile],
    histograms: Sequence[HistogramName],
    shard_dir: str | Path,
    manifest: str | Path,
    *,
    reuse: bool = True,
    on_error: str = "auto",
    retries: int = 3,
    backoff: float = 2.0,
    progress_every: float = 10.0,
    max_host_failures: int = 3,
) -> FetchStats:
    """Fetch ``histograms`` from ``files`` into shards below ``shard_dir`` and write ``manifest``.

    ``on_error='skip'`` records unreadable files and goes on; ``'fail'`` raises
    :class:`FetchError` naming the file after writing what was fetched so far; ``'auto'`` (the
    default) skips unreadable files but raises :class:`HostUnreachable` when the circuit breaker
    gave up on a server (``max_host_failures`` consecutive connection failures, each after its
    retries; 0 disables the breaker), after recording every remaining file of that host.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, not {on_error!r}")
    shard_dir = Path(shard_dir)
    key = _contents_key(histograms)
    rows: list[dict] = []
    start = last = time.monotonic()
    reused = failed = 0
    streak: dict[str, int] = {}  # consecutive connection failures per host
    dead: dict[str, str] = {}  # host -> last error, once the breaker opened
    for done, item in enumerate(sorted(files, key=lambda f: f.run), start=1):
        shard = shard_path(shard_dir, item.run)
        host = host_of(item.path)
        cached = _reusable(shard, item.signature, key) if reuse else None
        if cached is not None:
            rows.extend(cached)
            reused += 1
        elif host in dead:
            failed += 1
            problem = (
                f"cannot read file: server unreachable: {host} failed {max_host_failures} consecutive times "
                f"(last: {dead[host]}); not tried"
            )
            rows.extend(_stale_rows(shard, item, problem) or [_manifest_row(item, "", "file_error", problem)])
        else:
            new, error = _fetch_one(item, histograms, shard, key, retries, backoff)
            if error is None:
                streak[host] = 0
                rows.extend(new)
            else:
                failed += 1
                kept = _stale_rows(shard, item, new[0]["problem"])
                rows.extend(kept or new)
                if kept is None:
                    shard.unlink(missing_ok=True)
                log.error("run %d: %s (%s)", item.run, new[0]["problem"], item.path)
                if on_error == "fail":
                    _write_manifest(rows, manifest)
                    raise FetchError(f"run {item.run}: {new[0]['problem']} ({item.path})")
                if host and is_connection_error(error):
                    streak[host] = streak.get(host, 0) + 1
                    if max_host_failures and streak[host] >= max_host_failures:
                        dead[host] = f"{type(error).__name__}: {error}"
                        progress_log.error(
                            "fetch %s: %s failed %d consecutive times; its remaining files are recorded as "
                            "file_error without being tried",
                            shard_dir,
                            host,
                            streak[host],
                        )
                else:
                    streak[host] = 0
        now = time.monotonic()
        if now - last >= progress_every or done == len(files):
            rate = done / max(now - start, 1e-9)
            progress_log.info(
                "fetch %s: %d/%d files, %.1f files/s, %d reused, %d failed",
                shard_dir,
                done,
                len(files),
                rate,
                reused,
                failed,
            )
            last = now
    _write_manifest(rows, manifest)
    if dead and on_error != "skip":
        hosts = ", ".join(f"{host} ({error})" for host, error in dead.items())
        raise HostUnreachable(
            f"XRootD server unreachable: {hosts}; {failed} of the {len(files)} files of the fetch batch "
            f"{Path(manifest).parent.name}/{Path(manifest).stem} could not be read. Check the server (or your grid "
            "proxy) and run again: the files fetched so far are reused. "
            "Set fetch: {on_error: skip} to go on without these runs."
        )
    return FetchStats(len(files), reused, failed, time.monotonic() - start)


def _write_manifest(rows: list[dict], manifest: str | Path) -> None:
    """Write the manifest atomically (temporary file, then rename) with its footer line."""
    frame = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    frame["problem"] = frame["problem"].astype(str).str.replace(r"\s*[\r\n]+\s*", " ", regex=True)  # one line per row
    path = Path(manifest)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        frame.to_csv(handle, sep="\t", index=False)
        handle.write(MANIFEST_FOOTER.format(n=len(frame)) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest; :class:`IncompleteManifestError` if its footer is missing or disagrees."""
    expected, found = footer_rows(path)
    if expected is None or expected != found:
        what = "has no footer line" if expected is None else f"has {found} rows where its footer says {expected}"
        raise IncompleteManifestError(
            f"fetch manifest {path} is incomplete ({what}): it was torn by a kill or written by another tool. "
            "Delete it and run again: its fetch job reruns and reuses the shards already written."
        )
    return pd.read_csv(
        path,
        sep="\t",
        dtype={"binning": str, "layout": str, "problem": str, "era": str},
        keep_default_na=False,
        na_values={"entries": [""]},
        nrows=expected,
    )
